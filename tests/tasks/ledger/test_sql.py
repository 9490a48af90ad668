"""The Ledger protocol's rules (tasks/ledger/sql.py), on every database that implements it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cablestream.tasks.ledger.postgres import PostgresLedger
from cablestream.tasks.ledger.protocol import (
    BatchLost,
    Candidate,
    ClaimedFile,
    FileOutcome,
    OlderVersion,
)
from cablestream.tasks.ledger.sql import SqlLedger, forget_running
from cablestream.tasks.ledger.sqlite import SqliteLedger


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> SqlLedger:
    """Each implementation of the Ledger protocol, new and empty: the same rules hold."""
    if request.param == "sqlite":
        return SqliteLedger(tmp_path / "state" / "ledger.sqlite")
    return PostgresLedger(request.getfixturevalue("postgres_url"))


def _commit_all(ledger: SqlLedger, batch_id: str, claimed: list[ClaimedFile]) -> None:
    ledger.prepare_commit(batch_id, [], {c.file_id: FileOutcome("committed") for c in claimed})
    ledger.commit(batch_id)


def _dead_pid() -> str:
    return subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _set_owner(ledger: SqlLedger, batch_id: str, pid: str, lease_until: float = 1e12) -> None:
    """Hand the batch to another process of this host, as if it had claimed it."""
    with ledger._transaction() as db:
        host = db.execute("SELECT owner FROM batches").fetchone()[0].rpartition(":")[0]
        db.execute(
            "UPDATE batches SET owner = ?, lease_until = ? WHERE batch_id = ?",
            (f"{host}:{pid}", lease_until, batch_id),
        )


def test_exactly_once_by_path_and_hash(ledger: SqlLedger) -> None:
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


def test_two_copies_in_one_batch_ingest_once(ledger: SqlLedger) -> None:
    first, second = ledger.claim("b1", [Candidate("x", "h", 1, 1), Candidate("y", "h", 1, 1)])
    assert first.duplicate_of is None and second.duplicate_of == "x"


def test_content_claimed_by_a_live_batch_is_left_for_later(ledger: SqlLedger) -> None:
    ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    assert ledger.claim("b2", [Candidate("y", "h", 1, 1)]) == []


def test_commit_needs_an_outcome_for_every_file(ledger: SqlLedger) -> None:
    claimed = ledger.claim("b1", [Candidate("x", "h", 1, 1), Candidate("y", "g", 1, 1)])
    with pytest.raises(RuntimeError):
        ledger.prepare_commit("b1", [], {claimed[0].file_id: FileOutcome("committed")})
    with pytest.raises(RuntimeError):
        ledger.commit("b1")  # not past its point of no return
    _commit_all(ledger, "b1", claimed)
    ledger.commit("b1")  # committing again is a no-op
    with pytest.raises(BatchLost):
        _commit_all(ledger, "b1", claimed)  # but it cannot be prepared twice


def test_a_dead_owners_batch_is_stale_and_abort_frees_its_files(ledger: SqlLedger) -> None:
    ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    assert ledger.stale_batches() == []  # our own batch: in progress
    _set_owner(ledger, "b1", _dead_pid())
    (stale,) = ledger.stale_batches()
    assert (stale.batch_id, stale.state, stale.outputs) == ("b1", "claimed", [])
    assert ledger.abort("b1")
    assert not ledger.abort("b1")  # only a claimed batch is undone
    assert ledger.fingerprints() == set()
    assert [c.path for c in ledger.claim("b2", [Candidate("x", "h", 1, 1)])] == ["x"]


def test_a_batch_taken_over_after_its_lease_can_neither_publish_nor_release(
    ledger: SqlLedger,
) -> None:
    (claimed,) = ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    _set_owner(ledger, "b1", str(os.getpid() + 1), lease_until=0)  # alive, lease run out
    (stale,) = ledger.stale_batches()  # another process sees it stale and undoes it
    assert ledger.abort(stale.batch_id, "recovered")
    outcome = {claimed.file_id: FileOutcome("committed")}
    with pytest.raises(BatchLost):
        ledger.prepare_commit("b1", ["year=2008/month=5/part-b1-0.parquet"], outcome)
    with pytest.raises(BatchLost):
        ledger.release("b1")
    assert ledger.batch_state("b1") == "aborted"
    assert ledger.publishing_batch("b1") is None


def test_a_batch_past_its_point_of_no_return_is_finished_not_undone(ledger: SqlLedger) -> None:
    (claimed,) = ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    outputs = ["year=2008/month=5/part-b1-0.parquet"]
    ledger.prepare_commit("b1", outputs, {claimed.file_id: FileOutcome("committed")})
    publishing = ledger.publishing_batch("b1")
    assert publishing is not None and publishing.outputs == outputs
    assert not ledger.abort("b1")  # publishing: never undone
    _set_owner(ledger, "b1", _dead_pid())
    (stale,) = ledger.stale_batches()
    assert (stale.state, stale.outputs) == ("publishing", outputs)
    ledger.commit("b1")
    assert ledger.stale_batches() == [] and ledger.counts() == {"committed": 1}


def test_a_batch_this_process_left_behind_is_stale_at_once(ledger: SqlLedger) -> None:
    ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    assert ledger.stale_batches() == []
    forget_running("b1")  # an error this process could not clean up after (disk full)
    assert [stale.batch_id for stale in ledger.stale_batches()] == ["b1"]


def test_failures_count_per_file_across_batches(ledger: SqlLedger) -> None:
    for attempt, batch in enumerate(["b1", "b2", "b3"], start=1):
        ledger.claim(batch, [Candidate("x", "h", 1, 1)])
        assert ledger.record_failure(batch, "fail") == attempt
        ledger.release(batch)
    assert ledger.counts() == {}


def test_a_newer_version_supersedes_the_older_and_a_restore_is_newer_again(
    ledger: SqlLedger,
) -> None:
    (old,) = ledger.claim("b1", [Candidate("a.txt", "h1", 1, 1)])
    _commit_all(ledger, "b1", [old])
    (new,) = ledger.claim("b2", [Candidate("a.txt", "h2", 2, 2)])
    assert ledger.older_versions("b2") == [
        OlderVersion(old.file_id, "a.txt", "h1", new.file_id, False)
    ]
    outcome = {new.file_id: FileOutcome("committed")}
    ledger.prepare_commit("b2", ["part-b2.parquet"], outcome, superseded=[old.file_id])
    ledger.commit("b2")
    assert ledger.counts() == {"committed": 1, "superseded": 1}
    assert ledger.fingerprints() == {("a.txt", 2, 2)}  # a superseded row is not "seen"
    assert ledger.source_paths("h1") == ["a.txt"]
    # The first content again (a restore): the same row, claimed again as the newer version.
    (restored,) = ledger.claim("b3", [Candidate("a.txt", "h1", 1, 3)])
    assert restored.file_id == old.file_id and restored.duplicate_of is None
    assert ledger.older_versions("b3") == [
        OlderVersion(new.file_id, "a.txt", "h2", old.file_id, False)
    ]


def test_an_older_version_held_under_another_name_is_shared(ledger: SqlLedger) -> None:
    first = ledger.claim("b1", [Candidate("a.txt", "h1", 1, 1), Candidate("b.txt", "h1", 1, 1)])
    _commit_all(ledger, "b1", first)
    ledger.claim("b2", [Candidate("a.txt", "h2", 2, 2)])
    (older,) = ledger.older_versions("b2")
    assert older.shared  # b.txt (a duplicate) still holds h1: its rows stay
    assert ledger.source_paths("h1") == ["a.txt", "b.txt"]  # committed first


def test_a_path_another_live_batch_holds_in_another_version_is_left_for_later(
    ledger: SqlLedger,
) -> None:
    ledger.claim("b1", [Candidate("a.txt", "h1", 1, 1)])
    assert ledger.claim("b2", [Candidate("a.txt", "h2", 2, 2)]) == []


def test_outputs_a_committed_batch_replaced_leave_the_lake(ledger: SqlLedger) -> None:
    claimed = ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    ledger.prepare_commit("b1", ["old.parquet"], {claimed[0].file_id: FileOutcome("committed")})
    ledger.commit("b1")
    ledger.begin("c1", "compaction")
    ledger.prepare_commit("c1", ["new.parquet"], {}, replaced=["old.parquet"])
    assert ledger.live_outputs() == {"old.parquet"}  # not committed yet: the old file counts
    ledger.commit("c1")
    assert ledger.live_outputs() == {"new.parquet"}


# A process that claims a batch under a short lease and works on it for three leases, then
# commits it: run with the database's kind and location.
_LONG_BATCH = """
import sys, time
from cablestream.tasks.ledger.protocol import Candidate, FileOutcome
kind, where, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
if kind == "sqlite":
    from pathlib import Path
    from cablestream.tasks.ledger.sqlite import SqliteLedger
    ledger = SqliteLedger(Path(where), lease_seconds=lease)
