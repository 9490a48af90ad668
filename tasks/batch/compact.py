"""Compaction: merge each partition's small Parquet files into one, without changing results.

A compaction is a ledger batch that claims no inbox files, so the ingest
protocol's roll-forward commit carries over (see `tasks/ledger/protocol.py`):

1. take the lake's compaction lock (a second compactor waits for the first,
   then finds nothing left to merge: no duplicates, no crash);
2. list the partitions' files, begin the batch, then keep only the files of the
   current snapshot (`tasks/lake/snapshot.py`: committed batches' files; one that
   publishes meanwhile is not in it yet);
3. read a partition's files and stage them again as one file (`stage_rows`,
   the ingest writer: same schema, row groups and compression);
4. record the new paths and the files they replace: the point of no return;
5. rename the new files in, delete the replaced ones, commit, make the next
   snapshot (`finish`).

A crash before 4 published nothing (recovery removes the staging folder); after
it, recovery finishes 5. Readers of a snapshot never see the change half done.
A reader of the lake folder itself can, between the rename and the deletes of one
partition (microseconds, no I/O but unlink): it may list the partition's rows
twice, or fail to open a replaced file it listed just before. No order of those
steps avoids that (see `tasks/lake/snapshot.py`), hence the snapshots.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cablestream.schemas import lake as layout
from cablestream.schemas import versions
from cablestream.tasks.batch.commit import finish
from cablestream.tasks.lake import writer
from cablestream.tasks.lake.reader import partition_files
from cablestream.tasks.lake.snapshot import control_lock, refresh_snapshot, snapshot_files
from cablestream.tasks.ledger.protocol import Ledger

LOCK_FILE = "compact.lock"


def compaction_lock(lake: Path) -> AbstractContextManager[None]:
    """Hold the lake's compaction lock."""
    return control_lock(lake, LOCK_FILE)


@dataclass(slots=True)
class CompactionSummary:
    batch_id: str
    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    skipped_in_flight: int = 0
    replaced: list[str] = field(default_factory=list)


def _read_partition(lake: Path, relatives: list[str]) -> pa.Table:
    # Files hold the record columns only (year/month live in the path); Parquet gives
    # `created` back in milliseconds, and a file of an older schema version lacks later
    # columns: conform casts to the record schema again and adds those as null.
    tables = [pq.read_table(layout.inside(lake, lake / relative)) for relative in relatives]
    return pa.concat_tables([versions.conform(table) for table in tables])


def compact_lake(
    lake: Path, ledger: Ledger, batch_id: str, min_files: int = 2
) -> CompactionSummary:
    """Merge every partition holding at least `min_files` settled files into one file."""
    with compaction_lock(lake):
        return _compact(lake, ledger, batch_id, min_files)


def _compact(lake: Path, ledger: Ledger, batch_id: str, min_files: int) -> CompactionSummary:
    summary = CompactionSummary(batch_id)
    listed = partition_files(lake)
    ledger.begin(batch_id, note="compaction")
    # Only files of the current snapshot (committed, and linked there, so a snapshot made
    # while this compaction deletes their lake names can still link them).
    snapshot = refresh_snapshot(lake, ledger.live_outputs)
    settled_files = snapshot_files(snapshot) if snapshot is not None else set()
    staged: list[writer.StagedFile] = []
    for relatives in listed.values():
        settled = [relative for relative in relatives if relative in settled_files]
        summary.skipped_in_flight += len(relatives) - len(settled)
        if len(settled) < min_files:
            continue
        table = _read_partition(lake, settled)
        staged += writer.stage_rows(table, lake, batch_id)
        summary.partitions += 1
        summary.files_before += len(settled)
        summary.rows += table.num_rows
        summary.replaced += settled
    ledger.prepare_commit(
        batch_id,
        [item.relative for item in staged],
        {},
        note=f"compaction: replaced {len(summary.replaced)} files",
        replaced=summary.replaced,
    )
    publishing = ledger.publishing_batch(batch_id)
    assert publishing is not None
    finish(lake, ledger, publishing)
    summary.files_after = len(staged)
    return summary
