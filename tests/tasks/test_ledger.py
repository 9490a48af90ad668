from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cablestream.tasks.ledger import Candidate, ClaimedFile, FileOutcome, SqliteLedger


def _ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger(tmp_path / "state" / "ledger.sqlite")


def _commit_all(ledger: SqliteLedger, batch_id: str, claimed: list[ClaimedFile]) -> None:
    ledger.commit(batch_id, {c.file_id: FileOutcome("committed") for c in claimed})


def test_exactly_once_by_path_and_hash(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    claimed = ledger.claim("b1", [Candidate("a.txt", "h1", 1, 1), Candidate("b.txt", "h2", 1, 1)])
    assert [c.path for c in claimed] == ["a.txt", "b.txt"]
    _commit_all(ledger, "b1", claimed)
    # Same path and content (touched: new mtime): nothing to claim, fingerprint updated.
    assert ledger.claim("b2", [Candidate("a.txt", "h1", 1, 5)]) == []
    assert ("a.txt", 1, 5) in ledger.fingerprints()
    # Same content under another name: claimed as a duplicate of the committed file.
    (dup,) = ledger.claim("b3", [Candidate("renamed.txt", "h1", 1, 1)])
    assert dup.duplicate_of == "a.txt"
    # Changed content under the same name: a new version.
    (new,) = ledger.claim("b4", [Candidate("a.txt", "h9", 2, 2)])
    assert new.duplicate_of is None
    with sqlite3.connect(ledger.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_copies_in_one_batch_ingest_once(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    first, second = ledger.claim("b1", [Candidate("x", "h", 1, 1), Candidate("y", "h", 1, 1)])
    assert first.duplicate_of is None and second.duplicate_of == "x"


def test_content_claimed_by_a_live_batch_is_left_for_later(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    assert ledger.claim("b2", [Candidate("y", "h", 1, 1)]) == []


def test_commit_needs_an_outcome_for_every_file(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    claimed = ledger.claim("b1", [Candidate("x", "h", 1, 1), Candidate("y", "g", 1, 1)])
    with pytest.raises(RuntimeError):
        ledger.commit("b1", {claimed[0].file_id: FileOutcome("committed")})
    _commit_all(ledger, "b1", claimed)
    with pytest.raises(RuntimeError):
        _commit_all(ledger, "b1", claimed)  # committed once only


def test_a_dead_owners_batch_is_stale_and_abort_frees_its_files(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    ledger.record_outputs("b1", ["year=2008/month=5/part-b1-0.parquet"])
    assert ledger.stale_batches() == []  # our own batch: in progress
    with sqlite3.connect(ledger.path) as db:
        host = db.execute("SELECT owner FROM batches").fetchone()[0].rpartition(":")[0]
        db.execute("UPDATE batches SET owner = ?", (f"{host}:{dead}",))
    (stale,) = ledger.stale_batches()
    assert stale.outputs == ["year=2008/month=5/part-b1-0.parquet"]
    ledger.abort("b1")
    assert ledger.fingerprints() == set()
    assert [c.path for c in ledger.claim("b2", [Candidate("x", "h", 1, 1)])] == ["x"]


def test_failures_count_per_file_across_batches(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    for attempt, batch in enumerate(["b1", "b2", "b3"], start=1):
        ledger.claim(batch, [Candidate("x", "h", 1, 1)])
        assert ledger.record_failure(batch, "fail") == attempt
        ledger.release(batch)
    assert ledger.counts() == {}
