"""The fault harness, CI-sized: bench/faults.py's scenarios with few files and kill moments.

The long form (`.venv/bin/python bench/faults.py`) runs the same code with more.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from cablestream.tasks.batch.audit import audit_lake


@pytest.fixture(scope="module")
def faults(corpus_files: Path, bench_script: Callable[[str], ModuleType]) -> ModuleType:
    return bench_script("faults")


def _env(api: str) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": api}


def test_kill_9_during_ingest_then_rerun_leaves_a_right_lake(
    prefect_harness: str, faults: ModuleType, tmp_path: Path
) -> None:
    outcome = faults.kill_ingest(tmp_path, _env(prefect_harness), kills=2, files=16, batch_files=4)
    assert outcome.runs == 2
    assert outcome.problems == []


def test_two_ingesters_then_two_compactors_leave_a_right_lake(
    prefect_harness: str, faults: ModuleType, tmp_path: Path
) -> None:
    ingesters, reading, lake = faults.two_ingesters(tmp_path, _env(prefect_harness), files=16)
    assert ingesters.problems == []
    assert reading.runs > 0 and reading.problems == []  # no row twice, none went away, no error
    expected = faults.expected_ids(tmp_path / "two-ingesters" / "inbox")
    compactors, _ = faults.two_compactors(lake, _env(prefect_harness), expected)
    assert compactors.problems == []


def test_the_audit_sees_a_duplicated_row_and_a_stray_file(
    prefect_harness: str, faults: ModuleType, tmp_path: Path
) -> None:
    inbox = faults.make_inbox(tmp_path, 4)
    lake = tmp_path / "lake"
    faults.run(faults.ingest_args(inbox, lake, 4), _env(prefect_harness))
    expected = faults.expected_ids(inbox)
    assert audit_lake(lake, expected) == []
    data = sorted(lake.glob("year=*/month=*/*.parquet"))[0]
    (data.parent / ("copy-" + data.name)).write_bytes(data.read_bytes())
    (lake / "leftover.tmp").write_bytes(b"")
    problems = audit_lake(lake, expected)
    assert any("more than once" in line for line in problems)
    assert any("stray files" in line for line in problems)
    assert any("no committed batch wrote" in line for line in problems)
