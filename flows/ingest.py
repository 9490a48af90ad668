"""The ingest flow: DESIGN.md section 6, step by step, one mapped group task per micro-batch.

    6. recover   batches a crash left claimed: remove their outputs, release their files
    1. discover  ready files (settled, or with a NAME.done marker) the ledger does not know
    2. claim     hash a micro-batch (a group of files), claim it in one ledger transaction
    3. process   the mapped task `process-group`, on the flow's task runner: read the files
                 again, split and parse them, validate the rows (one GE run), write every
                 output to the batch's staging folder (tasks/batch/group.py)
    4. commit    record the staged outputs (the point of no return), rename them into
                 year=Y/month=M/ and the control folder's quarantine/, commit the batch
    5. snapshot  the lake's snapshot follows the commits, paced (`SnapshotPace`: after the
                 first commit, then at most every 10 s), and once more at the pass's end

Both cores: a pass of several groups on a machine of >= 2 cores processes them in
worker processes, one per core (Prefect's ProcessPoolTaskRunner, started for the
pass: flows/cluster.py), while the flow claims and commits; one more group is claimed
ahead, so a child that finishes finds the next waiting. A pass of few groups, or
CABLESTREAM_GROUP_RUNNER=threads, runs GROUPS_IN_FLIGHT groups at once on the
flow's threads (`regex`, zstd and the hashing release the GIL; parsing, GE and
Arrow building mostly do not). A group task takes and returns only names, hashes
and counts (`GroupJob`, `StagedBatch`), so any task runner can run it (processes,
a Dask cluster: `--dask`, where as many groups are in flight as the workers have
threads). Tasks never return results to be kept (`cache_policy=NONE`, no persistence).
"""

from __future__ import annotations

import contextlib
import copyreg
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from cablestream.flows.cluster import (
    group_processes,
    process_task_runner,
    report_to_the_flows_api,
    runner_choice,
    task_slots,
)
from cablestream.flows.settings import IngestSettings
from cablestream.tasks.batch import claim, commit, group
from cablestream.tasks.batch.route import PARSE_WORKERS
from cablestream.tasks.inbox.folder import InboxFile, archive_settled
from cablestream.tasks.inbox.settle import ready_in_one_scan
from cablestream.tasks.inbox.store import Inbox
from cablestream.tasks.lake.snapshot import SnapshotPace, refresh_snapshot
from cablestream.tasks.lake.writer import move_legacy_control
from cablestream.tasks.ledger.protocol import BatchLost, Ledger
from cablestream.tasks.ledger.sqlite import open_ledger
from cablestream.tasks.quality.engine import build_docs_index, warm_up_in_background

# --- progress: the CLI listens, the flow reports ------------------------------------------

ProgressListener = Callable[[str, dict[str, Any]], None]
_listeners: list[ProgressListener] = []


def add_progress_listener(listener: ProgressListener) -> Callable[[], None]:
    """Receive ("discovered" | "batch", details) events; returns a function that unsubscribes."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def _emit(event: str, **details: Any) -> None:
    for listener in list(_listeners):
        listener(event, details)


# --- tasks: thin wrappers around tasks/ -----------------------------------------------------

_Value = TypeVar("_Value")


class _Quote(quote):
    """Prefect's `quote`, made itself again by a pickle (`_quote_again`)."""


def _quote_again(value: Any) -> tuple[Any, ...]:
    # Prefect's annotations come back from a pickle wrapping a 1-tuple of the value
    # (tuple's pickling hands `__new__` the tuple): a worker would get `(job,)`.
    return (_Quote, (value[0],))


copyreg.pickle(_Quote, _quote_again)


def _opaque(value: _Value) -> _Value:
    """`value` handed to a task without Prefect visiting every element for futures (it
    holds none): a group's 2,000 files cost CPU at each visit.

    The task engine that runs the task (in the flow's process, on a thread, on a Dask
    worker, which gets the quote itself) takes the value out of the quote without a
    visit. Prefect's process pool takes it out in the flow's process before it pickles
    the parameters, so a job for a worker process is quoted twice (`_group_runner`):
    else the child's engine visits every file twice.
    """
    return cast(_Value, _Quote(value))


