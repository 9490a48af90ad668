"""Fault harness: kills, concurrent runs, hostile files and full disks, readers looping; then audits.

    .venv/bin/python bench/faults.py                       # long form (about 40 min here)
    .venv/bin/python bench/faults.py --kills 2 --files 12 --only kill_ingest,disk_full

Every scenario runs the real `cablestream` CLI in subprocesses (each in its own
process group, pointed at one Prefect server this script starts) on copies of the
shared corpus, and ends with `audit_lake` (every cable exactly once, none both
written and quarantined, no stray files, no repeated quarantine rows, the ledger
consistent, the current snapshot = the committed files) and a check that no
process of the scenario is left. Readers loop over the lake while writers work:
through the current snapshot (DuckDB, Polars, pyarrow in turn) and, for
comparison, through the lake folder itself. The last table row is the fuzzer
(bench/fuzz_parser.py, run as it is). The CI-sized form of the scenarios is
tests/flows/test_faults.py (it loads this file).

Faults that need root (a small tmpfs for a full disk, a read-only bind mount) run
in a private mount namespace (`unshare -m`); permission faults run as `nobody`
(root reads any file). Both are skipped, with a note, where that is not possible.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cablestream.schemas import lake as layout
from cablestream.schemas.record import CableRecord
from cablestream.tasks.batch.audit import audit_lake
from cablestream.tasks.lake.partition import DATA_GLOB
from cablestream.tasks.lake.quarantine import read_reasons
from cablestream.tasks.lake.snapshot import current_snapshot
from cablestream.tasks.ledger.sql import READ_RETRY_SECONDS
from cablestream.tasks.ledger.sqlite import SqliteLedger
from cablestream.tasks.parse import parse_source

BENCH = Path(__file__).resolve().parent
CORPUS = BENCH.parent / ".." / "shared" / "corpus" / "files"
CLI = [sys.executable, "-m", "cablestream.flows.cli"]
SKIPPED_SUFFIXES = (".tmp", ".part", ".done")


@dataclass(slots=True)
class Outcome:
    scenario: str
    runs: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    group: str = "fault"  # kill | concurrent | fault | reading | fuzz


# --- expectations ------------------------------------------------------------------------------


def expected_ids(inbox: Path) -> set[str]:
    """record_ids of every cable in the regular files discovery should take.

    Walks by descriptor (paths past PATH_MAX), never follows symlinks, skips hidden
    and temp names as DESIGN.md section 6 says.
    """
    ids: set[str] = set()
    for _, folders, names, folder_fd in os.fwalk(os.fsencode(inbox), follow_symlinks=False):
        folders[:] = [f for f in folders if not _skipped(f, folder=True)]
        for name in names:
            if _skipped(name, folder=False):
                continue
            info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                continue
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
            with os.fdopen(fd, "rb") as handle:
                ids |= cable_ids(handle.read())
    return ids


def _skipped(name: bytes, folder: bool) -> bool:
    text = name.decode("utf-8", "replace").lower()
    suffixes = SKIPPED_SUFFIXES[:2] if folder else SKIPPED_SUFFIXES
    return text.startswith(".") or text.endswith(suffixes)


def cable_ids(data: bytes) -> set[str]:
    return {r.record_id for r in parse_source(data, "x") if isinstance(r, CableRecord)}


def make_inbox(root: Path, files: int, offset: int = 0) -> Path:
    inbox = root / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for source in sorted(CORPUS.iterdir())[offset : offset + files]:
        shutil.copy(source, inbox / source.name)
    return inbox


# --- processes ---------------------------------------------------------------------------------


def start(
    args: list[str], env: dict[str, str], prefix: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """A CLI run in its own process group (so the whole group can be killed)."""
    return subprocess.Popen(
        [*(prefix or []), *CLI, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill(process: subprocess.Popen[bytes], whole_group: bool) -> None:
    """SIGKILL the process alone, or its whole process group."""
    with suppress(ProcessLookupError):
        if whole_group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGKILL)
    process.communicate()


def group_left(process: subprocess.Popen[bytes]) -> list[int]:
    """Processes still in the run's process group (orphans once the run is over)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == process.pid:
                    found.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return found


def ingest_args(inbox: Path, lake: Path, batch_files: int, *extra: str) -> list[str]:
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
        *extra,
    ]


@dataclass(slots=True)
class Finished:
    code: int
    stderr: str
    seconds: float
    peak_rss_mb: float


