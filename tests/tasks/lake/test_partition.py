"""The one partition rule: integer year/month from `created`, anything else to year=0/month=0."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from cablestream.schemas.arrow import records_to_table
from cablestream.schemas.record import CableRecord
from cablestream.tasks.lake.partition import partitioned


def test_partitions_come_from_created_and_undated_cables_go_to_the_sentinel() -> None:
    table = records_to_table(
        [
            CableRecord(record_id="dated", created=datetime(2008, 5, 27, 7, 10, tzinfo=UTC)),
            CableRecord(record_id="undated"),
        ]
    )
    out = partitioned(table)
    assert out.schema.field("year").type == pa.int32()
    assert out.column("year").to_pylist() == [2008, 0]
    assert out.column("month").to_pylist() == [5, 0]


def test_upstream_partition_columns_are_recomputed_and_out_of_range_years_sanitised() -> None:
    seconds = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp()) + 10 * 366 * 86400
    table = records_to_table([CableRecord(record_id="far")])
    table = table.set_column(
        table.schema.get_field_index("created"),
        "created",
        pa.array([seconds], pa.timestamp("s", tz="UTC")),
    ).append_column("year", pa.array(["../../../etc"]))
    out = partitioned(table)
    assert out.column_names.count("year") == 1
    assert (out.column("year").to_pylist(), out.column("month").to_pylist()) == ([0], [0])
