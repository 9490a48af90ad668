"""flows/cluster.py on a real LocalCluster (2 worker processes on 127.0.0.1).

A flow's mapped tasks run in the worker processes and report to the session's
one Prefect API (no worker starts a server of its own); a cluster whose workers
use another API, or one that cannot be reached, is refused in one line; the
cluster leaves no process behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import psutil
import pytest
from distributed import Client
from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect_dask.task_runners import DaskTaskRunner

from cablestream.flows.cluster import (
    DaskUnavailable,
    check_workers,
    dask_task_runner,
    task_slots,
)


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


@task(cache_policy=NONE, persist_result=False)
def where(group: int) -> tuple[int, str | None]:
    return os.getpid(), os.environ.get("PREFECT_API_URL")


@flow(persist_result=False)
def over_groups(groups: int) -> list[tuple[int, str | None]]:
    return [future.result() for future in where.map(range(groups))]


def test_mapped_tasks_run_on_the_workers_and_report_to_the_one_api(
    runner: DaskTaskRunner, prefect_harness: str
) -> None:
    servers = _prefect_servers()
    assert runner.address is not None
    with Client(runner.address) as client:
        workers = set(client.run(os.getpid).values())
    assert len(workers) == 2 and os.getpid() not in workers

    state = over_groups.with_options(task_runner=runner)(6, return_state=True)
    seen = state.result()
    assert {pid for pid, _ in seen} <= workers
    assert {url for _, url in seen} == {prefect_harness}
    # The one API holds every task run (it records states from events: give it a moment).
    runs_of_flow = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    deadline = time.monotonic() + 30
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=runs_of_flow)
        done = [run for run in runs if run.state is not None and run.state.is_completed()]
        if len(done) == 6 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(done) == 6
    assert _prefect_servers() == servers  # no worker started a Prefect server


@flow(persist_result=False)
def slots() -> int:
    return task_slots(7)


def test_a_flow_on_dask_runs_as_many_tasks_at_once_as_the_workers_have_threads(
    runner: DaskTaskRunner,
) -> None:
    assert slots() == 7  # the default: not on Dask
    assert slots.with_options(task_runner=runner)() == 2


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
