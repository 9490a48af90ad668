"""Helpers for flow tests: what the parser says a folder holds, and what the lake holds."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from cablestream.schemas import versions
from cablestream.schemas.record import CableRecord
from cablestream.tasks.lake.quarantine import read_reasons
from cablestream.tasks.parse import parse_source


def parsed_ids(folder: Path) -> set[str]:
    """record_ids of every cable parse_source finds in the folder's files."""
    ids: set[str] = set()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            ids |= {
                r.record_id
                for r in parse_source(path.read_bytes(), rel)
                if isinstance(r, CableRecord)
            }
    return ids


def lake_ids(lake: Path) -> list[str]:
    """record_id of every row in the lake (duplicates kept)."""
    if not any(lake.glob("year=*/month=*/*.parquet")):
        return []
    table = ds.dataset(lake, format="parquet", partitioning="hive").to_table(columns=["record_id"])
    return [str(v) for v in table.column("record_id").to_pylist()]


def quarantined_ids(lake: Path) -> list[str]:
    return [str(r["record_id"]) for r in read_reasons(lake).to_pylist() if r["record_id"]]


@pytest.fixture
def ids() -> Callable[[Path], tuple[list[str], list[str]]]:
    """(lake row ids, quarantined row ids) of a lake."""
    return lambda lake: (lake_ids(lake), quarantined_ids(lake))


def rewrite_as_old_version(data_file: Path, parser_version: str = "0.1.0") -> int:
    """Rewrite one lake data file as schema version 1 would have written it (no `station`,
    no version key) with rows stamped by an older parser; returns its row count.

    This is the lake an earlier release left: the same rows and names, older columns.
    """
    old = versions.as_version(pq.read_table(data_file), versions.FIRST_VERSION)
    old = old.set_column(
        old.schema.get_field_index("parser_version"),
        "parser_version",
        pa.array([parser_version] * old.num_rows, pa.string()),
    )
    scratch = data_file.with_name(data_file.name + ".old")
    pq.write_table(old, scratch, compression="zstd")
    os.replace(scratch, data_file)
    return old.num_rows
