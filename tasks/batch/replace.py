"""Replace everything the lake holds of some sources by what a newer parse of them gives.

Two things need it: a file changed in place (a new content hash under a path the
lake already holds: the older version's rows must go, not stay beside the new
ones; an appending producer's truncated versions are the common case), and
`reprocess` (the same bytes parsed again by a newer parser).

A replacement rides in the batch that writes the new rows, so it is one crash-safe
ledger batch (the roll-forward commit of `tasks/ledger.py`):

1. under the lake's compaction lock (a compaction or another replacement never
   rewrites the same files at the same time), find every data file and quarantine
   table file holding rows of the sources (`source_sha256`) among the files of
   committed batches (`rewritable`: the current snapshot's, as compaction);
2. stage what stays of them together with the batch's new rows and entries (one
   file per partition and per quarantine table, in the current schema version);
3. `prepare_commit` records the staged outputs and the files they replace (and marks
   the older versions of changed files `superseded`): the point of no return;
4. `finish` renames the staged files in, deletes the replaced ones, commits.

A crash before 3 published nothing (recovery forgets the batch); after it, recovery
finishes 4, which also makes the next snapshot. Readers see what they see during a
compaction (tasks/batch/compact.py): readers of a snapshot never see it half done; a
reader of the lake folder itself can, for the moment between the renames and the
deletes of step 4.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cablestream.schemas import lake as layout
from cablestream.schemas import versions
from cablestream.tasks.lake.partition import data_files
from cablestream.tasks.lake.quarantine import QUARANTINE_SCHEMA
from cablestream.tasks.lake.snapshot import refresh_snapshot, snapshot_files
from cablestream.tasks.ledger.protocol import FileOutcome, Ledger, OlderVersion

QUARANTINE_PREFIX = f"{layout.QUARANTINE_DIR}/"
# The quarantine column that says why a dropped row was dropped (rows/ table).
REJECTED_REASON = "quarantine_reason"


@dataclass(slots=True)
class Kept:
    """What stays of the files holding the replaced sources' rows and entries."""

    replaced: list[str] = field(default_factory=list)  # lake- or control-relative paths
    found: set[str] = field(default_factory=set)  # the sources that had rows in the lake
    rows: pa.Table | None = None  # data rows of other sources (record schema)
    reasons: pa.Table | None = None  # quarantine reasons of other sources
    rejected: pa.Table | None = None  # quarantined rows of other sources
    rows_removed: int = 0
    entries_removed: int = 0


@dataclass(frozen=True, slots=True)
class Superseding:
    """What a batch replaces: content hashes whose rows go, ledger files that become superseded."""

    sources: frozenset[str] = frozenset()
    superseded_files: tuple[int, ...] = ()


def superseding(
    older: Iterable[OlderVersion],
    outcomes: dict[int, FileOutcome],
    reprocessed: frozenset[str] = frozenset(),
) -> Superseding:
    """What a batch replaces: the `reprocessed` sources, and what its changed files replace
    once their outcomes are known.

    A newer version replaces the older ones when its cables are in the lake
    (committed, or the same content as a committed file: duplicate). A newer version
    that was quarantined (unreadable, garbled, no cable) replaces nothing: rows are
    never lost to a bad rewrite. The older version's rows stay when the same content
    is also held under another path (its cables are that file's too).
    """
    sources: set[str] = set(reprocessed)
    files: list[int] = []
    for version in older:
        outcome = outcomes.get(version.newer_file_id)
        if outcome is None or outcome.state not in ("committed", "duplicate"):
            continue
        files.append(version.file_id)
        if not version.shared:
            sources.add(version.sha256)
    return Superseding(frozenset(sources), tuple(files))


@contextmanager
def lake_lock(lake: Path, held: bool) -> Iterator[None]:
    """The lake's compaction lock, when `held` (a batch that rewrites files takes it)."""
    if not held:
        yield
        return
    from cablestream.tasks.batch.compact import compaction_lock  # compact imports commit

    with compaction_lock(lake):
        yield


