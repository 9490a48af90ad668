"""The lake folder reads as exactly the cable rows, the way each reader's users first try.

The ledger, staging, quarantine and quality tables live in the control folder
beside the lake (`schemas/lake.py`), so a directory read or a `**` glob of the
lake finds no other Parquet and no SQLite file. (pyspark is an optional reader
and is not installed here; the lake holds no `_`/`.` names it would have to skip.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from cablestream.flows.ingest import ingest_flow
from cablestream.schemas import lake as layout

from .conftest import parsed_ids

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
