"""Ingest from an S3 inbox into an S3 lake on moto's S3 server (a real HTTP server on
127.0.0.1), and the four readers of docs/lake.md reading that lake."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pytest
import s3fs

from cablestream.flows.ingest import ingest_flow
from cablestream.schemas import lake as layout

from ..conftest import PostgresServer, S3Server
from .conftest import parsed_ids


@pytest.fixture(scope="module")
def s3_lake(
    prefect_harness: str,
    s3_server: S3Server,
    corpus_files: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Path, set[str]]:
    """A few corpus files (and one without a cable) put into an S3 inbox, ingested into an
    S3 lake whose control folder is local. Returns (bucket, control folder, cable ids)."""
    root = tmp_path_factory.mktemp("s3")
    local = root / "inbox"
    local.mkdir()
    for path in sorted(corpus_files.iterdir())[:6]:
        shutil.copy(path, local / path.name)
    (local / "sub").mkdir()
    (local / "sub" / "no-cable.txt").write_text("minutes of a meeting, no telegram\n")
    bucket = s3_server.bucket()
    for path in sorted(local.rglob("*")):
        if path.is_file():
            s3_server.put(bucket, f"inbox/{path.relative_to(local).as_posix()}", path.read_bytes())
    control = root / "control"
    with pytest.MonkeyPatch.context() as env:
        env.setenv(layout.CONTROL_ENV, str(control))
        result = ingest_flow(
            inbox=f"s3://{bucket}/inbox", lake=f"s3://{bucket}/lake", settle_seconds=0
        )
        assert result["files_quarantined"] == 1
        again = ingest_flow(
            inbox=f"s3://{bucket}/inbox", lake=f"s3://{bucket}/lake", settle_seconds=0
        )
    expected = parsed_ids(local)
    assert result["rows_written"] == len(expected) > 0
    assert again["files"] == again["rows_written"] == 0  # a rerun ingests nothing new
    return bucket, control, expected


def test_every_cable_lands_once_as_objects_under_the_lake_prefix(
    s3_lake: tuple[str, Path, set[str]], s3_server: S3Server
) -> None:
    bucket, control, expected = s3_lake
    keys = s3_server.keys(bucket, "lake/")
    assert keys and all(key.endswith(".parquet") for key in keys)  # no marker objects
    assert all(key.split("/")[1].startswith("year=") for key in keys)
    assert s3_server.keys(bucket, "lake.cablestream") == []  # control data stays local
    table = ds.dataset(f"s3://{bucket}/lake", format="parquet", partitioning="hive").to_table()
    ids = table.column("record_id").to_pylist()
    assert sorted(ids) == sorted(expected)  # every cable, once
    assert (control / layout.STATE_DIR / layout.LEDGER_FILE).is_file()
    assert not list(control.glob("year=*"))  # no data in the local control folder
    assert not any((control / layout.STAGING_DIR).iterdir())


def test_duckdb_polars_pandas_and_pyarrow_read_the_s3_lake_with_the_same_count(
    s3_lake: tuple[str, Path, set[str]], s3_server: S3Server
) -> None:
    bucket, _, expected = s3_lake
    assert _four_readers_count(f"s3://{bucket}/lake", s3_server) == len(expected)


def _four_readers_count(lake: str, s3_server: S3Server) -> int:
    """The distinct record_ids DuckDB, Polars, pandas and pyarrow read (they must agree)."""
    # DuckDB through fsspec (the httpfs extension cannot be installed offline).
    con = duckdb.connect()
    con.register_filesystem(s3fs.S3FileSystem())
    (duck,) = con.execute(
        f"SELECT count(DISTINCT record_id) FROM read_parquet('{lake}/*/*/*.parquet',"
        " hive_partitioning = true) WHERE year >= 0"
    ).fetchone()
    options = {
        "aws_access_key_id": s3_server.key,
        "aws_secret_access_key": s3_server.secret,
        "aws_region": s3_server.region,
        "aws_endpoint_url": s3_server.endpoint,
        "aws_allow_http": "true",
    }
    polars = (
        pl.scan_parquet(f"{lake}/**/*.parquet", storage_options=options, hive_partitioning=True)
        .select(pl.col("record_id").n_unique())
        .collect()
        .item()
    )
    frame = pd.read_parquet(lake, columns=["record_id", "year"])
    pyarrow_rows = ds.dataset(lake, format="parquet", partitioning="hive").count_rows()
    assert duck == polars == frame["record_id"].nunique() == len(frame) == pyarrow_rows
    return int(pyarrow_rows)


def test_an_object_put_again_replaces_its_rows_and_leaves_no_marker(
    prefect_harness: str,
    s3_server: S3Server,
    corpus_files: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A changed inbox object's older rows are rewritten away on S3 (read, put, deleted)."""
    from cablestream.flows.commands import existing_lake

    local = tmp_path / "inbox"
    local.mkdir()
    first, second, other = sorted(corpus_files.iterdir())[:3]
    bucket = s3_server.bucket()
    for path in (first, second):
        shutil.copy(path, local / path.name)
        s3_server.put(bucket, f"inbox/{path.name}", path.read_bytes())
    monkeypatch.setenv(layout.CONTROL_ENV, str(tmp_path / "control"))
    inbox, lake = f"s3://{bucket}/inbox", f"s3://{bucket}/lake"
    assert ingest_flow(inbox=inbox, lake=lake, settle_seconds=0)["rows_written"] > 0
    # The first object is put again with other cables under its name.
    (local / first.name).write_bytes(other.read_bytes())
    s3_server.put(bucket, f"inbox/{first.name}", other.read_bytes())
    result = ingest_flow(inbox=inbox, lake=lake, settle_seconds=0)
    assert result["files"] == 1 and result["rows_replaced"] > 0
    ids = ds.dataset(lake, format="parquet", partitioning="hive").to_table(["record_id"])
    assert sorted(ids.column("record_id").to_pylist()) == sorted(parsed_ids(local))
    assert all(key.endswith(".parquet") for key in s3_server.keys(bucket, "lake/"))
    # The commands that read a lake find it by its URL (and its control folder).
    assert existing_lake({"lake": lake}) == (tmp_path / "control").resolve()


