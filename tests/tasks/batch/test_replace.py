"""A file changed in place (or appended to) leaves only its newest version's rows, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from cablestream.schemas.record import CableRecord
from cablestream.tasks.batch import claim, commit, route
from cablestream.tasks.batch.audit import audit_lake
from cablestream.tasks.inbox.settle import ready_files
from cablestream.tasks.lake.reader import lake_record_ids
from cablestream.tasks.ledger.sql import forget_running
from cablestream.tasks.ledger.sqlite import SqliteLedger, open_ledger
from cablestream.tasks.parse import parse_source

from ...conftest import (
    DiesAfterThePointOfNoReturn,
    DiesBeforeTheCommit,
    DiesBeforeThePointOfNoReturn,
)

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "files"
SAMPLE = sorted(CORPUS.glob("01[6-9]*.txt"))[:3] if CORPUS.exists() else []


@pytest.fixture
def sample() -> list[bytes]:
    if len(SAMPLE) < 3:
        pytest.skip("shared corpus not present")
    return [path.read_bytes() for path in SAMPLE]


def _ids(data: bytes, name: str = "a.txt") -> list[str]:
    return sorted(r.record_id for r in parse_source(data, name) if isinstance(r, CableRecord))


def _pass(inbox: Path, lake: Path, ledger: SqliteLedger) -> commit.BatchSummary | None:
    """One ingest pass of the task steps (claim, parse, write: validation is not under test)."""
    batch = claim.read_and_claim(
        inbox, ready_files(inbox, settle_seconds=0), ledger, claim.new_batch_id(), 10**8
    )
    if not batch.files:
        return None
    parsed = route.parse_batch(batch)
    return commit.write_and_commit(lake, ledger, batch, parsed, parsed.table, [])


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Path, Path, SqliteLedger]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    return inbox, tmp_path / "lake", open_ledger(tmp_path / "lake")


def test_a_file_changed_in_place_keeps_only_its_new_rows(
    lake: tuple[Path, Path, SqliteLedger], sample: list[bytes]
) -> None:
    inbox, root, ledger = lake
    (inbox / "a.txt").write_bytes(sample[0])
    _pass(inbox, root, ledger)
    assert sorted(lake_record_ids(root)) == _ids(sample[0])

    (inbox / "a.txt").write_bytes(sample[1])
    summary = _pass(inbox, root, ledger)
    assert summary is not None and summary.rows_replaced == len(_ids(sample[0]))
    assert sorted(lake_record_ids(root)) == _ids(sample[1])
    assert ledger.counts() == {"committed": 1, "superseded": 1}
    assert audit_lake(root) == []

    # The first content again (a restore): a newer version once more, not "already done".
    (inbox / "a.txt").write_bytes(sample[0])
    _pass(inbox, root, ledger)
    assert sorted(lake_record_ids(root)) == _ids(sample[0])
    assert ledger.counts() == {"committed": 1, "superseded": 1}
    assert audit_lake(root) == []


def test_an_appending_producer_leaves_only_the_complete_version(
    lake: tuple[Path, Path, SqliteLedger], sample: list[bytes]
) -> None:
    inbox, root, ledger = lake
    full = sample[2]
    for end in (len(full) // 3, 2 * len(full) // 3, len(full)):
        (inbox / "a.txt").write_bytes(full[:end])
        _pass(inbox, root, ledger)
    assert sorted(lake_record_ids(root)) == _ids(full)
    assert audit_lake(root) == []


def test_a_new_version_that_is_quarantined_keeps_the_old_rows(
    lake: tuple[Path, Path, SqliteLedger], sample: list[bytes]
) -> None:
    inbox, root, ledger = lake
    (inbox / "a.txt").write_bytes(sample[0])
    _pass(inbox, root, ledger)
    (inbox / "a.txt").write_bytes(b"\x00\x01\x02 not a cable any more")
    summary = _pass(inbox, root, ledger)
    assert summary is not None and summary.files_quarantined == 1 and summary.rows_replaced == 0
    assert sorted(lake_record_ids(root)) == _ids(sample[0])
    assert ledger.counts() == {"committed": 1, "quarantined": 1}


def test_a_file_changed_into_a_copy_of_another(
    lake: tuple[Path, Path, SqliteLedger], sample: list[bytes]
) -> None:
    inbox, root, ledger = lake
    (inbox / "a.txt").write_bytes(sample[0])
    (inbox / "b.txt").write_bytes(sample[1])
    _pass(inbox, root, ledger)
    (inbox / "a.txt").write_bytes(sample[1])  # now a duplicate of b.txt: a's old rows go
    _pass(inbox, root, ledger)
    assert sorted(lake_record_ids(root)) == _ids(sample[1], "b.txt")
    # b.txt changes too, but its old content is still a.txt's: those rows stay.
    (inbox / "b.txt").write_bytes(sample[2])
    _pass(inbox, root, ledger)
    assert sorted(lake_record_ids(root)) == sorted(
        _ids(sample[1], "b.txt") + _ids(sample[2], "b.txt")
    )
    assert audit_lake(root) == []


@pytest.mark.parametrize(
    "dying", [DiesBeforeThePointOfNoReturn, DiesAfterThePointOfNoReturn, DiesBeforeTheCommit]
)
def test_a_replacement_cut_short_is_undone_or_finished(
    lake: tuple[Path, Path, SqliteLedger], sample: list[bytes], dying: type[SqliteLedger]
) -> None:
    inbox, root, ledger = lake
    (inbox / "a.txt").write_bytes(sample[0])
    _pass(inbox, root, ledger)
    (inbox / "a.txt").write_bytes(sample[1])
    with pytest.raises(RuntimeError, match="killed"):
        _pass(inbox, root, dying(ledger.path))
    # A reader sees one version or the other, never both and never neither.
    seen = sorted(lake_record_ids(root))
    assert seen in (_ids(sample[0]), _ids(sample[1]))
    for stale in ledger.unsettled_batches():
        forget_running(stale)  # as if its process had died
    assert len(commit.recover(root, ledger)) == 1
    _pass(inbox, root, ledger)  # the undone batch is taken again
    assert sorted(lake_record_ids(root)) == _ids(sample[1])
    assert audit_lake(root) == []