def run(
    args: list[str],
    env: dict[str, str],
    timeout: float = 900,
    ok: tuple[int, ...] = (0, 3),  # 3: a batch failed a `fail` rule (flagged, written)
    prefix: list[str] | None = None,
) -> Finished:
    """Run the CLI to its end; its exit code, stderr, wall time and peak RSS."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [*(prefix or []), *CLI, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                kill(process, whole_group=True)
                raise TimeoutError(f"{args[0]} ran past {timeout} s")
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    finished = Finished(
        process.returncode, stderr, time.monotonic() - started, usage.ru_maxrss / 1024
    )
    if ok and finished.code not in ok:
        raise RuntimeError(f"{args[0]} exited {finished.code}: {stderr[-1500:]}")
    return finished


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def check(
    outcome: Outcome,
    lake: Path,
    expected: set[str] | None,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    if expected is not None and not expected:
        outcome.problems.append("the harness expected no cable at all: nothing was tested")
    outcome.problems += audit_lake(lake, expected)
    for process in processes:
        left = group_left(process)
        if left:
            outcome.problems.append(f"processes left behind: {left}")
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


# --- readers -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ReadStats:
    queries: int = 0
    failed: int = 0
    twice: int = 0
    went_away: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: ReadStats) -> None:
        self.queries += other.queries
        self.failed += other.failed
        self.twice += other.twice
        self.went_away += other.went_away
        self.errors += other.errors[: 3 - len(self.errors)]

    @property
    def wrong(self) -> int:
        return self.twice + self.went_away


def _duckdb_count(folder: Path) -> tuple[int, int]:
    with duckdb.connect() as db:
        ((rows, distinct),) = db.sql(
            f"SELECT count(*), count(DISTINCT record_id) FROM read_parquet('{folder}/{DATA_GLOB}')"
        ).fetchall()
    return int(rows), int(distinct)


def _polars_count(folder: Path) -> tuple[int, int]:
    frame = (
        pl.scan_parquet(folder)
        .select(pl.len().alias("rows"), pl.col("record_id").n_unique().alias("distinct"))
        .collect()
    )
    return int(frame["rows"][0]), int(frame["distinct"][0])


def _pyarrow_count(folder: Path) -> tuple[int, int]:
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table(
        columns=["record_id"]
    )
    return table.num_rows, int(pc.count_distinct(table.column("record_id")).as_py())


READERS: list[tuple[str, Callable[[Path], tuple[int, int]]]] = [
    ("duckdb", _duckdb_count),
    ("polars", _polars_count),
    ("pyarrow", _pyarrow_count),
]
# Totals over every loop of the run, per kind of read (the closing table's row).
READ_TOTALS: dict[str, ReadStats] = {
    "snapshot": ReadStats(),
    "lake folder": ReadStats(),
}


@contextmanager
def reader_loop(lake: Path, through: str = "snapshot") -> Iterator[ReadStats]:
    """Query the lake over and over (DuckDB, Polars, pyarrow in turn) while writers run.

    `through` "snapshot": resolve the current snapshot, read it (the documented
    consistent read); "lake folder": read the lake folder itself. Wrong: a
    record_id counted twice, or fewer rows than a query before saw (a row went away).
    """
    stats = ReadStats()
    stop = threading.Event()

    def loop() -> None:
        highest = 0
        for name, reader in itertools.cycle(READERS):
            if stop.is_set():
                return
            folder = current_snapshot(lake) if through == "snapshot" else lake
            if folder is None or not folder.is_dir() or not any(folder.glob(DATA_GLOB)):
                time.sleep(0.02)
                continue
            try:
                rows, distinct = reader(folder)
            except (
                duckdb.Error,
                pl.exceptions.PolarsError,
                pa.ArrowException,
                OSError,
            ) as error:
                stats.failed += 1
                if len(stats.errors) < 3:
                    stats.errors.append(f"{name}: {str(error).splitlines()[0][:120]}")
                continue
            stats.queries += 1
            stats.twice += rows != distinct
            stats.went_away += rows < highest
            highest = max(highest, rows)
            time.sleep(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield stats
    finally:
        stop.set()
        thread.join()
        READ_TOTALS[through].add(stats)


@contextmanager
def both_readers(lake: Path) -> Iterator[tuple[ReadStats, ReadStats]]:
    with (
        reader_loop(lake, "snapshot") as snap,
        reader_loop(lake, "lake folder") as folder,
    ):
        yield snap, folder


def _reading_note(snap: ReadStats, folder: ReadStats) -> str:
    return (
        f"readers: snapshot {snap.queries} queries, {snap.wrong} wrong, {snap.failed} failed; "
        f"lake folder {folder.queries} queries, {folder.wrong} wrong, {folder.failed} failed"
    )


def _snapshot_problems(snap: ReadStats) -> list[str]:
    if snap.wrong or snap.failed:
        return [f"snapshot reader: {snap.wrong} wrong, {snap.failed} failed {snap.errors}"]
    return []


# --- kill points -------------------------------------------------------------------------------


def _moments(seconds: float, kills: int) -> list[float]:
    return [seconds * (number + 1) / (kills + 1) for number in range(kills)]


def kill_ingest(
    root: Path, env: dict[str, str], kills: int, files: int, batch_files: int
) -> Outcome:
    """SIGKILL the ingest (alone or its process group, in turn) at moments spread over a measured run."""
    outcome = Outcome("kill -9 during ingest", group="kill")
    timing = make_inbox(root / "ingest-timing", files)
    seconds = run(ingest_args(timing, root / "ingest-timing" / "lake", batch_files), env).seconds
    outcome.notes.append(f"uninterrupted {seconds:.1f} s")
    for number, moment in enumerate(_moments(seconds, kills)):
        case = root / f"kill-ingest-{number}"
        inbox = make_inbox(case, files)
        lake = case / "lake"
        with both_readers(lake) as (snap, _folder):
            process = start(ingest_args(inbox, lake, batch_files), env)
            time.sleep(moment)
            kill(process, whole_group=number % 2 == 1)
            run(ingest_args(inbox, lake, batch_files), env)  # recovery and the rest
        check(outcome, lake, expected_ids(inbox), [process])
        outcome.problems += _snapshot_problems(snap)
        outcome.runs += 1
    outcome.notes.append(f"moments {', '.join(f'{m:.1f}' for m in _moments(seconds, kills))} s")
    return outcome


def _small_files_lake(root: Path, env: dict[str, str], files: int) -> tuple[Path, set[str]]:
    """A lake of `files` corpus files ingested one per batch: many small files to merge."""
    base = root / "small-files"
    if not (base / "lake").exists():
        inbox = make_inbox(base, files)
        run(ingest_args(inbox, base / "lake", 1), env)
    return base, expected_ids(base / "inbox")


def _copy_lake(base: Path, case: Path) -> Path:
    shutil.copytree(base / "lake", case / "lake")
    shutil.copytree(base / "lake.cablestream", case / "lake.cablestream", symlinks=True)
    return case / "lake"


def kill_compact(root: Path, env: dict[str, str], kills: int, files: int) -> Outcome:
    """SIGKILL `cablestream compact` at moments spread over a measured run; compact again."""
    outcome = Outcome("kill -9 during compact", group="kill")
    base, expected = _small_files_lake(root, env, files)
    seconds = run(
        ["compact", "--lake", str(_copy_lake(base, root / "compact-timing"))], env
    ).seconds
    outcome.notes.append(f"uninterrupted {seconds:.1f} s")
    for number, moment in enumerate(_moments(seconds, kills)):
        lake = _copy_lake(base, root / f"kill-compact-{number}")
        with both_readers(lake) as (snap, _folder):
            process = start(["compact", "--lake", str(lake)], env)
            time.sleep(moment)
            kill(process, whole_group=number % 2 == 1)
            run(["compact", "--lake", str(lake)], env)
        check(outcome, lake, expected, [process])
        outcome.problems += _snapshot_problems(snap)
        outcome.runs += 1
    outcome.notes.append(f"moments {', '.join(f'{m:.1f}' for m in _moments(seconds, kills))} s")
    return outcome


def watch_args(inbox: Path, lake: Path, settle: str = "0.2") -> list[str]:
    return [
        "watch",
        "--inbox",
        str(inbox),
        "--lake",
        str(lake),
        "--settle-seconds",
        settle,
    ]


def kill_watch(root: Path, env: dict[str, str], kills: int, files: int) -> Outcome:
    """SIGKILL `cablestream watch` while files keep arriving; a one-shot ingest then settles."""
    outcome = Outcome("kill -9 during watch (files arriving)", group="kill")
    sources = sorted(CORPUS.iterdir())[:files]
    moments = []
    for number in range(kills):
        case = root / f"kill-watch-{number}"
        inbox = case / "inbox"
        inbox.mkdir(parents=True)
        lake = case / "lake"
        with both_readers(lake) as (snap, _folder):
            process = start(watch_args(inbox, lake), env)
            feeding = threading.Thread(target=_feed, args=(sources, inbox, 0.2), daemon=True)
            feeding.start()
            started = time.monotonic()
            while not any(lake.glob(DATA_GLOB)) and time.monotonic() < started + 180:
                time.sleep(0.05)  # watch has started and written its first batch
            time.sleep(0.1 + 0.6 * number)
            moments.append(time.monotonic() - started)
            kill(process, whole_group=number % 2 == 1)
            feeding.join()
            run(ingest_args(inbox, lake, 20), env)
        check(outcome, lake, expected_ids(inbox), [process])
        outcome.problems += _snapshot_problems(snap)
        outcome.runs += 1
    outcome.notes.append(f"moments {', '.join(f'{m:.1f}' for m in moments)} s after start")
    return outcome


def reprocess_available(env: dict[str, str]) -> bool:
    return run(["reprocess", "--help"], env, ok=()).code == 0


def kill_reprocess(root: Path, env: dict[str, str], kills: int, files: int) -> Outcome:
    """SIGKILL `cablestream reprocess` at moments spread over a measured run; run it again."""
    outcome = Outcome("kill -9 during reprocess", group="kill")
    if not reprocess_available(env):
        outcome.notes.append("`cablestream reprocess` is not in this checkout: not run")
        return outcome
    base, expected = _small_files_lake(root, env, files)
    # Every row counts as written by an older parser: all are parsed again and replaced.
    args = ["reprocess", "--parser-version-below", "99", "--inbox", str(base / "inbox"), "--lake"]
    seconds = run([*args, str(_copy_lake(base, root / "reprocess-timing"))], env).seconds
    outcome.notes.append(f"uninterrupted {seconds:.1f} s")
    for number, moment in enumerate(_moments(seconds, kills)):
        lake = _copy_lake(base, root / f"kill-reprocess-{number}")
        with both_readers(lake) as (snap, _folder):
            process = start([*args, str(lake)], env)
            time.sleep(moment)
            kill(process, whole_group=number % 2 == 1)
            run([*args, str(lake)], env)
        check(outcome, lake, expected, [process])
        outcome.problems += _snapshot_problems(snap)
        outcome.runs += 1
    return outcome


def _feed(sources: list[Path], inbox: Path, pause: float) -> None:
    """A producer: copy the files into the inbox one by one (temp name, then rename)."""
    for source in sources:
        temporary = inbox / (source.name + ".part")
        shutil.copy(source, temporary)
        temporary.rename(inbox / source.name)
        time.sleep(pause)


# --- concurrent runs ---------------------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def _reading(scenario: str, stats: ReadStats) -> Outcome:
    outcome = Outcome(scenario, runs=stats.queries, group="reading")
    outcome.notes.append(f"{stats.wrong} wrong, {stats.failed} failed {stats.errors}")
    if stats.failed or stats.wrong:
        outcome.problems.append(f"{stats.wrong} wrong, {stats.failed} failed")
    return outcome


def two_ingesters(root: Path, env: dict[str, str], files: int) -> tuple[Outcome, Outcome, Path]:
    """Two `ingest` runs at once over one inbox, a snapshot reader looping all along."""
    case = root / "two-ingesters"
    inbox = make_inbox(case, files)
    lake = case / "lake"
    with both_readers(lake) as (snap, folder):
        pair = [start(ingest_args(inbox, lake, 3), env) for _ in range(2)]
        for process in pair:
            process.communicate(timeout=900)
    ingesters = Outcome("two ingesters at once", runs=2, group="concurrent")
    ingesters.notes.append(_reading_note(snap, folder))
    check(ingesters, lake, expected_ids(inbox), pair)
    return ingesters, _reading("snapshot reader during two ingesters", snap), lake


def two_compactors(lake: Path, env: dict[str, str], expected: set[str]) -> tuple[Outcome, Outcome]:
    """Two `compact` runs at once on a lake of small files, readers looping all along."""
    compactors = Outcome("two compactors at once", runs=2, group="concurrent")
    with both_readers(lake) as (snap, folder):
        pair = [start(["compact", "--lake", str(lake), "--min-files", "2"], env) for _ in range(2)]
        for process in pair:
            process.communicate(timeout=900)
    compactors.notes.append(_reading_note(snap, folder))
    check(compactors, lake, expected, pair)
    return compactors, _reading("snapshot reader during two compactors", snap)


def quarantined_whole(lake: Path) -> set[str]:
    """Source paths quarantined as whole files."""
    reasons = read_reasons(lake).to_pylist()
    return {str(r["source_path"]) for r in reasons if r["record_id"] is None}


def watch_and_compact(root: Path, env: dict[str, str], files: int) -> list[Outcome]:
    """`watch` fed file by file while `compact` runs every few files; readers looping.

    Also the batch-rule check: the files the watch feed quarantined whole must be
    exactly those a one-shot ingest of the same files quarantines (none for a rule
    about the batch they happened to arrive in).
    """
    both = Outcome("watch + compact at once", runs=2, group="concurrent")
    case = root / "watch-compact"
    inbox = case / "inbox"
    inbox.mkdir(parents=True)
    lake = case / "lake"
    watch = start(watch_args(inbox, lake), env)
    sources = sorted(CORPUS.iterdir())[:files]
    compactions = 0
    with both_readers(lake) as (snap, folder):
        shutil.copy(sources[0], inbox / sources[0].name)
        _wait_for(lambda: any(lake.glob(DATA_GLOB)), 180)  # watch is up
        for index, source in enumerate(sources[1:], start=1):
            shutil.copy(source, inbox / source.name)
            time.sleep(0.1)  # the corpus over about a minute
            if index % 40 == 0:
                run(["compact", "--lake", str(lake)], env)
                compactions += 1
        _wait_for(
            lambda: sum(SqliteLedger(layout.ledger_path(lake)).counts().values()) >= len(sources),
            300,
        )
        watch.send_signal(signal.SIGTERM)
        watch.communicate(timeout=300)
    both.runs = 1 + compactions
    watched = quarantined_whole(lake)
    run(ingest_args(inbox, lake, 20), env)
    both.notes.append(_reading_note(snap, folder))
    check(both, lake, expected_ids(inbox), [watch])
    oneshot = root / "watch-compact-oneshot"
    run(ingest_args(inbox, oneshot / "lake", 1000), env)
    batch_rule = Outcome(
        f"watch feed of {len(sources)} files: good files quarantined by batch rules",
        runs=len(sources),
        group="concurrent",
    )
    extra = watched - quarantined_whole(oneshot / "lake")
    batch_rule.notes.append(
        f"{len(extra)} (watch quarantined {len(watched)} whole, one-shot the same files)"
    )
    if extra:
        batch_rule.problems.append(f"quarantined only by the watch feed: {sorted(extra)[:5]}")
    return [both, batch_rule, _reading("snapshot reader during watch + compact", snap)]


# --- faults ------------------------------------------------------------------------------------


def _quote(args: list[str] | list[Path]) -> str:
    import shlex

    return " ".join(shlex.quote(str(arg)) for arg in args)


def _mount_namespace_works() -> bool:
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _ns_script(case: Path, steps: list[tuple[str, str]], audit: tuple[Path, Path]) -> str:
    """A shell script for a private mount namespace: commands, CLI runs (rc + stderr kept), audit."""
    lines = ["set -u"]
    for kind, command in steps:
        if kind == "sh":
            lines.append(command)
        else:  # a CLI run named `kind`
            lines.append(
                f"{_quote(CLI)} {command} 2> {_quote([case / (kind + '.err')])}; "
                f"echo $? > {_quote([case / (kind + '.rc')])}"
            )
    lake, inbox = audit
    lines.append(
        f"{_quote([sys.executable, Path(__file__)])} --audit {_quote([lake])} "
        f"--audit-inbox {_quote([inbox])} > {_quote([case / 'audit.json'])}"
    )
    return "\n".join(lines)


def _in_namespace(case: Path, script: str, env: dict[str, str]) -> dict[str, tuple[int, str]]:
    subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        env=env,
        check=True,
        timeout=1800,
        start_new_session=True,
    )
    runs = {}
    for rc in case.glob("*.rc"):
        err = rc.with_suffix(".err").read_text(encoding="utf-8", errors="replace")
        runs[rc.stem] = (int(rc.read_text().strip()), last_line(err))
    return runs


def disk_full(root: Path, env: dict[str, str], files: int) -> Outcome:
    """Lake and control folder on a small tmpfs: the ingest stops with a one-line cause;
    with room again, the next ingest makes the lake right."""
    outcome = Outcome("disk full (lake on a 1 MB tmpfs)")
    if not _mount_namespace_works():
        outcome.notes.append("no private mount namespace here (unshare -m refused): not run")
        return outcome
    case = root / "disk-full"
    inbox = make_inbox(case, files)
    disk = case / "fs"
    disk.mkdir()
    lake = disk / "lake"
    ingest = _quote(ingest_args(inbox, lake, 4))
    script = _ns_script(
        case,
        [
            ("sh", f"mount -t tmpfs -o size=1m tmpfs {_quote([disk])}"),
            ("full", ingest),
            ("sh", f"mount -o remount,size=512m {_quote([disk])}"),
            ("room", ingest),
        ],
        (lake, inbox),
    )
    runs = _in_namespace(case, script, env)
    outcome.runs = 1
    full_code, full_line = runs["full"]
    outcome.notes.append(f"full: exit {full_code}, `{full_line}`; then exit {runs['room'][0]}")
    if full_code == 0 or "disk full" not in full_line.replace(str(case), "CASE").lower():
        outcome.problems.append(f"no one-line disk-full cause: exit {full_code} {full_line!r}")
    if runs["room"][0] not in (0, 3):
        outcome.problems.append(f"ingest with room again exited {runs['room'][0]}")
    outcome.problems += json.loads((case / "audit.json").read_text())
    return outcome


def read_only_lake(root: Path, env: dict[str, str], files: int) -> Outcome:
    """The lake (and control folder) mounted read-only: one line naming it; writable again: right."""
    outcome = Outcome("read-only lake (bind mount ro)")
    if not _mount_namespace_works():
        outcome.notes.append("no private mount namespace here (unshare -m refused): not run")
        return outcome
    case = root / "read-only"
    inbox = make_inbox(case, files // 2)
    place = case / "place"
    lake = place / "lake"
    run(ingest_args(inbox, lake, 4), env)
    make_inbox(case, files)  # the other half arrives
    ingest = _quote(ingest_args(inbox, lake, 4))
    script = _ns_script(
        case,
        [
            ("sh", f"mount --bind {_quote([place])} {_quote([place])}"),
            ("sh", f"mount -o remount,bind,ro {_quote([place])}"),
            ("readonly", ingest),
            ("sh", f"umount {_quote([place])}"),
            ("writable", ingest),
        ],
        (lake, inbox),
    )
    runs = _in_namespace(case, script, env)
    outcome.runs = 1
    code, line = runs["readonly"]
    outcome.notes.append(f"read-only: exit {code}, `{line}`; then exit {runs['writable'][0]}")
    cause = line.replace(str(case), "CASE").lower()
    if code == 0 or not ("read-only" in cause or "not writable" in cause):
        outcome.problems.append(f"no one-line read-only cause: exit {code} {line!r}")
    outcome.problems += json.loads((case / "audit.json").read_text())
    return outcome


def locked_ledger(root: Path, env: dict[str, str], files: int, hold: float) -> Outcome:
    """Another process holds the ledger's write lock for `hold` seconds while an ingest runs."""
    outcome = Outcome(f"ledger locked by another process for {hold:.0f} s")
    case = root / f"locked-{hold:.0f}"
    inbox = make_inbox(case, files // 2)
    lake = case / "lake"
    run(ingest_args(inbox, lake, 4), env)
    make_inbox(case, files)
    holder = sqlite3.connect(
        layout.ledger_path(lake),
        timeout=0,
        isolation_level=None,
        check_same_thread=False,
    )
    holder.execute("BEGIN EXCLUSIVE")
    releasing = threading.Timer(hold, lambda: holder.execute("COMMIT"))
    releasing.start()
    try:
        first = run(ingest_args(inbox, lake, 4), env, ok=())
    finally:
        releasing.join()
        holder.close()
    outcome.notes.append(f"during the lock: exit {first.code} after {first.seconds:.0f} s")
    if first.code not in (0, 3):
        outcome.notes[-1] += f", `{last_line(first.stderr)}`"
        if "locked" not in last_line(first.stderr):
            outcome.problems.append(f"no one-line lock cause: {last_line(first.stderr)!r}")
        run(ingest_args(inbox, lake, 4), env)
    outcome.runs = 1
    check(outcome, lake, expected_ids(inbox), [])
    return outcome


def discovery_races(root: Path, env: dict[str, str], files: int) -> Outcome:
    """While ingest runs, files move away and back (same mtime), are touched, and are
    rewritten with the same bytes; at the end every file is back: the lake must be exact."""
    outcome = Outcome("races between discovery and read (move away/back, touch, rewrite)")
    case = root / "races"
    inbox = make_inbox(case, files)
    away = case / "away"
    away.mkdir()
    lake = case / "lake"
    stop = threading.Event()
    moves = itertools.count()

    def churn() -> None:
        names = sorted(path.name for path in inbox.iterdir())
        for number in itertools.count():
            if stop.is_set():
                return
            path = inbox / names[number % len(names)]
            kind = number % 3
            if kind == 0:
                os.rename(path, away / path.name)
                time.sleep(0.02)
                os.rename(away / path.name, path)
            elif kind == 1:
                os.utime(path)
            else:
                temporary = inbox / f".{path.name}.rewrite"
                shutil.copy2(path, temporary)
                os.replace(temporary, path)
            next(moves)
            time.sleep(0.005)

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        run(ingest_args(inbox, lake, 3), env)
    finally:
        stop.set()
        thread.join()
    run(ingest_args(inbox, lake, 3), env)
    outcome.runs = 2
    outcome.notes.append(f"{next(moves)} moves/touches/rewrites during the first run")
    check(outcome, lake, expected_ids(inbox), [])
    return outcome


def symlink_swap(root: Path, env: dict[str, str], files: int) -> Outcome:
    """A file swapped for a symlink to /etc/passwd over and over during ingest; symlinks to a
    file and a folder outside, a fifo: nothing outside the inbox is read or copied."""
    outcome = Outcome("symlink swap, symlinks out of the inbox, a fifo")
    case = root / "symlinks"
    inbox = make_inbox(case, files)
    outside = case / "outside"
    make_inbox(outside, 1, offset=files)  # a cable that must not be ingested
    (inbox / "passwd.txt").symlink_to("/etc/passwd")
    (inbox / "outside").symlink_to(outside / "inbox")
    os.mkfifo(inbox / "pipe.txt")
    victim = inbox / "victim.txt"
    victim_bytes = sorted(CORPUS.iterdir())[files + 1].read_bytes()
    victim.write_bytes(victim_bytes)
    lake = case / "lake"
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            link = inbox / ".victim.link"
            link.unlink(missing_ok=True)
            link.symlink_to("/etc/passwd")
            os.replace(link, victim)
            time.sleep(0.003)
            regular = inbox / ".victim.regular"
            regular.write_bytes(victim_bytes)
            os.replace(regular, victim)
            time.sleep(0.003)

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    try:
        run(ingest_args(inbox, lake, 2), env, timeout=600)
    finally:
        stop.set()
        thread.join()
    victim.unlink()
    victim.write_bytes(victim_bytes)
    run(ingest_args(inbox, lake, 2), env, timeout=600)
    outcome.runs = 2
    passwd = Path("/etc/passwd").read_bytes()
    copies = layout.quarantine_dir(lake, layout.QUARANTINE_FILES_DIR)
    leaked = (
        [p.name for p in copies.glob("*") if p.read_bytes() == passwd] if copies.exists() else []
    )
    if leaked:
        outcome.problems.append(f"/etc/passwd copied into the quarantine: {leaked}")
    rows = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{lake}/{DATA_GLOB}') "
        "WHERE body LIKE '%root:x:0:0%' OR source_path LIKE 'outside/%'"
    ).fetchall()[0][0]
    if rows:
        outcome.problems.append(f"{rows} rows from outside the inbox")
    outcome.notes.append("passwd never read or copied; fifo and folder link skipped")
    check(outcome, lake, expected_ids(inbox), [])
    return outcome


