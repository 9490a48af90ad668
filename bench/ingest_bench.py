"""End-to-end ingest throughput, Prefect's fixed cost, and watch latency (DESIGN.md section 8).

Run: `.venv/bin/python bench/ingest_bench.py [--files DIR] [--latency-files 15]`

What one run measures, each against something measured in the same run:

- I/O floor: read every file, decode it (gunzip, UTF-8 with replacement) and write its
  text as a one-column zstd Parquet file: the least any ingest of these files must do.
- steady ingest: `ingest_flow` in this process over a copy of the files, after a
  warm-up flow over two files has paid the fixed costs (temporary Prefect server,
  Great Expectations import); cables/s and MB/s from the flow's own time.
- one-shot CLI: `cablestream ingest` as a subprocess over a fresh copy (what a cron job
  pays), and over an empty inbox (it exits before starting Prefect). Prefect's own
  fixed cost: a subprocess that imports prefect and runs one empty flow, which starts
  the temporary server (no PREFECT_API_URL).
- fixed cost of ingesting one new file, side by side (target <= 5 s wall): the real
  `cablestream ingest` with the local server up and its pass in the warm worker
  (flows/worker.py), the same with CABLESTREAM_WORKER=off (the pass in the CLI's own
  process), and one `ingest_flow` run in a subprocess without PREFECT_API_URL
  (Prefect's temporary server); each with the venv's compiled bytecode, or without
  (`-X pycache_prefix` at an empty folder, with PYTHONDONTWRITEBYTECODE=1: every module
  compiled from source, as before `make install` compiled it).
  The bench starts its own local server and warm worker (CABLESTREAM_HOME in its
  temporary folder, a free port) and stops both at the end.
- watch latency: `cablestream watch` as a subprocess; files land one at a time
  (written under a `.part` name, renamed), either with a `NAME.done` marker or
  without (then the settle interval applies); latency = rename -> every record_id of
  the file readable from the lake's Parquet files (or its quarantine rows). p50/p95 per
  mode, arrivals `--gap` seconds apart (after the previous file is readable).

Output: a table on stdout and `bench/out/ingest_bench.json`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import release_run  # bench/, beside this script

from cablestream.flows import server
from cablestream.schemas import lake as layout

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = REPO_ROOT.parent / "shared" / "corpus" / "files"
SEEDS = REPO_ROOT.parent / "shared" / "seeds"
CLI = [sys.executable, "-m", "cablestream.flows.cli"]


def env() -> dict[str, str]:
    return {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def io_floor(files: list[Path], out: Path) -> float:
    started = time.perf_counter()
    texts = []
    for path in files:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        texts.append(data.decode("utf-8", errors="replace"))
    pq.write_table(pa.table({"text": texts}), out, compression="zstd")
    return time.perf_counter() - started


def steady_ingest(files_dir: Path, work: Path) -> dict[str, Any]:
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from cablestream.flows.commands import prepare_prefect

    prepare_prefect()
    started = time.perf_counter()
    from cablestream.flows.ingest import ingest_flow

    warm = work / "warm-inbox"
    warm.mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, warm / seed.name)
    ingest_flow(inbox=str(warm), lake=str(work / "warm-lake"), settle_seconds=0)
    fixed = time.perf_counter() - started
    inbox = work / "inbox"
    shutil.copytree(files_dir, inbox)
    result = ingest_flow(inbox=str(inbox), lake=str(work / "lake"), settle_seconds=0)
    seconds = float(result["seconds"])
    return {
        "warm_up_seconds": round(fixed, 2),
        "files": result["files"],
        "bytes": result["bytes"],
        "cables": result["cables"],
        "rows_written": result["rows_written"],
        "batches": result["batches"],
        "flow_seconds": round(seconds, 2),
        "cables_per_s": round(result["cables"] / seconds, 1),
        "mb_per_s": round(result["bytes"] / 1e6 / seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def one_shot(files_dir: Path | None, work: Path, name: str) -> dict[str, Any]:
    inbox = work / f"{name}-inbox"
    if files_dir is None:
        inbox.mkdir()
    else:
        shutil.copytree(files_dir, inbox)
    command = [*CLI, "ingest", "--inbox", str(inbox), "--lake", str(work / f"{name}-lake")]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--settle-seconds", "0"], env=env(), capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return {
        "wall_seconds": round(seconds, 2),
        "peak_rss_mb_largest_child": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "noise_lines": sum(
            1
            for line in done.stderr.splitlines()
            if "Error flushing" in line or "CancelledError" in line
        ),
    }


PREFECT_PROBE = """
import time
started = time.perf_counter()
from prefect import flow
imported = time.perf_counter()

