"""A broken parser (subjects dropped) fails the batch-level expectation and stays out of the lake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cablestream.flows.ingest import ingest_flow
from cablestream.flows.report import collect
from cablestream.tasks.quality import read_quality_table

from .conftest import lake_ids


@pytest.fixture(scope="module")
def inbox(corpus_files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("broken") / "inbox"
    shutil.copytree(corpus_files, target)
    return target


def test_dropped_subjects_fail_the_batch_twice_then_a_fixed_parser_lands_it(
    prefect_harness: str, inbox: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    options = {"settle_seconds": 0, "max_files_per_batch": 1000, "max_batch_bytes": 1 << 30}

    for attempt in (1, 2):
        summary = ingest_flow(inbox=str(inbox), lake=str(lake), drop_subjects=True, **options)
        assert summary["batches"] == 1, attempt
        assert summary["rows_written"] == 0, attempt
        assert summary["batches_retry"] == 1, attempt
        assert summary["expectations_failed"] >= 1, attempt
        assert lake_ids(lake) == [], f"attempt {attempt} wrote rows of a failed batch"

    batches = read_quality_table(lake, "batches")
    assert batches is not None
    runs = batches.to_pylist()
    assert len(runs) == 2
    assert all(run["batch_failed"] for run in runs)
    assert all("batch_subject_share" in run["failed_expectations"] for run in runs)
    assert all(run["rows_in"] > 500 for run in runs)

    validations = read_quality_table(lake, "validations")
    assert validations is not None
    subject = [r for r in validations.to_pylist() if r["expectation"] == "batch_subject_share"]
    assert [r["success"] for r in subject] == [False, False]
    assert all(r["policy"] == "fail" for r in subject)
    assert all(r["unexpected_count"] == r["element_count"] for r in subject)  # every subject null

    # The files were released, not consumed: with the parser fixed the same files land.
    fixed = ingest_flow(inbox=str(inbox), lake=str(lake), **options)
    assert fixed["expectations_failed"] == 0
    assert fixed["rows_written"] > 500
    assert len(lake_ids(lake)) == fixed["rows_written"]

    board = collect(lake)
    assert [b.verdict for b in board.batches] == ["failed", "failed", "passed"]
    assert board.batches[-1].rows_written == fixed["rows_written"]
