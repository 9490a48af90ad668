"""The inbox as a local folder: the files in it, and where they go once ingested.

When a file is ready to claim is `settle.py`'s decision. Hidden and temporary
names (`.*`, `*.tmp`, `*.part`) are never taken, and folders with such names
are not walked (a producer may build a tree there).

A file name need not be UTF-8 (POSIX names are bytes). Such a name is carried
as text with its odd bytes shown as `\\xNN` (`InboxFile.path`: the ledger,
the records and Prefect all need valid text), and opened by its real name
(`InboxFile.location`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from cablestream.schemas import lake as layout

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
    still seen (and read: `tasks.inbox.read` opens it the same way).
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


def archive_settled(inbox: Path, archive: Path, files: list[InboxFile]) -> int:
    """Move the files (still unchanged since they were found) to `archive`, keeping relative paths."""
    moved = 0
    for item in files:
        source = item.location(inbox)
        try:
            stat = source.stat()
        except OSError:
            continue
        if (stat.st_size, stat.st_mtime_ns) != (item.size, item.mtime_ns):
            continue
        target = layout.inside(archive, archive / source.relative_to(inbox))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        marker = source.with_name(source.name + DONE_SUFFIX)
        if marker.exists():
            os.replace(marker, target.with_name(target.name + DONE_SUFFIX))
        moved += 1
    return moved