@flow
def empty() -> None:
    pass

empty()
print(imported - started, time.perf_counter() - imported)
"""


ONE_FILE_PROBE = """
import sys, time
started = time.perf_counter()
from cablestream.flows.commands import prepare_prefect
prepare_prefect()
from cablestream.flows.ingest import ingest_flow
result = ingest_flow(inbox=sys.argv[1], lake=sys.argv[2], settle_seconds=0)
assert result["rows_written"] >= 1, result
print(time.perf_counter() - started, result["seconds"])
"""


def _one_new_file(work: Path, name: str) -> tuple[Path, Path]:
    inbox = work / f"{name}-inbox"
    inbox.mkdir()
    seed = sorted(SEEDS.glob("*.txt"))[0]
    (inbox / seed.name).write_bytes(seed.read_bytes())
    return inbox, work / f"{name}-lake"


# Where the pass of a one-shot run happens (rows of the fixed-cost table).
FIXED_COST_MODES = {
    "server_and_warm_worker": "`cablestream ingest`, local server up, pass in the warm worker",
    "server_only": "`cablestream ingest`, local server up, CABLESTREAM_WORKER=off (pass here)",
    "temporary_server": "one `ingest_flow` run, no PREFECT_API_URL (Prefect's temporary server)",
}


def _one_file_command(mode: str, inbox: Path, lake: Path, python: list[str]) -> list[str]:
    if mode == "temporary_server":
        return [*python, "-c", ONE_FILE_PROBE, str(inbox), str(lake)]
    cli = [*python, "-m", "cablestream.flows.cli", "ingest", "--inbox", str(inbox)]
    return [*cli, "--lake", str(lake), "--settle-seconds", "0", "--json"]


def fixed_cost(work: Path, server_url: str, rounds: int) -> dict[str, Any]:
    """One new file, one process: wall seconds per mode, with and without bytecode (medians).

    Without bytecode: `-X pycache_prefix` at an empty folder and PYTHONDONTWRITEBYTECODE=1,
    so the process compiles every module it imports from source (as before `make install`
    compiled them). The warm worker was compiled and warmed once, when it started.
    """
    no_cache = work / "empty-pycache"
    report: dict[str, Any] = {"rounds": rounds, "modes": FIXED_COST_MODES}
    for mode in FIXED_COST_MODES:
        for bytecode in ("bytecode", "no_bytecode"):
            walls, flows, ran_in = [], [], set()
            for index in range(rounds):
                inbox, lake = _one_new_file(work, f"{mode}-{bytecode}-{index}")
                probe = env()
                probe["PYTHONDONTWRITEBYTECODE"] = "1"
                probe[server.WORKER_ENV] = "on" if mode == "server_and_warm_worker" else "off"
                if mode == "temporary_server":
                    probe.pop("PREFECT_API_URL", None)
                python = [sys.executable]
                if bytecode == "no_bytecode":
                    shutil.rmtree(no_cache, ignore_errors=True)
                    no_cache.mkdir()
                    python += ["-X", f"pycache_prefix={no_cache}"]
                started = time.perf_counter()
                done = subprocess.run(
                    _one_file_command(mode, inbox, lake, python),
                    env=probe,
                    capture_output=True,
                    text=True,
                )
                walls.append(time.perf_counter() - started)
                if done.returncode != 0 or not done.stdout.strip():
                    raise RuntimeError(f"{mode}: exit {done.returncode}: {done.stderr[-3000:]}")
                if mode == "temporary_server":
                    flows.append(float(done.stdout.split()[-1]))
                else:
                    summary = json.loads(done.stdout)
                    flows.append(float(summary["seconds"]))
                    ran_in.add(summary["ran_in"])
            report[f"{mode}/{bytecode}"] = {
                "wall_s": round(statistics.median(walls), 2),
                "walls_s": [round(wall, 2) for wall in walls],
                "flow_s": round(statistics.median(flows), 2),
                "ran_in": sorted(ran_in) or ["this process"],
            }
    return report


def print_fixed_cost(report: dict[str, Any]) -> None:
    print(f"\nfixed cost of one new file, wall seconds (median of {report['rounds']}; flow time)")
    print(f"{'':24} {'bytecode':>18} {'no bytecode':>18}")
    for mode in FIXED_COST_MODES:
        cells = [report[f"{mode}/{b}"] for b in ("bytecode", "no_bytecode")]
        shown = [f"{c['wall_s']:.2f} ({c['flow_s']:.2f})" for c in cells]
        print(f"{mode:24} {shown[0]:>18} {shown[1]:>18}")


def prefect_fixed_cost() -> dict[str, Any]:
    """What any one-shot flow run pays: import prefect, start its temporary server, one run."""
    probe = env()
    from cablestream.flows.logfilter import settings_path

    probe["PREFECT_LOGGING_SETTINGS_PATH"] = settings_path()
    probe.pop("PREFECT_API_URL", None)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PREFECT_PROBE], env=probe, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    import_s, run_s = (float(x) for x in done.stdout.split())
    return {
        "wall_seconds": round(wall, 2),
        "import_prefect_seconds": round(import_s, 2),
        "server_start_plus_empty_flow_seconds": round(run_s, 2),
    }


def _ids_of(path: Path) -> set[str]:
    from cablestream.schemas.record import CableRecord
    from cablestream.tasks.parse import parse_source

    return {
        r.record_id
        for r in parse_source(path.read_bytes(), path.name)
        if isinstance(r, CableRecord)
    }


def _readable(lake: Path, seen_files: set[Path], ids: set[str]) -> None:
    """Collect record_ids from new lake files (and quarantined rows: those are settled too)."""
    reasons = layout.quarantine_dir(lake, layout.QUARANTINE_REASONS_DIR)
    parts = [*lake.glob("year=*/month=*/*.parquet"), *reasons.glob("*.parquet")]
    for part in parts:
        if part not in seen_files:
            seen_files.add(part)
            ids.update(
                v for v in pq.read_table(part, columns=["record_id"]).column(0).to_pylist() if v
            )


def watch_latency(files: list[Path], work: Path, settle: float, gap: float) -> dict[str, Any]:
    inbox, lake = work / "watch-inbox", work / "watch-lake"
    inbox.mkdir()
    command = [*CLI, "watch", "--inbox", str(inbox), "--lake", str(lake)]
    command += ["--settle-seconds", str(settle)]
    process = subprocess.Popen(
        command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    # Warm: one file through the whole path (server start, GE import) before timing.
    seen: set[Path] = set()
    ids: set[str] = set()
    results: dict[str, list[float]] = {"done_marker": [], "settle": []}
    try:
        warm = files[0]
        shutil.copy(warm, inbox / warm.name)
        (inbox / (warm.name + ".done")).write_bytes(b"")
        deadline = time.monotonic() + 180
        while not _ids_of(warm) <= ids:
            assert time.monotonic() < deadline and process.poll() is None, "watch did not start"
            time.sleep(0.05)
            _readable(lake, seen, ids)
        for index, path in enumerate(files[1:]):
            mode = "done_marker" if index % 2 == 0 else "settle"
            want = _ids_of(path)
            if not want or want <= ids:
                continue
            temp = inbox / (path.name + ".part")
            shutil.copy(path, temp)
            landed = time.monotonic()
            temp.rename(inbox / path.name)
            if mode == "done_marker":
                (inbox / (path.name + ".done")).write_bytes(b"")
            while not want <= ids:
                assert time.monotonic() - landed < 60, f"{path.name} not ingested"
                time.sleep(0.01)
                _readable(lake, seen, ids)
            results[mode].append(time.monotonic() - landed)
            time.sleep(gap)  # let the pass finish (quality, artifact): isolated arrivals
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    summary: dict[str, Any] = {"settle_seconds": settle, "exit_code": process.returncode}
    for mode, values in results.items():
        values.sort()
        summary[mode] = {
            "n": len(values),
            "p50_s": round(statistics.median(values), 3) if values else None,
            "p95_s": round(values[min(len(values) - 1, int(0.95 * len(values)))], 3)
            if values
            else None,
        }
    summary["traceback_in_stderr"] = "Traceback" in err.decode()
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--latency-files", type=int, default=20)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--gap", type=float, default=1.5, help="seconds between arrivals")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["oneshot", "fixed", "watch", "steady"]
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each fixed-cost probe")
    parser.add_argument(
        "--release",
        type=int,
        metavar="CABLES",
        help="only the full-release run (bench/release_run.py) of a generated corpus this size",
    )
    parser.add_argument("--release-corpus", type=Path, help="reuse this generated corpus")
    parser.add_argument("--compare-cables", type=int, default=25_000)
    parser.add_argument(
        "--spark",
        type=int,
        nargs="?",
        const=0,
        metavar="CABLES",
        help="with the Spark baseline on the first CABLES cables (default: the compare set)",
    )
    args = parser.parse_args(argv)
    # Recursive, as the inbox is: a generated corpus keeps its files in subfolders.
    files = sorted(p for p in args.files.rglob("*") if p.is_file())
    report: dict[str, Any] = {
        "files_dir": str(args.files),
        "files": len(files),
        "mb": round(sum(p.stat().st_size for p in files) / 1e6, 2),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="cablestream-bench-") as tmp:
        work = Path(tmp)
        # The bench's own local Prefect server, used by every CLI subprocess below.
        os.environ.pop("PREFECT_API_URL", None)
        os.environ["CABLESTREAM_HOME"] = str(work / "home")
        os.environ["CABLESTREAM_SERVER_PORT"] = str(_free_port())
        os.environ["PREFECT_HOME"] = str(work / "home" / "prefect")
        # The release run ingests in its own CLI processes (CABLESTREAM_WORKER=off), and a
        # venv with the Spark extra cannot run the warm worker (started with `python -c`,
        # it exits when GE imports pyspark): no worker then.
        os.environ[server.WORKER_ENV] = "off" if args.release else "on"

        started = time.perf_counter()
        server_url = server.start().url
        report["server_first_start_seconds"] = round(time.perf_counter() - started, 2)
        try:
            if not args.release:
                report["worker_warm_up_seconds"] = _wait_for_worker(started)
            if args.release:
                os.environ["PREFECT_API_URL"] = server_url  # the stage times are read from it
                out = REPO_ROOT / "bench" / "out"
                out.mkdir(parents=True, exist_ok=True)

                def save(section: dict[str, Any]) -> None:
                    text = json.dumps({**report, "release": section}, indent=2)
                    (out / "release_run.json").write_text(text + "\n")

                report["release"] = release_run.run(
                    args.release,
                    args.compare_cables,
                    args.release_corpus or work / "release",
                    work,
                    args.spark,
                    save,
                )
            else:
                _measure(args, files, report, work, server_url)
        finally:
            server.stop()
    out = REPO_ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    name = "release_run.json" if args.release else "ingest_bench.json"
    (out / name).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if "release" in report:
        release_run.print_report(report["release"])
    if "fixed_cost_one_new_file" in report:
        print_fixed_cost(report["fixed_cost_one_new_file"])
    return 0


def _wait_for_worker(started: float) -> float:
    """Seconds from the server start until the warm worker is ready."""
    while not (worker := server.status().worker).ready:
        if worker.pid is None:
            raise RuntimeError(f"the warm worker stopped: {worker.log.read_text()[-3000:]}")
        time.sleep(0.1)
    return round(time.perf_counter() - started, 2)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _measure(
    args: argparse.Namespace, files: list[Path], report: dict[str, Any], work: Path, url: str
) -> None:
    # Median of 5 rounds (the first reads from disk, the rest from the page cache).
    floor = statistics.median(io_floor(files, work / "floor.parquet") for _ in range(5))
    report["io_floor"] = {
        "seconds": round(floor, 3),
        "mb_per_s": round(report["mb"] / floor, 1),
    }
    if "fixed" not in args.skip:
        report["fixed_cost_one_new_file"] = fixed_cost(work, url, args.rounds)
    if "oneshot" not in args.skip:
        report["cli_nothing_to_do"] = one_shot(None, work, "empty")
        report["prefect_fixed_cost"] = prefect_fixed_cost()
        report["cli_corpus"] = one_shot(args.files, work, "corpus")
    if "watch" not in args.skip:
        picks = [p for p in files if p.suffix == ".txt"][: args.latency_files + 1]
        report["watch"] = watch_latency(picks, work, args.settle, args.gap)
    if "steady" not in args.skip:
        report["steady"] = steady = steady_ingest(args.files, work)
        steady["ratio_to_io_floor"] = round(steady["flow_seconds"] / floor, 1)


if __name__ == "__main__":
    raise SystemExit(main())
