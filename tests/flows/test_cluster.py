"""flows/cluster.py on a real LocalCluster (2 worker processes on 127.0.0.1), and with
Prefect's process pool (2 spawned worker processes).

A pass on Dask writes the same rows as a pass in one process, its file groups
processed by the workers, which report to the session's one Prefect API (none
starts a server of its own); a flow on Dask keeps as many groups in flight as
the workers have threads; a cluster whose workers use another API, or one that
cannot be reached, is refused in one line; the cluster leaves no process behind.
A pass in worker processes lands every cable once, its children report to the one
API and end with the pass; a child SIGKILLed mid-group fails the pass with every
batch undone, and the next pass lands every cable once. Which runner a pass uses.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import psutil
import pytest
from distributed import Client, get_task_stream
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterName,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect_dask.task_runners import DaskTaskRunner

from cablestream.flows.cluster import (
    PROCESSES_FROM_GROUPS,
    RUNNER_ENV,
    DaskUnavailable,
    RunnerChoiceError,
    check_workers,
    dask_task_runner,
    group_processes,
    task_slots,
)
from cablestream.flows.ingest import ingest_flow
from cablestream.schemas import lake as layout
from cablestream.tasks.batch.audit import audit_lake
from cablestream.tasks.lake.reader import lake_record_ids

from ..conftest import CORPUS_FILES
from .conftest import docs_index_lists_every_kept_run, parsed_ids


def _descendants() -> dict[int, str]:
    """This process's children and theirs: pid -> command line."""
    found = {}
    for child in psutil.Process().children(recursive=True):
        try:
            found[child.pid] = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
    return found


def _prefect_servers() -> set[int]:
    return {pid for pid, line in _descendants().items() if "prefect" in line and "server" in line}


@pytest.fixture(scope="module")
def runner(prefect_harness: str) -> Iterator[DaskTaskRunner]:
    before = set(_descendants())
    with dask_task_runner("local", local_workers=2) as started:
        yield started
    # multiprocessing's resource tracker lives as long as this process; nothing else may.
    left = {
        pid: line
        for pid, line in _descendants().items()
        if pid not in before and "resource_tracker" not in line
    }
    assert left == {}, f"the LocalCluster left processes behind: {left}"


@flow(persist_result=False)
def slots() -> int:
    return task_slots(7)


def test_a_flow_on_dask_runs_as_many_tasks_at_once_as_the_workers_have_threads(
    runner: DaskTaskRunner,
) -> None:
    assert slots() == 7  # the default: not on Dask
    assert slots.with_options(task_runner=runner)() == 2


def _completed_group_runs(flow_run_id: Any, expected: int) -> int:
    """The flow run's completed `process-group` task runs in the API (it records states
    from events: waited for up to 30 s)."""
    of_flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    deadline = time.monotonic() + 30
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=of_flow_run)
        done = [
            run
            for run in runs
            if run.name.startswith("process-group") and run.state and run.state.is_completed()
        ]
        if len(done) >= expected or time.monotonic() > deadline:
            return len(done)
        time.sleep(0.5)


def test_workers_that_report_to_another_api_are_refused(runner: DaskTaskRunner) -> None:
    assert runner.address is not None
    with pytest.raises(DaskUnavailable) as refused:
        check_workers(runner.address, "http://127.0.0.1:9/api")
    message = str(refused.value)
    assert "start them with PREFECT_API_URL=http://127.0.0.1:9/api" in message
    assert "\n" not in message


def test_an_unreachable_scheduler_is_one_line(prefect_harness: str) -> None:
    with pytest.raises(DaskUnavailable) as refused:
        check_workers("tcp://127.0.0.1:9", prefect_harness, timeout=1)
    assert str(refused.value).startswith("dask scheduler tcp://127.0.0.1:9: ")
    assert "\n" not in str(refused.value)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inbox"


