"""What the flow's own steps cost (discovery, claim, snapshot): this tree against a baseline tree.

Run: `.venv/bin/python bench/flow_cost.py --inbox /tmp/s15/in25k --baseline ../main
[--groups 3] [--lake-files 10000] [--rounds 2] [--out DIR]`

The flow's process discovers, claims and snapshots while the worker processes parse:
whatever it spends is taken from them. Each step is run by a fresh process of each
tree (its own .venv), taking turns, and timed there (CPU: user+sys of the process;
wall: `perf_counter`); the machine's 1-minute load is printed beside each round.

- discover: `scan_fresh` + `plan_pass` over the inbox, as `discover_task` runs them,
  with the inbox's pages dropped from the page cache first (`posix_fadvise
  DONTNEED` on each file: a release-size inbox is not in the cache when its pass
  starts; the next reader of those files reads them from disk again), then once more
  warm; and, as the floor, the scan alone;
- claim: making the inbox's first `--groups` groups (2,000 files each) from the plan and
  `read_and_claim` of each into a scratch ledger, warm, in microseconds per file (a tree
  that sizes gzip files when a group is made pays for it here, one that sizes them at
  discovery in the step above); the floor is sha256 of the same bytes already in memory;
- snapshot: `refresh_snapshot` of a lake of `--lake-files` empty data files, after 100
  more are added (as after a commit), in seconds.

Printed: a table per step (baseline, this tree, this tree / baseline); the JSON goes to
`--out` (default bench/out/flow_cost.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
GROUP_FILES = 2_000
MAX_FILE_BYTES = 64 * 2**20

# Run by each tree's Python: one step, one JSON line out.
STEP = r"""
import hashlib, json, os, resource, shutil, sys, time
from pathlib import Path

step, inbox, work, groups, lake_files, group_files = sys.argv[1:7]
inbox, work, groups, lake_files = Path(inbox), Path(work), int(groups), int(lake_files)
group_files = int(group_files)
MAX = 64 * 2**20

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def timed(run):
    cpu0, wall0 = cpu(), time.perf_counter()
    result = run()
    return result, cpu() - cpu0, time.perf_counter() - wall0

def drop_cache(root):
    for folder, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)

from cablestream.tasks.batch import claim
from cablestream.tasks.inbox.settle import ready_in_one_scan
from cablestream.tasks.inbox.store import read_file
from cablestream.tasks.lake.snapshot import refresh_snapshot
from cablestream.tasks.ledger.sqlite import SqliteLedger

shutil.rmtree(work, ignore_errors=True)
work.mkdir(parents=True)
out = {}
if step in ("discover", "claim"):
    ledger = SqliteLedger(work / "ledger.sqlite")
    def plan():
        ready = ready_in_one_scan(claim.scan_fresh(inbox, ledger), 0)
        return claim.plan_pass(inbox, ready, group_files, 2**40, MAX)
if step == "discover":
    drop_cache(inbox)
    files, out["scan_cpu_s"], out["scan_wall_s"] = timed(
        lambda: sum(1 for _ in claim.scan_fresh(inbox, ledger)))
    drop_cache(inbox)
    _, out["cold_cpu_s"], out["cold_wall_s"] = timed(plan)
    _, out["warm_cpu_s"], out["warm_wall_s"] = timed(plan)
    out["files"] = files
elif step == "claim":
    made = plan()
    chosen = [files for _, files in zip(range(groups), made.groups())]
    data = [read_file(inbox, item, MAX).data or b"" for files in chosen for item in files]
    _, floor_cpu, _ = timed(lambda: [hashlib.sha256(item).hexdigest() for item in data])
    def make_and_claim():
        for _, files in zip(range(groups), made.groups()):
            claim.read_and_claim(inbox, files, ledger, claim.new_batch_id(), MAX, keep_bytes=False)
    _, claim_cpu, _ = timed(make_and_claim)
    count = sum(len(files) for files in chosen)
    out.update(files=count, claim_us_per_file=1e6 * claim_cpu / count,
               sha256_us_per_file=1e6 * floor_cpu / count)
elif step == "snapshot":
    lake = work / "lake"
    names = []
    def add(count, tag):
        for number in range(count):
            n = len(names)
            relative = f"year={1966 + n % 45}/month={1 + n % 12}/part-{tag}-{number}.parquet"
            (lake / relative).parent.mkdir(parents=True, exist_ok=True)
            (lake / relative).touch()
            names.append(relative)
    add(lake_files, "base")
    refresh_snapshot(lake, lambda: set(names))
    add(100, "next")
    _, out["snapshot_cpu_s"], out["snapshot_wall_s"] = timed(
        lambda: refresh_snapshot(lake, lambda: set(names)))
    out["lake_files"] = len(names)
shutil.rmtree(work, ignore_errors=True)
shutil.rmtree(str(work) + ".cablestream", ignore_errors=True)
print(json.dumps(out))
"""

STEPS = ("discover", "claim", "snapshot")


def run_step(tree: Path, step: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One step in a fresh process of `tree` (its .venv, its code)."""
    command = [str(tree / ".venv" / "bin" / "python"), "-c", STEP, step, str(args.inbox)]
    command += [str(work / f"{step}-{tree.name}"), str(args.groups), str(args.lake_files)]
    command.append(str(GROUP_FILES))
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{tree} {step}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    result["load"] = round(os.getloadavg()[0], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout with .venv")
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--lake-files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    args = parser.parse_args()
    trees = {"baseline": args.baseline.resolve(), "this tree": REPO_ROOT}
    report: dict[str, Any] = {"inbox": str(args.inbox), "rounds": []}
    with tempfile.TemporaryDirectory(prefix="cablestream-flow-cost-") as tmp:
        for number in range(args.rounds):
            # Taking turns: the baseline first in even rounds, this tree first in odd ones.
            order = list(trees.items()) if number % 2 == 0 else list(trees.items())[::-1]
            round_ = {
                step: {name: run_step(tree, step, args, Path(tmp)) for name, tree in order}
                for step in STEPS
            }
            report["rounds"].append(round_)
            print_round(number, round_)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "flow_cost.json").write_text(json.dumps(report, indent=2) + "\n")


SHOWN = {
    "discover": ("files", "scan_wall_s", "cold_wall_s", "cold_cpu_s", "warm_wall_s", "warm_cpu_s"),
    "claim": ("files", "sha256_us_per_file", "claim_us_per_file"),
    "snapshot": ("lake_files", "snapshot_cpu_s", "snapshot_wall_s"),
}


def print_round(number: int, round_: dict[str, dict[str, dict[str, Any]]]) -> None:
    print(f"\nround {number + 1}")
    for step, results in round_.items():
        base, this = results["baseline"], results["this tree"]
        print(f"{step} (load {base['load']}, {this['load']})")
        print(f"  {'':22}{'baseline':>12}{'this tree':>12}{'ratio':>8}")
        for key in SHOWN[step]:
            ratio = this[key] / base[key] if base[key] else float("nan")
            print(f"  {key:22}{base[key]:>12.3f}{this[key]:>12.3f}{ratio:>8.2f}")


if __name__ == "__main__":
    sys.exit(main())
