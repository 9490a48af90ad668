from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import records_to_table
from cablestream.schemas.record import CableRecord
from cablestream.tasks.batch import commit
from cablestream.tasks.lake import writer
from cablestream.tasks.lake.quarantine import keep_source_copy
from cablestream.tasks.ledger.sqlite import SqliteLedger

BATCH = "20261125T100450Z-3f9a1c2b"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_rows_land_in_integer_partitions_with_batch_named_files(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    table = records_to_table(
        [
            CableRecord(record_id="a", created=datetime(2008, 5, 27, 7, 10, tzinfo=UTC)),
            CableRecord(record_id="b", created=None),
        ]
    )
    staged = writer.stage_rows(table, lake, BATCH)
    published = writer.publish(lake, writer.staged_tree(lake, BATCH))
    assert {s.relative for s in staged} == set(published)
    assert sorted(published) == [
        f"year=0/month=0/part-{BATCH}-0.parquet",
        f"year=2008/month=5/part-{BATCH}-0.parquet",
    ]
    back = ds.dataset(lake, format="parquet", partitioning="hive").to_table()
    assert back.schema.field("year").type == pa.int32()
    assert sorted(back.column("year").to_pylist()) == [0, 2008]
    writer.clear_staging(lake, BATCH)
    assert not layout.staging_dir(lake, BATCH).exists()


def test_paths_from_data_cannot_leave_the_lake(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    with pytest.raises(layout.UnsafePathError):
        layout.staging_dir(lake, "../../outside")
    with pytest.raises(layout.UnsafePathError):
        layout.inside(lake, lake / ".." / "x")
    with pytest.raises(layout.UnsafePathError):
        keep_source_copy(lake, "../../" + "a" * 58, b"data")
    with pytest.raises(layout.UnsafePathError):
        writer.publish(lake, [writer.StagedFile(tmp_path / "f", "../escaped.parquet")])
    assert _files(tmp_path) == set()


def test_publish_is_idempotent_and_finish_rolls_a_batch_forward(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    ledger = SqliteLedger(layout.ledger_path(lake))
    ledger.begin(BATCH)
    table = records_to_table([CableRecord(record_id="a")])
    staged = writer.stage_rows(table, lake, BATCH)
    old = lake / "year=0/month=0/part-old.parquet"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"")
    ledger.prepare_commit(
        BATCH, [s.relative for s in staged], {}, replaced=[old.relative_to(lake).as_posix()]
    )
    writer.publish(lake, staged[:1])  # a crash after the first rename
    publishing = ledger.publishing_batch(BATCH)
    assert publishing is not None
    commit.finish(lake, ledger, publishing)
    commit.finish(lake, ledger, publishing)  # a second finisher changes nothing
    assert writer.publish(lake, staged) == [s.relative for s in staged]  # nor a late owner
    assert _files(lake) == {lake / s.relative for s in staged}
    assert ledger.batch_state(BATCH) == "committed"
    assert not layout.staging_dir(lake, BATCH).exists()
