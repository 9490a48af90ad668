"""Compaction: fewer files, the same rows, and crash safety on both sides of its point of no return."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from cablestream.schemas import lake as layout
from cablestream.schemas import versions
from cablestream.tasks.batch import claim, commit, route
from cablestream.tasks.batch.compact import compact_lake
from cablestream.tasks.inbox.settle import ready_files
from cablestream.tasks.lake import writer
from cablestream.tasks.lake.reader import partition_files
from cablestream.tasks.ledger.sqlite import SqliteLedger, open_ledger

from ...conftest import (
    DiesAfterThePointOfNoReturn,
    DiesBeforeTheCommit,
    DiesBeforeThePointOfNoReturn,
    batch_owner_dies,
)

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "files"
# Release texts, dealt over a few batches: several batches land in the same partitions.
SAMPLE = sorted(CORPUS.glob("01[6-9]*.txt"))[:24] if CORPUS.exists() else []


def _ingest_in_batches(tmp_path: Path, batches: int = 3) -> tuple[Path, SqliteLedger]:
    if not SAMPLE:
        pytest.skip("shared corpus not present")
    lake = tmp_path / "lake"
    ledger = open_ledger(lake)
    for number in range(batches):
        inbox = tmp_path / f"inbox{number}"
        inbox.mkdir()
        for source in SAMPLE[number::batches]:
            (inbox / source.name).write_bytes(source.read_bytes())
        claimed = claim.read_and_claim(
            inbox, ready_files(inbox, settle_seconds=0), ledger, claim.new_batch_id(), 10**8
        )
        parsed = route.parse_batch(claimed)
        commit.write_and_commit(lake, ledger, claimed, parsed, parsed.table, [])
    return lake, ledger


def _rows(lake: Path) -> pa.Table:
    dataset = ds.dataset(
        sorted(str(p) for p in lake.glob("year=*/month=*/*.parquet")),
        format="parquet",
        partitioning=ds.partitioning(flavor="hive"),
        partition_base_dir=str(lake),
    )
    return dataset.to_table().sort_by("record_id")


def _file_count(lake: Path) -> int:
    return sum(len(files) for files in partition_files(lake).values())


def test_compaction_merges_files_and_keeps_every_row(tmp_path: Path) -> None:
    lake, ledger = _ingest_in_batches(tmp_path)
    before, files_before = _rows(lake), _file_count(lake)
    summary = compact_lake(lake, ledger, claim.new_batch_id())
    assert summary.files_before > summary.files_after > 0
    assert _file_count(lake) == files_before - summary.files_before + summary.files_after
    assert all(len(files) == 1 for files in partition_files(lake).values())
    assert _rows(lake).equals(before)
    count = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{lake}/year=*/month=*/*.parquet', hive_partitioning=true)"
    ).fetchall()[0][0]
    assert count == before.num_rows
    # A second run finds nothing left to merge.
    assert compact_lake(lake, ledger, claim.new_batch_id()).partitions == 0


@pytest.mark.parametrize(
    "ledger_kind",
    [DiesBeforeThePointOfNoReturn, DiesAfterThePointOfNoReturn, DiesBeforeTheCommit],
)
def test_a_crashed_compaction_recovers_to_the_same_rows(
    tmp_path: Path, ledger_kind: type[SqliteLedger]
) -> None:
    lake, ledger = _ingest_in_batches(tmp_path)
    before = _rows(lake)
    dying = ledger_kind(ledger.path)
    with pytest.raises(RuntimeError, match="killed"):
        compact_lake(lake, dying, claim.new_batch_id())
    assert _rows(lake).equals(before)  # a reader never sees the rows twice
    batch_owner_dies(ledger.path)
    assert len(commit.recover(lake, ledger)) == 1
    assert _rows(lake).equals(before)
    staging = layout.control_root(lake) / layout.STAGING_DIR
    assert not staging.exists() or not any(staging.iterdir())
    assert ledger.unsettled_batches() == []


def test_files_of_a_running_batch_are_left_alone(tmp_path: Path) -> None:
    lake, ledger = _ingest_in_batches(tmp_path, batches=2)
    inbox = tmp_path / "late"
    inbox.mkdir()
    for source in SAMPLE[:4]:
        (inbox / f"copy-{source.name}").write_bytes(source.read_bytes() + b"\n")
    running = claim.read_and_claim(
        inbox, ready_files(inbox, settle_seconds=0), ledger, claim.new_batch_id(), 10**8
    )
    parsed = route.parse_batch(running)
    staged = writer.stage_rows(parsed.table, lake, running.batch_id)
    ledger.prepare_commit(running.batch_id, [item.relative for item in staged], parsed.outcomes)
    published = set(writer.publish(lake, staged))
    summary = compact_lake(lake, ledger, claim.new_batch_id())
    assert summary.skipped_in_flight == len(published) > 0
    assert published <= {f for files in partition_files(lake).values() for f in files}
    # The running batch is finished as it was, its files untouched by the compaction.
    assert commit.abandon(lake, ledger, running.batch_id, "test")
    assert published <= {f for files in partition_files(lake).values() for f in files}
    assert ledger.batch_state(running.batch_id) == "committed"


def test_two_compactions_at_once_leave_every_row_once(tmp_path: Path) -> None:
    lake, ledger = _ingest_in_batches(tmp_path)
    before = _rows(lake)
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(compact_lake, lake, ledger, claim.new_batch_id()) for _ in range(2)]
        summaries = [run.result() for run in runs]
    assert sorted(s.partitions > 0 for s in summaries) == [False, True]  # one waited, then no-op
    assert _rows(lake).equals(before)
    assert all(len(files) == 1 for files in partition_files(lake).values())


def test_compaction_merges_files_of_an_older_schema_version(tmp_path: Path) -> None:
    lake, ledger = _ingest_in_batches(tmp_path)
    merged = next(files for files in partition_files(lake).values() if len(files) >= 2)
    old_file = lake / merged[0]
    # As schema version 1 wrote it: no `station` column, no version key.
    old = versions.as_version(pq.read_table(old_file), 1)
    pq.write_table(old, old_file)
    old_ids = set(old.column("record_id").to_pylist())
    before = _rows(lake).drop_columns(["station"])
    compact_lake(lake, ledger, claim.new_batch_id())
    after = _rows(lake)
    assert after.drop_columns(["station"]).equals(before)
    stations = dict(zip(after["record_id"].to_pylist(), after["station"].to_pylist(), strict=True))
    assert {stations[record_id] for record_id in old_ids} == {None}
    for files in partition_files(lake).values():
        assert (
            versions.file_schema_version(pq.read_schema(lake / files[0])) == versions.SCHEMA_VERSION
        )