@task(name="recover", cache_policy=NONE, persist_result=False)
def recover_task(lake: Path, ledger: Ledger) -> list[str]:
    return commit.recover(lake, ledger)


@task(name="discover", cache_policy=NONE, persist_result=False)
def discover_task(
    inbox: Inbox, ledger: Ledger, settings: IngestSettings, only: list[str] | None
) -> claim.Plan:
    """Ready files the ledger does not hold, as a `claim.Plan` (no file is read: its
    micro-batches are made as the pass claims them).

    One object back (Prefect links each element of a list a task returns to its
    state, for the whole flow run: a list of every file would cost O(inbox)).
    """
    ready = ready_in_one_scan(claim.scan_fresh(inbox, ledger, only), settings.settle_seconds)
    return claim.plan_pass(
        inbox,
        ready,
        settings.max_files_per_batch,
        settings.max_batch_bytes,
        settings.max_file_bytes,
    )


@task(name="claim", cache_policy=NONE, persist_result=False)
def claim_task(
    inbox: Inbox, ledger: Ledger, files: list[InboxFile], batch_id: str, max_file_bytes: int
) -> claim.ClaimedBatch:
    """Hash and claim a group; its bytes are read again where the group is processed."""
    return claim.read_and_claim(inbox, files, ledger, batch_id, max_file_bytes, keep_bytes=False)


@task(name="process-group", cache_policy=NONE, persist_result=False)
def process_group_task(job: group.GroupJob) -> commit.StagedBatch:
    """Read, parse, validate and stage one claimed group (names in, counts out)."""
    return group.process(job)


@task(name="data-docs", cache_policy=NONE, persist_result=False)
def data_docs_task(lake: Path) -> None:
    """The lake's Data Docs index and expectations page, once at the pass's end (each
    group rendered only its own run's page)."""
    build_docs_index(lake)


@task(name="commit", cache_policy=NONE, persist_result=False)
def commit_task(
    lake: Path, ledger: Ledger, staged: commit.StagedBatch, max_attempts: int
) -> commit.BatchSummary:
    """Publish and commit a staged group, or hold it back when validation could not run.

    No snapshot: the flow makes them (`snapshot_task`), paced.
    """
    if staged.unevaluated:
        return commit.commit_held(lake, ledger, staged, max_attempts, snapshot=False)
    return commit.commit_staged(lake, ledger, staged, snapshot=False)


@task(name="snapshot", cache_policy=NONE, persist_result=False)
def snapshot_task(lake: Path, ledger: Ledger) -> None:
    """The lake's current snapshot made to hold every committed data file."""
    refresh_snapshot(lake, ledger.live_outputs)


@task(name="quality-report", cache_policy=NONE, persist_result=False)
def report_task(lake: Path, inbox: Inbox, ledger_url: str | None) -> str:
    """The dashboard rewritten and alerts raised after every pass (flows/dashboard.py)."""
    from cablestream.flows.dashboard import refresh

    return refresh(lake, inbox, ledger_url, get_run_logger())


# --- the flow --------------------------------------------------------------------------------


# Counts a pass adds up from its batches' summaries.
_BATCH_COUNTS = (
    "files",
    "bytes",
    "cables",
    "rows_written",
    "duplicates",
    "rows_quarantined",
    "files_quarantined",
    "rows_replaced",
)


