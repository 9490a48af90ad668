"""The batch steps without Prefect: quarantine routing and validation failure handling."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pyarrow.dataset as ds

from cablestream.schemas import lake as layout
from cablestream.tasks.batch import claim, commit, route
from cablestream.tasks.inbox.folder import archive_settled
from cablestream.tasks.inbox.settle import ready_files
from cablestream.tasks.lake import writer
from cablestream.tasks.lake.quarantine import read_reasons
from cablestream.tasks.ledger.sqlite import SqliteLedger
from cablestream.tasks.parse.decode import MAX_DECOMPRESSED_BYTES

from ...conftest import batch_owner_dies

SEED = Path(__file__).resolve().parents[3] / ".." / "shared" / "seeds"


def _inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.txt").write_bytes(sorted(SEED.glob("*.txt"))[0].read_bytes())
    (inbox / "nocable.txt").write_bytes(b"hello world, nothing to see here\n")
    (inbox / "bomb.gz").write_bytes(gzip.compress(b"A" * 5000))
    return inbox


def _claim(tmp_path: Path) -> tuple[Path, SqliteLedger, claim.ClaimedBatch]:
    inbox = _inbox(tmp_path)
    lake = tmp_path / "lake"
    ledger = SqliteLedger(layout.ledger_path(lake))
    files = ready_files(inbox, settle_seconds=0)
    batch = claim.read_and_claim(inbox, files, ledger, claim.new_batch_id(), 10_000_000)
    return lake, ledger, batch


def test_files_without_cables_are_quarantined_with_a_copy(tmp_path: Path) -> None:
    lake, ledger, batch = _claim(tmp_path)
    parsed = route.parse_batch(batch)
    summary = commit.write_and_commit(lake, ledger, batch, parsed, parsed.table, [])
    assert summary.rows_written == parsed.cables > 0
    reasons = read_reasons(lake).to_pylist()
    by_path = {row["source_path"]: row for row in reasons if row["record_id"] is None}
    assert by_path["nocable.txt"]["reason"] == "no_cable"
    assert (
        layout.output_path(lake, by_path["nocable.txt"]["copy_path"])
        .read_bytes()
        .startswith(b"hello")
    )
    assert ledger.counts() == {"committed": 1, "quarantined": 2}  # bomb.gz holds no cable


def test_dropped_rows_go_to_the_quarantine_with_their_reason(tmp_path: Path) -> None:
    lake, ledger, batch = _claim(tmp_path)
    parsed = route.parse_batch(batch)
    victim = parsed.table.column("record_id")[0].as_py()
    summary = commit.write_and_commit(
        lake, ledger, batch, parsed, parsed.table.slice(1), [(victim, "subject_not_null", "x")]
    )
    assert summary.rows_quarantined == 1
    rows = ds.dataset(layout.quarantine_dir(lake, layout.QUARANTINE_ROWS_DIR)).to_table()
    assert rows.column("record_id").to_pylist() == [victim]
    assert rows.column("quarantine_reason").to_pylist() == ["subject_not_null"]
    reasons = read_reasons(lake).to_pylist()
    assert [r["reason"] for r in reasons if r["record_id"] == victim] == ["subject_not_null"]


def test_a_batch_validation_cannot_evaluate_is_retried_then_held_not_quarantined(
    tmp_path: Path,
) -> None:
    inbox = _inbox(tmp_path)
    lake = tmp_path / "lake"
    ledger = SqliteLedger(layout.ledger_path(lake))
    statuses = []
    for _ in range(3):
        files = ready_files(inbox, settle_seconds=0)
        batch = claim.read_and_claim(inbox, files, ledger, claim.new_batch_id(), 10_000_000)
        assert len(batch.files) == 3  # released files are claimed again
        parsed = route.parse_batch(batch)
        summary = commit.hold_batch(lake, ledger, batch, parsed, ["subject_length"], 3)
        statuses.append(summary.status)
    assert statuses == ["retry", "retry", "held"]
    # The good file is held (kept in the ledger with the reason), not quarantined.
    assert ledger.counts() == {"held": 1, "quarantined": 2}
    assert not list(lake.glob("year=*"))
    reasons = {(r["source_path"], r["reason"]) for r in read_reasons(lake).to_pylist()}
    assert reasons == {("nocable.txt", "no_cable"), ("bomb.gz", "no_cable")}
    assert not claim.read_and_claim(
        inbox, ready_files(inbox, 0), ledger, claim.new_batch_id(), 10_000_000
    ).files


def test_a_file_name_that_is_not_utf8_is_ingested_under_an_escaped_name(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    seed = sorted(SEED.glob("*.txt"))[0].read_bytes()
    (inbox / os.fsdecode(b"bad\xff.txt")).write_bytes(seed)
    (inbox / "still-writing.tmp").mkdir()
    (inbox / "still-writing.tmp" / "half.txt").write_bytes(seed[:300])
    lake = tmp_path / "lake"
    ledger = SqliteLedger(lake / layout.STATE_DIR / layout.LEDGER_FILE)
    files = ready_files(inbox, settle_seconds=0)
    assert [f.path for f in files] == ["bad\\xff.txt"]  # the .tmp folder is not walked
    batch = claim.read_and_claim(inbox, files, ledger, claim.new_batch_id(), 10_000_000)
    parsed = route.parse_batch(batch)
    summary = commit.write_and_commit(lake, ledger, batch, parsed, parsed.table, [])
    assert summary.rows_written == parsed.cables > 0
    assert set(parsed.table.column("source_path").to_pylist()) == {"bad\\xff.txt"}
    assert ledger.counts() == {"committed": 1}
    archive = tmp_path / "archive"
    assert archive_settled(inbox, archive, [item.found for item in batch.files]) == 1
    assert os.listdir(os.fsencode(archive)) == [b"bad\xff.txt"]


def test_batches_respect_file_and_byte_limits(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path)
    files = ready_files(inbox, 0)
    assert [len(b) for b in claim.plan_batches(files, 2, 10**9)] == [2, 1]
    assert [len(b) for b in claim.plan_batches(files, 100, 1)] == [1, 1, 1]


def test_batches_count_gzip_files_at_their_decompressed_size(tmp_path: Path) -> None:
    # A few small gzips that expand a thousandfold must not share one batch.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    expanded = 2_000_000
    for number in range(4):
        (inbox / f"expands-{number}.gz").write_bytes(gzip.compress(b"A" * expanded))
    (inbox / "plain.txt").write_bytes(b"B" * 1000)
    (inbox / "named.gz").write_bytes(b"not gzip at all")  # the name says nothing
    bomb = gzip.compress(b"\0" * (MAX_DECOMPRESSED_BYTES + 10))
    (inbox / "bomb.gz").write_bytes(bomb)
    files = ready_files(inbox, 0)
    assert sum(f.size for f in files) < 200_000  # all in one batch by on-disk size
    sizes = {f.path: claim.expanded_size(inbox, f, 10_000_000) for f in files}
    assert sizes == {
        **{f"expands-{n}.gz": expanded for n in range(4)},
        "bomb.gz": MAX_DECOMPRESSED_BYTES + 1,
        "named.gz": len(b"not gzip at all"),
        "plain.txt": 1000,
    }
    plan = claim.plan_pass(inbox, iter(files), 100, 2 * expanded, 10_000_000)
    by_batch = [sorted(f.path for f in batch) for batch in plan.groups()]
    assert by_batch == [
        ["bomb.gz"],
        ["expands-0.gz", "expands-1.gz"],
        ["expands-2.gz", "expands-3.gz"],
        ["named.gz", "plain.txt"],
    ]
    # Counted by on-disk size (the fewest there can be: files are read when batched).
    assert (plan.files.num_rows, plan.batches, plan.bytes) == (7, 1, sum(f.size for f in files))
    # A gzip larger on disk than the file cap is not read: it is quarantined as oversized.
    bomb_file = next(f for f in files if f.path == "bomb.gz")
    assert claim.expanded_size(inbox, bomb_file, len(bomb) - 1) == len(bomb)


def test_a_plan_gives_back_the_files_it_was_made_of(tmp_path: Path) -> None:
    # Kept as columns, handed out one batch at a time: the same InboxFiles, in order,
    # a marker and a name that is not UTF-8 included.
    inbox = _inbox(tmp_path)
    (inbox / "good.txt.done").write_bytes(b"")
    (inbox / os.fsdecode(b"odd\xff.txt")).write_bytes(b"odd")
    files = ready_files(inbox, 0)
    assert any(f.has_marker for f in files) and any(f.raw_path for f in files)
    plan = claim.plan_pass(inbox, iter(files), 2, 10**9, 10**7)
    assert [len(batch) for batch in plan.groups()] == [2, 2]
    assert [item for batch in plan.groups() for item in batch] == files
    empty = claim.plan_pass(inbox, iter([]), 2, 10**9, 10**7)
    assert (empty.files.num_rows, empty.batches, list(empty.groups())) == (0, 0, [])


def test_settled_files_move_to_the_archive_with_their_markers(tmp_path: Path) -> None:
    lake, ledger, batch = _claim(tmp_path)
    inbox = tmp_path / "inbox"
    (inbox / "good.txt.done").write_bytes(b"")
    parsed = route.parse_batch(batch)
    commit.write_and_commit(lake, ledger, batch, parsed, parsed.table, [])
    archive = tmp_path / "archive"
    assert archive_settled(inbox, archive, [item.found for item in batch.files]) == 3
    assert sorted(p.name for p in archive.iterdir()) == [
        "bomb.gz",
        "good.txt",
        "good.txt.done",
        "nocable.txt",
    ]
    assert list(inbox.iterdir()) == []


def test_abandon_undoes_a_batch_before_its_point_of_no_return_and_finishes_it_after(
    tmp_path: Path,
) -> None:
    lake, ledger, batch = _claim(tmp_path)
    parsed = route.parse_batch(batch)
    writer.stage_rows(parsed.table, lake, batch.batch_id)
    assert commit.abandon(lake, ledger, batch.batch_id, "test")
    assert not list(lake.glob("year=*/month=*/*.parquet"))
    assert not layout.staging_dir(lake, batch.batch_id).exists()
    assert ledger.counts() == {}
    assert not commit.abandon(lake, ledger, batch.batch_id, "again")

    again = claim.read_and_claim(
        tmp_path / "inbox", ready_files(tmp_path / "inbox", 0), ledger, claim.new_batch_id(), 10**7
    )
    parsed = route.parse_batch(again)
    staged = writer.stage_rows(parsed.table, lake, again.batch_id)
    ledger.prepare_commit(again.batch_id, [s.relative for s in staged], parsed.outcomes)
    writer.publish(lake, staged[:0])  # an error right after the point of no return
    assert commit.abandon(lake, ledger, again.batch_id, "test")
    assert len(list(lake.glob("year=*/month=*/*.parquet"))) == len(staged) > 0
    assert ledger.batch_state(again.batch_id) == "committed"


def test_recovery_clears_a_dead_batch_at_every_stage(tmp_path: Path) -> None:
    lake, ledger, batch = _claim(tmp_path)
    parsed = route.parse_batch(batch)
    staged = writer.stage_rows(parsed.table, lake, batch.batch_id)  # staged, not recorded
    batch_owner_dies(ledger.path)
    assert staged and commit.recover(lake, ledger) == [batch.batch_id]
    assert not layout.staging_dir(lake, batch.batch_id).exists()
    assert ledger.counts() == {}
    assert commit.recover(lake, ledger) == []
