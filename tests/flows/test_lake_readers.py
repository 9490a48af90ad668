"""The lake folder reads as exactly the cable rows, the way each reader's users first try.

The ledger, staging, quarantine and quality tables live in the control folder
beside the lake (`schemas/lake.py`), so a directory read or a `**` glob of the
lake finds no other Parquet and no SQLite file. (pyspark is an optional reader
and is not installed here; the lake holds no `_`/`.` names it would have to skip.)

A lake whose files are of different schema versions (`schemas/versions.py`) reads
with the later columns null in the older files, with each reader's recipe from
docs/lake.md (DuckDB `union_by_name`, the others given the lake's schema).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from cablestream.flows.ingest import ingest_flow
from cablestream.schemas import lake as layout
from cablestream.schemas import versions
from cablestream.schemas.arrow import PARTITION_SCHEMA

from .conftest import parsed_ids, rewrite_as_old_version

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inbox"


@pytest.fixture(scope="module")
def lake_with_control_data(
    prefect_harness: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int]:
    """A lake from the sample cables plus a file without a cable (so the quarantine has rows)."""
    root = tmp_path_factory.mktemp("readers")
    inbox = root / "inbox"
    shutil.copytree(EXAMPLES, inbox)
    (inbox / "no-cable.txt").write_text("minutes of a meeting, no telegram\n", encoding="utf-8")
    lake = root / "lake"
    result = ingest_flow(inbox=str(inbox), lake=str(lake), settle_seconds=0)
    assert result["rows_written"] == len(parsed_ids(inbox)) > 0
    assert result["files_quarantined"] == 1
    return lake, int(result["rows_written"])


def test_the_control_folder_holds_everything_that_is_not_cable_rows(
    lake_with_control_data: tuple[Path, int],
) -> None:
    lake, _ = lake_with_control_data
    control = layout.control_root(lake)
    assert control == lake.parent / f"{lake.name}.cablestream"
    assert layout.ledger_path(lake).is_file()
    assert any(layout.quarantine_dir(lake).rglob("*.parquet"))
    assert any(layout.quality_dir(lake).rglob("*.parquet"))
    in_lake = [p.relative_to(lake) for p in lake.rglob("*") if p.is_file()]
    assert in_lake and all(
        p.parts[0].startswith("year=")
        and p.parts[1].startswith("month=")
        and p.suffix == ".parquet"
        for p in in_lake
    )


def test_duckdb_reads_the_folder_and_the_recursive_glob(
    lake_with_control_data: tuple[Path, int],
) -> None:
    lake, written = lake_with_control_data
    with duckdb.connect() as db:
        ((folder,),) = db.sql(f"SELECT count(*) FROM read_parquet('{lake}')").fetchall()
        ((globbed, year_type),) = db.sql(
            f"SELECT count(*), typeof(any_value(year)) "
            f"FROM read_parquet('{lake}/**/*.parquet', hive_partitioning = true)"
        ).fetchall()
    assert folder == globbed == written
    assert year_type in ("BIGINT", "INTEGER")


def test_polars_scans_the_folder(lake_with_control_data: tuple[Path, int]) -> None:
    lake, written = lake_with_control_data
    frame = pl.scan_parquet(lake)
    assert frame.collect_schema()["year"].is_integer()
    assert frame.select(pl.len()).collect().item() == written


def test_pandas_reads_the_folder_with_integer_partitions(
    lake_with_control_data: tuple[Path, int],
) -> None:
    lake, written = lake_with_control_data
    assert len(pd.read_parquet(lake)) == written
    # The README's recipe: without `partitioning`, year/month are a Categorical sorted as text.
    partitioning = ds.partitioning(
        pa.schema([("year", pa.int32()), ("month", pa.int32())]), flavor="hive"
    )
    frame = pd.read_parquet(lake, partitioning=partitioning)
    assert len(frame) == written
    assert pd.api.types.is_integer_dtype(frame["year"])
    assert ds.dataset(lake, format="parquet", partitioning="hive").count_rows() == written


def test_the_lake_records_its_schema_version(lake_with_control_data: tuple[Path, int]) -> None:
    lake, _ = lake_with_control_data
    record = json.loads(layout.schema_record_path(lake).read_text(encoding="utf-8"))
    assert record["schema_version"] == versions.SCHEMA_VERSION
    assert record["columns_since"]["station"] == 2
    for data_file in lake.glob("year=*/month=*/*.parquet"):
        schema = pq.read_schema(data_file)
        assert schema.metadata[versions.METADATA_KEY] == str(versions.SCHEMA_VERSION).encode()
        assert versions.file_schema_version(schema) == versions.SCHEMA_VERSION


@pytest.fixture(scope="module")
def mixed_lake(
    lake_with_control_data: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str | None]]:
    """A copy of the lake with every other data file (the first listed among them) as
    schema version 1 wrote it; returns it with the `station` each row should read as."""
    lake, _ = lake_with_control_data
    mixed = tmp_path_factory.mktemp("mixed") / "lake"
    shutil.copytree(lake, mixed)
    expected: dict[str, str | None] = {}
    files = sorted(mixed.glob("year=*/month=*/*.parquet"))
    for number, data_file in enumerate(files):
        rows = pq.read_table(data_file, columns=["record_id", "station"]).to_pylist()
        old = number % 2 == 0
        if old:
            rewrite_as_old_version(data_file)
            assert versions.file_schema_version(pq.read_schema(data_file)) == 1
        expected |= {row["record_id"]: None if old else row["station"] for row in rows}
    assert len(files) >= 2
    assert any(station is not None for station in expected.values())
    return mixed, expected


def _stations(rows: list[dict[str, object]]) -> dict[str, object]:
    assert len(rows) == len({row["record_id"] for row in rows})
    return {str(row["record_id"]): row["station"] for row in rows}


def test_duckdb_reads_mixed_versions_by_name(
    mixed_lake: tuple[Path, dict[str, str | None]],
) -> None:
    lake, expected = mixed_lake
    with duckdb.connect() as db:
        relation = db.sql(
            f"SELECT record_id, station FROM read_parquet('{lake}/**/*.parquet',"
            " hive_partitioning = true, union_by_name = true)"
        )
        rows = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
    assert _stations(rows) == expected


def test_polars_reads_mixed_versions_with_the_lake_schema(
    mixed_lake: tuple[Path, dict[str, str | None]],
) -> None:
    lake, expected = mixed_lake
    schema = pl.from_arrow(versions.read_schema().empty_table()).schema  # type: ignore[union-attr]
    frame = pl.scan_parquet(lake, schema=schema, missing_columns="insert")
    rows = frame.select("record_id", "station").collect().to_dicts()
    assert _stations(rows) == expected


def test_pandas_and_pyarrow_read_mixed_versions_with_the_lake_schema(
    mixed_lake: tuple[Path, dict[str, str | None]],
) -> None:
    lake, expected = mixed_lake
    partitioning = ds.partitioning(PARTITION_SCHEMA, flavor="hive")
    frame = pd.read_parquet(lake, schema=versions.read_schema(), partitioning=partitioning)
    rows = frame[["record_id", "station"]].to_dict("records")
    assert _stations([{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows]) == (
        expected
    )
    table = ds.dataset(
        lake, format="parquet", schema=versions.read_schema(), partitioning=partitioning
    ).to_table(columns=["record_id", "station"])
    assert _stations(table.to_pylist()) == expected