@dataclass(slots=True)
class IngestSummary:
    files_seen: int = 0
    batches: int = 0
    files: int = 0
    bytes: int = 0
    cables: int = 0
    rows_written: int = 0
    duplicates: int = 0
    rows_quarantined: int = 0
    files_quarantined: int = 0
    rows_replaced: int = 0  # rows of older versions of files changed in place
    expectations_failed: int = 0
    batches_retry: int = 0
    batches_held: int = 0
    batches_flagged: int = 0
    batches_lost: int = 0  # taken over by another process after our lease ran out
    recovered_batches: list[str] = field(default_factory=list)
    # Batches held back: "<batch_id> <status>: <expectation>, ..." per batch.
    not_written: list[str] = field(default_factory=list)
    # Batches written although `fail` rules failed: "<batch_id>: <expectation>, ...".
    flagged: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, batch: commit.BatchSummary) -> None:
        self.batches += 1
        for name in _BATCH_COUNTS:
            setattr(self, name, getattr(self, name) + getattr(batch, name))
        self.expectations_failed += len(batch.expectations_failed)
        names = ", ".join(batch.expectations_failed)
        if batch.status in ("retry", "held"):
            self.not_written.append(f"{batch.batch_id} {batch.status}: {names}")
        elif batch.expectations_failed:
            self.flagged.append(f"{batch.batch_id}: {names}")
        self.batches_retry += batch.status == "retry"
        self.batches_held += batch.status in ("retry", "held")
        self.batches_flagged += batch.status == "committed" and bool(batch.expectations_failed)
        for reason, count in batch.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def needs_attention(result: dict[str, Any]) -> bool:
    """Whether a pass (or the totals of a watch, or a reprocess) held a batch back, failed
    a `fail` rule, or left sources unavailable (reprocess).

    The CLI exits non-zero then: a scheduler must see it, not only the log.
    """
    return bool(
        result.get("batches_held") or result.get("batches_flagged") or result.get("unavailable")
    )


# Groups processed at once: one per core keeps both busy (one group validates and writes
# while the next one parses); each group in flight holds at most max_batch_bytes of text.
GROUPS_IN_FLIGHT = os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class _Workers:
    """Where the pass runs its groups, and then builds its Data Docs index."""

    submit: Callable[[group.GroupJob], PrefectFuture[commit.StagedBatch]]
    data_docs: Callable[[Path], None]


@contextlib.contextmanager
def _group_runner(processes: int) -> Iterator[_Workers]:
    """How the pass submits a group: to `processes` worker processes started for the
    pass (and ended with it, after their groups), or, with 0, to the flow's own runner."""
    if not processes:
        # The index in the flow's process, which has GE: a Dask worker may be on a
        # machine whose control folder holds only its own groups' runs.
        yield _Workers(lambda job: process_group_task.submit(_opaque(job)), data_docs_task)
        return

    def submit(job: group.GroupJob) -> PrefectFuture[commit.StagedBatch]:
        with report_to_the_flows_api():
            return runner.submit(process_group_task, {"job": _opaque(_opaque(job))})

    def data_docs(lake: Path) -> None:
        # In a child: it has GE imported; the flow's process has not.
        with report_to_the_flows_api():
            future = runner.submit(data_docs_task, {"lake": lake})
        future.result()

    with process_task_runner(processes) as runner:
        yield _Workers(submit, data_docs)


@dataclass(slots=True)
class _InFlight:
    claimed: claim.ClaimedBatch  # names and hashes only
    future: PrefectFuture[commit.StagedBatch]


def _settle(
    settings: IngestSettings,
    inbox_root: Inbox,
    lake_root: Path,
    ledger: Ledger,
    item: _InFlight,
) -> commit.BatchSummary:
    """Steps 4-5 for a processed group: commit (or hold back), archive, the artifact."""
    staged = item.future.result()
    result = commit_task(lake_root, ledger, _opaque(staged), settings.max_attempts)
    if settings.archive is not None and result.status == "committed":
        assert isinstance(inbox_root, Path)  # settings refuse an archive for an object store
        archive_settled(
            inbox_root, settings.archive.resolve(), [f.found for f in item.claimed.files]
        )
    create_markdown_artifact(
        markdown=result.markdown(),
        key="ingest-batch",  # one key: each batch adds a version, the UI shows the history
        description=f"cablestream ingest batch {result.batch_id}: {result.status}",
    )
    return result


