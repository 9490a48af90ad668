"""The warm worker (flows/worker.py): one-shot passes run in it, exactly once, or here without it.

Real processes: the session's Prefect server, a warm worker started next to it by
`flows/server.py`, and `cablestream ingest` as a user runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cablestream.flows import server
from cablestream.schemas import lake as layout
from cablestream.tasks.ledger.sql import pid_alive

from .conftest import lake_ids, parsed_ids, quarantined_ids

CLI = [sys.executable, "-m", "cablestream.flows.cli"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inbox"
READY_TIMEOUT = 180.0


def _gone(pid: int) -> bool:
    """Ended (a zombie left for this container's init to reap counts as ended)."""
    status = Path(f"/proc/{pid}/status")
    return not pid_alive(pid) or "State:\tZ" in status.read_text()


def _wait_until_ready() -> int:
    deadline = time.monotonic() + READY_TIMEOUT
    while not (worker := server.status().worker).ready:
        assert worker.pid is not None, f"the warm worker stopped: {worker.log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "the warm worker did not warm up in time"
        time.sleep(0.2)
    assert worker.pid is not None
    return worker.pid


@pytest.fixture(scope="module")
def warm_worker(prefect_harness: str) -> Iterator[int]:
    """The warm worker beside the session's server, for this module only; yields its pid."""
    os.environ[server.WORKER_ENV] = "on"
    try:
        server.start()  # the server runs: this starts the worker it lacks
        pid = _wait_until_ready()
        yield pid
    finally:
        os.environ[server.WORKER_ENV] = "off"
        server.stop_worker()
    assert server.status().worker.pid is None


def _ingest(inbox: Path, lake: Path, cwd: Path | None = None, **env: str) -> dict[str, object]:
    environment = {**os.environ, server.WORKER_ENV: "on", **env}
    command = [*CLI, "ingest", "--inbox", str(inbox), "--lake", str(lake)]
    done = subprocess.run(
        [*command, "--settle-seconds", "0", "--json"],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def _inbox(folder: Path, count: int) -> Path:
    folder.mkdir()
    for sample in sorted(EXAMPLES.iterdir())[:count]:
        shutil.copy(sample, folder / sample.name)
    return folder


def test_concurrent_one_shots_run_in_the_worker_and_land_every_cable_once(
    warm_worker: int, tmp_path: Path
) -> None:
    inbox, lake = _inbox(tmp_path / "inbox", 6), tmp_path / "lake"
    expected = parsed_ids(inbox)
    environment = {**os.environ, server.WORKER_ENV: "on"}
    command = [*CLI, "ingest", "--inbox", str(inbox), "--lake", str(lake)]
    command += ["--settle-seconds", "0", "--json"]
    both = [
        subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    summaries = []
    for process in both:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()
        summaries.append(json.loads(out))
    # Both passes ran in the worker (one after the other); together they took every file once.
    assert [s.get("ran_in") for s in summaries] == ["warm worker", "warm worker"]
    assert sum(int(s["files"]) for s in summaries) == 6
    rows, quarantined = lake_ids(lake), quarantined_ids(lake)
    assert len(rows) == len(set(rows))
    assert set(rows) | set(quarantined) == expected
    assert server.status().worker.pid == warm_worker  # still the same warm process


def test_the_pass_sees_the_clis_environment_and_folder(warm_worker: int, tmp_path: Path) -> None:
    """A relative CABLESTREAM_CONTROL means the CLI's folder, not the worker's."""
    inbox = _inbox(tmp_path / "inbox", 1)
    summary = _ingest(inbox, tmp_path / "lake", cwd=tmp_path, CABLESTREAM_CONTROL="control")
    assert summary["ran_in"] == "warm worker" and int(summary["rows_written"]) >= 1
    assert (tmp_path / "control" / "state" / "ledger.sqlite").is_file()
    assert not layout.control_root(tmp_path / "lake").exists()
    # The next pass has no CABLESTREAM_CONTROL: the worker's environment came back.
    summary = _ingest(_inbox(tmp_path / "next", 1), tmp_path / "other")
    assert summary["ran_in"] == "warm worker"
    assert layout.ledger_path(tmp_path / "other").is_file()


def test_a_worker_running_older_code_is_replaced_and_the_pass_runs_here(
    warm_worker: int, tmp_path: Path
) -> None:
    ready = server.server_dir() / "worker.ready"
    ready.write_text("older-code\n", encoding="ascii")
    summary = _ingest(_inbox(tmp_path / "inbox", 1), tmp_path / "lake")
    assert summary["ran_in"] == "this process" and int(summary["rows_written"]) >= 1
    # A new worker warms up for the next run (the older one is gone).
    replacement = server.status().worker.pid
    assert replacement is not None and replacement != warm_worker
    assert _gone(warm_worker)


def test_without_a_worker_ingest_runs_its_pass_here(warm_worker: int, tmp_path: Path) -> None:
    pid = server.status().worker.pid
    assert pid is not None
    assert server.stop_worker()
    assert server.status().worker.pid is None
    assert _gone(pid)
    summary = _ingest(_inbox(tmp_path / "inbox", 1), tmp_path / "lake")
    assert summary["ran_in"] == "this process" and int(summary["rows_written"]) >= 1
