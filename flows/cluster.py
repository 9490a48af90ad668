"""Where a pass's file groups run: worker processes of this machine, or Dask.

Worker processes (the default for a pass of several groups on >= 2 cores;
`CABLESTREAM_GROUP_RUNNER`): Prefect's `ProcessPoolTaskRunner`, one spawned child
per core, started for the pass and ended with it. Each child imports Great
Expectations and pyarrow and builds the GE context once (`group.warm_up_process`),
then processes one group after another; the parse inside a child runs on the
child's share of the cores. A child reports its task runs to the flow's own
Prefect API (`report_to_the_flows_api`: also a temporary server's), never to a
server of its own. A pass of few groups, or `CABLESTREAM_GROUP_RUNNER=threads`,
runs them on the flow's threads (`regex` releases the GIL, nothing else much does).

Dask (`--dask ADDRESS` or `--dask local`):

prefect-dask's `DaskTaskRunner` sends the tasks a flow maps or submits to Dask
workers; what a flow calls directly (claim, route, commit) stays in the flow's
process. Every worker must report its task runs to the flow's Prefect API: a
worker process without `PREFECT_API_URL` starts a temporary Prefect server of
its own (DESIGN.md section 9) and may leave it behind. So:

- `local` starts a `distributed.LocalCluster` (one single-threaded worker
  process per core, 127.0.0.1 only, its HTTP server on a free port) once the API
  is chosen: its workers inherit `PREFECT_API_URL`; it is closed with the command;
- an address is a running scheduler: its workers are asked for their
  `PREFECT_API_URL`, and a cluster whose workers use another API (or none) is
  refused in one line, as is one that cannot be reached or has no workers.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.task_runners import ProcessPoolTaskRunner
    from prefect_dask.task_runners import DaskTaskRunner

P = ParamSpec("P")
R = TypeVar("R")

LOCAL = "local"
# `tcp://host:8786`, `tls://…` or a bare `host:port` (Dask's own address forms).
ADDRESS = re.compile(r"^((tcp|tls|ucx|ws|wss)://)?[\w.\-\[\]:]+:\d+$")
CONNECT_TIMEOUT_SECONDS = 10


class DaskUnavailable(RuntimeError):
    """The Dask cluster cannot run a pass's tasks; the message is one line for the user."""


