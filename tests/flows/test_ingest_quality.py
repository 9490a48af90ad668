"""A broken parser (subjects dropped) fails the batch-level rule: loud, recorded, not held back."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cablestream.flows.ingest import ingest_flow, needs_attention
from cablestream.tasks.lake.quarantine import read_reasons
from cablestream.tasks.ledger.sqlite import open_ledger
from cablestream.tasks.quality.dashboard import collect
from cablestream.tasks.quality.tables import read_quality_table

from .conftest import faulty, faulty_cli, lake_ids


@pytest.fixture(scope="module")
def inbox(corpus_files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("broken") / "inbox"
    shutil.copytree(corpus_files, target)
    return target


def test_dropped_subjects_fail_the_batch_rule_loudly_and_no_good_file_is_quarantined(
    prefect_harness: str, broken_parser: None, inbox: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    options = {"settle_seconds": 0, "max_files_per_batch": 1000, "max_batch_bytes": 1 << 30}

    summary = ingest_flow(inbox=str(inbox), lake=str(lake), **options)
    assert summary["batches"] == 1
    assert summary["batches_flagged"] == 1 and summary["batches_held"] == 0
    assert summary["expectations_failed"] >= 1
    assert needs_attention(summary)  # the CLI exits non-zero on it
    (line,) = summary["flagged"]
    assert "batch_subject_share" in line
    # The cables are written all the same; no file went to the quarantine for a batch rule.
    assert summary["rows_written"] > 500
    assert len(lake_ids(lake)) == summary["rows_written"]
    assert "validation_failed" not in {r["reason"] for r in read_reasons(lake).to_pylist()}
    assert "held" not in open_ledger(lake).counts()

    batches = read_quality_table(lake, "batches")
    assert batches is not None
    (run,) = batches.to_pylist()
    assert run["batch_failed"]
    assert "batch_subject_share" in run["failed_expectations"]
    assert run["rows_accepted"] == summary["rows_written"]

    validations = read_quality_table(lake, "validations")
    assert validations is not None
    subject = [r for r in validations.to_pylist() if r["expectation"] == "batch_subject_share"]
    assert [r["success"] for r in subject] == [False]
    assert all(r["policy"] == "fail" for r in subject)
    assert all(r["unexpected_count"] == r["element_count"] for r in subject)  # every subject null

    board = collect(lake)
    assert [b.verdict for b in board.runs] == ["failed"]
    assert board.runs[0].rows_accepted == summary["rows_written"]


def test_the_cli_exits_non_zero_when_a_batch_fails_a_fail_rule(
    prefect_harness: str, corpus_files: Path, tmp_path: Path
) -> None:
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    for path in sorted(corpus_files.glob("*.txt"))[:15]:
        shutil.copy(path, inbox / path.name)
    env = {**os.environ, "PREFECT_API_URL": prefect_harness, faulty.BLANK_SUBJECTS_ENV: "1"}
    command = faulty_cli("ingest", "--inbox", str(inbox), "--lake", str(lake))
    command += ["--settle-seconds", "0"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "failed `fail` rules" in result.stderr
    assert "Traceback" not in result.stderr
    assert lake_ids(lake)  # the rows are in the lake all the same
