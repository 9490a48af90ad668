"""Dask for the per-file-group work of a pass: `--dask ADDRESS` or `--dask local`.

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
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from prefect import Flow
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
    # Not imported: not a Dask runner (and no reason to pay for importing distributed).
    dask_runners = sys.modules.get("prefect_dask.task_runners")
    if context is None or dask_runners is None:
        return default
    if not isinstance(context.task_runner, dask_runners.DaskTaskRunner):
        return default
    threads: dict[str, int] = context.task_runner.client.nthreads()
    return sum(threads.values()) or default
