"""Validation's share of ingest time and memory, on the real corpus.

Run: `.venv/bin/python bench/validate_bench.py [--rounds 5] [--files DIR] [--ingest]`

In-process part (always), one process, corpus parsed once in memory:
- parse: `parse_source` over every file (the work validation is compared with);
- GE fixed cost: `import great_expectations` + ephemeral context + suite, paid once
  per process (the context is reused by every later batch), time and RSS growth;
- validate: `validate_batch` on the corpus table (median of the rounds after a
  warm-up), split into building the pandas frame and the GE run, and the same on
  tables of 5,000 and 20,000 rows (the corpus rows repeated with fresh record ids);
- validate includes the Data Docs page (built by the checkpoint's action);
- record_quality: the quality Parquet rows of one batch.

`--ingest` adds the end-to-end comparison (DESIGN.md section 8: a ratio in one run):
two child processes each run the ingest flow over a copy of the corpus into an empty
lake, one as shipped and one with validation replaced by a pass-through; the
difference in flow time and in peak RSS (the child's own ru_maxrss; the Prefect
server is a separate process) is validation's share.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = REPO_ROOT.parent / "shared" / "corpus" / "files"


def rss_mb() -> float:
    """Current resident set size of this process (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """Peak RSS of this process since its exec (VmHWM; ru_maxrss survives exec on Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_corpus(files: Path) -> tuple[pa.Table, float]:
    from cablestream.schemas.arrow import records_to_table
    from cablestream.schemas.record import CableRecord
    from cablestream.tasks.parse import parse_source

    sources = [(p, p.read_bytes()) for p in sorted(files.rglob("*")) if p.is_file()]
    started = time.perf_counter()
    records = [
        r
        for path, data in sources
        for r in parse_source(data, path.relative_to(files).as_posix())
        if isinstance(r, CableRecord)
    ]
    seconds = time.perf_counter() - started
    return records_to_table(records), seconds


def repeated(table: pa.Table, rows: int) -> pa.Table:
    """`rows` rows made of the corpus rows repeated, each with a fresh record id."""
    import hashlib

    copies = -(-rows // table.num_rows)
    big = pa.concat_tables([table] * copies).slice(0, rows)
    ids = pa.array([hashlib.sha256(str(i).encode()).hexdigest() for i in range(rows)])
    big = big.set_column(big.schema.get_field_index("record_id"), "record_id", ids)
    # Distinct reference ids too (a second serial per copy), as a real batch has.
    refs = [
        None if ref is None else f"{ref}{i // table.num_rows or ''}"
        for i, ref in enumerate(big.column("reference_id").to_pylist())
    ]
    return big.set_column(
        big.schema.get_field_index("reference_id"), "reference_id", pa.array(refs)
    )


def median_time(fn: Any, rounds: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def in_process(files: Path, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_start_mb": round(rss_mb(), 1)}
    table, parse_seconds = parse_corpus(files)
    out["cables"] = table.num_rows
    out["parse_seconds"] = round(parse_seconds, 3)
    out["rss_after_parse_mb"] = round(rss_mb(), 1)

    from cablestream.tasks.quality import engine, frame, tables, validate

    before = rss_mb()
    started = time.perf_counter()
    engine.get_engine()
    out["ge_setup_seconds"] = round(time.perf_counter() - started, 2)
    out["ge_setup_rss_mb"] = round(rss_mb() - before, 1)

    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        lake.mkdir()
        batch_id = "20261125T000000Z-00000000"
        for rows in (table.num_rows, 5_000, 20_000):
            data = table if rows == table.num_rows else repeated(table, rows)
            before = rss_mb()
            total = median_time(lambda d=data: validate.validate_batch(d, batch_id, lake), rounds)
            to_frame = median_time(lambda d=data: frame.build_frame(d), rounds)
            out[f"validate_{rows}_rows"] = {
                "seconds": round(total, 3),
                "build_frame_seconds": round(to_frame, 3),
                "ge_run_seconds": round(total - to_frame, 3),
                "rows_per_second": round(rows / total),
                "rss_growth_mb": round(rss_mb() - before, 1),
            }
        outcome = validate.validate_batch(table, batch_id, lake)
        quality = median_time(lambda: tables.record_batch_quality(outcome, batch_id, lake), rounds)
        out["record_quality_seconds"] = round(quality, 3)
    corpus = out[f"validate_{table.num_rows}_rows"]["seconds"]
    out["validate_vs_parse"] = round(corpus / parse_seconds, 3)
    out["rss_end_mb"] = round(rss_mb(), 1)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


_CHILD = r"""
import json, os, sys, time
from pathlib import Path
from cablestream.schemas import lake as layout
if os.environ.get("BENCH_NO_VALIDATE") == "1":
    from cablestream.tasks.quality import tables, validate
    validate.validate_batch = lambda table, batch_id, lake: validate.ValidationOutcome(
        accepted=table, rows_in=table.num_rows)
    tables.record_batch_quality = lambda outcome, batch_id, lake: None
if os.environ.get("BENCH_WARM_UP") == "1":
    from cablestream.tasks.quality import engine
    engine.warm_up_in_background()
from cablestream.flows.ingest import ingest_flow
started = time.perf_counter()
summary = ingest_flow(inbox=sys.argv[1], lake=sys.argv[2], settle_seconds=0,
                      max_files_per_batch=1000, max_batch_bytes=1 << 30)
wall = time.perf_counter() - started
quality = layout.quality_dir(Path(sys.argv[2])) / "batches"
validation_seconds = 0.0
if quality.is_dir():
    import pyarrow.parquet as pq
    validation_seconds = sum(pq.read_table(quality).column("validation_seconds").to_pylist())
print(json.dumps({
    "flow_seconds": summary["seconds"], "wall_seconds": wall,
    "rows_written": summary["rows_written"], "rows_quarantined": summary["rows_quarantined"],
    "validation_seconds_in_flow": validation_seconds,
    "peak_rss_mb": [int(l.split()[1]) / 1024 for l in open("/proc/self/status")
                    if l.startswith("VmHWM:")][0],
}))
"""


def ingest_child(files: Path, no_validate: bool, warm_up: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp) / "inbox"
        shutil.copytree(files, inbox)
        env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false")
        env["BENCH_NO_VALIDATE"] = "1" if no_validate else "0"
        env["BENCH_WARM_UP"] = "1" if warm_up else "0"
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(inbox), str(Path(tmp) / "lake")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


def ingest(files: Path) -> dict[str, Any]:
    shipped = ingest_child(files, no_validate=False)
    bare = ingest_child(files, no_validate=True)
    warmed = ingest_child(files, no_validate=False, warm_up=True)
    return {
        "with_validation": shipped,
        "without_validation": bare,
        "with_validation_ge_warmed_up_during_server_start": warmed,
        "warmed_validation_share_of_flow_time": round(
            1 - bare["flow_seconds"] / warmed["flow_seconds"], 3
        ),
        "warmed_validation_share_of_wall_time": round(
            1 - bare["wall_seconds"] / warmed["wall_seconds"], 3
        ),
        "validation_share_of_flow_time": round(
            1 - bare["flow_seconds"] / shipped["flow_seconds"], 3
        ),
        "validation_share_of_wall_time": round(
            1 - bare["wall_seconds"] / shipped["wall_seconds"], 3
        ),
        "validation_share_of_peak_rss": round(1 - bare["peak_rss_mb"] / shipped["peak_rss_mb"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ingest", action="store_true", help="also the end-to-end comparison")
    args = parser.parse_args()
    report: dict[str, Any] = {"in_process": in_process(args.files, args.rounds)}
    if args.ingest:
        report["ingest"] = ingest(args.files)
    text = json.dumps(report, indent=2)
    print(text)
    out = REPO_ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "validate_bench.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
