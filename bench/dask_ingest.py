"""A pass on Dask workers against the same pass in one process: same lake rows, cables/s of both.

    .venv/bin/python bench/dask_ingest.py                      # corpus-bulk, --dask local
    .venv/bin/python bench/dask_ingest.py --files 500 --rounds 1
    .venv/bin/python bench/dask_ingest.py --dask tcp://127.0.0.1:8786   # a running cluster

Starts its own Prefect server (one API for the CLI and every Dask worker). Each
round runs `cablestream ingest --json` over a copy of ../shared/corpus-bulk
(validation on, as a user runs it) twice, each into a new lake: in one process
(the flow's thread pool), then with `--dask` (default `local`: a
`distributed.LocalCluster` of one worker process per core, started and closed by
the CLI). The lakes must hold the same rows: count, distinct record_id, and a
SHA-256 of the sorted record_ids. Figures per run: flow time (the pass, from the
summary), wall time of the whole command (Prefect client start, the cluster's
start and close for `local`), cables/s over each; and the processes each command
left behind (any process that still carries the run's marker variable once the
command has exited: a Prefect server a Dask worker started, a worker): must be none. Prints a table; bench/out/dask_ingest.json
keeps the figures. The CI-sized forms are in tests/flows/test_cluster.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import release_run  # bench/, beside this script: busy seconds per task of a flow run

from cablestream.tasks.lake.reader import lake_record_ids

BENCH = Path(__file__).resolve().parent
BULK = BENCH.parent / ".." / "shared" / "corpus-bulk" / "files"
OUT = BENCH / "out" / "dask_ingest.json"
CLI = [sys.executable, "-m", "cablestream.flows.cli"]


def lake_figures(lake: Path) -> dict[str, Any]:
    ids = sorted(lake_record_ids(lake))
    return {
        "rows": len(ids),
        "distinct_record_ids": len(set(ids)),
        "sorted_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
    }


MARKER = "CABLESTREAM_DASK_BENCH_RUN"


def left_behind(run: str) -> list[str]:
    """Processes that inherited the run's marker (its command, and what that started)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if process.environ().get(MARKER) == run:
                found.append(" ".join(process.info["cmdline"] or [])[:200])
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def one_run(inbox: Path, lake: Path, dask: str | None, env: dict[str, str]) -> dict[str, Any]:
    command = [*CLI, "ingest", "--inbox", str(inbox), "--lake", str(lake)]
    command += ["--settle-seconds", "0", "--json"]
    if dask is not None:
        command += ["--dask", dask]
    run = f"{lake.name}-{os.getpid()}"
    started = time.perf_counter()
    done = subprocess.run(
        command, env={**env, MARKER: run}, capture_output=True, text=True, timeout=3600
    )
    wall = time.perf_counter() - started
    time.sleep(1)  # a process that is on its way out is not left behind
    if done.returncode not in (0, 3):  # 3: written, but some rule failed or a batch held
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    cables = int(summary["cables"])
    flow = float(summary["seconds"])
    return {
        "cables": cables,
        "flow_seconds": round(flow, 2),
        "wall_seconds": round(wall, 2),
        "cables_per_second_flow": round(cables / flow, 1),
        "cables_per_second_wall": round(cables / wall, 1),
        "left_behind": left_behind(run),
        # Claim and commit run in the flow's process, one group after the other: the part
        # more workers do not shorten (process-group is what they share out).
        "busy_seconds": release_run._stage_seconds(summary["flow_run_url"].rsplit("/", 1)[1]),
        **lake_figures(lake),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=0, help="first N files (0: all)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dask", default="local", help="local, or a scheduler's address")
    options = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    root = Path(tempfile.mkdtemp(prefix="cablestream-dask-bench-"))
    inbox = root / "inbox"
    inbox.mkdir()
    files = sorted(BULK.iterdir())
    for path in files[: options.files or len(files)]:
        shutil.copy(path, inbox / path.name)
    runs: list[dict[str, Any]] = []
    load_at_start = os.getloadavg()
    with prefect_test_harness(server_startup_timeout=120):
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
        for round_number in range(options.rounds):
            for mode in ("local", "dask"):
                lake = root / f"lake-{mode}-{round_number}"
                run = one_run(inbox, lake, options.dask if mode == "dask" else None, env)
                runs.append({"mode": mode, "round": round_number, **run})
                shutil.rmtree(lake)
                print(json.dumps(runs[-1]), flush=True)
    load_at_end = os.getloadavg()
    same = len({(r["rows"], r["distinct_record_ids"], r["sorted_ids_sha256"]) for r in runs}) == 1
    best = {
        mode: max(r["cables_per_second_flow"] for r in runs if r["mode"] == mode)
        for mode in ("local", "dask")
    }
    figures = {
        "files": len(list(inbox.iterdir())),
        "dask": options.dask,
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in load_at_end],
        "same_rows_in_every_lake": same,
        "best_cables_per_second_flow": best,
        "dask_over_local": round(best["dask"] / best["local"], 2),
        "processes_left_behind": sum(len(r["left_behind"]) for r in runs),
        "runs": runs,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2))
    print("| figure | value |\n|---|---|")
    for name, value in figures.items():
        if name != "runs":
            print(f"| {name} | {value} |")
    shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if same and not figures["processes_left_behind"] else 1)


if __name__ == "__main__":
    main()
