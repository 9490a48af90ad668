"""Watch mode: file events (watchfiles) plus a periodic rescan, in micro-batches.

An object-store inbox has no file events: its listing is polled every `rescan_seconds`
(and at once after a pass, and when a waiting object will have settled).

The watcher only decides *when* to run a pass and over which ready files;
every pass is the ingest flow itself, so exactly-once and crash recovery are
the same as for a one-shot run. A stop request (SIGINT/SIGTERM) lets the
running pass finish, then returns: nothing is lost or done twice.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, tags

from cablestream.flows.settings import IngestSettings
from cablestream.tasks.batch.claim import fresh_files
from cablestream.tasks.inbox.settle import Settler
from cablestream.tasks.inbox.store import Inbox, ObjectInbox
from cablestream.tasks.ledger.sqlite import open_ledger

# How often the loop wakes without events, to notice files that have settled.
TICK_MS = 100
# Pause after a failed pass (disk full, lake unreachable ...) before the next try.
ERROR_BACKOFF = 5.0

logger = logging.getLogger("cablestream.watch")

RunPass = Callable[[list[str] | None], dict[str, Any]]
T = TypeVar("T")
# Tags of the watch service and its passes (prefect.yaml's watch-service deployment has them).
WATCH_TAGS = ("cablestream", "watch")


@dataclass(slots=True)
class WatchSummary:
    passes: int = 0
    events: int = 0
    errors: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    def add(self, result: dict[str, Any]) -> None:
        self.passes += 1
        for key, value in result.items():
            if isinstance(value, int) and not isinstance(value, bool):
                self.totals[key] = self.totals.get(key, 0) + value


def watch_inbox(
    settings: IngestSettings,
    stop: threading.Event,
    run_pass: RunPass,
    on_pass: Callable[[dict[str, Any]], None] | None = None,
) -> WatchSummary:
    """Run `run_pass` over ready files as they land, until `stop` is set.

    A pass starts when watched events have quietened (watchfiles groups them
    for at most `max_wait_seconds`), when a waiting file's settle interval
    has run out, or every `rescan_seconds` (events can be missed: network
    filesystems, overflowing queues). The first pass covers the whole inbox.
    """
    inbox = settings.inbox_location()
    if isinstance(inbox, Path):
        inbox.mkdir(parents=True, exist_ok=True)
    summary = WatchSummary()
    settler = Settler(settings.settle_seconds)

    def one_pass(paths: list[str] | None) -> None:
        try:
            result: dict[str, Any] = in_worker_thread(run_pass, paths)
        except Exception as error:  # keep serving: the failed batch was undone, retry later
            summary.errors += 1
            logger.error("ingest pass failed, retrying in %.0f s: %r", ERROR_BACKOFF, error)
            stop.wait(ERROR_BACKOFF)
            return
        summary.add(result)
        if on_pass is not None:
            on_pass(result)

    one_pass(None)  # recover, then take everything already there
    last_rescan = time.monotonic()
    # Wall time of the next scan without events: when a waiting file will have settled,
    # and at once after every pass (files that landed while it ran had no watcher yet).
    wake_at: float | None = 0.0
    lake = settings.lake_root()
    for changes in _inbox_events(inbox, settings.max_wait_seconds, stop):
        if stop.is_set():
            break
        # Ignore events from the lake when it sits under the inbox.
        changes = {c for c in changes if not _under(lake, c[1])}
        summary.events += len(changes)
        now = time.time()
        due = bool(changes) or (wake_at is not None and now >= wake_at)
        if time.monotonic() - last_rescan >= settings.rescan_seconds:
            due, last_rescan = True, time.monotonic()
        if not due:
            continue
        try:
            fresh = fresh_files(inbox, open_ledger(lake, settings.ledger))
        except Exception as error:  # the ledger is unreachable (disk full, locked): keep serving
            summary.errors += 1
            logger.error("inbox scan failed, retrying in %.0f s: %r", ERROR_BACKOFF, error)
            stop.wait(ERROR_BACKOFF)
            continue
        ready = settler.ready(fresh, now=now)
        waiting = [item for item in fresh if item not in ready]
        settle_in = settler.next_settle_in(waiting, now=now)
        # A file that changed since the last scan is re-checked one settle interval later.
        wake_at = now + (settle_in if settle_in is not None else settings.settle_seconds)
        if not waiting:
            wake_at = None
        if ready:
            one_pass([item.path for item in ready])
            wake_at = 0.0
    return summary


def _inbox_events(
    inbox: Inbox, max_wait_seconds: float, stop: threading.Event
) -> Iterator[set[Any]]:
    """Sets of file events, or an empty set every tick without any (a stop ends them).

    A local folder's come from watchfiles; an object store has none, so it only ticks
    (the caller lists it when a rescan or a settling object is due).
    """
    if isinstance(inbox, ObjectInbox):
        while not stop.wait(TICK_MS / 1000):
            yield set()
        return
    import watchfiles

    yield from watchfiles.watch(
        inbox,
        stop_event=stop,
        yield_on_timeout=True,
        rust_timeout=TICK_MS,
        debounce=max(int(max_wait_seconds * 1000), 1),
        step=20,
        raise_interrupt=False,
        watch_filter=None,
    )


def in_worker_thread(work: Callable[..., T], *args: Any) -> T:
    """Run `work(*args)` (a pass, or the CLI's watch service) in a daemon thread and wait.

    Prefect's flow engine replaces the SIGTERM handler of the main thread while
    a flow runs (it raises TerminationSignal mid-pass); off the main thread it
    cannot, so a stop request waits for the pass to end. A second signal ends
    the wait at once (KeyboardInterrupt); recovery cleans up the pass then.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = work(*args)
        except BaseException as error:  # re-raised in the caller's thread
            box["error"] = error

    # The thread runs in a copy of this context, so a pass started inside the watch
    # service's flow run is its child run (the Prefect UI shows the passes under it),
    # and runs started inside `prefect.tags(...)` carry those tags.
    context = contextvars.copy_context()
    worker = threading.Thread(
        target=context.run, args=(target,), name="cablestream-pass", daemon=True
    )
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result


def _under(root: Any, path: str) -> bool:
    return Path(path).resolve().is_relative_to(root)


@flow(name="cablestream-watch", persist_result=False)
def watch_flow(
    inbox: str | None = None,
    lake: str | None = None,
    settle_seconds: float | None = None,
    max_wait_seconds: float | None = None,
    rescan_seconds: float | None = None,
) -> dict[str, Any]:
    """The watch service as a flow (for the deployment): each pass is an ingest subflow run."""
    from cablestream.flows.ingest import ingest_flow

    settings = IngestSettings.resolve(
        inbox=inbox,
        lake=lake,
        settle_seconds=settle_seconds,
        max_wait_seconds=max_wait_seconds,
        rescan_seconds=rescan_seconds,
    )
    # Inside a flow run, SIGTERM belongs to Prefect (cancellation); nothing to install.
    stop = threading.Event()

    def run_pass(paths: list[str] | None) -> dict[str, Any]:
        return ingest_flow(
            inbox=settings.inbox_url or str(settings.inbox),
            lake=settings.lake_url or str(settings.lake),
            settle_seconds=settings.settle_seconds,
            paths=paths,
        )

    with tags(*WATCH_TAGS):  # the passes carry them (the deployment's own run has them)
        summary = watch_inbox(settings, stop, run_pass)
    return {"passes": summary.passes, "events": summary.events, **summary.totals}


def install_stop_handlers() -> threading.Event:
    """SIGINT/SIGTERM set the returned event (a second signal stops at once)."""
    import signal

    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return stop

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
