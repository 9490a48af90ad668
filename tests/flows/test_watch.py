"""Watch mode: `cablestream watch` picks up files as they land and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import lake_ids, parsed_ids, quarantined_ids


def _wait_for(ids: set[str], lake: Path, process: subprocess.Popen[bytes], limit: float) -> float:
    started = time.monotonic()
    while not ids <= set(lake_ids(lake)) | set(quarantined_ids(lake)):
        assert process.poll() is None, "watch exited early"
        assert time.monotonic() - started < limit, "file not ingested in time"
        time.sleep(0.05)
    return time.monotonic() - started


def test_watch_ingests_landing_files_and_stops_on_sigterm(
    prefect_harness: str, corpus_files: Path, tmp_path: Path
) -> None:
    inbox, lake, staging = tmp_path / "inbox", tmp_path / "lake", tmp_path / "src"
    inbox.mkdir()
    staging.mkdir()
    files = sorted(corpus_files.glob("*.txt"))[:3]
    for path in files:
        shutil.copy(path, staging / path.name)
    shutil.copy(files[0], inbox / files[0].name)  # already there at start

    env = {**os.environ, "PREFECT_API_URL": prefect_harness}
    command = [sys.executable, "-m", "cablestream.flows.cli", "watch", "--inbox", str(inbox)]
    command += ["--lake", str(lake), "--settle-seconds", "0.5", "--max-wait-seconds", "0.2", "-v"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(parsed_ids(staging) - parsed_ids_of(staging, files[1:]), lake, process, 120)

        # Written under a temp name and renamed, with a completion marker: taken at once.
        temp = inbox / (files[1].name + ".part")
        shutil.copy(files[1], temp)
        temp.rename(inbox / files[1].name)
        (inbox / (files[1].name + ".done")).write_bytes(b"")
        marked = _wait_for(parsed_ids_of(staging, files[1:2]), lake, process, 30)

        # Plain copy: taken once it has settled.
        shutil.copy(files[2], inbox / files[2].name)
        settled = _wait_for(parsed_ids_of(staging, files[2:3]), lake, process, 30)
        assert marked < 15 and settled < 15
    except AssertionError:
        process.kill()
        print(process.communicate()[1].decode()[-3000:])
        raise
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    rows = lake_ids(lake)
    assert len(rows) == len(set(rows))
    assert set(rows) | set(quarantined_ids(lake)) == parsed_ids(staging)
    # Every pass is a child run of the one `cablestream-watch` service run, with its tags.
    passes = asyncio.run(_pass_runs(str(lake)))
    assert len(passes) >= 3
    assert {parent_flow for parent_flow, _, _ in passes} == {"cablestream-watch"}
    assert len({parent for _, parent, _ in passes}) == 1
    assert all({"cablestream", "watch"} <= tags for _, _, tags in passes)


async def _pass_runs(lake: str) -> list[tuple[str, str, set[str]]]:
    """(parent's flow name, parent run id, tags) of every ingest run over `lake`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    found = []
    async with get_client() as client:
        runs = await client.read_flow_runs(  # newest first: this test's runs are among them
            flow_filter=FlowFilter(name=FlowFilterName(any_=["cablestream-ingest"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=100,
        )
        for run in runs:
            if run.parameters.get("lake") != lake:
                continue
            assert run.parent_task_run_id is not None, f"pass {run.id} is a top-level run"
            task_run = await client.read_task_run(run.parent_task_run_id)
            assert task_run.flow_run_id is not None
            parent = await client.read_flow_run(task_run.flow_run_id)
            flow = await client.read_flow(parent.flow_id)
            found.append((flow.name, str(parent.id), set(run.tags)))
    return found


def parsed_ids_of(folder: Path, files: list[Path]) -> set[str]:
    only = folder.parent / ("only-" + "-".join(f.stem for f in files))
    only.mkdir(exist_ok=True)
    for path in files:
        shutil.copy(path, only / path.name)
    return parsed_ids(only)


def test_watch_keeps_serving_while_the_ledger_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cablestream.flows import watch
    from cablestream.flows.settings import IngestSettings
    from cablestream.schemas import lake as layout

    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    (inbox / "a.txt").write_bytes(b"x")
    blocker = layout.ledger_path(lake)
    blocker.mkdir(parents=True)  # a folder where the database should be: it cannot be opened
    monkeypatch.setattr(watch, "ERROR_BACKOFF", 0.2)
    settings = IngestSettings(inbox=inbox, lake=lake, settle_seconds=0, rescan_seconds=0.1)
    stop = threading.Event()
    passes: list[list[str] | None] = []

    def run_pass(paths: list[str] | None) -> dict[str, int]:
        passes.append(paths)  # the ingest pass itself is not under test here
        if paths is not None:
            stop.set()
        return {"files": 0}

    threading.Timer(1.5, blocker.rmdir).start()  # the fault clears
    summary = watch.watch_inbox(settings, stop, run_pass)
    assert summary.errors >= 1  # scans failed while the ledger was unreachable ...
    assert passes == [None, ["a.txt"]]  # ... and the file was taken once it was back


def test_a_pass_of_the_watch_service_is_a_child_run_of_it(prefect_harness: str) -> None:
    """Passes run in a worker thread; they still belong to the service's flow run."""
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    from cablestream.flows.watch import in_worker_thread

    @flow(name="a-pass")
    def a_pass() -> dict[str, Any]:
        return {"run": str(flow_run.id)}

    @flow(name="the-service")
    def service() -> tuple[str, str]:
        child = in_worker_thread(a_pass)
        return str(flow_run.id), child["run"]

    parent_id, child_id = service()

    async def parent_of(run_id: str) -> str | None:
        async with get_client() as client:
            child = await client.read_flow_run(run_id)
            if child.parent_task_run_id is None:
                return None
            task_run = await client.read_task_run(child.parent_task_run_id)
            return str(task_run.flow_run_id)

    assert asyncio.run(parent_of(child_id)) == parent_id