def slow_writer(root: Path, env: dict[str, str]) -> Outcome:
    """A producer appends one cable file in 3 parts, 2 s apart, while `watch` runs (settle 1 s);
    the same with a `.done` marker, and with a settle interval longer than the pauses."""
    outcome = Outcome("slow writer appending (2 s pauses) under watch")
    cable = min(CORPUS.iterdir()).read_bytes()
    parts = [
        cable[: len(cable) // 3],
        cable[len(cable) // 3 : 2 * len(cable) // 3],
        cable[2 * len(cable) // 3 :],
    ]
    for mode, settle in (
        ("settle 1 s", "1"),
        ("settle 3 s", "3"),
        (".done marker", "30"),
    ):
        case = root / f"slow-{mode.split()[0].strip('.')}-{settle}"
        inbox = case / "inbox"
        inbox.mkdir(parents=True)
        lake = case / "lake"
        watch = start(watch_args(inbox, lake, settle), env)
        time.sleep(25)  # watch is up
        target = inbox / "slow.txt"
        for part in parts:
            with target.open("ab") as handle:
                handle.write(part)
            time.sleep(2)
        if mode == ".done marker":
            (inbox / "slow.txt.done").write_bytes(b"")
        time.sleep(float(settle) + 4 if mode != ".done marker" else 4)
        watch.send_signal(signal.SIGTERM)
        watch.communicate(timeout=300)
        run(ingest_args(inbox, lake, 20), env)
        versions = (
            duckdb.sql(
                f"SELECT count(DISTINCT source_sha256) FROM read_parquet('{lake}/{DATA_GLOB}')"
            ).fetchall()[0][0]
            if any(lake.glob(DATA_GLOB))
            else 0
        )
        outcome.notes.append(f"{mode}: {versions} version(s) of the cable in the lake")
        problems = audit_lake(lake, cable_ids(cable))
        if problems:
            outcome.problems.append(f"{mode}: {problems}")
        outcome.runs += 1
    return outcome


NOBODY = 65534


def permissions(root: Path, env: dict[str, str], files: int) -> Outcome:
    """As `nobody`: a file and a folder without read permission; fixed later, both are read
    (the file after the back-off); no repeated quarantine rows."""
    outcome = Outcome("permissions (file mode 000, folder mode 000, as nobody)")
    case = root / "permissions"
    inbox = make_inbox(case, files)
    locked_folder = inbox / "locked"
    make_inbox(locked_folder, 1, offset=files).rename(locked_folder / "in")
    home = case / "home"
    home.mkdir()
    lake = case / "lake"
    for path in [case, *case.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    case.chmod(0o755)
    unreadable = min(inbox.glob("*.txt"))
    unreadable.chmod(0)
    locked_folder.chmod(0)
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    nobody_env = {**env, "HOME": str(home), "PREFECT_HOME": str(home / ".prefect")}
    first = run(ingest_args(inbox, lake, 4), nobody_env, prefix=as_nobody)
    unreadable.chmod(0o644)
    locked_folder.chmod(0o755)
    time.sleep(READ_RETRY_SECONDS + 1)
    run(ingest_args(inbox, lake, 4), nobody_env, prefix=as_nobody)
    outcome.runs = 2
    reasons = [r for r in read_reasons(lake).to_pylist() if r["source_path"] == unreadable.name]
    outcome.notes.append(
        f"first pass exit {first.code}; {unreadable.name}: "
        f"{[r['reason'] for r in reasons]} then read after {READ_RETRY_SECONDS:.0f} s"
    )
    check(outcome, lake, expected_ids(inbox), [])
    return outcome


ODD_NAMES = [
    b"bad\xff\xfename.txt",
    b"with space.txt",
    b"new\nline.txt",
    b"-starts-with-dash.txt",
    "ünïcödé-名前.txt".encode(),
    b"x" * 250 + b".txt",
    b"semi;colon&amp$(echo no).txt",
    b"UPPER.TMP.txt",
]
SKIPPED_NAMES = [
    b".hidden.txt",
    b"skip.tmp",
    b"skip.part",
    b"build.tmp/inside.txt",
    b".git/x.txt",
]


def odd_names(root: Path, env: dict[str, str]) -> Outcome:
    """Names that are not UTF-8, hold newlines, spaces, shell characters, 254 bytes; temp and
    hidden names skipped."""
    outcome = Outcome("odd names (non-UTF-8, newline, 254 bytes, shell characters; temp/hidden)")
    case = root / "odd-names"
    inbox = case / "inbox"
    inbox.mkdir(parents=True)
    sources = sorted(CORPUS.iterdir())
    for source, name in zip(sources, ODD_NAMES + SKIPPED_NAMES, strict=False):
        path = os.path.join(os.fsencode(inbox), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(source.read_bytes())
    lake = case / "lake"
    run(ingest_args(inbox, lake, 4), env)
    outcome.runs = 1
    outcome.notes.append(f"{len(ODD_NAMES)} odd names ingested, {len(SKIPPED_NAMES)} skipped")
    check(outcome, lake, expected_ids(inbox), [])
    return outcome


def path_max(root: Path, env: dict[str, str]) -> Outcome:
    """A cable file at the end of a path longer than PATH_MAX (4096 bytes)."""
    outcome = Outcome("path longer than PATH_MAX")
    case = root / "path-max"
    inbox = make_inbox(case, 2)
    folder = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY)
    depth = 0
    while depth * 201 < 4300:
        os.mkdir("d" * 200, dir_fd=folder)
        inner = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
        os.close(folder)
        folder = inner
        depth += 1
    data = sorted(CORPUS.iterdir())[5].read_bytes()
    fd = os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder)
    os.write(fd, data)
    os.close(fd)
    os.close(folder)
    lake = case / "lake"
    run(ingest_args(inbox, lake, 4), env)
    outcome.runs = 1
    expected = expected_ids(inbox)
    outcome.notes.append(f"path of {depth * 201 + 8} bytes below the inbox")
    if not cable_ids(data) <= expected:
        outcome.problems.append("the harness could not see the deep file")
    check(outcome, lake, expected, [])
    shutil.rmtree(inbox, ignore_errors=True)
    return outcome


TINY = """VZCZC
R 010101Z JAN 08
FM AMEMBASSY PARIS
TO SECSTATE WASHDC
UNCLAS PARIS {serial:06d}
SUBJECT: TINY CABLE {serial}
1. TEXT OF TINY CABLE {serial}.
NNNN
"""


def tiny_files(root: Path, env: dict[str, str], count: int) -> Outcome:
    """`count` tiny one-cable files in 100 folders: time, peak RSS, exactly once."""
    outcome = Outcome(f"{count:,} tiny files")
    case = root / "tiny"
    inbox = case / "inbox"
    for serial in range(count):
        folder = inbox / f"f{serial % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"t{serial}.txt").write_text(TINY.format(serial=serial + 1))
    lake = case / "lake"
    done = run(ingest_args(inbox, lake, 1000), env, timeout=3600)
    outcome.runs = 1
    outcome.notes.append(f"{done.seconds:.0f} s, peak RSS {done.peak_rss_mb:.0f} MB")
    check(outcome, lake, expected_ids(inbox), [])
    shutil.rmtree(inbox, ignore_errors=True)
    return outcome


def huge_file(root: Path, env: dict[str, str]) -> Outcome:
    """A 1 GB file beside real cables: quarantined as oversized without being held in memory."""
    outcome = Outcome("1 GB file")
    case = root / "huge"
    inbox = make_inbox(case, 3)
    with (inbox / "huge.txt").open("wb") as handle:
        block = (min(CORPUS.iterdir()).read_bytes() * 200)[: 1 << 20]
        for _ in range(1024):
            handle.write(block)
    lake = case / "lake"
    done = run(ingest_args(inbox, lake, 4), env)
    reasons = [
        r["reason"] for r in read_reasons(lake).to_pylist() if r["source_path"] == "huge.txt"
    ]
    outcome.runs = 1
    outcome.notes.append(f"{reasons}, {done.seconds:.0f} s, peak RSS {done.peak_rss_mb:.0f} MB")
    if reasons != ["oversized"]:
        outcome.problems.append(f"huge.txt reasons {reasons}")
    (inbox / "huge.txt").unlink()
    check(outcome, lake, expected_ids(inbox), [])
    return outcome


def gzip_bombs(root: Path, env: dict[str, str], count: int) -> Outcome:
    """`count` ~60 KB gzips that expand to ~60 MB each (a cable, then blank lines), and a 1 MB
    gzip of 1 GB: batches by decompressed bytes keep memory to about one such file."""
    outcome = Outcome(f"gzip bombs ({count} x 60 KB -> 60 MB, 1 MB -> 1 GB)")
    case = root / "gzip"
    inbox = make_inbox(case, 2)
    sources = sorted(CORPUS.iterdir())
    for number in range(count):
        payload = sources[10 + number].read_bytes() + b"\n" * (60 * 1024 * 1024)
        (inbox / f"expands-{number}.txt.gz").write_bytes(gzip.compress(payload, 9))
    with gzip.open(inbox / "bomb.gz", "wb", 9) as bomb:
        for _ in range(1024):
            bomb.write(bytes(1 << 20))
    sizes = sorted(path.stat().st_size for path in inbox.glob("*.gz"))
    lake = case / "lake"
    done = run(ingest_args(inbox, lake, 1000), env, timeout=3600)
    reasons = [r["reason"] for r in read_reasons(lake).to_pylist() if r["source_path"] == "bomb.gz"]
    outcome.runs = 1
    outcome.notes.append(
        f"gzip sizes {sizes[0] // 1024}-{sizes[-1] // 1024} KB; bomb: {reasons}; "
        f"{done.seconds:.0f} s, peak RSS {done.peak_rss_mb:.0f} MB"
    )
    if reasons != ["gzip_too_large"]:
        outcome.problems.append(f"bomb.gz reasons {reasons}")
    check(outcome, lake, expected_ids(inbox), [])
    # For comparison, 3 of them in one batch (as when batches were sized by bytes on disk).
    together = case / "together"
    together.mkdir()
    for path in sorted(inbox.glob("expands-*"))[:3]:
        shutil.copy(path, together / path.name)
    one_batch = ingest_args(
        together, case / "lake-one-batch", 1000, "--max-batch-bytes", str(1 << 40)
    )
    compared = run(one_batch, env, timeout=3600)
    outcome.notes.append(f"3 of them in one batch: peak RSS {compared.peak_rss_mb:.0f} MB")
    return outcome


def _own_server_env(case: Path, env: dict[str, str]) -> dict[str, str]:
    """Env for CLI runs that start and reuse their own local server (and warm worker)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    own = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    own.update(
        CABLESTREAM_HOME=str(case / "home"),
        CABLESTREAM_SERVER_PORT=str(port),
        CABLESTREAM_WORKER="on",
        PREFECT_HOME=str(case / "prefect"),
    )
    return own


def _recorded_pid(case: Path, name: str) -> int | None:
    """The pid in `home/server/<name>.pid` (server or worker), None when there is none."""
    try:
        return int((case / "home" / "server" / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _recorded(case: Path) -> set[int]:
    return {pid for pid in (_recorded_pid(case, "server"), _recorded_pid(case, "worker")) if pid}


def _stop_own_server(case: Path, own: dict[str, str], seen: set[int], outcome: Outcome) -> None:
    """`cablestream server stop`, then no process seen (server, worker) may be left."""
    stopped = run(["server", "stop"], own, ok=())
    deadline = time.monotonic() + 15
    while (alive := [pid for pid in seen if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    outcome.notes.append(f"after `server stop` (exit {stopped.code}): {len(alive)} alive")
    if alive:
        outcome.problems.append(f"left running after `server stop`: {alive}")
        for pid in alive:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def orphan_server(root: Path, env: dict[str, str], files: int) -> Outcome:
    """A one-shot ingest with no PREFECT_API_URL starts the local server (and warm worker)
    and is SIGKILLed with its process group at moments of that start and of its pass:
    nothing may be left but the one recorded server and worker, which the next ingest
    reuses and `server stop` ends."""
    outcome = Outcome("SIGKILLed one-shot ingest: Prefect servers left", group="kill")
    case = root / "orphan-server"
    inbox = make_inbox(case, files)
    own = _own_server_env(case, env)
    servers: set[int] = set()
    seen: set[int] = set()
    try:
        for number, moment in enumerate([2.0, 6.0, 12.0, 30.0]):
            lake = case / f"lake-{number}"
            process = start(ingest_args(inbox, lake, 4), own)
            time.sleep(moment)
            kill(process, whole_group=True)
            outcome.runs += 1
            if group_left(process):
                outcome.problems.append(f"kill at {moment} s: processes left in the ingest's group")
            run(ingest_args(inbox, lake, 4), own)
            servers.add(_recorded_pid(case, "server") or 0)
            seen |= _recorded(case)
            check(outcome, lake, expected_ids(inbox), [process])
        outcome.notes.append(
            f"kills at 2, 6, 12, 30 s; servers in use after each rerun: {len(servers)}"
        )
        if len(servers) != 1:
            outcome.problems.append(f"{len(servers)} servers started (one expected, reused)")
    finally:
        _stop_own_server(case, own, seen | _recorded(case), outcome)
    return outcome


def kill_worker(root: Path, env: dict[str, str], kills: int, files: int) -> Outcome:
    """SIGKILL the warm worker (alone or its process group, in turn) while it runs a pass
    for `cablestream ingest`: the CLI runs the pass itself, the next run recovers."""
    outcome = Outcome("kill -9 of the warm worker during an ingest pass", group="kill")
    case = root / "kill-worker"
    own = _own_server_env(case, env)
    seen: set[int] = set()
    try:
        run(["server", "start"], own)
        ready = case / "home" / "server" / "worker.ready"
        _wait_for(ready.exists, 300)
        timing = make_inbox(case / "timing", files)
        seconds = run(ingest_args(timing, case / "timing" / "lake", 4), own).seconds
        outcome.notes.append(f"uninterrupted {seconds:.1f} s (pass in the worker)")
        seen |= _recorded(case)
        for number, moment in enumerate(_moments(seconds, kills)):
            _wait_for(ready.exists, 300)
            inbox = make_inbox(case / f"run-{number}", files)
            lake = case / f"run-{number}" / "lake"
            worker = _recorded_pid(case, "worker")
            with both_readers(lake) as (snap, _folder):
                process = start(ingest_args(inbox, lake, 4), own)
                time.sleep(moment)
                if worker is not None:
                    with suppress(ProcessLookupError):
                        if number % 2:
                            os.killpg(worker, signal.SIGKILL)
                        else:
                            os.kill(worker, signal.SIGKILL)
                process.communicate(timeout=900)
                run(ingest_args(inbox, lake, 4), own)
            seen |= _recorded(case)
            check(outcome, lake, expected_ids(inbox), [process])
            outcome.problems += _snapshot_problems(snap)
            outcome.runs += 1
        outcome.notes.append(f"moments {', '.join(f'{m:.1f}' for m in _moments(seconds, kills))} s")
    finally:
        _stop_own_server(case, own, seen | _recorded(case), outcome)
    return outcome


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def fuzz(inputs: int, workers: int) -> Outcome:
    """bench/fuzz_parser.py as it is: inputs, exceptions, hangs, worst CPU time per result."""
    outcome = Outcome(f"fuzzed inputs through parse_source ({inputs:,})", group="fuzz")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "fuzz.json"
        command = [
            sys.executable,
            str(BENCH / "fuzz_parser.py"),
            "--inputs",
            str(inputs),
        ]
        command += ["--workers", str(workers), "--out", str(out)]
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, timeout=6 * 3600)
        report = json.loads(out.read_text())
    outcome.runs = int(report["inputs"])
    worst = max((tuple(value) for value in report["worst_per_kind"].values()), default=(0.0, -1))
    growth = {
        family: "x" + " x".join(f"{b / max(a, 1e-4):.1f}" for a, b in itertools.pairwise(times))
        for family, times in report["growth"].items()
    }
    worst_growth = max(growth.items(), key=lambda item: item[1], default=("", ""))
    outcome.notes.append(
        f"exceptions {len(report['exceptions'])}, hangs {len(report['hangs'])}, "
        f"worst {worst[0] * 1000:.1f} ms per result (input {worst[1]}), "
        f"over 50 ms: {len(report['slow_inputs'])}; growth per 4x size, steepest: "
        f"{worst_growth[0]} {worst_growth[1]}"
    )
    if report["exceptions"] or report["hangs"]:
        outcome.problems.append(f"{report['exceptions'][:3]} {report['hangs'][:3]}")
    return outcome


# --- the run -----------------------------------------------------------------------------------


@contextmanager
def prefect_server(root: Path) -> Iterator[dict[str, str]]:
    """The local Prefect server the CLI uses (flows/server.py), in a scratch home; stopped after."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(
        CABLESTREAM_HOME=str(root / "server-home"),
        CABLESTREAM_SERVER_PORT=str(port),
        # Passes run in the CLI process (what the kills hit); kill_worker turns it on.
        CABLESTREAM_WORKER="off",
        PREFECT_HOME=str(root / "server-home" / "prefect"),
    )
    from cablestream.flows import server
    from cablestream.flows.commands import prepare_prefect

    prepare_prefect()
    started = server.start()
    try:
        yield {**os.environ, "PREFECT_API_URL": started.url}
    finally:
        server.stop()


GROUP_TITLES = {
    "kill": "kill points (SIGKILL of the process / of its process group, in turn)",
    "concurrent": "concurrent runs",
    "fault": "faults",
    "reading": "reader loops",
    "fuzz": "fuzzing",
}


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| group | scenario | runs | wrong lakes / problems | outcome |",
        "|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        lines.append(
            f"| {outcome.group} | {outcome.scenario} | {outcome.runs} | {len(outcome.problems)} | "
            f"{'; '.join(outcome.notes)} |".replace("\n", " ")
        )
    kills = [o for o in outcomes if o.group == "kill" and "servers" not in o.scenario]
    lines.append(
        f"| total | kill points | {sum(o.runs for o in kills)} | "
        f"{sum(len(o.problems) for o in kills)} | |"
    )
    for through, stats in READ_TOTALS.items():
        lines.append(
            f"| total | reader-loop queries through the {through} | {stats.queries} | "
            f"{stats.wrong + stats.failed} | {stats.wrong} wrong, {stats.failed} failed "
            f"{stats.errors} |"
        )
    for outcome in outcomes:
        lines += [f"    problem ({outcome.scenario}): {problem}" for problem in outcome.problems]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8, help="kill moments per kind (watch: half)")
    parser.add_argument("--files", type=int, default=40, help="corpus files per scenario")
    parser.add_argument("--watch-files", type=int, default=567, help="files fed to watch")
    parser.add_argument("--tiny", type=int, default=20_000, help="tiny files")
    parser.add_argument("--bombs", type=int, default=8, help="60 KB -> 60 MB gzips")
    parser.add_argument("--fuzz-inputs", type=int, default=100_000)
    parser.add_argument("--fuzz-workers", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("--audit", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--audit-inbox", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.audit is not None:  # inside a mount namespace (disk_full, read_only_lake)
        print(json.dumps(audit_lake(options.audit, expected_ids(options.audit_inbox))))
        return
    root = options.work or Path(tempfile.mkdtemp(prefix="cablestream-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    k, n = options.kills, options.files
    scenarios: dict[str, Callable[[dict[str, str]], list[Outcome]]] = {
        "kill_ingest": lambda env: [kill_ingest(root, env, k, n, 4)],
        "kill_compact": lambda env: [kill_compact(root, env, k, 3 * n)],
        "kill_watch": lambda env: [kill_watch(root, env, max(k // 2, 1), n)],
        "kill_reprocess": lambda env: [kill_reprocess(root, env, max(k // 2, 1), 3 * n)],
        "kill_worker": lambda env: [kill_worker(root, env, max(k // 2, 1), n)],
        "orphan_server": lambda env: [orphan_server(root, env, 8)],
        "concurrent": lambda env: _concurrent(root, env, n),
        "watch_compact": lambda env: watch_and_compact(root, env, options.watch_files),
        "disk_full": lambda env: [disk_full(root, env, n)],
        "locked_ledger": lambda env: [locked_ledger(root, env, n, 5)],
        "locked_ledger_long": lambda env: [locked_ledger(root, env, n, 70)],
        "read_only": lambda env: [read_only_lake(root, env, n)],
        "races": lambda env: [discovery_races(root, env, n)],
        "symlinks": lambda env: [symlink_swap(root, env, n)],
        "slow_writer": lambda env: [slow_writer(root, env)],
        "permissions": lambda env: [permissions(root, env, 8)],
        "odd_names": lambda env: [odd_names(root, env)],
        "path_max": lambda env: [path_max(root, env)],
        "tiny_files": lambda env: [tiny_files(root, env, options.tiny)],
        "huge_file": lambda env: [huge_file(root, env)],
        "gzip_bombs": lambda env: [gzip_bombs(root, env, options.bombs)],
        "fuzz": lambda env: [fuzz(options.fuzz_inputs, options.fuzz_workers)],
    }
    chosen = [name for name in options.only.split(",") if name] or list(scenarios)
    unknown = set(chosen) - set(scenarios)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(scenarios)}")
    outcomes: list[Outcome] = []
    with prefect_server(root) as env:
        for name in chosen:
            began = time.monotonic()
            try:
                found = scenarios[name](env)
            except (
                RuntimeError,
                OSError,
                subprocess.SubprocessError,
                ValueError,
            ) as error:
                # A scenario that breaks (a run fails or times out) is a finding, not the end.
                found = [Outcome(name, problems=[f"harness error: {error!r}"[:500]])]
            outcomes += found
            print(
                f"{name}: {time.monotonic() - began:.0f} s, "
                f"{sum(len(o.problems) for o in found)} problems",
                file=sys.stderr,
                flush=True,
            )
    report = table(outcomes)
    print(report)
    if options.out is not None:
        options.out.write_text(report + "\n", encoding="utf-8")
    if options.work is None:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if any(outcome.problems for outcome in outcomes) else 0)


def _concurrent(root: Path, env: dict[str, str], files: int) -> list[Outcome]:
    ingesters, reading, lake = two_ingesters(root, env, files)
    compactors, compact_reading = two_compactors(
        lake, env, expected_ids(root / "two-ingesters" / "inbox")
    )
    return [ingesters, reading, compactors, compact_reading]


if __name__ == "__main__":
    main()
