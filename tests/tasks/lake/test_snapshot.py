"""Snapshots: committed files only, frozen, readable by every reader while the lake changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from cablestream.schemas.lake import UnsafePathError
from cablestream.tasks.batch import claim, commit
from cablestream.tasks.batch.compact import compact_lake
from cablestream.tasks.lake.reader import partition_files
from cablestream.tasks.lake.snapshot import (
    SnapshotPace,
    current_snapshot,
    refresh_snapshot,
    snapshot_files,
    snapshots_root,
)
from cablestream.tasks.ledger.sqlite import SqliteLedger

from ...conftest import DiesBeforeTheCommit, batch_owner_dies
from ..batch.test_compact import _ingest_in_batches


def _ids(folder: Path) -> list[str]:
    with duckdb.connect() as db:
        rows = db.sql(
            f"SELECT record_id FROM read_parquet('{folder}/**/*.parquet', hive_partitioning=true)"
        ).fetchall()
    return sorted(str(row[0]) for row in rows)


def _current(lake: Path) -> Path:
    folder = current_snapshot(lake)
    assert folder is not None
    return folder


def test_each_commit_makes_a_snapshot_of_the_committed_files(tmp_path: Path) -> None:
    lake, ledger = _ingest_in_batches(tmp_path)
    folder = _current(lake)
    assert folder.name == "000003"  # one per batch
    assert snapshot_files(folder) == ledger.live_outputs()
    lake_files = {path for files in partition_files(lake).values() for path in files}
    assert snapshot_files(folder) == lake_files
    # Nothing changed: no new snapshot.
    assert refresh_snapshot(lake, ledger.live_outputs) == folder


def test_every_documented_reader_reads_a_snapshot_like_the_lake(tmp_path: Path) -> None:
    lake, _ = _ingest_in_batches(tmp_path)
    folder = _current(lake)
    rows = len(_ids(lake))
    assert len(_ids(folder)) == rows > 0
    assert pl.scan_parquet(folder).select(pl.len()).collect().item() == rows
    partitioning = ds.partitioning(
        pa.schema([("year", pa.int32()), ("month", pa.int32())]), flavor="hive"
    )
    frame = pd.read_parquet(folder, partitioning=partitioning)
    assert len(frame) == rows and pd.api.types.is_integer_dtype(frame["year"])
    assert ds.dataset(folder, format="parquet", partitioning="hive").count_rows() == rows


def test_a_reader_of_the_old_snapshot_keeps_its_rows_through_a_compaction(
    tmp_path: Path,
) -> None:
    lake, ledger = _ingest_in_batches(tmp_path)
    before = _current(lake)
    ids = _ids(before)
    compact_lake(lake, ledger, claim.new_batch_id())
    after = _current(lake)
    assert after != before
    assert _ids(after) == ids == _ids(before)  # the old snapshot's files are still there
    assert snapshot_files(after) == ledger.live_outputs()
    assert all(len(files) == 1 for files in partition_files(lake).values())


def test_a_crashed_compaction_never_shows_in_the_snapshot_until_finished(
    tmp_path: Path,
) -> None:
    lake, ledger = _ingest_in_batches(tmp_path)
    before = _current(lake)
    ids = _ids(before)
    with pytest.raises(RuntimeError, match="killed"):
        # Renamed in and deleted the replaced lake files, died before the commit.
        compact_lake(lake, DiesBeforeTheCommit(ledger.path), claim.new_batch_id())
    assert _current(lake) == before and _ids(before) == ids
    batch_owner_dies(ledger.path)
    assert len(commit.recover(lake, ledger)) == 1
    assert _current(lake) != before and _ids(_current(lake)) == ids


def test_a_snapshot_links_a_file_whose_lake_name_is_already_gone(tmp_path: Path) -> None:
    # A compaction publishing meanwhile deletes lake names of files still committed.
    lake, ledger = _ingest_in_batches(tmp_path)
    before = _current(lake)
    gone = sorted(snapshot_files(before))[0]
    (lake / gone).unlink()
    live = ledger.live_outputs
    after = refresh_snapshot(lake, lambda: live() - {sorted(live())[-1]})
    assert after is not None and gone in snapshot_files(after)


def test_a_snapshot_never_links_a_file_from_outside_the_lake(tmp_path: Path) -> None:
    lake, ledger = _ingest_in_batches(tmp_path)
    outside = tmp_path / "outside" / "month=1"
    outside.mkdir(parents=True)
    (outside / "secret.parquet").write_bytes(b"not the lake's")
    live = ledger.live_outputs
    climbs_out = "year=2000/../../outside/month=1/secret.parquet"
    with pytest.raises(UnsafePathError):
        refresh_snapshot(lake, lambda: live() | {climbs_out})
    (lake / "year=1").symlink_to(outside.parent)  # a partition folder swapped for a symlink
    with pytest.raises(UnsafePathError):
        refresh_snapshot(lake, lambda: live() | {"year=1/month=1/secret.parquet"})
    # A data file swapped for a symlink to a file inside the lake: that file is linked.
    kept = sorted(live())[0]
    alias = "year=1999/month=1/alias.parquet"
    (lake / alias).parent.mkdir(parents=True)
    (lake / alias).symlink_to(lake / kept)
    folder = refresh_snapshot(lake, lambda: live() | {alias})
    assert folder is not None and (folder / alias).samefile(lake / kept)
    assert not (folder / alias).is_symlink()


def test_superseded_snapshots_go_after_the_grace_period_the_current_stays(
    tmp_path: Path,
) -> None:
    lake, ledger = _ingest_in_batches(tmp_path)
    root = snapshots_root(lake)
    assert sorted(p.name for p in root.iterdir() if p.name.isdigit()) == [
        "000001",
        "000002",
        "000003",
    ]
    for superseding in ("000002", "000003"):
        os.utime(root / superseding, (0, 0))  # made long ago
    compact_lake(lake, ledger, claim.new_batch_id())  # supersedes 000003 now
    refresh_snapshot(lake, ledger.live_outputs, grace_seconds=3600)
    numbered = sorted(p.name for p in root.iterdir() if p.name.isdigit())
    assert numbered == ["000003", "000004"]  # 1 and 2 were superseded long ago
    refresh_snapshot(lake, ledger.live_outputs, grace_seconds=0)
    assert sorted(p.name for p in root.iterdir() if p.name.isdigit()) == ["000004"]
    assert _current(lake).name == "000004"


def test_a_lake_made_before_snapshots_gets_one_on_recovery(tmp_path: Path) -> None:
    lake, ledger = _ingest_in_batches(tmp_path, batches=1)
    shutil.rmtree(snapshots_root(lake))
    assert current_snapshot(lake) is None
    commit.recover(lake, SqliteLedger(ledger.path))
    assert snapshot_files(_current(lake)) == ledger.live_outputs()


def test_a_pass_snapshots_at_once_then_at_most_every_few_seconds_and_a_tenth_of_its_time() -> None:
    pace = SnapshotPace(every=10.0, share=0.1)
    assert pace.due(0.0)  # the pass's first commit is seen at once
    pace.made(started=0.0, ended=0.5)
    assert not pace.due(10.0) and pace.due(10.5)
    pace.made(started=20.0, ended=25.0)  # a large lake: 5 s a snapshot
    assert not pace.due(69.0) and pace.due(70.0)  # 45 s of work between: 10% of the time
