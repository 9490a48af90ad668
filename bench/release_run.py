"""The full-release run of issue 15 (items 5 and 6), one section of bench/ingest_bench.py.

Run: `.venv/bin/python bench/ingest_bench.py --release 251287 [--spark]`

1. A generated corpus of N cables in the release's mix (bench/generate_corpus.py, seed
   15; `--release-corpus DIR` reuses one), and a compare set: its first files up to
   `--compare-cables` (25,000) cables, hard-linked into an inbox of their own.
2. End to end, each set: `cablestream ingest` (validation on) as a subprocess against
   the bench's local server, its pass in that process (CABLESTREAM_WORKER=off), its file
   groups in worker processes (the default on >= 2 cores): peak RSS is that of the whole
   process tree (sampled every 0.2 s), CPU that of the process and its worker processes;
   cables/s and MB/s over the flow's own time, the fixed start-up cost (wall minus flow
   time: Python, Prefect, GE, exit), busy seconds per stage (the flow run's task runs,
   from the Prefect API).
3. Every cable exactly once: lake rows, distinct record_ids and quarantined rows
   against the parser's count in the same pass (and, on the compare set, against an
   independent parse of the same files: the same record_ids).
4. One-core parse-only on the compare set (this process, `parse_source` per file) and
   the ratio end-to-end / parse-only cables/s; peak RSS of the compare set against the
   full set.
5. `--spark [CABLES]`: the Spark Structured Streaming baseline (bench/spark_baseline.py)
   on the compare set (the ingest's figures of step 2 are the other side), or on the
   first CABLES cables' files, ingested end to end once more; the ratio of their cables/s.
6. The whole corpus end to end, its exactly-once check and its peak RSS against the
   compare set's. The report is written after every step (a cut run keeps its figures).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cablestream.schemas import lake as layout

BENCH = Path(__file__).resolve().parent
SEED = 15


def corpus(cables: int, out: Path) -> dict[str, Any]:
    """The generated corpus at `out` (made now unless it is there with `cables` cables)."""
    manifest = out / "manifest.jsonl"
    made = None
    if not manifest.is_file():
        started = time.perf_counter()
        generate = [sys.executable, str(BENCH / "generate_corpus.py"), "--cables", str(cables)]
        subprocess.run(
            [*generate, "--out", str(out), "--seed", str(SEED)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        made = round(time.perf_counter() - started, 1)
    counts = Counter(json.loads(line)["file"] for line in manifest.open(encoding="utf-8"))
    if sum(counts.values()) != cables:
        raise SystemExit(f"{out} holds {sum(counts.values())} cables, not {cables}")
    return {"dir": str(out), "cables": cables, "files": len(counts), "generated_s": made}


def compare_set(release: Path, cables: int, inbox: Path) -> int:
    """Hard-link the release's first files into `inbox` until `cables`; the cables linked."""
    per_file: Counter[str] = Counter()
    for line in (release / "manifest.jsonl").open(encoding="utf-8"):
        per_file[json.loads(line)["file"]] += 1  # manifest order = file order
    linked = 0
    for name, count in per_file.items():
        if linked >= cables:
            break
        target = inbox / name.removeprefix("files/")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(release / name, target)
        linked += count
    return linked


def _stage_seconds(flow_run_id: str) -> dict[str, float]:
    """Busy seconds per task name in the flow run (stages may overlap: they can add past wall)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    busy: Counter[str] = Counter()
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])),
                limit=200,
                offset=offset,
            )
            for run in runs:
                busy[run.name.rsplit("-", 1)[0]] += run.total_run_time.total_seconds()
            if len(runs) < 200:
                break
            offset += 200
    return {name: round(seconds, 1) for name, seconds in busy.most_common()}


class TreeSampler:
    """Peak RSS of a process and all its descendants (worker processes included), summed
    and per process, sampled every `interval` seconds in a thread while the block runs."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_tree = 0
        self.peak_process = 0
        self.peak_root = 0
        # Each process's RSS at the moment of the tree's peak: the flow's process first.
        self.at_peak_tree: list[int] = []
        self.most_processes = 0
        self.cpu_seen: dict[int, float] = {}  # pid -> CPU seconds at its last sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = []
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return  # the root has ended
            for process in tree:
                try:
                    sizes.append(process.memory_info().rss)
                    times = process.cpu_times()
                except psutil.Error:
                    continue  # ended between the listing and the reading
                self.cpu_seen[process.pid] = times.user + times.system
            self.peak_root = max(self.peak_root, sizes[0] if sizes else 0)
            if sum(sizes) > self.peak_tree:
                self.peak_tree = sum(sizes)
                self.at_peak_tree = sizes
            self.peak_process = max([self.peak_process, *sizes])
            self.most_processes = max(self.most_processes, len(sizes))
            self._stop.wait(self.interval)


