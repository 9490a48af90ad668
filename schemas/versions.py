"""The lake's schema version: which record columns each version added, and how rows of
an older version read as the current schema.

Where the version is recorded (README, "Schema versions", has the readers' recipes):

- every data file's Parquet key-value metadata, `cablestream.schema_version`
  (`pq.read_schema(path).metadata`); a file written before the key existed is
  dated by its columns (`file_schema_version`);
- the control folder's `state/schema.json` (`tasks.lake.record_schema`): the
  version the lake's writers use now, with the columns each version added.

A column is only ever added (never renamed, retyped or removed), so a file of an
older version is the current schema minus some columns: readers that are given
the current schema (or DuckDB's `union_by_name`) read those columns as null.
Adding a column to `CABLE_SCHEMA` means adding it to `COLUMNS_SINCE` with the
next version (a test checks that every column is accounted for).
"""

from __future__ import annotations

import pyarrow as pa

from cablestream.schemas.arrow import CABLE_SCHEMA, PARTITION_SCHEMA

METADATA_KEY = b"cablestream.schema_version"
FIRST_VERSION = 1
# Columns added after the first record schema, with the version that added them.
COLUMNS_SINCE: dict[str, int] = {
    "station": 2,  # parser 0.2.0: the sending post as in reference ids
    "quality_flags": 3,  # the `warn` row rules a row broke (issue 15: no real cable dropped)
}
SCHEMA_VERSION = max(COLUMNS_SINCE.values(), default=FIRST_VERSION)


class NewerSchemaError(ValueError):
    """Rows carry columns this code does not know: a newer cablestream wrote them."""


def since(column: str) -> int:
    """The schema version that added `column` to the record."""
    return COLUMNS_SINCE.get(column, FIRST_VERSION)


def schema_of_version(version: int) -> pa.Schema:
    """The record schema as version `version` wrote it (the current one minus later columns)."""
    return pa.schema([field for field in CABLE_SCHEMA if since(field.name) <= version])


def as_version(table: pa.Table, version: int) -> pa.Table:
    """Rows as version `version` wrote them: later columns left out, no version key.

    What a lake written by an earlier release holds (tests and bench/ build such lakes).
    """
    return table.select(schema_of_version(version).names).replace_schema_metadata(None)


def file_schema_version(schema: pa.Schema) -> int:
    """The version a data file was written with: its metadata key, else dated by its columns."""
    recorded = (schema.metadata or {}).get(METADATA_KEY)
    if recorded is not None:
        return int(recorded)
    return max((since(name) for name in schema.names), default=FIRST_VERSION)


def with_version(table: pa.Table) -> pa.Table:
    """The table with the current schema version in its schema metadata (kept in Parquet)."""
    metadata = dict(table.schema.metadata or {})
    metadata[METADATA_KEY] = str(SCHEMA_VERSION).encode()
    return table.replace_schema_metadata(metadata)


def conform(table: pa.Table) -> pa.Table:
    """Rows of any older version as the current record schema: later columns added as null.

    Partition columns (`year`, `month`) are dropped, as in a data file. Columns this
    code does not know raise NewerSchemaError: rewriting such rows would lose them.
    """
    unknown = set(table.column_names) - set(CABLE_SCHEMA.names) - set(PARTITION_SCHEMA.names)
    if unknown:
        raise NewerSchemaError(
            f"rows carry columns this cablestream does not know ({', '.join(sorted(unknown))}):"
            f" a newer version (schema above {SCHEMA_VERSION}) wrote them"
        )
    columns = [
        table.column(field.name)
        if field.name in table.column_names
        else pa.nulls(table.num_rows, field.type)
        for field in CABLE_SCHEMA
    ]
    return pa.Table.from_arrays(columns, names=CABLE_SCHEMA.names).cast(CABLE_SCHEMA)


def read_schema() -> pa.Schema:
    """The whole lake as readers should see it: record columns plus integer partitions.

    Give it to readers that take a schema (pyarrow `dataset(schema=)`, pandas
    `read_parquet(schema=)`, Polars `scan_parquet(schema=, missing_columns="insert")`)
    so files of older versions read with the later columns null.
    """
    return pa.schema(list(CABLE_SCHEMA) + list(PARTITION_SCHEMA))
