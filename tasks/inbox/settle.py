"""When an inbox file is complete and may be claimed.

A file is *ready* when its size and mtime have been stable for the settle
interval, or at once when a completion marker `NAME.done` sits beside it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from cablestream.tasks.inbox.folder import InboxFile, scan_inbox


class Settler:
    """Decides readiness from what successive scans saw.

    A file is ready when it has a `.done` marker, or when it has not been
    written for `settle_seconds` (any write moves its mtime) and its size and
    mtime are the same as at the previous scan (this catches producers that
    set an old mtime while still writing). A one-shot run over an old inbox
    therefore takes everything at once, while a file written a moment ago waits.
    """

    def __init__(self, settle_seconds: float) -> None:
        self.settle_seconds = settle_seconds
        self._seen: dict[str, tuple[int, int]] = {}

    def ready(self, files: list[InboxFile], now: float | None = None) -> list[InboxFile]:
        """Files ready to claim out of one scan; remembers the scan for the next call."""
        now = time.time() if now is None else now
        ready: list[InboxFile] = []
        for item in files:
            previous = self._seen.get(item.path)
            unchanged = previous is None or previous == (item.size, item.mtime_ns)
            if item.has_marker or (unchanged and is_settled(item, self.settle_seconds, now)):
                ready.append(item)
        self._seen = {item.path: (item.size, item.mtime_ns) for item in files}
        return ready

    def next_settle_in(self, files: list[InboxFile], now: float | None = None) -> float | None:
        """Seconds until the next of these files settles, or None when none is waiting."""
        now = time.time() if now is None else now
        waits = [
            self.settle_seconds - (now - item.mtime_ns / 1e9)
            for item in files
            if not item.has_marker
        ]
        waiting = [wait for wait in waits if wait > 0]
        return min(waiting) if waiting else None


def is_settled(item: InboxFile, settle_seconds: float, now: float) -> bool:
    """Not written (mtime) for `settle_seconds`."""
    return now - item.mtime_ns / 1e9 >= settle_seconds


def ready_in_one_scan(
    files: Iterable[InboxFile], settle_seconds: float, now: float | None = None
) -> Iterator[InboxFile]:
    """What a new `Settler` would find ready in this scan, one file at a time: a one-shot
    pass has no earlier scan to compare with, so it need not hold the scan whole.
    """
    now = time.time() if now is None else now
    for item in files:
        if item.has_marker or is_settled(item, settle_seconds, now):
            yield item


def ready_files(inbox: Path, settle_seconds: float, now: float | None = None) -> list[InboxFile]:
    """One-shot readiness: marker present, or untouched (mtime) for `settle_seconds`."""
    return list(ready_in_one_scan(scan_inbox(inbox), settle_seconds, now))
