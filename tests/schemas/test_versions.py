"""The schema version: every record column is accounted for, older rows conform to the current schema."""

from __future__ import annotations

import pyarrow as pa
import pytest

from cablestream.schemas import versions
from cablestream.schemas.arrow import CABLE_SCHEMA


def test_the_newest_version_is_the_record_schema() -> None:
    assert versions.schema_of_version(versions.SCHEMA_VERSION) == CABLE_SCHEMA
    # A column added to the record without a version entry would be dated to version 1.
    first = versions.schema_of_version(versions.FIRST_VERSION)
    assert "station" not in first.names and "record_id" in first.names
    assert set(versions.COLUMNS_SINCE) <= set(CABLE_SCHEMA.names)


def test_a_file_is_dated_by_its_key_else_by_its_columns() -> None:
    first = versions.schema_of_version(1)
    assert versions.file_schema_version(first) == 1
    assert versions.file_schema_version(versions.schema_of_version(2)) == 2
    assert versions.file_schema_version(CABLE_SCHEMA) == versions.SCHEMA_VERSION
    keyed = versions.with_version(first.empty_table()).schema
    assert versions.file_schema_version(keyed) == versions.SCHEMA_VERSION


def test_rows_of_version_one_conform_with_null_later_columns() -> None:
    old = pa.table(
        {"record_id": ["a", "b"], "parser_version": ["0.1.0", "0.1.0"], "year": [2008, 2008]},
    )
    conformed = versions.conform(old)
    assert conformed.schema == CABLE_SCHEMA
    assert conformed.column("station").to_pylist() == [None, None]
    assert conformed.column("record_id").to_pylist() == ["a", "b"]


def test_rows_of_a_newer_version_are_refused_not_trimmed() -> None:
    newer = pa.table({"record_id": ["a"], "embassy_mood": ["sunny"]})
    with pytest.raises(versions.NewerSchemaError, match="embassy_mood"):
        versions.conform(newer)