def end_to_end(inbox: Path, lake: Path, runner: str | None = None) -> dict[str, Any]:
    """`cablestream ingest` of the inbox in a child process: summary, wall, CPU and the
    peak RSS of its whole process tree (its worker processes included, sampled).

    `runner`: CABLESTREAM_GROUP_RUNNER for the pass (None: the default).
    """
    load_before = os.getloadavg()[0]
    command = [sys.executable, "-m", "cablestream.flows.cli", "ingest", "--inbox", str(inbox)]
    command += ["--lake", str(lake), "--settle-seconds", "0", "--json"]
    env = {**os.environ, "CABLESTREAM_WORKER": "off"}
    if runner is not None:
        env["CABLESTREAM_GROUP_RUNNER"] = runner
    # CPU of the pass's process and of every process it waited for (its worker processes):
    # this process's other children (the bench's Prefect server) are not waited for yet.
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with (
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as child,
        TreeSampler(child.pid) as sampled,
    ):
        stdout, stderr = child.communicate()
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
    if done.returncode not in (0, 3):  # 3: a batch flagged by a `fail` rule (reported)
        raise RuntimeError(f"ingest exit {done.returncode}: {done.stderr[-3000:]}")
    cpu_s = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
    summary = json.loads(done.stdout)
    flow_s = float(summary["seconds"])
    megabytes = summary["bytes"] / 1e6
    return {
        "files": summary["files"],
        "mb": round(megabytes, 1),
        "cables_parsed": summary["cables"],
        "rows_written": summary["rows_written"],
        "rows_quarantined": summary["rows_quarantined"],
        "files_quarantined": summary["files_quarantined"],
        "batches": summary["batches"],
        "wall_s": round(wall, 1),
        "flow_s": round(flow_s, 1),
        "fixed_start_up_s": round(wall - flow_s, 1),
        "cables_per_s": round(summary["cables"] / flow_s, 1),
        "mb_per_s": round(megabytes / flow_s, 2),
        # The whole tree's (the flow's process and its worker processes), sampled.
        "peak_rss_mb": round(sampled.peak_tree / 2**20, 1),
        "peak_rss_mb_one_process": round(sampled.peak_process / 2**20, 1),
        "peak_rss_mb_flow_process": round(sampled.peak_root / 2**20, 1),
        # What made the tree's peak: the flow's process, then the others (largest first).
        "rss_mb_at_tree_peak": [
            round(size / 2**20)
            for size in sampled.at_peak_tree[:1] + sorted(sampled.at_peak_tree[1:], reverse=True)
        ],
        "processes": sampled.most_processes,
        "cpu_s": round(cpu_s, 1),
        # Of it, the flow's own process (claim, commit, Prefect) as last sampled: the rest
        # is its worker processes' (or its threads', when the groups ran on them).
        "cpu_s_flow_process": round(sampled.cpu_seen.get(child.pid, 0.0), 1),
        "cores_busy": round(cpu_s / wall, 2),
        "exit_code": done.returncode,
        # The machine is shared: its 1-minute load average before and after the pass.
        "load_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "stage_busy_s": _stage_seconds(summary["flow_run_url"].rsplit("/", 1)[1]),
    }


def lake_ids(lake: Path) -> tuple[list[str], list[str]]:
    """record_ids of the lake's rows (duplicates kept) and of the quarantined rows."""
    table = ds.dataset(lake, format="parquet", partitioning="hive").to_table(columns=["record_id"])
    reasons = layout.quarantine_dir(lake, layout.QUARANTINE_REASONS_DIR)
    quarantined = [
        str(value)
        for part in sorted(reasons.glob("*.parquet"))
        for value in pq.read_table(part, columns=["record_id"]).column(0).to_pylist()
        if value
    ]
    return [str(v) for v in table.column("record_id").to_pylist()], quarantined


def exactly_once(result: dict[str, Any], lake: Path, parser_ids: set[str] | None) -> None:
    rows, quarantined = lake_ids(lake)
    result["lake_rows"] = len(rows)
    result["lake_distinct_record_ids"] = len(set(rows))
    result["quarantined_row_ids"] = len(set(quarantined))
    accounted = len(set(rows) | set(quarantined))
    result["every_cable_once"] = (
        len(rows) == len(set(rows)) and not set(rows) & set(quarantined)
    ) and accounted == result["cables_parsed"]
    if parser_ids is not None:
        result["same_ids_as_independent_parse"] = set(rows) | set(quarantined) == parser_ids


def parse_only(inbox: Path) -> dict[str, Any]:
    """One core, this process: `parse_source` over every file (reading timed apart)."""
    from cablestream.schemas.record import CableRecord
    from cablestream.tasks.parse import parse_source

    ids: set[str] = set()
    load_before = os.getloadavg()[0]
    read_s = parse_s = 0.0
    cables = 0
    for path in sorted(p for p in inbox.rglob("*") if p.is_file()):
        started = time.perf_counter()
        data = path.read_bytes()
        read_s += time.perf_counter() - started
        started = time.perf_counter()
        records = parse_source(data, path.relative_to(inbox).as_posix())
        parse_s += time.perf_counter() - started
        for record in records:
            if isinstance(record, CableRecord):
                cables += 1
                ids.add(record.record_id)
    return {
        "cables": cables,
        "parse_s": round(parse_s, 1),
        "read_s": round(read_s, 1),
        "cables_per_s": round(cables / parse_s, 1),
        "load_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "ids": ids,
    }


