"""Does a pass's memory grow with the inbox? RSS of the process tree over one pass per inbox.

Run: `.venv/bin/python bench/pass_memory.py INBOX [INBOX ...] [--baseline PYTHON] [--rounds 1]`

For each inbox (e.g. /tmp/s15/in25k and /tmp/s15/in50k, or a set made by
`bench/generate_corpus.py --cables 100000 --seed 6 --out DIR`), one `ingest_flow` pass
(validation on) into a new lake, in a child process of its own with Prefect's temporary
server (PREFECT_HOME in a temporary folder; nothing is left running):

- the RSS of the child and its children (a process pool of the task runner counts; the
  temporary Prefect server does not), sampled every 0.2 s by this process: the peak,
  the RSS right after discovery, and the RSS after each tenth of the batches;
- inside the child, at the pass's end (just before the quality report): how many
  entries Prefect keeps in the flow run's `run_results` (one per linked task result
  and per element of it), and the live objects of the project's per-file types
  (`InboxFile`, `LoadedFile`, ...) still held;
- the child's own peak RSS (getrusage), the flow's seconds, files, batches;
- the CPU seconds of the child and of every process it waited for (its worker processes,
  and its temporary Prefect server, the same for every variant).

`--env-variant NAME=VALUE` (repeatable): the same passes also by this code with that
environment variable, interleaved alike (e.g. MALLOC_ARENA_MAX=16: glibc's own default on
2 cores, where the CLI now caps it at 2; ARROW_DEFAULT_MEMORY_POOL=mimalloc: pyarrow's own
default, where the CLI now puts Arrow on the system allocator; flows/memory.py).

`--baseline PYTHON`: the same passes also with another install's interpreter (e.g. the
venv of a worktree of `main`), interleaved with this one per inbox and round, so that
"before" and "after" see the same machine load. The ratio largest / smallest inbox of
the peak tree RSS is printed per interpreter (issue 15's target: < 1.2 from 25k to 251k
cables). The 1-minute load average is printed beside every pass (the machine is shared).

Output: a table on stdout and `bench/out/pass_memory.json`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# The project's types that exist once per inbox file: none should outlive its group.
PER_FILE_TYPES = ("InboxFile", "LoadedFile", "ClaimedFile", "Candidate", "SourceBytes")
MARK = "PASS-MEMORY "  # the child's report lines on stdout


def _say(kind: str, **details: Any) -> None:
    print(MARK + json.dumps({"kind": kind, "t": time.monotonic(), **details}), flush=True)


def child(inbox: str, lake: str) -> None:
    """One pass in this process; reports on stdout (run by `main` with --child)."""
    from cablestream.flows.commands import prepare_prefect

    prepare_prefect()
    from prefect.context import FlowRunContext

    from cablestream.flows import ingest

    def listen(event: str, details: dict[str, Any]) -> None:
        _say(event, **details)

    ingest.add_progress_listener(listen)
    report = ingest.report_task

    # What the flow still holds once every group is committed: looked at from inside
    # the flow run, just before its last task (the quality report).
    def report_after_count(*args: Any, **kwargs: Any) -> Any:
        import psutil
        import pyarrow as pa

        from cablestream.tasks.lake import reader

        context = FlowRunContext.get()
        gc.collect()
        alive = Counter(type(item).__name__ for item in gc.get_objects())
        index = [table for files in reader._REFERENCE_INDEX.values() for table in files.values()]
        _say(
            "held",
            run_results=len(context.run_results) if context else None,
            per_file_objects={name: alive[name] for name in PER_FILE_TYPES},
            most_common=alive.most_common(8),
            arrow_pool_mb=round(pa.total_allocated_bytes() / 2**20, 1),
            reference_index={
                "files": len(index),
                "mb": round(sum(table.nbytes for table in index) / 2**20, 1),
            },
            rss_now_mb=round(psutil.Process().memory_info().rss / 2**20, 1),
        )
        return report(*args, **kwargs)

    ingest.report_task = report_after_count
    result = ingest.ingest_flow(inbox=inbox, lake=lake, settle_seconds=0)
    _say(
        "done",
        files=result["files"],
        batches=result["batches"],
        cables=result["cables"],
        seconds=result["seconds"],
        own_peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def _tree_rss(pid: int) -> int:
    """RSS of a process and its descendants, without a Prefect server among them."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            command = " ".join(process.cmdline())
            if "uvicorn" in command or "prefect.server" in command or " server start" in command:
                continue
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def one_pass(python: str, inbox: Path, work: Path, extra_env: dict[str, str]) -> dict[str, Any]:
    """A pass of `inbox` by `python` in a child process, its tree sampled from here."""
    lake = Path(tempfile.mkdtemp(prefix="lake-", dir=work))
    home = Path(tempfile.mkdtemp(prefix="prefect-", dir=work))
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "CABLESTREAM_HOME": str(home),
        **extra_env,
    }
    env.pop("PREFECT_API_URL", None)
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(
        [python, __file__, "--child", str(inbox), str(lake)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    samples: list[tuple[float, int]] = []
    finished = threading.Event()

    def sample() -> None:
        while not finished.wait(0.2):
            samples.append((time.monotonic(), _tree_rss(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    events: list[dict[str, Any]] = []
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(MARK):
            events.append(json.loads(line[len(MARK) :]))
    code = process.wait()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished.set()
    sampler.join()
    if code != 0:
        raise RuntimeError(f"pass of {inbox} by {python} exited {code}")
    cpu_s = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
    return {**_summary(events, samples, started, load_before), "cpu_s": round(cpu_s, 1)}


def _summary(
    events: list[dict[str, Any]],
    samples: list[tuple[float, int]],
    started: float,
    load_before: float,
) -> dict[str, Any]:
    def rss_at(moment: float) -> float:
        before = [rss for at, rss in samples if at <= moment]
        return round((before[-1] if before else 0) / 2**20, 1)

    (done,) = [e for e in events if e["kind"] == "done"]
    discovered = [e for e in events if e["kind"] == "discovered"]
    batches = [e for e in events if e["kind"] == "batch"]
    held = [e for e in events if e["kind"] == "held"]
    tenths = [batches[max(0, round(len(batches) * k / 10) - 1)] for k in range(1, 11)]
    return {
        "files": done["files"],
        "batches": done["batches"],
        "cables": done["cables"],
        "flow_s": round(done["seconds"], 1),
        "wall_s": round(done["t"] - started, 1),
        "peak_tree_rss_mb": round(max(rss for _, rss in samples) / 2**20, 1),
        "peak_child_rss_mb": round(done["own_peak_mb"], 1),
        "rss_after_discovery_mb": rss_at(discovered[0]["t"]) if discovered else None,
        "rss_by_tenth_of_batches_mb": [rss_at(e["t"]) for e in tenths] if batches else [],
        "held_at_end": held[0] if held else None,
        "load_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inboxes", nargs="*", type=Path)
    parser.add_argument("--baseline", help="another install's python, measured alike")
    parser.add_argument(
        "--env-variant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also run this code with this environment variable (e.g. MALLOC_ARENA_MAX=2)",
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("INBOX", "LAKE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    variants: dict[str, tuple[str, dict[str, str]]] = {"this": (sys.executable, {})}
    if args.baseline:
        variants["baseline"] = (args.baseline, {})
    for setting in args.env_variant:
        name, value = setting.split("=", 1)
        variants[setting] = (sys.executable, {name: value})
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pass-memory-") as tmp:
        for round_number in range(args.rounds):
            for inbox in args.inboxes:
                for name, (python, extra_env) in variants.items():
                    run = {"code": name, "inbox": str(inbox), "round": round_number}
                    run.update(one_pass(python, inbox, Path(tmp), extra_env))
                    runs.append(run)
                    _print_run(run)
    report: dict[str, Any] = {"runs": runs, "growth": {}}
    for name in variants:
        peaks = {r["files"]: r["peak_tree_rss_mb"] for r in runs if r["code"] == name}
        if len(peaks) > 1:
            ratio = round(peaks[max(peaks)] / peaks[min(peaks)], 2)
            report["growth"][name] = ratio
            print(f"{name}: peak tree RSS, most files / fewest files = {ratio}")
    out = REPO_ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pass_memory.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _print_run(run: dict[str, Any]) -> None:
    held = run["held_at_end"] or {}
    print(
        f"{run['code']:8.20} {Path(run['inbox']).name:8} files {run['files']:7,} "
        f"batches {run['batches']:4} flow {run['flow_s']:6.1f} s CPU {run['cpu_s']:6.1f} s  "
        f"peak tree {run['peak_tree_rss_mb']:7.1f} MB (child {run['peak_child_rss_mb']:.1f}), "
        f"after discovery {run['rss_after_discovery_mb']} MB, "
        f"run_results {held.get('run_results')}, load {run['load_before_after']}",
        flush=True,
    )
    print(f"         RSS by tenth of the batches: {run['rss_by_tenth_of_batches_mb']}")
    print(f"         per-file objects held at the end: {held.get('per_file_objects')}")
    print(
        f"         at the end: RSS {held.get('rss_now_mb')} MB, Arrow pool "
        f"{held.get('arrow_pool_mb')} MB, reference index {held.get('reference_index')}"
    )


if __name__ == "__main__":
    sys.exit(main())
