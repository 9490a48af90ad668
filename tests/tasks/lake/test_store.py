"""The lake's data files in an object store (moto's S3 server): put, listed, deleted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import CABLE_SCHEMA
from cablestream.tasks.lake import writer
from cablestream.tasks.lake.store import (
    StoreError,
    bind_store,
    is_data_name,
    open_store,
    store_for,
)

from ...conftest import S3Server

BATCH = "20261130T140000Z-0a1b2c3d"


def _rows() -> pa.Table:
    from datetime import UTC, datetime

    rows = [
        {name: None for name in CABLE_SCHEMA.names}
        | {"record_id": f"r{i}", "created": datetime(2008, 1 + i, 1, tzinfo=UTC)}
        for i in range(3)
    ]
    return pa.Table.from_pylist(rows, schema=CABLE_SCHEMA)


def test_only_whole_partition_file_names_are_data() -> None:
    assert is_data_name("year=2008/month=5/part-x-0.parquet")
    assert not is_data_name("quarantine/reasons/part-x.parquet")
    assert not is_data_name("a/year=2008/month=5/part-x-0.parquet")
    assert not is_data_name("year=2008/month=5/part-x-0.json")


def test_published_files_are_objects_under_the_lake_prefix_without_markers(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.bucket()
    control = tmp_path / "control"
    store = bind_store(control, f"s3://{bucket}/lake")
    assert store_for(control) == store and layout.control_root(control) == control.resolve()
    staged = writer.stage_rows(_rows(), control, BATCH)  # staged in the local control folder
    assert s3_server.keys(bucket) == []  # nothing is in the store before it is published
    published = writer.publish(control, staged)
    expected = sorted(f"lake/{relative}" for relative in published)
    assert len(expected) == 3 and all(f"part-{BATCH}-" in key for key in expected)
    assert s3_server.keys(bucket) == expected  # no `lake/` or `year=2008/` marker objects
    assert store.data_files() == sorted(published)
    assert store.dataset().count_rows() == 3
    assert not list(control.glob("year=*"))  # nothing landed in the local folder
    writer.publish(control, staged)  # again, as recovery would: the same objects
    writer.remove_output(control, published[0])
    writer.remove_output(control, published[0])  # idempotent
    assert s3_server.keys(bucket) == [key for key in expected if key != f"lake/{published[0]}"]


def test_a_control_folder_belongs_to_one_store(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.bucket()
    bind_store(tmp_path, f"s3://{bucket}/lake")
    bind_store(tmp_path, f"s3://{bucket}/lake")
    with pytest.raises(StoreError, match="belongs to the lake"):
        bind_store(tmp_path, f"s3://{bucket}/other")


def test_a_local_lake_is_its_folder(tmp_path: Path) -> None:
    store = store_for(tmp_path / "lake")
    assert store.local and isinstance(store.filesystem, pafs.LocalFileSystem)
    assert store.data_files() == []


def test_an_object_store_lake_stages_beside_its_prefix_and_publishes_by_copy(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """Staged files are pushed under the batch's id beside the lake's prefix (no reader of
    the lake lists them), copied to their keys on publish, and the staging prefix cleared."""
    bucket = s3_server.bucket()
    control = tmp_path / "control"
    store = bind_store(control, f"s3://{bucket}/lake")
    staged = writer.stage_rows(_rows(), control, BATCH)
    reasons = tmp_path / "reasons.parquet"
    pq.write_table(pa.table({"reason": ["no_cable"]}), reasons)
    quarantine_table = f"quarantine/reasons/part-{BATCH}.parquet"
    local_stage = layout.staging_dir(control, BATCH)
    (local_stage / quarantine_table).parent.mkdir(parents=True)
    shutil.copy(reasons, local_stage / quarantine_table)
    writer.push_staging(control, BATCH)
    writer.push_staging(control, BATCH)  # again: nothing left locally, nothing to do
    assert not local_stage.exists()
    names = sorted([item.relative for item in staged] + [quarantine_table])
    assert writer.staged_outputs(control, BATCH) == names
    staging = f"lake.cablestream/staging/{BATCH}/"
    assert s3_server.keys(bucket) == [staging + name for name in names]  # not under lake/
    assert store.data_files() == []

    writer.pull_staging(control, BATCH)  # a replacement rewrites them locally
    assert s3_server.keys(bucket) == [] and writer.staged_outputs(control, BATCH) == names
    writer.push_staging(control, BATCH)

    published = writer.publish_staged(control, BATCH)
    assert sorted(published) == names
    data = sorted(f"lake/{item.relative}" for item in staged)
    assert s3_server.keys(bucket, "lake/") == data  # copied on the server, no markers
    assert pq.read_table(layout.output_path(control, quarantine_table)).num_rows == 1
    assert store.dataset().count_rows() == 3
    writer.clear_staging(control, BATCH)
    assert s3_server.keys(bucket) == data  # no staging key, no marker left behind
    writer.publish_staged(control, BATCH)  # again, as a second finisher would: nothing to do
    writer.clear_staging(control, BATCH)
    assert s3_server.keys(bucket) == data


def test_a_lake_at_a_bucket_root_is_refused() -> None:
    with pytest.raises(StoreError, match="name a prefix inside the bucket"):
        open_store("s3://some-bucket")
