"""Arrow schema of a cable record and the conversion of records into a table."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

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


# Record fields by name (a lake column without one, `quality_flags`, starts null).
_RECORD_FIELDS = frozenset(field.name for field in dataclasses.fields(CableRecord))


def _column(values: list[Any], kind: pa.DataType) -> pa.Array:
    """One column from the records' attribute values; a list of dataclasses is a list of
    structs, built from its items' attributes (no dict per item)."""
    if not (pa.types.is_list(kind) and pa.types.is_struct(kind.value_type)):
        return pa.array(values, kind)
    offsets = [0]
    items: list[Any] = []
    for value in values:
        items.extend(value)
        offsets.append(len(items))
    struct = kind.value_type
    children = [pa.array([getattr(item, f.name) for item in items], f.type) for f in struct]
    inner = pa.StructArray.from_arrays(children, fields=list(struct))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), inner, type=kind)


def records_to_table(records: Sequence[CableRecord]) -> pa.Table:
    """Build an Arrow table in CABLE_SCHEMA order (without partition columns).

    Column by column from the records' attributes: `dataclasses.asdict` (a deep copy
    of every record) and `Table.from_pylist` took three times as long.
    """
    columns = [
        _column([getattr(record, field.name) for record in records], field.type)
        if field.name in _RECORD_FIELDS
        else pa.nulls(len(records), field.type)
        for field in CABLE_SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=CABLE_SCHEMA)
