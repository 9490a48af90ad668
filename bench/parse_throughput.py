"""Parse-only throughput on one core, as a ratio to an I/O floor measured in the same run.

Run: `.venv/bin/python bench/parse_throughput.py [--rounds 5] [--files DIR]`

DESIGN.md section 8: throughput is a ratio, never a bare time, because this machine's
speed is unknown to the reader. Each round times two things over the same files:

- parse: `parse_source` over every file's bytes, already in memory (no I/O counted);
- I/O floor: read the same files from disk, decode them (gunzip `.gz`, UTF-8 with
  replacement) and write their text as a one-column Parquet file with pyarrow: the
  least work any ingest of these files must do.

The process is pinned to one CPU (Linux), each figure is the median over the rounds
(the first round also pays warm-up), and the ratio parse time / floor time says how
many times more expensive parsing is than just moving the text into Parquet.
Files are read from the page cache after the first round: the floor is a CPU floor
for decode + Parquet encode + write, not a cold-disk figure.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cablestream.schemas.record import CableRecord
from cablestream.tasks.parse import parse_source

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = REPO_ROOT.parent / "shared" / "corpus" / "files"
DEFAULT_OUT = REPO_ROOT / "bench" / "out" / "parse_throughput.json"


@dataclass(frozen=True, slots=True)
class Result:
    files: int
    megabytes: float
    cables: int
    rounds: int
    cpu: int | None
    parse_s: float
    floor_s: float

    @property
    def parse_cables_per_s(self) -> float:
        return self.cables / self.parse_s

    @property
    def floor_cables_per_s(self) -> float:
        return self.cables / self.floor_s

    @property
    def ratio(self) -> float:
        """How many times longer parsing takes than the I/O floor."""
        return self.parse_s / self.floor_s


def pin_to_one_core() -> int | None:
    """Run on one CPU so the figure is per core even if a library starts threads."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def cable_files(root: Path) -> list[Path]:
    """Every cable file under root (a corpus `files/` folder or a generated corpus)."""
    skip = {"manifest.jsonl", "README.md"}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in skip)


def time_parse(sources: list[tuple[str, bytes]]) -> tuple[float, int]:
    """Seconds to parse every source, and the number of cable records returned."""
    cables = 0
    started = time.perf_counter()
    for name, data in sources:
        cables += sum(isinstance(result, CableRecord) for result in parse_source(data, name))
    return time.perf_counter() - started, cables


def time_io_floor(paths: list[Path], out_dir: Path) -> float:
    """Seconds to read, decode and write the files' text as one-column Parquet."""
    started = time.perf_counter()
    texts = []
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        texts.append(data.decode("utf-8", errors="replace"))
    table = pa.table({"text": pa.array(texts, type=pa.large_string())})
    pq.write_table(table, out_dir / "floor.parquet")
    return time.perf_counter() - started


def measure(root: Path, rounds: int) -> Result:
    cpu = pin_to_one_core()
    paths = cable_files(root)
    sources = [(str(path.relative_to(root)), path.read_bytes()) for path in paths]
    parse_times: list[float] = []
    floor_times: list[float] = []
    cables = 0
    with tempfile.TemporaryDirectory(prefix="cablestream-floor-") as tmp:
        for _ in range(rounds):
            # Alternate the two so drift in machine load hits both alike.
            floor_times.append(time_io_floor(paths, Path(tmp)))
            seconds, cables = time_parse(sources)
            parse_times.append(seconds)
    return Result(
        files=len(paths),
        megabytes=sum(len(data) for _, data in sources) / 1e6,
        cables=cables,
        rounds=rounds,
        cpu=cpu,
        parse_s=statistics.median(parse_times),
        floor_s=statistics.median(floor_times),
    )


def profile_parse(sources: list[tuple[str, bytes]], top: int) -> str:
    """cProfile of one parse round: where the parser spends its time (by own time)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    time_parse(sources)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def format_result(result: Result) -> str:
    return "\n".join(
        [
            f"{result.files} files, {result.megabytes:.1f} MB, {result.cables} cables; "
            f"median of {result.rounds} rounds on cpu {result.cpu}",
            f"parse only : {result.parse_s:8.3f} s  {result.parse_cables_per_s:10.0f} cables/s"
            f"  {result.megabytes / result.parse_s:7.1f} MB/s",
            f"I/O floor  : {result.floor_s:8.3f} s  {result.floor_cables_per_s:10.0f} cables/s"
            f"  {result.megabytes / result.floor_s:7.1f} MB/s",
            f"ratio parse/floor: {result.ratio:.2f}x",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, default=DEFAULT_FILES, help="folder of cables")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON copy of figures")
    parser.add_argument("--profile", type=int, metavar="N", help="print the N hottest functions")
    args = parser.parse_args(argv)
    if not args.files.is_dir():
        print(f"no cable folder at {args.files}", file=sys.stderr)
        return 2
    if args.profile:
        paths = cable_files(args.files)
        sources = [(str(path.relative_to(args.files)), path.read_bytes()) for path in paths]
        print(profile_parse(sources, args.profile))
        return 0
    result = measure(args.files, max(1, args.rounds))
    if result.cables == 0:
        print("the parser returned no cables: nothing to measure", file=sys.stderr)
        return 1
    print(format_result(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        **asdict(result),
        "parse_cables_per_s": result.parse_cables_per_s,
        "floor_cables_per_s": result.floor_cables_per_s,
        "ratio": result.ratio,
    }
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