else:
    from cablestream.tasks.ledger.postgres import PostgresLedger
    ledger = PostgresLedger(where, lease_seconds=lease)
(claimed,) = ledger.claim("long", [Candidate("x", "h", 1, 1)])
print("claimed", flush=True)
time.sleep(3 * lease)
ledger.prepare_commit("long", [], {claimed.file_id: FileOutcome("committed")})
ledger.commit("long")
print("committed", flush=True)
"""


def test_a_live_process_keeps_the_lease_of_a_batch_that_runs_longer(ledger: SqlLedger) -> None:
    lease = 1.5
    where = str(ledger.path) if isinstance(ledger, SqliteLedger) else ledger.url
    kind = "sqlite" if isinstance(ledger, SqliteLedger) else "postgresql"
    worker = subprocess.Popen(
        [sys.executable, "-c", _LONG_BATCH, kind, where, str(lease)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    try:
        assert worker.stdout.readline().strip() == "claimed"
        leases = []
        # Another process looks for stale batches all the while: the batch never is one,
        # although it runs three times its lease (the owner is alive: only the lease counts).
        while worker.poll() is None:
            assert ledger.stale_batches() == []
            with ledger._connect() as db:
                row = db.execute("SELECT lease_until FROM batches WHERE state = 'claimed'")
                leases += [float(until) for (until,) in row.fetchall()]
            time.sleep(0.1)
        assert worker.stdout.read().strip() == "committed" and worker.returncode == 0
    finally:
        worker.kill()
        worker.wait()
    assert ledger.batch_state("long") == "committed"
    assert max(leases) - min(leases) >= lease  # renewed, not one long lease


def test_renewal_leaves_a_batch_taken_over_lost(ledger: SqlLedger) -> None:
    ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    ledger.claim("b2", [Candidate("y", "g", 1, 1)])
    assert ledger.renew_leases(["b1", "b2"]) == 2
    _set_owner(ledger, "b1", str(os.getpid() + 1), lease_until=0)  # taken over by another
    assert ledger.abort("b1", "recovered")
    assert ledger.renew_leases(["b1", "b2"]) == 1  # only our own unsettled batch
    assert ledger.batch_state("b1") == "aborted"
