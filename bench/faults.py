"""Fault harness: kill -9 at many moments, concurrent runs, a reader loop; then audit the lake.

    .venv/bin/python bench/faults.py                 # long form (about 20-30 min here)
    .venv/bin/python bench/faults.py --kills 3 --files 24   # a short look

Every scenario runs the real `cablestream` CLI in subprocesses (each in its own
process group, pointed at one Prefect server this script starts), against a
copy of the shared corpus, and ends with `audit_lake` (every cable exactly
once, no stray files, no repeated quarantine rows, ledger consistent) and a
check that no process of the scenario is left. The CI-sized form of the same
scenarios is tests/flows/test_faults.py (it loads this file).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from cablestream.schemas.record import CableRecord
from cablestream.tasks.batch.audit import audit_lake
from cablestream.tasks.lake.partition import DATA_GLOB
from cablestream.tasks.parse import parse_source

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "files"
CLI = [sys.executable, "-m", "cablestream.flows.cli"]


@dataclass(slots=True)
class Outcome:
    scenario: str
    runs: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def expected_ids(inbox: Path) -> set[str]:
    """record_ids of every cable the parser finds in the inbox's files."""
    ids: set[str] = set()
    for path in sorted(inbox.rglob("*")):
        if path.is_file():
            relative = path.relative_to(inbox).as_posix()
            results = parse_source(path.read_bytes(), relative)
            ids |= {r.record_id for r in results if isinstance(r, CableRecord)}
    return ids


def make_inbox(root: Path, files: int) -> Path:
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for source in sorted(CORPUS.iterdir())[:files]:
        shutil.copy(source, inbox / source.name)
    return inbox


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A CLI run in its own process group (so the whole group can be killed)."""
    return subprocess.Popen(
        [*CLI, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def group_left(process: subprocess.Popen[bytes]) -> list[int]:
    """Processes still in the run's process group (orphans when the run is over)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == process.pid:
                    found.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return found


def ingest_args(inbox: Path, lake: Path, batch_files: int) -> list[str]:
    return [
        "ingest",
        "--inbox",
        str(inbox),
        "--lake",
        str(lake),
        "--settle-seconds",
        "0",
        "--max-files-per-batch",
        str(batch_files),
    ]


def run(args: list[str], env: dict[str, str], timeout: float = 600) -> int:
    process = start(args, env)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise
    if process.returncode not in (0, 3):  # 3: a batch failed a `fail` rule (flagged)
        raise RuntimeError(f"{args[0]} failed: {err.decode()[-1500:]}")
    return process.returncode


def check(
    outcome: Outcome, lake: Path, expected: set[str], processes: list[subprocess.Popen[bytes]]
) -> None:
    outcome.problems += audit_lake(lake, expected)
    for process in processes:
        left = group_left(process)
        if left:
            outcome.problems.append(f"processes left behind: {left}")


def timed_ingest(root: Path, env: dict[str, str], files: int, batch_files: int) -> float:
    """Seconds an uninterrupted ingest of the inbox takes (kill moments are spread over it)."""
    inbox = make_inbox(root / "timing", files)
    started = time.monotonic()
    run(ingest_args(inbox, root / "timing" / "lake", batch_files), env)
    return time.monotonic() - started


def kill_ingest(
    root: Path, env: dict[str, str], kills: int, files: int, batch_files: int
) -> Outcome:
    """SIGKILL the ingest's process group at `kills` moments spread over a measured run."""
    outcome = Outcome("kill -9 during ingest")
    seconds = timed_ingest(root, env, files, batch_files)
    outcome.notes.append(f"uninterrupted ingest: {seconds:.1f} s")
    for number in range(kills):
        case = root / f"kill-ingest-{number}"
        inbox = make_inbox(case, files)
        lake = case / "lake"
        process = start(ingest_args(inbox, lake, batch_files), env)
        time.sleep(seconds * (number + 1) / (kills + 1))
        kill_group(process)
        run(ingest_args(inbox, lake, batch_files), env)  # recovery and the rest
        check(outcome, lake, expected_ids(inbox), [process])
        outcome.runs += 1
    return outcome


