"""The warm worker: a Prefect task worker that runs `cablestream ingest` passes pre-warmed.

A one-shot `cablestream ingest` of one new file spends most of its time starting
up, not ingesting: importing Great Expectations and building its context (2-6 s),
Prefect (1-2 s), pyarrow and the flow module; the pass itself then takes about
1 s. `cablestream server start` therefore starts this process next to the local
server (`python -m cablestream.flows.worker`, see `flows/server.py`): it imports
all of that and builds the GE context once, then serves `run_pass` with
`prefect.task_worker.serve` (Prefect background tasks). The CLI submits its pass
with `run_pass.delay(...)` and waits for the result; when no worker is ready it
runs the pass in its own process, as before (`flows/commands.py`).

The pass is the same `ingest_flow` (a flow run of its own, nested in the task
run), so the ledger protocol and its exactly-once meaning are unchanged. One pass
runs at a time (`limit=1`): a second CLI's pass waits for the first, and the
pass sees the submitting CLI's `CABLESTREAM_*` environment (swapped in for its
duration). Parameters and results go through Prefect's local result storage,
which the worker and the CLI share (`PREFECT_RESULTS_LOCAL_STORAGE_PATH`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE

ENV_PREFIX = "CABLESTREAM_"


@contextmanager
def _cablestream_environment(environment: dict[str, str]) -> Iterator[None]:
    """The submitting CLI's `CABLESTREAM_*` variables for one pass (one pass at a time)."""
    saved = {key: value for key, value in os.environ.items() if key.startswith(ENV_PREFIX)}
    for key in saved:
        del os.environ[key]
    os.environ.update(environment)
    try:
        yield
    finally:
        for key in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
            del os.environ[key]
        os.environ.update(saved)


# persist_result: the CLI reads the summary from the shared result storage.
# cache_policy NONE: the same options must run a new pass every time, never a cached one.
@task(name="cablestream-ingest-pass", persist_result=True, cache_policy=NONE)
def run_pass(options: dict[str, Any], environment: dict[str, str]) -> dict[str, Any]:
    """One `ingest_flow` pass with the CLI's resolved options; its summary and flow run id."""
    from cablestream.flows.ingest import ingest_flow

    with _cablestream_environment(environment):
        state = ingest_flow(**options, return_state=True)
        summary: dict[str, Any] = state.result()  # the flow's own error, if it failed
    return {"summary": summary, "flow_run_id": str(state.state_details.flow_run_id)}


def _exit_with_the_server(server_pid: int) -> None:
    """Stop when the server this worker belongs to is gone (never an orphan)."""
    from cablestream.tasks.ledger.sql import pid_alive

    while pid_alive(server_pid):
        time.sleep(1.0)
    print("the Prefect server is gone; the warm worker stops", flush=True)
    os._exit(0)


def main() -> None:
    """Run as `main()` with SERVER_PID READY_FILE as arguments (started by flows/server.py).

    Prefect's settings (API URL, result storage, logging) come from the environment
    the server module gives this process: Prefect is imported with this module.
    """
    server_pid_text, ready_file = sys.argv[1:]
    from cablestream.flows.server import code_fingerprint

    started = time.perf_counter()
    fingerprint = code_fingerprint()  # the code as it is now, before it is imported
    # Everything a pass needs, imported and built before the worker says it is ready.
    import cablestream.flows.dashboard
    import cablestream.flows.ingest  # noqa: F401
    from cablestream.tasks.quality.engine import warm_up_in_background

    warm_up_in_background().join()
    from prefect.task_worker import serve

    threading.Thread(
        target=_exit_with_the_server,
        args=(int(server_pid_text),),
        name="cablestream-server-watch",
        daemon=True,
    ).start()
    Path(ready_file).write_text(fingerprint + "\n", encoding="ascii")
    print(f"warm worker ready in {time.perf_counter() - started:.1f} s", flush=True)
    serve(run_pass, limit=1)
