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
    outcome = faults.kill_ingest(tmp_path, _env(prefect_harness), kills=2, files=12, batch_files=4)
    assert outcome.runs == 2
    assert outcome.problems == []  # includes the snapshot readers looping through kill + recovery


def test_two_ingesters_then_two_compactors_leave_a_right_lake_and_right_snapshots(
    prefect_harness: str, faults: ModuleType, tmp_path: Path
) -> None:
    ingesters, reading, lake = faults.two_ingesters(tmp_path, _env(prefect_harness), files=16)
    assert ingesters.problems == []
    assert reading.runs > 0 and reading.problems == []  # no row twice, none went away, no error
    expected = faults.expected_ids(tmp_path / "two-ingesters" / "inbox")
    compactors, compact_reading = faults.two_compactors(lake, _env(prefect_harness), expected)
    assert compactors.problems == []
    assert compact_reading.runs > 0 and compact_reading.problems == []


def test_hostile_names_paths_and_links_leave_a_right_lake(
    prefect_harness: str, faults: ModuleType, tmp_path: Path
) -> None:
    env = _env(prefect_harness)
    for outcome in (
        faults.odd_names(tmp_path, env),
        faults.path_max(tmp_path, env),
        faults.symlink_swap(tmp_path, env, files=4),
    ):
        assert outcome.problems == [], outcome.scenario


def test_a_full_disk_stops_with_one_line_and_the_next_run_is_right(
    prefect_harness: str, faults: ModuleType, tmp_path: Path
) -> None:
    if not faults._mount_namespace_works():
        pytest.skip("no private mount namespace here (needs root or user namespaces)")
    outcome = faults.disk_full(tmp_path, _env(prefect_harness), files=8)
    assert outcome.runs == 1
    assert outcome.problems == [], outcome.notes


def test_the_audit_sees_a_duplicated_row_a_stray_file_and_a_stale_snapshot(
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
    snapshot = faults.current_snapshot(lake)
    sorted(snapshot.rglob("*.parquet"))[0].unlink()
    assert any("snapshot" in line for line in audit_lake(lake, expected))
