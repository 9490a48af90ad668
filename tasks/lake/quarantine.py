"""The quarantine: rejected input kept with a reason, never dropped.

`quarantine/reasons/` (in the lake's control folder, `schemas/lake.py`) is a
Parquet table with one row per rejection (a whole file, a piece of a file
without a cable, or a row validation dropped). Rows validation dropped are
kept whole in `quarantine/rows/`; a source file rejected whole is copied to
`quarantine/files/<sha256>.src`
(content-addressed, so a name taken from the inbox never becomes a path).
Files are staged with the batch's other outputs and published with them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cablestream.schemas import lake as layout
from cablestream.tasks.lake.atomic import write_atomic

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_path", pa.string()),
        ("source_sha256", pa.string()),
        ("source_offset", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("batch_id", pa.string()),
        ("record_id", pa.string()),
        ("copy_path", pa.string()),
        ("at", pa.timestamp("ms", tz="UTC")),
    ]
)

# Reason codes for whole files (the parser's NoCable reasons and validation's
# expectation names are used as they come).
UNREADABLE = "unreadable"
OVERSIZED = "oversized"
VALIDATION_FAILED = "validation_failed"


@dataclass(slots=True)
class QuarantineEntry:
    source_path: str
    source_sha256: str
    reason: str
    detail: str
    source_offset: int | None = None
    record_id: str | None = None
    copy_path: str | None = None
    batch_id: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def staged_table_path(lake: Path, batch_id: str, folder: str) -> Path:
    """Where a batch stages its one quarantine table of `folder` (reasons/, rows/)."""
    return (
        layout.staging_dir(lake, batch_id)
        / layout.QUARANTINE_DIR
        / folder
        / f"part-{batch_id}.parquet"
    )


def stage_table(lake: Path, batch_id: str, folder: str, table: pa.Table) -> int:
    """Write one quarantine table of a batch into its staging dir; returns its row count."""
    if table.num_rows == 0:
        return 0
    target = staged_table_path(lake, batch_id, folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target, compression="zstd")
    return int(table.num_rows)


def stage_reasons(
    lake: Path, batch_id: str, entries: list[QuarantineEntry], kept: pa.Table | None = None
) -> int:
    """Write the batch's reasons table into its staging dir; returns the number of rows.

    `kept` are other batches' rows carried over (a replacement rewrites their files).
    """
    for entry in entries:
        entry.batch_id = batch_id
    rows = [asdict(entry) for entry in entries]
    table = pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
    if kept is not None:
        table = pa.concat_tables([table, kept.cast(QUARANTINE_SCHEMA)])
    return stage_table(lake, batch_id, layout.QUARANTINE_REASONS_DIR, table)


def stage_rejected_rows(lake: Path, batch_id: str, rows: pa.Table) -> int:
    """Keep rows validation dropped (whole records plus `quarantine_reason`) in staging."""
    return stage_table(lake, batch_id, layout.QUARANTINE_ROWS_DIR, rows)


def keep_source_copy(lake: Path, sha256: str, data: bytes) -> str:
    """Copy a rejected source's bytes into the quarantine; returns its control-folder-relative path.

    Content-addressed and idempotent (a copy already there is kept), written to a
    temporary name and renamed, so it is never half-written. Not a batch output:
    two batches may share it, and recovery must not delete another batch's copy.
    """
    relative = layout.quarantine_copy_relative(sha256)
    target = layout.output_path(lake, relative)
    if not target.exists():
        write_atomic(target, lambda temporary: temporary.write_bytes(data))
    return relative


def read_reasons(lake: Path) -> pa.Table:
    """All quarantine reasons of the lake (empty table when there are none)."""
    import pyarrow.dataset as ds

    folder = layout.quarantine_dir(lake, layout.QUARANTINE_REASONS_DIR)
    if not folder.exists():
        return QUARANTINE_SCHEMA.empty_table()
    return ds.dataset(folder, format="parquet", schema=QUARANTINE_SCHEMA).to_table()
