from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cablestream.schemas.arrow import CABLE_SCHEMA, records_to_table
from cablestream.schemas.record import CableRecord, Paragraph, Recipient, Reference


def _record(**fields: object) -> CableRecord:
    base = CableRecord(
        record_id="r1",
        reference_id="08ASTANA988",
        created=datetime(2008, 5, 27, 7, 10, tzinfo=UTC),
        recipients=[Recipient("RUEHC", "SECSTATE WASHDC", "IMMEDIATE", "2481")],
        nondisclosure_deadline=date(2023, 5, 27),
        tags=["IAEA", "KNNP"],
        references=[Reference(None, "cable", "08STATE55259", "STATE 55259")],
        paragraphs=[Paragraph(1, "S", "text")],
        ingested_at=datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC),
    )
    for name, value in fields.items():
        setattr(base, name, value)
    return base


def test_round_trip_through_parquet(tmp_path: Path) -> None:
    table = records_to_table([_record(), _record(record_id="r2", created=None, tags=[])])
    assert table.schema == CABLE_SCHEMA
    pq.write_table(table, tmp_path / "cables.parquet")
    back = pq.read_table(tmp_path / "cables.parquet")
    # Parquet has no second unit: `created` comes back as milliseconds, same instants.
    assert back.schema.field("created").type == pa.timestamp("ms", tz="UTC")
    back = back.cast(CABLE_SCHEMA)
    assert back.equals(table)
    row = back.to_pylist()[0]
    assert row["recipients"] == [
        {"route": "RUEHC", "name": "SECSTATE WASHDC", "precedence": "IMMEDIATE", "mcn": "2481"}
    ]
    assert row["created"] == datetime(2008, 5, 27, 7, 10, tzinfo=UTC)
    assert row["nondisclosure_deadline"] == date(2023, 5, 27)
