"""Helpers for flow tests: what the parser says a folder holds, and what the lake holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.dataset as ds
import pytest

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
