"""Arrow schema of a cable record and the conversion of records into a table."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pyarrow as pa

from cablestream.schemas.record import CableRecord

_ROUTING = pa.struct(
    [
        ("route", pa.string()),
        ("name", pa.string()),
        ("precedence", pa.string()),
        ("mcn", pa.string()),
    ]
)
_REFERENCE = pa.struct(
    [("bullet", pa.string()), ("kind", pa.string()), ("id", pa.string()), ("raw", pa.string())]
)
_PARAGRAPH = pa.struct(
    [("number", pa.int32()), ("classification", pa.string()), ("text", pa.string())]
)

CABLE_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        ("reference_id", pa.string()),
        ("created", pa.timestamp("s", tz="UTC")),
        ("precedence", pa.string()),
        ("transmission_id", pa.string()),
        ("origin", pa.string()),
        ("station", pa.string()),
        ("recipients", pa.list_(_ROUTING)),
        ("info_recipients", pa.list_(_ROUTING)),
        ("classification", pa.string()),
        ("caveats", pa.list_(pa.string())),
        ("nondisclosure_deadline", pa.date32()),
        ("tags", pa.list_(pa.string())),
        ("subject", pa.string()),
        ("references", pa.list_(_REFERENCE)),
        ("classified_by", pa.string()),
        ("classification_reasons", pa.list_(pa.string())),
        ("summary", pa.string()),
        ("paragraphs", pa.list_(_PARAGRAPH)),
        ("signed_by", pa.list_(pa.string())),
        ("is_partial", pa.bool_()),
        ("body", pa.string()),
        ("rendering", pa.string()),
        ("source_path", pa.string()),
        ("source_sha256", pa.string()),
        ("source_offset", pa.int64()),
        ("parse_warnings", pa.list_(pa.string())),
        # `warn` row rules of the expectation suite the row broke (set by validation).
        ("quality_flags", pa.list_(pa.string())),
        ("rescued", pa.list_(pa.string())),
        ("parser_version", pa.string()),
        ("batch_id", pa.string()),
        ("ingested_at", pa.timestamp("ms", tz="UTC")),
    ]
)

# Hive partition columns of the lake (`year=2008/month=5/`; the rule: tasks/lake/partition.py).
PARTITION_SCHEMA = pa.schema([("year", pa.int32()), ("month", pa.int32())])


def records_to_table(records: Iterable[CableRecord]) -> pa.Table:
    """Build an Arrow table in CABLE_SCHEMA order (without partition columns)."""
    rows = [dataclasses.asdict(record) for record in records]
    return pa.Table.from_pylist(rows, schema=CABLE_SCHEMA)
