"""Both cores in a pass: parsing a batch's files on one thread, on N threads, on N processes.

Run: `.venv/bin/python bench/pass_cores.py [--files DIR] [--rounds 3] [--workers 2]`

The files (default: the shared corpus) are read into memory once and parsed as one
claimed batch by `tasks/batch/route.parse_batch` (split, parse, each file's cables
to Arrow rows), interleaved per round so drift in machine load hits all alike:

- serial: `parse_batch(batch, workers=1)`;
- threads: `parse_batch(batch, workers=N)` (what the ingest runs: `regex` releases
  the GIL while it matches);
- processes: the same per-file work in a `ProcessPoolExecutor` of N, each file's rows
  sent back as an Arrow table (what a process pool would cost, pickling included).

Wall time, medians over the rounds; printed as cables/s and the ratios threads/serial
and processes/serial, in one run. The machine is shared: the ratios are what counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa

from cablestream.tasks.batch.claim import ClaimedBatch, LoadedFile
from cablestream.tasks.batch.route import parse_batch
from cablestream.tasks.inbox.folder import InboxFile
from cablestream.tasks.ledger.protocol import ClaimedFile

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = REPO_ROOT.parent / "shared" / "corpus" / "files"


def claimed_batch(files: list[Path]) -> ClaimedBatch:
    """The files as one claimed batch, their bytes in memory (no ledger, no inbox)."""
    import hashlib

    loaded = []
    for file_id, path in enumerate(files):
        data = path.read_bytes()
        claim = ClaimedFile(
            file_id, path.name, hashlib.sha256(data).hexdigest(), len(data), 0, None
        )
        found = InboxFile(path.name, len(data), 0)
        loaded.append(LoadedFile(claim, data, None, "", found))
    return ClaimedBatch("20261130T000000Z-00000000", loaded)


def _rows_of(item: tuple[bytes, str, str]) -> pa.Table | None:
    from cablestream.tasks.batch import route

    rows, _ = route.parse_chunk([item])
    return rows


def run_processes(pool: ProcessPoolExecutor, batch: ClaimedBatch) -> int:
    items = [(f.data, f.claim.path, f.claim.sha256) for f in batch.files if f.data is not None]
    tables = [table for table in pool.map(_rows_of, items, chunksize=4) if table is not None]
    return sum(table.num_rows for table in tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    files = sorted(p for p in args.files.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    times: dict[str, list[float]] = {"serial": [], "threads": [], "processes": []}
    cables = 0
    with ProcessPoolExecutor(args.workers) as pool:
        run_processes(pool, claimed_batch(files[:8]))  # start the workers outside the timing
        for _ in range(args.rounds):
            for name in times:
                batch = claimed_batch(files)
                started = time.perf_counter()
                if name == "processes":
                    count = run_processes(pool, batch)
                else:
                    workers = 1 if name == "serial" else args.workers
                    count = parse_batch(batch, workers=workers).table.num_rows
                times[name].append(time.perf_counter() - started)
                assert cables in (0, count), f"{name} parsed {count} cables, not {cables}"
                cables = count
    seconds = {name: statistics.median(values) for name, values in times.items()}
    report = {
        "files": len(files),
        "mb": round(size / 1e6, 1),
        "cables": cables,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "cables_per_s": {name: round(cables / s) for name, s in seconds.items()},
        "threads_vs_serial": round(seconds["serial"] / seconds["threads"], 2),
        "processes_vs_serial": round(seconds["serial"] / seconds["processes"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