def kill_compact(root: Path, env: dict[str, str], kills: int, files: int) -> Outcome:
    """SIGKILL `cablestream compact` at `kills` moments; compact again; rows unchanged."""
    outcome = Outcome("kill -9 during compact")
    base = root / "compact-base"
    inbox = make_inbox(base, files)
    run(ingest_args(inbox, base / "lake", 2), env)  # many small files
    expected = expected_ids(inbox)
    timing = root / "compact-timing"
    shutil.copytree(base / "lake", timing / "lake")
    shutil.copytree(base / "lake.cablestream", timing / "lake.cablestream")
    started = time.monotonic()
    run(["compact", "--lake", str(timing / "lake")], env)
    seconds = time.monotonic() - started
    outcome.notes.append(f"uninterrupted compact: {seconds:.1f} s")
    for number in range(kills):
        case = root / f"kill-compact-{number}"
        shutil.copytree(base / "lake", case / "lake")
        shutil.copytree(base / "lake.cablestream", case / "lake.cablestream")
        process = start(["compact", "--lake", str(case / "lake")], env)
        time.sleep(seconds * (number + 1) / (kills + 1))
        kill_group(process)
        run(["compact", "--lake", str(case / "lake")], env)
        check(outcome, case / "lake", expected, [process])
        outcome.runs += 1
    return outcome


def kill_watch(root: Path, env: dict[str, str], kills: int, files: int) -> Outcome:
    """SIGKILL `cablestream watch` while files keep arriving; a one-shot ingest then settles."""
    outcome = Outcome("kill -9 during watch (files arriving)")
    sources = sorted(CORPUS.iterdir())[:files]
    for number in range(kills):
        case = root / f"kill-watch-{number}"
        inbox = case / "inbox"
        inbox.mkdir(parents=True)
        lake = case / "lake"
        args = ["watch", "--inbox", str(inbox), "--lake", str(lake), "--settle-seconds", "0.2"]
        process = start(args, env)
        feeding = threading.Thread(target=_feed, args=(sources, inbox, 0.2), daemon=True)
        feeding.start()
        deadline = time.monotonic() + 180
        while not any(lake.glob(DATA_GLOB)) and time.monotonic() < deadline:
            time.sleep(0.05)  # watch has started and written its first batch
        time.sleep(0.1 + 0.6 * number)
        kill_group(process)
        feeding.join()
        run(ingest_args(inbox, lake, 20), env)
        check(outcome, lake, expected_ids(inbox), [process])
        outcome.runs += 1
    return outcome


def _feed(sources: list[Path], inbox: Path, pause: float) -> None:
    """A producer: copy the files into the inbox one by one (temp name, then rename)."""
    for source in sources:
        temporary = inbox / (source.name + ".part")
        shutil.copy(source, temporary)
        temporary.rename(inbox / source.name)
        time.sleep(pause)


@contextmanager
def reader_loop(lake: Path) -> Iterator[dict[str, int]]:
    """Query the documented glob with DuckDB over and over; count wrong and failed queries.

    Wrong: a record_id counted twice, or fewer rows than a query before saw (a row
    that went away).
    """
    stats = {"queries": 0, "failed": 0, "twice": 0, "went_away": 0}
    stop = threading.Event()
    glob = f"{lake}/{DATA_GLOB}"

    def loop() -> None:
        highest = 0
        while not stop.is_set():
            if not any(lake.glob(DATA_GLOB)):
                time.sleep(0.02)
                continue
            try:
                with duckdb.connect() as db:
                    ((rows, distinct),) = db.sql(
                        f"SELECT count(*), count(DISTINCT record_id) FROM read_parquet('{glob}')"
                    ).fetchall()
            except duckdb.Error:
                stats["failed"] += 1
                continue
            stats["queries"] += 1
            stats["twice"] += rows != distinct
            stats["went_away"] += rows < highest
            highest = max(highest, rows)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield stats
    finally:
        stop.set()
        thread.join()


