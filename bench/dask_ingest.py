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
start and close for `local`), cables/s over each; and that no Prefect server
but the bench's own was left running. Prints a table; bench/out/dask_ingest.json
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


def prefect_servers() -> set[int]:
    """Pids of Prefect servers on this machine (any user, any parent)."""
    found = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if "prefect" in line and ("server start" in line or "prefect.server.api" in line):
            found.add(int(process.info["pid"]))
    return found


def one_run(inbox: Path, lake: Path, dask: str | None, env: dict[str, str]) -> dict[str, Any]:
    command = [*CLI, "ingest", "--inbox", str(inbox), "--lake", str(lake)]
    command += ["--settle-seconds", "0", "--json"]
    if dask is not None:
        command += ["--dask", dask]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
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
    before = prefect_servers()
    runs: list[dict[str, Any]] = []
    with prefect_test_harness(server_startup_timeout=120):
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
        ours = prefect_servers() - before
        for round_number in range(options.rounds):
            for mode in ("local", "dask"):
                lake = root / f"lake-{mode}-{round_number}"
                run = one_run(inbox, lake, options.dask if mode == "dask" else None, env)
                run["left_prefect_servers"] = len(prefect_servers() - before - ours)
                runs.append({"mode": mode, "round": round_number, **run})
                shutil.rmtree(lake)
                print(json.dumps(runs[-1]), flush=True)
    load = os.getloadavg()
    same = len({(r["rows"], r["distinct_record_ids"], r["sorted_ids_sha256"]) for r in runs}) == 1
    best = {
        mode: max(r["cables_per_second_flow"] for r in runs if r["mode"] == mode)
        for mode in ("local", "dask")
    }
    figures = {
        "files": len(list(inbox.iterdir())),
        "dask": options.dask,
        "cores": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in load],
        "same_rows_in_every_lake": same,
        "best_cables_per_second_flow": best,
        "dask_over_local": round(best["dask"] / best["local"], 2),
        "orphan_prefect_servers": max(r["left_prefect_servers"] for r in runs),
        "runs": runs,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2))
    print("| figure | value |\n|---|---|")
    for name, value in figures.items():
        if name != "runs":
            print(f"| {name} | {value} |")
    shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if same and not figures["orphan_prefect_servers"] else 1)


if __name__ == "__main__":
    main()
