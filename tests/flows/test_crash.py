"""Crash safety: `cablestream ingest` killed with SIGKILL mid-batch, then run again."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

from cablestream.flows.ingest import ingest_flow
from cablestream.schemas import lake as layout

from .conftest import faulty, faulty_cli, lake_ids, parsed_ids, quarantined_ids


def test_sigkill_mid_batch_then_rerun_lands_every_cable_once(
    prefect_harness: str, corpus_files: Path, tmp_path: Path
) -> None:
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    for path in sorted(corpus_files.iterdir())[:60]:
        shutil.copy(path, inbox / path.name)
    expected = parsed_ids(inbox)

    mark = tmp_path / "paused"
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_harness,  # the session's server: no second server start
        # Killed when the first batch's files are in the lake, before its commit.
        faulty.PAUSE_AT_ENV: "commit:before",
        faulty.PAUSE_MARK_ENV: str(mark),
    }
    command = faulty_cli("ingest", "--inbox", str(inbox), "--lake", str(lake))
    command += ["--settle-seconds", "0", "--max-files-per-batch", "20"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        faulty.wait_for_mark(mark, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    # The killed batch is in the lake, past its point of no return, not committed:
    # recovery finishes it (its rows stay, so no reader saw rows that go away).
    published = lake_ids(lake)
    assert published
    with sqlite3.connect(layout.ledger_path(lake)) as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM batches GROUP BY state").fetchall())
    # The next group may be claimed already (groups are processed while one commits).
    assert states["publishing"] == 1 and set(states) <= {"publishing", "claimed"}

    result = ingest_flow(inbox=str(inbox), lake=str(lake), settle_seconds=0, max_files_per_batch=20)
    assert len(result["recovered_batches"]) == sum(states.values())
    rows, quarantined = lake_ids(lake), quarantined_ids(lake)
    assert len(rows) == len(set(rows))  # count and distinct record_id
    assert not set(rows) & set(quarantined)
    assert set(rows) | set(quarantined) == expected
    assert set(published) <= set(rows)
    assert not list((layout.control_root(lake) / layout.STAGING_DIR).glob("*"))