def test_watch_polls_an_s3_inbox_and_takes_objects_as_they_land(
    prefect_harness: str,
    s3_server: S3Server,
    corpus_files: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An object-store inbox has no file events: watch lists it every `rescan_seconds`."""
    import threading

    from cablestream.flows.settings import IngestSettings
    from cablestream.flows.watch import WatchSummary, watch_inbox

    monkeypatch.setenv(layout.CONTROL_ENV, str(tmp_path / "control"))
    bucket = s3_server.bucket()
    inbox, lake = f"s3://{bucket}/inbox", f"s3://{bucket}/lake"
    settings = IngestSettings.resolve(inbox=inbox, lake=lake, settle_seconds=0, rescan_seconds=1)
    settings.check_paths()
    local = tmp_path / "inbox"
    local.mkdir()
    stop = threading.Event()
    summaries: list[WatchSummary] = []

    def run_pass(paths: list[str] | None) -> dict[str, object]:
        return ingest_flow(inbox=inbox, lake=lake, settle_seconds=0, paths=paths)

    def lake_count() -> int:
        if not s3_server.keys(bucket, "lake/"):
            return 0
        return ds.dataset(lake, format="parquet", partitioning="hive").count_rows()

    watcher = threading.Thread(
        target=lambda: summaries.append(watch_inbox(settings, stop, run_pass))
    )
    watcher.start()
    try:
        for group in (sorted(corpus_files.iterdir())[:2], sorted(corpus_files.iterdir())[2:4]):
            for path in group:  # objects land while the watcher runs
                shutil.copy(path, local / path.name)
                s3_server.put(bucket, f"inbox/{path.name}", path.read_bytes())
            expected = len(parsed_ids(local))
            deadline = time.monotonic() + 180
            while lake_count() < expected:
                assert time.monotonic() < deadline, "the watcher did not take the objects"
                time.sleep(0.5)
    finally:
        stop.set()
        watcher.join(timeout=300)
    ids = ds.dataset(lake, format="parquet", partitioning="hive").to_table(["record_id"])
    assert sorted(ids.column("record_id").to_pylist()) == sorted(parsed_ids(local))
    (summary,) = summaries
    assert summary.passes >= 2 and summary.errors == 0


# "Host A": claims a few inbox objects into an S3 lake with the shared ledger, stages them
# (pushed to the store), and is killed with SIGKILL before its point of no return, or right
# after it with one data file published. Prints the batch id first.
_HOST_A = """
import os, signal, sys
from pathlib import Path
from cablestream.tasks.batch import claim, commit, route
from cablestream.tasks.lake import writer
from cablestream.tasks.lake.store import bind_store
from cablestream.tasks.ledger.postgres import PostgresLedger

inbox_url, lake_url, control, ledger_url, paths, point = sys.argv[1:]
store = bind_store(Path(control), lake_url)
ledger = PostgresLedger(ledger_url)
inbox = claim.open_inbox(inbox_url)
files = claim.fresh_files(inbox, ledger, paths.split(","))
batch = claim.read_and_claim(inbox, files, ledger, claim.new_batch_id(), 10**7)
parsed = route.parse_batch(batch)
commit.stage_batch(Path(control), batch, parsed, parsed.table, [])
writer.push_staging(Path(control), batch.batch_id)
if point == "after":
    outputs = writer.staged_outputs(Path(control), batch.batch_id)
    ledger.prepare_commit(batch.batch_id, outputs, parsed.outcomes)
    store.publish_staged(batch.batch_id, next(n for n in outputs if n.startswith("year=")))
print(batch.batch_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_hosts_sharing_a_postgres_ledger_finish_each_others_s3_batches(
    prefect_harness: str,
    s3_server: S3Server,
    postgres_server: PostgresServer,
    corpus_files: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S3 inbox -> S3 lake with the PostgreSQL ledger, two hosts (control folders): host A
    dies after staging, then again past a point of no return; host B's pass undoes the
    first, finishes the second (its quarantine table lands in B's control folder) and
    ingests the rest. Every cable once; the four readers agree; no key is left staged."""
    import signal
    import subprocess
    import sys

    import psycopg

    from cablestream.tasks.lake.quarantine import read_reasons

    postgres_url = postgres_server.new_database(with_password=False)
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    bucket = s3_server.bucket()
    local = tmp_path / "inbox"
    local.mkdir()
    for path in sorted(corpus_files.iterdir())[:6]:
        shutil.copy(path, local / path.name)
    (local / "no-cable.txt").write_text("minutes of a meeting, no telegram\n")
    names = sorted(path.name for path in local.iterdir())
    for name in names:
        s3_server.put(bucket, f"inbox/{name}", (local / name).read_bytes())
    inbox, lake = f"s3://{bucket}/inbox", f"s3://{bucket}/lake"
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"

    def host_a_dies(paths: list[str], point: str) -> str:
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                _HOST_A,
                inbox,
                lake,
                str(host_a),
                postgres_url,
                ",".join(paths),
                point,
            ],
            capture_output=True,
            text=True,
        )
        assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
        return run.stdout.strip()

    undone = host_a_dies(names[:2], "before")
    finished = host_a_dies([*names[2:4], "no-cable.txt"], "after")
    staged = s3_server.keys(bucket, "lake.cablestream/staging/")
    assert {key.split("/")[2] for key in staged} == {undone, finished}
    assert len(s3_server.keys(bucket, "lake/")) == 1  # the one file A published

    monkeypatch.setenv(layout.CONTROL_ENV, str(host_b))
    result = ingest_flow(inbox=inbox, lake=lake, ledger=postgres_url, settle_seconds=0)
    assert sorted(result["recovered_batches"]) == sorted([undone, finished])
    assert result["files"] == len(names) - 3  # A's undone files again, and the rest

    expected = parsed_ids(local)
    rows = ds.dataset(lake, format="parquet", partitioning="hive").to_table(["record_id"])
    ids = rows.column("record_id").to_pylist()
    rejected = {r["record_id"] for r in read_reasons(host_b).to_pylist() if r["record_id"]}
    assert len(ids) == len(set(ids)) and set(ids) | rejected == expected  # every cable once
    assert _four_readers_count(lake, s3_server) == len(ids)
    # A's finished batch quarantined the file without a cable: in B's control folder.
    reasons = read_reasons(host_b).to_pylist()
    assert [(r["source_path"], r["batch_id"]) for r in reasons if r["record_id"] is None] == [
        ("no-cable.txt", finished)
    ]
    assert s3_server.keys(bucket, "lake.cablestream") == []  # nothing left staged
    assert all(key.endswith(".parquet") for key in s3_server.keys(bucket, "lake/"))
    with psycopg.connect(postgres_url) as db:
        states = dict(db.execute("SELECT batch_id, state FROM batches").fetchall())
    assert states[undone] == "aborted" and states[finished] == "committed"
    assert set(states.values()) <= {"aborted", "committed"}