def two_ingesters(root: Path, env: dict[str, str], files: int) -> tuple[Outcome, Outcome, Path]:
    """Two `ingest` runs at once over one inbox, a DuckDB reader looping all along."""
    case = root / "two-ingesters"
    inbox = make_inbox(case, files)
    lake = case / "lake"
    with reader_loop(lake) as stats:
        pair = [start(ingest_args(inbox, lake, 3), env) for _ in range(2)]
        for process in pair:
            process.communicate(timeout=900)
    ingesters = Outcome("two ingesters at once", runs=2)
    check(ingesters, lake, expected_ids(inbox), pair)
    return ingesters, _reading("reader loop during two ingesters", stats), lake


def _reading(scenario: str, stats: dict[str, int]) -> Outcome:
    outcome = Outcome(scenario, runs=stats["queries"], notes=[json.dumps(stats)])
    if stats["failed"] or stats["twice"] or stats["went_away"]:
        outcome.problems.append(json.dumps(stats))
    return outcome


def two_compactors(lake: Path, env: dict[str, str], expected: set[str]) -> tuple[Outcome, Outcome]:
    """Two `compact` runs at once on a lake of small files, a DuckDB reader looping all along."""
    compactors = Outcome("two compactors at once", runs=2)
    with reader_loop(lake) as stats:
        pair = [start(["compact", "--lake", str(lake), "--min-files", "2"], env) for _ in range(2)]
        for process in pair:
            process.communicate(timeout=900)
    check(compactors, lake, expected, pair)
    return compactors, _reading("reader loop during two compactors", stats)


def watch_and_compact(root: Path, env: dict[str, str], files: int) -> list[Outcome]:
    """`watch` fed file by file while `compact` runs every few files; a reader looping."""
    both = Outcome("watch + compact at once", runs=2)
    case = root / "watch-compact"
    inbox = case / "inbox"
    inbox.mkdir(parents=True)
    lake = case / "lake"
    args = ["watch", "--inbox", str(inbox), "--lake", str(lake), "--settle-seconds", "0.2"]
    watch = start(args, env)
    sources = sorted(CORPUS.iterdir())[:files]
    with reader_loop(lake) as stats:
        for index, source in enumerate(sources):
            shutil.copy(source, inbox / source.name)
            time.sleep(0.2)
            if index % 8 == 7 and lake.is_dir():
                run(["compact", "--lake", str(lake)], env)
        time.sleep(5)
        watch.send_signal(signal.SIGTERM)
        watch.communicate(timeout=180)
    run(ingest_args(inbox, lake, 20), env)
    check(both, lake, expected_ids(inbox), [watch])
    return [both, _reading("reader loop during watch + compact", stats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8, help="kill moments per kind")
    parser.add_argument("--files", type=int, default=40, help="corpus files per scenario")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    options = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    import tempfile

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    root = options.work or Path(tempfile.mkdtemp(prefix="cablestream-faults-"))
    with prefect_test_harness(server_startup_timeout=120):
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
        outcomes = [
            kill_ingest(root, env, options.kills, options.files, 4),
            kill_compact(root, env, options.kills, options.files),
            kill_watch(root, env, max(options.kills // 2, 1), options.files),
        ]
        ingesters, reading, lake = two_ingesters(root, env, options.files)
        outcomes += [ingesters, reading]
        outcomes += two_compactors(lake, env, expected_ids(root / "two-ingesters" / "inbox"))
        outcomes += watch_and_compact(root, env, options.files)
    print("| scenario | runs | wrong lakes | notes |\n|---|---|---|---|")
    for outcome in outcomes:
        wrong = len(outcome.problems)
        print(f"| {outcome.scenario} | {outcome.runs} | {wrong} | {'; '.join(outcome.notes)} |")
        for problem in outcome.problems:
            print(f"    problem: {problem}")
    shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if any(outcome.problems for outcome in outcomes) else 0)


if __name__ == "__main__":
    main()
