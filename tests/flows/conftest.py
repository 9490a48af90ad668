"""Helpers for flow tests: what the parser says a folder holds, what the lake holds, and
faults injected at real seams (tests/flows/faulty_cli.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from cablestream.schemas import versions
from cablestream.schemas.record import CableRecord
from cablestream.tasks.batch import route
from cablestream.tasks.lake.quarantine import read_reasons
from cablestream.tasks.parse import parse_source
from cablestream.tasks.quality.tables import docs_place, read_quality_table

FAULTY_CLI = Path(__file__).resolve().with_name("faulty_cli.py")


def _load_faulty_cli() -> ModuleType:
    """tests/flows/faulty_cli.py imported by path (it is a script, not a test module)."""
    spec = importlib.util.spec_from_file_location("cablestream_tests_faulty_cli", FAULTY_CLI)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


faulty = _load_faulty_cli()


def faulty_cli(*arguments: str) -> list[str]:
    """The `cablestream` command line with the faults its environment asks for
    (faulty_cli.PAUSE_AT_ENV, faulty_cli.BLANK_SUBJECTS_ENV)."""
    return [sys.executable, str(FAULTY_CLI), *arguments]


@pytest.fixture
def broken_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every subject the parser gives back is blank, in this process's flows."""
    monkeypatch.setattr(route, "parse_batch", faulty.blank_subjects(route.parse_batch))


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The URL of a shared PostgreSQL ledger on the session's server (its password in
    PGPASSWORD, for the flows run in the test and the CLI processes it starts), or None:
    the lake's own SQLite ledger."""
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    monkeypatch.setenv("PGPASSWORD", server.password)
    url: str = server.new_database(with_password=False)
    return url


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


def docs_index_lists_every_kept_run(lake: Path) -> list[str]:
    """The runs GE kept for the lake; asserts its Data Docs index lists each, and that
    each has its own page."""
    place = docs_place(lake)
    index = (place.docs_dir / "index.html").read_text(encoding="utf-8")
    runs = [path.stem.split("-", 1)[1] for path in sorted(place.results_dir.glob("*.json"))]
    assert runs and all(run in index for run in runs)
    batches = read_quality_table(lake, "batches")
    assert batches is not None
    for page in batches.column("data_docs_page").to_pylist():
        assert (place.docs_dir / page).is_file()
    return runs
