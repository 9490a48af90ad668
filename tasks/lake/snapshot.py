"""Snapshots of the lake: the committed data files, frozen, for readers that run during writes.

Adding files is safe for a reader of the lake folder (a row becomes visible once, at
its file's rename, after the batch's point of no return). Replacing files is not:
a compaction (or a rewrite of a source's rows) renames the new file in and deletes
the old ones, and no order of those steps is safe for a reader that lists a folder
and opens the files later. A listing taken between the two steps sees the rows
twice; a file listed before the deletes and opened after them is gone. A listed
name must stay openable for as long as a query runs, and a name that can be opened
is also listed, so no scheme that changes one folder in place can help.

A snapshot never changes once made. It is a folder of hard links to the data
files of committed batches (`live`), in the lake's own hive layout:

    LAKE.cablestream/snapshots/000042/year=2008/month=5/part-<batch>-0.parquet
    LAKE.cablestream/snapshots/current -> 000042

A commit that changes the set of data files makes the next snapshot: it is
built under a hidden name, renamed into place, and then `current` is switched
(a symlink replaced by rename: one atomic step). An ingest pass, which commits
group after group, paces its snapshots (`SnapshotPace`): one after its first
commit, then at most every `PASS_SNAPSHOT_SECONDS`, and always one at its end. A reader resolves `current`
ONCE (`current_snapshot`) and reads that folder with any reader, as it would
read the lake. The snapshot holds only committed rows, never a row twice, and
its files stay there (hard links keep them after a compaction deletes their lake
names) until the snapshot has been superseded for `GRACE_SECONDS`. Making one
costs an lstat and a link per data file (about 0.11 s of CPU for 10,000 files here,
where resolving every path took 0.98 s), so one per commit made a long pass quadratic.

An object-store lake has no snapshots (no hard links there): its files are only ever
added by ingest (compaction refuses such a lake), and a file a replacement rewrites
is deleted after the new one is put.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cablestream.schemas import lake as layout
from cablestream.tasks.lake.store import store_for

SNAPSHOTS_DIR = "snapshots"
CURRENT = "current"
LOCK_FILE = "snapshot.lock"
# A superseded snapshot is kept this long: a query started on it can still open its files.
GRACE_SECONDS = 600.0
_BUILDING_PREFIX = ".building-"
_DIGITS = 6
# An ingest pass makes a snapshot at most this often (readers see its commits this late)...
PASS_SNAPSHOT_SECONDS = 10.0
# ...and spends at most this share of its time on them (a large lake's take seconds).
PASS_SNAPSHOT_SHARE = 0.1


def snapshots_root(lake: Path) -> Path:
    return layout.control_root(lake) / SNAPSHOTS_DIR


def current_snapshot(lake: Path) -> Path | None:
    """The folder of the current snapshot (resolved: it stays valid while you read it).

    None when no batch has been committed since snapshots exist.
    """
    root = snapshots_root(lake)
    try:
        name = os.readlink(root / CURRENT)
    except FileNotFoundError:
        return None
    return root / name


def snapshot_files(folder: Path) -> set[str]:
    """Lake-relative paths of the data files in a snapshot folder."""
    found: set[str] = set()
    for directory, _, names in os.walk(folder):
        relative = Path(directory).relative_to(folder)
        found |= {(relative / name).as_posix() for name in names}
    return found


@contextmanager
def control_lock(lake: Path, name: str) -> Iterator[None]:
    """Hold the lake's lock file `name` in its state folder (an flock: released by the
    kernel if we die)."""
    path = layout.control_root(lake) / layout.STATE_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def refresh_snapshot(
    lake: Path, live: Callable[[], set[str]], grace_seconds: float = GRACE_SECONDS
) -> Path | None:
    """Make the current snapshot hold exactly `live()` (the committed data files).

    `live` is called under the snapshot lock, so two processes refreshing at once
    cannot put an older file set after a newer one. A file whose lake name is gone
    (a compaction publishing meanwhile deleted it) is linked from the current
    snapshot, which holds every file committed before. Returns the current folder
    (None for an object-store lake, which has no snapshots).
    """
    if not store_for(lake).local:
        return None
    root = snapshots_root(lake)
    root.mkdir(parents=True, exist_ok=True)
    with control_lock(lake, LOCK_FILE):
        for leftover in root.glob(_BUILDING_PREFIX + "*"):
            shutil.rmtree(leftover, ignore_errors=True)  # a refresh that died
        wanted = {path for path in live() if path.startswith("year=")}  # not quarantine tables
        current = current_snapshot(lake)
        if current is not None and snapshot_files(current) == wanted:
            _drop_superseded(root, current, grace_seconds)
            return current
        name = f"{max(_numbered(root), default=0) + 1:0{_DIGITS}d}"
        building = root / f"{_BUILDING_PREFIX}{name}"
        building.mkdir()  # an empty lake has an empty snapshot
        _link_files(lake, building, current, wanted)
        os.rename(building, root / name)
        pointer = root / f"{_BUILDING_PREFIX}{CURRENT}"
        pointer.unlink(missing_ok=True)
        pointer.symlink_to(name)
        os.replace(pointer, root / CURRENT)
        _drop_superseded(root, root / name, grace_seconds)
        return root / name


def _link_files(lake: Path, building: Path, current: Path | None, wanted: set[str]) -> None:
    """Hard-link each wanted data file into `building` (a new, empty folder).

    A snapshot links every file of the lake, so this is its cost: per file one lstat and
    one link, no path resolution (which takes a system call per path component). The
    checks `layout.output_path` makes are kept: a name must be a plain relative path
    (no `..`, `.`, empty or absolute part), each folder is resolved once and must lie
    inside the lake, and a file that is a symlink goes through `output_path` itself
    (linked only when it resolves inside the lake).
    """
    lake_root = str(lake.resolve())
    checked: set[str] = set()  # folders resolved inside the lake and made in `building`
    for relative in sorted(wanted):
        folder = relative.rpartition("/")[0]
        if any(part in ("", ".", "..") for part in relative.split("/")):
            raise layout.UnsafePathError(f"{relative!r} is not a path inside the lake")
        if folder not in checked:
            if folder:
                layout.inside(lake, lake / folder)  # resolved once per folder
            (building / folder).mkdir(parents=True, exist_ok=True)
            checked.add(folder)
        source = f"{lake_root}/{relative}"
        try:
            if stat.S_ISLNK(os.lstat(source).st_mode):
                source = str(layout.output_path(lake, relative))
        except FileNotFoundError:
            if current is None:
                raise
            source = f"{current}/{relative}"  # a compaction deleted its lake name meanwhile
        os.link(source, f"{building}/{relative}")


@dataclass(slots=True)
class SnapshotPace:
    """When a pass that commits batch after batch makes its next snapshot.

    Due at once (a reader sees the pass's first commit), then `every` seconds after
    the last one ended, or later when snapshots are slow: a snapshot that took `c`
    seconds is followed by at least `c * (1 - share) / share` seconds of work. The
    pass always makes one at its end; until then the current snapshot is older, never
    wrong (it holds only committed files).
    """

    every: float = PASS_SNAPSHOT_SECONDS
    share: float = PASS_SNAPSHOT_SHARE
    next_at: float = 0.0  # time.monotonic() from which the next one is due

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def made(self, started: float, ended: float) -> None:
        """A snapshot ran from `started` to `ended` (time.monotonic())."""
        cost = ended - started
        self.next_at = ended + max(self.every, cost * (1 - self.share) / self.share)


def _numbered(root: Path) -> list[int]:
    return [int(path.name) for path in root.iterdir() if path.name.isdigit()]


def _drop_superseded(root: Path, current: Path, grace_seconds: float) -> None:
    """Delete snapshots whose successor was made more than `grace_seconds` ago."""
    numbered = [root / f"{number:0{_DIGITS}d}" for number in sorted(_numbered(root))]
    cutoff = time.time() - grace_seconds
    for older, newer in itertools.pairwise(numbered):
        if older != current and newer.stat().st_mtime < cutoff:
            shutil.rmtree(older, ignore_errors=True)
