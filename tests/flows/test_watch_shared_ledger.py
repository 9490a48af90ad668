"""Two `cablestream watch` processes on one inbox and one lake, sharing a PostgreSQL ledger.

Files land throughout; one watcher is killed with SIGKILL half-way. Every cable
must reach the lake exactly once: the survivor recovers what the dead one left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from .conftest import lake_ids, parsed_ids, quarantined_ids

if TYPE_CHECKING:  # importing tests/conftest.py again would run its set-up twice
    from ..conftest import PostgresServer

FILES = 24
FIRST = 4  # files the first watcher takes alone
Watcher = subprocess.Popen[bytes]


def _watch(inbox: Path, lake: Path, ledger: str, env: dict[str, str], log: Path) -> Watcher:
    command = [sys.executable, "-m", "cablestream.flows.cli", "watch", "--inbox", str(inbox)]
    command += ["--lake", str(lake), "--ledger", ledger, "--settle-seconds", "0.3"]
    command += ["--max-wait-seconds", "0.2", "--max-files-per-batch", "3"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait(done: Callable[[], bool], watchers: list[Watcher], limit: float) -> None:
    started = time.monotonic()
    while not done():
        assert all(w.poll() is None for w in watchers), "a watcher exited early"
        assert time.monotonic() - started < limit, "not ingested in time"
        time.sleep(0.2)


def test_two_watchers_share_one_inbox_and_a_kill_loses_nothing(
    prefect_harness: str, postgres_server: PostgresServer, corpus_files: Path, tmp_path: Path
) -> None:
    inbox, lake, source = tmp_path / "inbox", tmp_path / "lake", tmp_path / "source"
    inbox.mkdir()
    source.mkdir()
    files = sorted(corpus_files.glob("*.txt"))[:FILES]
    for path in files:
        shutil.copy(path, source / path.name)
    expected = parsed_ids(source)
    ledger = postgres_server.new_database(with_password=False)
    env = {**os.environ, "PREFECT_API_URL": prefect_harness, "PGPASSWORD": postgres_server.password}
    logs = [tmp_path / f"watch-{n}.log" for n in range(2)]
    watchers = [_watch(inbox, lake, ledger, env, log) for log in logs]

    def landed(count: int) -> Callable[[], bool]:
        wanted = parsed_ids_of(files[:count], tmp_path / f"first-{count}")
        return lambda: wanted <= set(lake_ids(lake)) | set(quarantined_ids(lake))

    try:
        _wait(lambda: all(b"watching" in log.read_bytes() for log in logs), watchers, 120)
        # The first files go to the first watcher alone (the second is paused), the last
        # ones to the survivor alone: both commit batches, whoever wins the races between.
        watchers[1].send_signal(signal.SIGSTOP)
        for path in files[:FIRST]:
            shutil.copy(path, inbox / path.name)  # a plain copy: taken once it has settled
        _wait(landed(FIRST), watchers, 120)
        watchers[1].send_signal(signal.SIGCONT)
        for number, path in enumerate(files[FIRST:], start=FIRST + 1):
            shutil.copy(path, inbox / path.name)
            time.sleep(0.1)
            if number == FILES // 2:
                watchers[0].send_signal(signal.SIGKILL)  # at whatever point it is
                watchers[0].wait()
        _wait(landed(FILES), watchers[1:], 180)
    finally:
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.send_signal(signal.SIGTERM)
        for watcher in watchers:
            watcher.wait(timeout=60)
    survivor = logs[1].read_text()
    assert watchers[1].returncode == 0, survivor[-3000:]
    assert "Traceback" not in survivor

    rows = lake_ids(lake)
    assert [row for row, count in Counter(rows).items() if count > 1] == []
    assert set(rows) | set(quarantined_ids(lake)) == expected
    with psycopg.connect(postgres_server.url(ledger.rsplit("/", 1)[1])) as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM files GROUP BY state").fetchall())
        owners = db.execute(
            "SELECT owner, COUNT(*), MIN(started_at) FROM batches WHERE state = 'committed'"
            " GROUP BY owner"
        ).fetchall()
        unsettled = db.execute(
            "SELECT COUNT(*) FROM batches WHERE state IN ('claimed', 'publishing')"
        ).fetchone()
    assert states.get("claimed", 0) == 0 and sum(states.values()) == FILES
    assert len(owners) == 2, f"both watchers committed batches: {owners}"
    assert unsettled == (0,)


def parsed_ids_of(files: list[Path], folder: Path) -> set[str]:
    folder.mkdir(exist_ok=True)
    for path in files:
        shutil.copy(path, folder / path.name)
    return parsed_ids(folder)