@contextmanager
def dask_task_runner(dask: str, local_workers: int | None = None) -> Iterator[DaskTaskRunner]:
    """A task runner on the cluster `dask` names (see the module docstring); `local`
    starts `local_workers` worker processes (default: one per core).

    PREFECT_API_URL must be set (the CLI sets it when it connects to Prefect).
    """
    from distributed import LocalCluster
    from prefect_dask.task_runners import DaskTaskRunner

    api_url = os.environ["PREFECT_API_URL"]
    if dask != LOCAL:
        check_workers(dask, api_url)
        yield DaskTaskRunner(address=dask)
        return
    with LocalCluster(  # type: ignore[no-untyped-call]  # distributed is not annotated
        n_workers=local_workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # The scheduler serves HTTP whatever this says; None asks for port 8787 and warns
        # when another program holds it. Any free port: no warning.
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        check_workers(cluster.scheduler_address, api_url)
        yield DaskTaskRunner(address=cluster.scheduler_address)


def check_workers(address: str, api_url: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """The scheduler at `address` answers within `timeout` seconds and its workers all
    report to `api_url`."""
    from distributed import Client

    try:
        with Client(address, timeout=timeout) as client:  # type: ignore[no-untyped-call]
            seen: dict[str, str | None] = client.run(os.environ.get, "PREFECT_API_URL")
    except OSError as error:
        reason = " ".join(str(error).split())
        raise DaskUnavailable(f"dask scheduler {address}: {reason}") from None
    if not seen:
        raise DaskUnavailable(f"dask scheduler {address} has no workers")
    wrong = sorted(worker for worker, url in seen.items() if url != api_url)
    if wrong:
        raise DaskUnavailable(
            f"dask workers {', '.join(wrong)} report to another Prefect API, or to none "
            f"(each would start its own server): start them with PREFECT_API_URL={api_url}"
        )


@contextmanager
def on_dask(flow: Flow[P, R], dask: str | None) -> Iterator[Flow[P, R]]:
    """The flow as it is (`dask` None), or with a Dask task runner on that cluster
    while the block runs (a `local` cluster is closed when it ends)."""
    if dask is None:
        yield flow
        return
    with dask_task_runner(dask) as runner:
        # A DaskTaskRunner makes Dask futures: Prefect's type for a runner is invariant in them.
        yield flow.with_options(task_runner=runner)  # type: ignore[arg-type]


def task_slots(default: int) -> int:
    """How many tasks the running flow's task runner runs at once: the Dask workers'
    threads with a DaskTaskRunner, else `default`."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or not runs_on_dask():
        return default
    threads: dict[str, int] = context.task_runner.client.nthreads()  # type: ignore[attr-defined]
    return sum(threads.values()) or default


# --- worker processes of this machine ------------------------------------------------------

RUNNER_ENV = "CABLESTREAM_GROUP_RUNNER"
RUNNER_CHOICES = ("auto", "processes", "threads")
# A pass of fewer groups runs them on threads: a child's start (spawn, imports, the GE
# context: ~8-10 s of CPU each, bench/pass_cores.py) costs more than the second core gives
# back on a few groups of ~4-5 s of CPU each (3 groups: 0.71x the threads' cables/s).
PROCESSES_FROM_GROUPS = 8


class RunnerChoiceError(ValueError):
    """CABLESTREAM_GROUP_RUNNER names no runner; the message is one line for the user."""


def runner_choice() -> str:
    """`auto` (the default), `processes` or `threads`, from CABLESTREAM_GROUP_RUNNER."""
    choice = os.environ.get(RUNNER_ENV, "auto").strip().lower() or "auto"
    if choice not in RUNNER_CHOICES:
        raise RunnerChoiceError(
            f"{RUNNER_ENV}={os.environ[RUNNER_ENV]!r}: use one of {', '.join(RUNNER_CHOICES)}"
        )
    return choice


def group_processes(groups: int, cores: int | None = None) -> int:
    """How many worker processes a pass of `groups` file groups runs them in; 0: on the
    flow's own task runner (threads, or the Dask cluster it was given).

    `auto`: one per core (at most one per group) when the machine has >= 2 cores and
    the pass >= PROCESSES_FROM_GROUPS groups; `processes`: always (even 1 core);
    `threads`: never.
    """
    choice = runner_choice()
    cores = cores or os.cpu_count() or 1
    if choice == "threads" or groups == 0 or runs_on_dask():
        return 0
    if choice == "auto" and (cores < 2 or groups < PROCESSES_FROM_GROUPS):
        return 0
    return min(cores, groups)


def process_task_runner(processes: int) -> ProcessPoolTaskRunner:
    """Prefect's process pool of `processes` spawned children, each started by
    `start_worker_process`."""
    from prefect.task_runners import ProcessPoolTaskRunner

    return ProcessPoolTaskRunner(max_workers=processes, initializer=start_worker_process)


def start_worker_process() -> None:
    """Once in each worker process, before its first group.

    Ctrl-C reaches the terminal's whole process group: the flow's process decides
    (a watch finishes its pass, a one-shot pass undoes its batches once the children
    have finished their groups), so a child ignores SIGINT rather than die mid-group.
    """
    from cablestream.tasks.batch.group import warm_up_process

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up_process()


@contextmanager
def report_to_the_flows_api() -> Iterator[None]:
    """Settings naming the API the running flow reports to, while a task is submitted.

    A child process gets the flow's settings and environment with each task
    (serialized by Prefect at submit); a flow on a temporary server has no
    PREFECT_API_URL in them, and its children would each start a server of their
    own (DESIGN.md section 9): this names the flow's server, temporary or not.
    """
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL, temporary_settings

    context = FlowRunContext.get()
    assert context is not None, "tasks are submitted inside a flow run"
    with temporary_settings({PREFECT_API_URL: str(context.client.api_url).rstrip("/")}):
        yield


def runs_on_dask() -> bool:
    """Whether the running flow's task runner is a DaskTaskRunner."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    # Not imported: not a Dask runner (and no reason to pay for importing distributed).
    dask_runners = sys.modules.get("prefect_dask.task_runners")
    if context is None or dask_runners is None:
        return False
    return isinstance(context.task_runner, dask_runners.DaskTaskRunner)
