"""The lake's one partition rule: `year=Y/month=M/` from `created`, and the glob that reads it.

Partition values are integers taken from `created` (UTC), never from upstream
columns; a cable without a date, or with a year/month out of range, goes to the
sentinel partition `year=0/month=0`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cablestream.schemas.arrow import PARTITION_SCHEMA

UNDATED_YEAR = 0
UNDATED_MONTH = 0
MIN_YEAR = 1
MAX_YEAR = 9999

# The documented glob of the lake's data files (relative to the lake).
DATA_GLOB = "year=*/month=*/*.parquet"


def partitioned(table: pa.Table) -> pa.Table:
    """The table with integer `year`/`month` from `created`, out-of-range values sent to 0/0.

    Any `year`/`month` columns already present are dropped: partition values are
    always recomputed here, never taken from upstream.
    """
    for name in PARTITION_SCHEMA.names:
        if name in table.column_names:
            table = table.drop_columns([name])
    created = table.column("created")
    year = pc.cast(pc.year(created), pa.int32())
    month = pc.cast(pc.month(created), pa.int32())
    dated = pc.and_(
        pc.and_(pc.greater_equal(year, MIN_YEAR), pc.less_equal(year, MAX_YEAR)),
        pc.and_(pc.greater_equal(month, 1), pc.less_equal(month, 12)),
    )
    dated = pc.fill_null(dated, False)
    year = pc.if_else(dated, year, pa.scalar(UNDATED_YEAR, pa.int32()))
    month = pc.if_else(dated, month, pa.scalar(UNDATED_MONTH, pa.int32()))
    return table.append_column("year", year).append_column("month", month)


def data_files(lake: Path) -> list[Path]:
    """The lake's data files, sorted (what the documented glob reads)."""
    return sorted(lake.glob(DATA_GLOB))
