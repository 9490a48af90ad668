"""CPU seconds a file group costs where it is processed: this tree against a baseline tree.

Run: `.venv/bin/python bench/group_cost.py --inbox /tmp/s15/in5k --baseline ../main
[--groups 3] [--out DIR]`

The inbox's first `--groups` groups (2,000 files each, as a pass plans them) are claimed
once into a scratch ledger. Two worker processes, one running the baseline checkout's
code (its own .venv) and one this tree's, then process the same groups, each into its
own lake, taking turns (the baseline first on even groups, this tree first on odd
ones). Each runs the `process-group` task through Prefect's task engine, outside a
flow, against one local Prefect server the bench starts (and stops), and reports the
CPU seconds (user+sys of its process, all threads) of each group:

- baseline: the job handed to the engine as it is (the way a worker process gets it on
  a baseline pass); its Data Docs as the baseline builds them;
- this tree: the job quoted as `flows/ingest.py` hands it on (a worker process gets it
  quoted once); after the last group, the Data Docs index, built once per pass by this
  tree, is timed too and spread over the groups.

The flow's share of a submit is timed here too: Prefect's process pool resolves the
parameters in the flow's process (`resolve_inputs_sync`) and pickles them, for the job
as it is and quoted twice (as `_group_runner` submits it).

A worker's first group pays for imports and warm-ups the other has paid too; every
group is shown, and the mean is taken over the groups after the first.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[1]

# Runs in each worker process, from the tree it measures: one line per command on stdin
# ("group I", "index", "quit"), one JSON line back.
WORKER = r"""
import json, pickle, resource, sys, dataclasses
from pathlib import Path

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

jobs = pickle.loads(Path(sys.argv[1]).read_bytes())
lake, quoted = sys.argv[2], sys.argv[3] == "quoted"
from cablestream.tasks.batch import group
group.warm_up_process()
from cablestream.flows import ingest
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    command = line.split()
    began = cpu()
    if command[0] == "group":
        job = dataclasses.replace(jobs[int(command[1])], lake=lake)
        staged = ingest.process_group_task(job=ingest._opaque(job) if quoted else job)
        done = {"rows": staged.rows_written}
    elif command[0] == "index":
        from cablestream.tasks.quality.engine import build_docs_index
        build_docs_index(Path(lake))
        done = {}
    else:
        break
    print(json.dumps({"cpu": cpu() - began, **done}), flush=True)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def claim_groups(inbox: Path, work: Path, groups: int) -> list[Any]:
    """The inbox's first `groups` groups, claimed (names and hashes) as a pass does."""
    from cablestream.flows import defaults
    from cablestream.tasks.batch import claim, group
    from cablestream.tasks.inbox.settle import ready_in_one_scan
    from cablestream.tasks.ledger.sqlite import open_ledger

    claims = work / "claims"
    claims.mkdir()
    ledger = open_ledger(claims)
    ready = ready_in_one_scan(claim.scan_fresh(inbox, ledger), 0)
    plan = claim.plan_pass(
        inbox,
        ready,
        defaults.MAX_FILES_PER_BATCH,
        defaults.MAX_BATCH_BYTES,
        defaults.MAX_FILE_BYTES,
    )
    jobs = []
    for files in plan.groups():
        if len(jobs) == groups:
            break
        batch = claim.read_and_claim(
            inbox, files, ledger, claim.new_batch_id(), defaults.MAX_FILE_BYTES, keep_bytes=False
        )
        jobs.append(group.GroupJob(str(inbox), "", batch, defaults.MAX_FILE_BYTES, parse_workers=1))
    return jobs


def flow_side_submit(jobs: list[Any]) -> dict[str, float]:
    """CPU seconds per group the process pool spends in the flow's process on a job's
    parameters (resolve, then pickle): the job as it is, and quoted twice."""
    import cloudpickle  # type: ignore[import-untyped]
    from prefect.utilities.engine import resolve_inputs_sync

    from cablestream.flows.ingest import _opaque

    def cost(wrap: Any) -> float:
        began = time.process_time()
        for job in jobs:
            resolved = resolve_inputs_sync({"job": wrap(job)}, return_data=True, max_depth=-1)
            cloudpickle.dumps(resolved)
        return (time.process_time() - began) / len(jobs)

    return {
        "as it is": cost(lambda job: job),
        "quoted twice": cost(lambda job: _opaque(_opaque(job))),
    }


class Worker:
    def __init__(self, python: Path, jobs: Path, lake: Path, quoted: bool, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [str(python), "-c", WORKER, str(jobs), str(lake), "quoted" if quoted else "plain"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.ask_nothing()

    def _stdin(self) -> IO[str]:
        assert self.process.stdin is not None
        return self.process.stdin

    def ask_nothing(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a worker ended early (its errors are above)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, command: str) -> dict[str, Any]:
        self._stdin().write(command + "\n")
        self._stdin().flush()
        return self.ask_nothing()

    def close(self) -> None:
        self._stdin().write("quit\n")
        self._stdin().close()
        self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout with a .venv")
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()

    from cablestream.flows import server

    work = Path(tempfile.mkdtemp(prefix="group-cost-", dir=args.out))
    try:
        os.environ.update(
            CABLESTREAM_HOME=str(work / "home"),
            CABLESTREAM_SERVER_PORT=str(_free_port()),
            PREFECT_HOME=str(work / "home" / "prefect"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="WARNING",
        )
        os.environ[server.WORKER_ENV] = "off"
        os.environ["PREFECT_API_URL"] = server.start().url
        try:
            jobs = claim_groups(args.inbox.resolve(), work, args.groups)
            flow_side = flow_side_submit(jobs)
            jobs_file = work / "jobs.pickle"
            jobs_file.write_bytes(pickle.dumps(jobs))
            sides = {
                "baseline": Worker(
                    args.baseline.resolve() / ".venv" / "bin" / "python",
                    jobs_file,
                    work / "lake-baseline",
                    quoted=False,
                    cwd=args.baseline.resolve(),
                ),
                "this tree": Worker(
                    REPO_ROOT / ".venv" / "bin" / "python",
                    jobs_file,
                    work / "lake-this",
                    quoted=True,
                    cwd=REPO_ROOT,
                ),
            }
            cpu: dict[str, list[float]] = {side: [] for side in sides}
            for number in range(len(jobs)):
                order = list(sides) if number % 2 == 0 else list(reversed(sides))
                for side in order:
                    cpu[side].append(sides[side].ask(f"group {number}")["cpu"])
            index = sides["this tree"].ask("index")["cpu"]
            for worker in sides.values():
                worker.close()
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"inbox {args.inbox}, {len(jobs)} groups of <= 2,000 files; load {os.getloadavg()}")
    print("CPU s per group in the worker (first group includes first-use costs):")
    for side, seconds in cpu.items():
        print(f"  {side:10s} " + "  ".join(f"{value:6.2f}" for value in seconds))
    later = {side: statistics.mean(values[1:] or values) for side, values in cpu.items()}
    spread = index / len(jobs)
    print(f"  this tree: Data Docs index once at the end {index:.2f} s ({spread:.3f} s a group)")
    before, after = later["baseline"], later["this tree"] + spread
    print(
        f"mean after the first: baseline {before:.3f} s, this tree {after:.3f} s "
        f"(index included): {before - after:+.3f} s a group, ratio {before / after:.2f}"
    )
    print("flow's process, per submit to the process pool (resolve + pickle the job):")
    for how, seconds in flow_side.items():
        print(f"  {how:13s} {seconds * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
