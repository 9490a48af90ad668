"""A group task run where the flow's folders are not (a Dask worker on another machine):
one clear error, nothing quarantined as gone, nothing committed without its rows.

The object-store case, where such a worker stages onto the store, is in
test_commit_object_store.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cablestream.schemas import lake as layout
from cablestream.tasks.batch import claim, commit, group
from cablestream.tasks.inbox.settle import ready_files
from cablestream.tasks.ledger.protocol import FileOutcome
from cablestream.tasks.ledger.sqlite import SqliteLedger

SEED = Path(__file__).resolve().parents[3] / ".." / "shared" / "seeds"


def _claimed(tmp_path: Path) -> tuple[Path, Path, SqliteLedger, claim.ClaimedBatch]:
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    shutil.copy(sorted(SEED.glob("*.txt"))[0], inbox / "one.txt")
    ledger = SqliteLedger(layout.ledger_path(lake))
    files = ready_files(inbox, settle_seconds=0)
    batch = claim.read_and_claim(inbox, files, ledger, claim.new_batch_id(), 10**7, False)
    return inbox, lake, ledger, batch


def test_a_worker_without_the_inbox_folder_stops_instead_of_quarantining(
    tmp_path: Path,
) -> None:
    _, lake, _, batch = _claimed(tmp_path)
    elsewhere = tmp_path / "not-on-this-machine"
    job = group.GroupJob(str(elsewhere), str(lake), batch, 10**7)
    with pytest.raises(FileNotFoundError, match="need the inbox at the same path"):
        group.process(job)


def test_rows_staged_out_of_sight_are_not_committed(tmp_path: Path) -> None:
    """The worker staged under another control folder (another CABLESTREAM_CONTROL, or
    another machine's disk): the flow's host finds no data file, and stops before the
    point of no return instead of committing the batch without its rows."""
    _, lake, ledger, batch = _claimed(tmp_path)
    (item,) = batch.files
    staged = commit.StagedBatch(
        batch.batch_id, {item.claim.file_id: FileOutcome("committed")}, rows_written=3
    )
    with pytest.raises(RuntimeError, match="rows were staged where this process cannot see"):
        commit.commit_staged(lake, ledger, staged)
    assert ledger.batch_state(batch.batch_id) == "claimed"  # undone by abandon/recovery
