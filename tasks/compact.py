"""Compaction: merge each partition's small Parquet files into one, without changing results.

A compaction is a ledger batch that claims no inbox files, so the ingest
protocol's crash safety carries over:

1. begin the batch; list the partitions' files, then leave out the outputs of
   batches still in flight (listed first, so a batch that publishes meanwhile
   is seen as in flight);
2. read a partition's files and stage them again as one file (`stage_rows`,
   the ingest writer: same schema, row groups and compression);
3. record the new paths, publish them, then record the files they replace:
   the point of no return;
4. delete the replaced files and commit.

A crash before 3 ends is undone by recovery (the new files are removed); after
it, recovery finishes the deletion (`finish_compaction`). Between publishing and
deleting, a reader listing the partition can see its rows twice for that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import CABLE_SCHEMA
from cablestream.tasks import lake as lake_io
from cablestream.tasks.ledger import Ledger, StaleBatch


@dataclass(slots=True)
class CompactionSummary:
    batch_id: str
    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    skipped_in_flight: int = 0
    replaced: list[str] = field(default_factory=list)


def partition_files(lake: Path) -> dict[str, list[str]]:
    """Lake-relative data files per partition folder (`year=2008/month=5`)."""
    files: dict[str, list[str]] = {}
    for path in sorted(lake.glob("year=*/month=*/*.parquet")):
        relative = path.relative_to(lake).as_posix()
        files.setdefault(path.parent.relative_to(lake).as_posix(), []).append(relative)
    return files


def _read_partition(lake: Path, relatives: list[str]) -> pa.Table:
    # Files hold the record columns only (year/month live in the path); Parquet
    # gives `created` back in milliseconds, so cast to the record schema again.
    tables = [pq.read_table(layout.inside(lake, lake / relative)) for relative in relatives]
    return pa.concat_tables([table.cast(CABLE_SCHEMA) for table in tables])


def compact_lake(
    lake: Path, ledger: Ledger, batch_id: str, min_files: int = 2
) -> CompactionSummary:
    """Merge every partition holding at least `min_files` settled files into one file."""
    summary = CompactionSummary(batch_id)
    listed = partition_files(lake)
    ledger.begin(batch_id, note="compaction")
    in_flight = ledger.in_flight_outputs()
    staged: list[lake_io.StagedFile] = []
    for relatives in listed.values():
        settled = [relative for relative in relatives if relative not in in_flight]
        summary.skipped_in_flight += len(relatives) - len(settled)
        if len(settled) < min_files:
            continue
        table = _read_partition(lake, settled)
        staged += lake_io.stage_rows(table, lake, batch_id)
        summary.partitions += 1
        summary.files_before += len(settled)
        summary.rows += table.num_rows
        summary.replaced += settled
    ledger.record_outputs(batch_id, [item.relative for item in staged])
    lake_io.publish(lake, staged)
    summary.files_after = len(staged)
    ledger.record_replaced(batch_id, summary.replaced)
    finish_compaction(lake, ledger, batch_id, summary.replaced)
    return summary


def finish_compaction(lake: Path, ledger: Ledger, batch_id: str, replaced: list[str]) -> None:
    """Delete the files a published compaction replaces, then commit it (idempotent)."""
    lake_io.remove_outputs(lake, replaced, batch_id)
    ledger.commit(batch_id, {}, note=f"compaction: replaced {len(replaced)} files")


def recover_compaction(lake: Path, ledger: Ledger, stale: StaleBatch) -> bool:
    """Finish a crashed compaction that had passed its point of no return; False otherwise."""
    if not stale.replaced:
        return False
    finish_compaction(lake, ledger, stale.batch_id, list(stale.replaced))
    return True