def test_a_pass_on_dask_writes_the_same_rows_as_a_pass_in_one_process(
    runner: DaskTaskRunner, prefect_harness: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(EXAMPLES, inbox)
    options = {"inbox": str(inbox), "settle_seconds": 0, "max_files_per_batch": 3}
    groups = -(-len(list(EXAMPLES.iterdir())) // 3)
    here = ingest_flow(lake=str(tmp_path / "here"), **options)
    servers = _prefect_servers()
    assert runner.address is not None
    with Client(runner.address) as client, get_task_stream(client) as stream:
        state = ingest_flow.with_options(task_runner=runner)(
            lake=str(tmp_path / "dask"), **options, return_state=True
        )
    on_dask = state.result()
    assert len(stream.data) == groups  # every group was processed by a Dask worker
    assert on_dask["batches"] == here["batches"] == groups
    assert sorted(lake_record_ids(tmp_path / "dask")) == sorted(lake_record_ids(tmp_path / "here"))
    assert on_dask["rows_written"] == here["rows_written"] > 0
    assert audit_lake(tmp_path / "dask") == []
    # The workers reported every group's task run to the one API and started no server.
    assert _completed_group_runs(state.state_details.flow_run_id, groups) == groups
    assert _prefect_servers() == servers


# --- worker processes of this machine ------------------------------------------------------


def test_a_pass_of_several_groups_on_two_cores_runs_them_in_one_process_per_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RUNNER_ENV)  # the default: auto
    assert group_processes(PROCESSES_FROM_GROUPS, cores=2) == 2
    assert group_processes(40, cores=4) == 4
    assert group_processes(PROCESSES_FROM_GROUPS - 1, cores=2) == 0  # few groups: threads
    assert group_processes(40, cores=1) == 0  # one core: threads
    monkeypatch.setenv(RUNNER_ENV, "processes")
    assert group_processes(1, cores=1) == 1
    assert group_processes(0, cores=2) == 0
    monkeypatch.setenv(RUNNER_ENV, "threads")
    assert group_processes(40, cores=2) == 0


def test_an_unknown_runner_is_refused_in_one_line_before_any_work(
    monkeypatch: pytest.MonkeyPatch, prefect_harness: str, tmp_path: Path
) -> None:
    monkeypatch.setenv(RUNNER_ENV, "fibers")
    inbox = tmp_path / "inbox"
    shutil.copytree(EXAMPLES, inbox)
    with pytest.raises(RunnerChoiceError) as refused:
        ingest_flow(inbox=str(inbox), lake=str(tmp_path / "lake"), settle_seconds=0)
    assert str(refused.value) == (
        "CABLESTREAM_GROUP_RUNNER='fibers': use one of auto, processes, threads"
    )
    assert not (tmp_path / "lake").exists()


def _worker_processes() -> set[int]:
    return {pid for pid, line in _descendants().items() if "spawn_main" in line}


def test_a_pass_in_worker_processes_lands_every_cable_once_and_reports_to_the_one_api(
    monkeypatch: pytest.MonkeyPatch, prefect_harness: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(EXAMPLES, inbox)
    groups = -(-len(list(EXAMPLES.iterdir())) // 3)
    servers, before = _prefect_servers(), _worker_processes()
    monkeypatch.setenv(RUNNER_ENV, "processes")
    seen: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.2):
            seen.update(_worker_processes() - before)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        state = ingest_flow(
            inbox=str(inbox),
            lake=str(tmp_path / "lake"),
            settle_seconds=0,
            max_files_per_batch=3,
            return_state=True,
        )
    finally:
        stop.set()
        watcher.join()
    summary = state.result()
    assert len(seen) == 2  # one worker process per core of the two
    assert summary["batches"] == groups
    rows = lake_record_ids(tmp_path / "lake")
    assert sorted(rows) == sorted(parsed_ids(inbox))  # every cable once, as the parser sees it
    assert summary["rows_written"] == len(rows) > 0
    assert audit_lake(tmp_path / "lake") == []
    # A child built the Data Docs index at the pass's end: every group's run is in it.
    assert len(docs_index_lists_every_kept_run(tmp_path / "lake")) == groups
    # The children reported every group's task run to the one API and started no server;
    # they ended with the pass.
    assert _completed_group_runs(state.state_details.flow_run_id, groups) == groups
    assert _prefect_servers() == servers
    assert _worker_processes() - before == set()


def _kill_a_worker_process_mid_group(before: set[int], killed: list[int]) -> None:
    """SIGKILL a worker process once the API shows a `process-group` task run running."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            running = client.read_task_runs(
                task_run_filter=TaskRunFilter(
                    name=TaskRunFilterName(like_="process-group"),
                    state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING])),
                )
            )
        children = sorted(_worker_processes() - before)
        if running and children:
            os.kill(children[0], signal.SIGKILL)
            killed.append(children[0])
            return
        time.sleep(0.1)


def test_a_worker_process_killed_mid_group_leaves_nothing_half_done(
    monkeypatch: pytest.MonkeyPatch, prefect_harness: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in sorted(CORPUS_FILES.iterdir())[:48]:
        shutil.copy(path, inbox / path.name)
    lake = tmp_path / "lake"
    options = {"inbox": str(inbox), "lake": str(lake), "settle_seconds": 0}
    monkeypatch.setenv(RUNNER_ENV, "processes")
    before = _worker_processes()
    killed: list[int] = []
    killer = threading.Thread(target=_kill_a_worker_process_mid_group, args=(before, killed))
    killer.start()
    try:
        with pytest.raises(BrokenProcessPool):
            ingest_flow(**options, max_files_per_batch=4)
    finally:
        killer.join()
    assert killed
    # Every batch of the pass was settled (undone) before the error went on: none is
    # left claimed for recovery, no output of one is in the lake.
    with sqlite3.connect(layout.ledger_path(lake)) as db:
        states = {state for (state,) in db.execute("SELECT state FROM batches")}
    assert states <= {"committed", "aborted"}, states
    assert _worker_processes() - before == set()  # the other child ended with the pass
    monkeypatch.setenv(RUNNER_ENV, "threads")
    again = ingest_flow(**options)
    assert again["recovered_batches"] == []
    assert sorted(lake_record_ids(lake)) == sorted(parsed_ids(inbox))  # every cable once
    assert audit_lake(lake) == []