def run(
    release_cables: int,
    compare_cables: int,
    release_dir: Path,
    work: Path,
    spark_cables: int | None,
    save: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """The whole section; `save` gets the report after every step (a long run may be cut)."""
    report: dict[str, Any] = {"corpus": corpus(release_cables, release_dir)}
    compare_inbox = work / "compare-inbox"
    report["compare_set_cables"] = compare_set(release_dir, compare_cables, compare_inbox)

    parsed = parse_only(compare_inbox)
    parser_ids = parsed.pop("ids")
    report["parse_only_one_core_compare_set"] = parsed
    save(report)

    small = end_to_end(compare_inbox, work / "compare-lake")
    exactly_once(small, work / "compare-lake", parser_ids)
    report["end_to_end_compare_set"] = small
    report["ratio_end_to_end_vs_parse_only"] = round(
        small["cables_per_s"] / parsed["cables_per_s"], 2
    )
    save(report)
    if spark_cables is not None:
        if spark_cables in (0, compare_cables):  # the compare set: its ingest is done
            report["spark"] = spark_against(small, compare_inbox, work / "compare-lake", work)
        else:
            report["spark"] = spark_comparison(release_dir, spark_cables, work)
        save(report)

    full = end_to_end(release_dir / "files", work / "release-lake")
    exactly_once(full, work / "release-lake", None)
    report["end_to_end_release"] = full
    report["peak_rss_full_vs_compare"] = round(full["peak_rss_mb"] / small["peak_rss_mb"], 2)
    save(report)
    return report


def spark_comparison(release_dir: Path, cables: int, work: Path) -> dict[str, Any]:
    """Spark and the ingest on the same first `cables` cables' files."""
    inbox = work / "spark-inbox"
    compare_set(release_dir, cables, inbox)
    ingest = end_to_end(inbox, work / "spark-set-lake")
    exactly_once(ingest, work / "spark-set-lake", None)
    return spark_against(ingest, inbox, work / "spark-set-lake", work)


def spark_against(ingest: dict[str, Any], inbox: Path, lake: Path, work: Path) -> dict[str, Any]:
    """Spark on `inbox`, which the ingest (its figures, its `lake`) took end to end."""
    import spark_baseline

    baseline = spark_baseline.run(inbox, work / "spark")
    rows, quarantined = lake_ids(lake)
    baseline["same_ids_as_the_ingest"] = baseline.pop("record_ids") == set(rows) | set(quarantined)
    return {
        "cables": ingest["cables_parsed"],
        "end_to_end": ingest,
        "spark_local_2": baseline,
        "ratio_end_to_end_vs_spark": round(ingest["cables_per_s"] / baseline["cables_per_s"], 2),
    }


def print_report(report: dict[str, Any]) -> None:
    corpus_facts = report["corpus"]
    print(
        f"\nrelease run: {corpus_facts['cables']} cables in {corpus_facts['files']} files "
        f"({corpus_facts['dir']}; generated in {corpus_facts['generated_s']} s)"
    )
    sets = [("compare set", report["end_to_end_compare_set"])]
    if "end_to_end_release" in report:
        sets.append(("full release", report["end_to_end_release"]))
    keys = [
        "files",
        "mb",
        "cables_parsed",
        "lake_rows",
        "lake_distinct_record_ids",
        "quarantined_row_ids",
        "every_cable_once",
        "wall_s",
        "flow_s",
        "fixed_start_up_s",
        "cables_per_s",
        "mb_per_s",
        "peak_rss_mb",
        "peak_rss_mb_one_process",
        "peak_rss_mb_flow_process",
        "rss_mb_at_tree_peak",
        "processes",
        "cpu_s",
        "cores_busy",
        "load_before_after",
    ]
    print(f"{'end to end':28}" + "".join(f"{name:>16}" for name, _ in sets))
    for key in keys:
        print(f"{key:28}" + "".join(f"{facts.get(key)!s:>16}" for _, facts in sets))
    for name, facts in sets:
        stages = ", ".join(f"{stage} {seconds}" for stage, seconds in facts["stage_busy_s"].items())
        print(f"busy s per stage, {name}: {stages}")
    parsed = report["parse_only_one_core_compare_set"]
    print(
        f"one-core parse-only, compare set: {parsed['cables_per_s']} cables/s "
        f"(load {parsed['load_before_after']}) "
        f"-> end to end / parse-only = {report['ratio_end_to_end_vs_parse_only']}"
    )
    if "spark" in report:
        spark = report["spark"]
        print(
            f"{spark['cables']} cables (same files): end to end {spark['end_to_end']['cables_per_s']} "
            f"cables/s, Spark local[2] {spark['spark_local_2']['cables_per_s']} cables/s "
            f"-> end to end / Spark = {spark['ratio_end_to_end_vs_spark']}"
        )
    if "peak_rss_full_vs_compare" in report:
        print(f"peak RSS full / compare set: {report['peak_rss_full_vs_compare']}")