def rewritable(lake: Path, ledger: Ledger) -> set[str]:
    """Files a replacement may rewrite: the data files of the current snapshot (made now,
    so every committed file is in it) and the live quarantine table files.

    As for compaction (tasks/lake/snapshot.py): a file whose lake name a replacement
    deletes must be in the current snapshot, so that a snapshot made meanwhile by
    another process can still link it.
    """
    snapshot = refresh_snapshot(lake, ledger.live_outputs)
    data = snapshot_files(snapshot) if snapshot is not None else set()
    quarantined = {path for path in ledger.live_outputs() if path.startswith(QUARANTINE_PREFIX)}
    return data | quarantined


def without(table: pa.Table, sources: frozenset[str]) -> pa.Table:
    """The table without the rows of `sources`."""
    return _split(table, sources)[0]


def _split(table: pa.Table, sources: frozenset[str]) -> tuple[pa.Table, pa.Table]:
    """The table without rows of `sources`, and the rows that went."""
    mask = pc.fill_null(
        pc.is_in(table.column("source_sha256"), pa.array(sorted(sources), pa.string())), False
    )
    return table.filter(pc.invert(mask)), table.filter(mask)


def _holds(path: Path, sources: frozenset[str]) -> bool:
    column = pq.read_table(path, columns=["source_sha256"]).column("source_sha256")
    return bool(pc.any(pc.is_in(column, pa.array(sorted(sources), pa.string()))).as_py())


def _concat(tables: list[pa.Table]) -> pa.Table | None:
    return pa.concat_tables(tables) if tables else None


def keep_other_sources(lake: Path, sources: frozenset[str], settled: set[str]) -> Kept:
    """Find the files holding rows or quarantine entries of `sources`; keep the rest of them.

    Call under the compaction lock. Only `settled` files (outputs of committed batches
    that are still live) are rewritten; files of batches still publishing are left
    alone, as compaction leaves them (they hold no rows of sources committed before).
    """
    kept = Kept()
    if not sources:
        return kept
    rows: list[pa.Table] = []
    for path in data_files(lake):
        relative = path.relative_to(lake).as_posix()
        if relative not in settled or not _holds(path, sources):
            continue
        table, removed = _split(versions.conform(pq.read_table(path)), sources)
        rows.append(table)
        kept.rows_removed += removed.num_rows
        kept.found |= set(removed.column("source_sha256").to_pylist())
        kept.replaced.append(relative)
    kept.rows = _concat(rows)
    reasons: list[pa.Table] = []
    rejected: list[pa.Table] = []
    for folder, collected in (
        (layout.QUARANTINE_REASONS_DIR, reasons),
        (layout.QUARANTINE_ROWS_DIR, rejected),
    ):
        root = layout.quarantine_dir(lake, folder)
        for path in sorted(root.glob("*.parquet")) if root.is_dir() else []:
            relative = f"{layout.QUARANTINE_DIR}/{folder}/{path.name}"
            if relative not in settled or not _holds(path, sources):
                continue
            table, removed = _split(pq.read_table(path), sources)
            collected.append(_as_quarantined(table, folder))
            if folder == layout.QUARANTINE_REASONS_DIR:
                kept.entries_removed += removed.num_rows
                kept.found |= set(removed.column("source_sha256").to_pylist())
            kept.replaced.append(relative)
    kept.reasons = _concat(reasons)
    kept.rejected = _concat(rejected)
    return kept


def _as_quarantined(table: pa.Table, folder: str) -> pa.Table:
    """A quarantine table file's rows in the schema its batch files are written in now."""
    if folder == layout.QUARANTINE_REASONS_DIR:
        return table.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA)
    reason = table.column(REJECTED_REASON)
    return versions.conform(table.drop_columns([REJECTED_REASON])).append_column(
        REJECTED_REASON, reason
    )


def merged(new: pa.Table, kept: pa.Table | None) -> pa.Table:
    """The batch's new rows followed by the kept ones (same columns, new rows' schema)."""
    if kept is None or kept.num_rows == 0:
        return new
    if new.num_rows == 0:
        return kept
    return pa.concat_tables([new, kept.cast(new.schema)])