def _log_batch(logger: Any, result: commit.BatchSummary) -> None:
    if result.expectations_failed:
        logger.error(
            "batch %s %s: FAILED rules %s (%s)",
            result.batch_id,
            "written but flagged" if result.status == "committed" else result.status,
            ", ".join(result.expectations_failed),
            result.note,
        )
    logger.info(
        "batch %s %s: %d files, %d cables, %d rows written, %d duplicates, %d quarantined",
        result.batch_id,
        result.status,
        result.files,
        result.cables,
        result.rows_written,
        result.duplicates,
        result.files_quarantined + result.rows_quarantined,
    )


@flow(
    name="cablestream-ingest",
    persist_result=False,
    log_prints=False,
    # Prefect types this TaskRunner[PrefectFuture[Any]] (invariant), which its own thread
    # pool runner (of PrefectConcurrentFuture) does not match.
    task_runner=cast(
        "TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=GROUPS_IN_FLIGHT)
    ),
)
def ingest_flow(
    inbox: str | None = None,
    lake: str | None = None,
    settle_seconds: float | None = None,
    max_files_per_batch: int | None = None,
    max_batch_bytes: int | None = None,
    max_file_bytes: int | None = None,
    max_attempts: int | None = None,
    archive: str | None = None,
    ledger: str | None = None,
    paths: list[str] | None = None,
) -> dict[str, Any]:
    """One pass over the inbox: every ready, new file ends in the lake or the quarantine.

    Unset parameters come from `CABLESTREAM_*` env vars, then the defaults
    (`data/inbox`, `data/lake`). `paths` limits the pass to those inbox-relative
    paths (the watcher uses it).
    """
    started = time.perf_counter()
    settings = IngestSettings.resolve(
        inbox=inbox,
        lake=lake,
        settle_seconds=settle_seconds,
        max_files_per_batch=max_files_per_batch,
        max_batch_bytes=max_batch_bytes,
        max_file_bytes=max_file_bytes,
        max_attempts=max_attempts,
        archive=archive,
        ledger=ledger,
    )
    logger = get_run_logger()
    summary = IngestSummary()
    runner_choice()  # RunnerChoiceError: an unknown CABLESTREAM_GROUP_RUNNER, before any work
    settings.check_paths()  # InputError: a missing inbox, nested folders, an unwritable lake
    lake_root = settings.lake_root()  # an object-store lake: its local control folder
    lake_root.mkdir(parents=True, exist_ok=True)
    for moved in move_legacy_control(lake_root):
        logger.warning("moved %s out of the lake into its control folder", moved)
    inbox_root = settings.inbox_location()
    # The ledger is opened once per pass and handed to the steps.
    pass_ledger: Ledger = open_ledger(lake_root, settings.ledger)

    # 6. Recover first: a batch a crash left claimed is removed and its files are taken again.
    summary.recovered_batches = recover_task(lake_root, pass_ledger)
    if summary.recovered_batches:
        logger.warning("recovered %d unfinished batches", len(summary.recovered_batches))

    # 1. Discover ready files the ledger does not hold.
    plan = discover_task(inbox_root, pass_ledger, settings, paths)
    summary.files_seen = plan.files.num_rows
    _emit("discovered", files=plan.files.num_rows, bytes=plan.bytes, batches=plan.batches)

    # 2-5. Claim a group, hand it to the task runner, commit groups in the order claimed;
    # at most `window` groups are claimed and not yet committed. In worker processes one
    # more than there are children: a claimed group holds only names and hashes.
    groups = plan.groups()
    processes = group_processes(plan.batches)
    window = processes + 1 if processes else task_slots(GROUPS_IN_FLIGHT)
    # A child parses on its share of the cores (one each on 2 cores: no thread pool).
    parse_workers = max(1, (os.cpu_count() or 1) // processes) if processes else PARSE_WORKERS
    if not processes:
        # Validated here: GE imported (seconds) while the first group is claimed and parsed.
        warm_up_in_background()
    in_flight: deque[_InFlight] = deque()
    claiming: str | None = None  # a batch being claimed (not yet in flight)
    pace = SnapshotPace()
    behind = False  # a commit the current snapshot does not show yet
    # The worker processes, if any, for the pass (ended at its end, or on an error below).
    runner = contextlib.ExitStack()
    workers = runner.enter_context(_group_runner(processes))
    validated = False  # a group was handed over: the Data Docs index is rebuilt at the end
    try:
        while True:
            while len(in_flight) < window and (files := next(groups, None)):
                batch_id = claiming = claim.new_batch_id()
                claimed = claim_task(
                    inbox_root, pass_ledger, _opaque(files), batch_id, settings.max_file_bytes
                )
                if not claimed.files:
                    continue
                job = group.GroupJob(
                    str(inbox_root),
                    str(lake_root),
                    claimed,
                    settings.max_file_bytes,
                    frozenset(v.sha256 for v in pass_ledger.older_versions(batch_id)),
                    settings.lake_url,
                    parse_workers=parse_workers,
                )
                future = workers.submit(job)
                validated = True
                in_flight.append(_InFlight(claimed, future))
                claiming = None
            if not in_flight:
                break
            item = in_flight[0]
            try:
                result = _settle(settings, inbox_root, lake_root, pass_ledger, item)
            except BatchLost as error:
                # Our lease ran out and another process undid the batch: its files are
                # taken again by whoever comes next; nothing of ours was published.
                commit.abandon(lake_root, pass_ledger, item.claimed.batch_id, "lost")
                summary.batches_lost += 1
                logger.error("batch %s given up: %s", item.claimed.batch_id, error)
            else:
                summary.add(result)
                _log_batch(logger, result)
                behind = True
            in_flight.popleft()
            if behind and pace.due(time.monotonic()):
                begun = time.monotonic()
                snapshot_task(lake_root, pass_ledger)
                pace.made(begun, time.monotonic())
                behind = False
            _emit("batch", files=len(item.claimed.files), bytes=item.claimed.bytes)
        if validated:
            workers.data_docs(lake_root)
    except BaseException as error:
        # Settle every batch still ours (undo it, or finish it past its point of no
        # return) as recovery would, before the error goes on; if that fails too,
        # recovery will. A group still running is waited for first, so that nothing
        # is written to a staging folder after it was cleared.
        for item in in_flight:
            if isinstance(error, Exception):
                # Its own error (or a dead child's broken pool) is not the one raised.
                with contextlib.suppress(Exception):
                    item.future.wait()
        # Worker processes end first: after a child died, the pool stops the others.
        runner.close()
        unsettled = [item.claimed.batch_id for item in in_flight]
        for batch_id in [*unsettled, *([claiming] if claiming else [])]:
            try:
                if commit.abandon(lake_root, pass_ledger, batch_id, f"{error!r}"):
                    logger.error("batch %s settled after an error: %r", batch_id, error)
            except Exception as cleanup:
                logger.error("batch %s left for recovery: %r", batch_id, cleanup)
        if behind and isinstance(error, Exception):
            try:
                refresh_snapshot(lake_root, pass_ledger.live_outputs)
            except Exception as cleanup:
                logger.error("snapshot left for recovery: %r", cleanup)
        if validated and isinstance(error, Exception):
            # The runs validated so far are in the index (here: the workers are gone).
            try:
                build_docs_index(lake_root)
            except Exception as cleanup:
                logger.error("Data Docs index not rebuilt: %r", cleanup)
        raise
    finally:
        runner.close()

    if behind:
        snapshot_task(lake_root, pass_ledger)
    report_task(lake_root, inbox_root, settings.ledger)
    summary.seconds = time.perf_counter() - started
    return summary.as_dict()
