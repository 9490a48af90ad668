"""Find the files in the inbox that are complete and may be claimed.

A file is *ready* when its size and mtime have been stable for the settle
interval, or at once when a completion marker `NAME.done` sits beside it.
Hidden and temporary names (`.*`, `*.tmp`, `*.part`) are never taken, and
folders with such names are not walked (a producer may build a tree there).

A file name need not be UTF-8 (POSIX names are bytes). Such a name is carried
as text with its odd bytes shown as `\\xNN` (`InboxFile.path`: the ledger,
the records and Prefect all need valid text), and opened by its real name
(`InboxFile.location`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

DONE_SUFFIX = ".done"
_TEMP_SUFFIXES = (".tmp", ".part", DONE_SUFFIX)


@dataclass(frozen=True, slots=True)
class InboxFile:
    """One regular file of the inbox as seen by a scan."""

    path: str  # relative to the inbox root, with `/` separators, always valid UTF-8
    size: int
    mtime_ns: int
    has_marker: bool = False
    # The real relative name when it is not UTF-8 (`path` then shows its bytes as \xNN).
    raw_path: str | None = None

    def location(self, inbox: Path) -> Path:
        """The file on disk."""
        return inbox / (self.raw_path if self.raw_path is not None else self.path)


def path_text(relative: str) -> str:
    """A relative path as valid UTF-8 text: bytes of a non-UTF-8 name become `\\xNN`."""
    return os.fsencode(relative).decode("utf-8", "backslashreplace")


def is_candidate_name(name: str) -> bool:
    """False for hidden names and for temp names and markers (`*.tmp`, `*.part`, `*.done`)."""
    return not name.startswith(".") and not name.lower().endswith(_TEMP_SUFFIXES)


def is_walked_folder(name: str) -> bool:
    """False for hidden folders and folders being built under a temp name (`x.tmp/`)."""
    return not name.startswith(".") and not name.lower().endswith(_TEMP_SUFFIXES[:2])


def scan_inbox(inbox: Path) -> Iterator[InboxFile]:
    """Every candidate file under `inbox` (recursive; hidden/temp folders and symlinks skipped).

    Walks by folder descriptors (`os.fwalk`), so a path longer than PATH_MAX is
    still seen (and read: `tasks.read` opens it the same way).
    """
    for folder, folders, names, folder_fd in os.fwalk(inbox, follow_symlinks=False):
        folders[:] = sorted(name for name in folders if is_walked_folder(name))
        present = set(names)
        base = Path(folder).relative_to(inbox)
        for name in sorted(names):
            if not is_candidate_name(name):
                continue
            try:
                stat = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            except OSError:
                continue
            # Symlinks are not followed: a link could pull any file of the host into the lake.
            if not S_ISREG(stat.st_mode):
                continue
            relative = (base / name).as_posix()
            text = path_text(relative)
            yield InboxFile(
                path=text,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                has_marker=name + DONE_SUFFIX in present,
                raw_path=relative if text != relative else None,
            )


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
            settled = now - item.mtime_ns / 1e9 >= self.settle_seconds
            if item.has_marker or (settled and unchanged):
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


def ready_files(inbox: Path, settle_seconds: float, now: float | None = None) -> list[InboxFile]:
    """One-shot readiness: marker present, or untouched (mtime) for `settle_seconds`."""
    return Settler(settle_seconds).ready(list(scan_inbox(inbox)), now=now)
