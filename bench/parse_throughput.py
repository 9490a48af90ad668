"""Parse-only throughput on one core: this parser vs a pinned baseline vs the I/O floor.

Run: `.venv/bin/python bench/parse_throughput.py [--files DIR ...] [--rounds 3]
[--baseline 589d8f6] [--check-normalize] [--profile N]`

DESIGN.md section 8: throughput is a ratio, never a bare time, because this machine's
speed is unknown to the reader. Each round times three things over the same files, in
one process pinned to one CPU, interleaved so that drift in machine load hits all alike:

- new: this checkout's `parse_source` over every file's bytes, already in memory;
- baseline: `parse_source` of the parser at `--baseline` (default 589d8f6, the parser
  before issue 13's speed work), extracted with `git archive` into a temporary folder
  and imported under the name `cablestream_baseline`;
- I/O floor: read the same files from disk, decode them (gunzip `.gz`, UTF-8 with
  replacement) and write their text as a one-column Parquet file with pyarrow: the
  least work any ingest of these files must do.

Parse times are CPU time of this process (the machine is shared: waiting for a busy
core is not parse time); the I/O floor is wall time (it waits for the disk by design).
Figures are medians over the rounds. Reported: cables/s and MB/s of each, the speed-up
new/baseline, parse/floor for both, the same for the stages before the field parsers
(decode + split + normalize, the text every field reads), and the slowest files of the
new parser (seconds per cable). `--check-normalize` also runs both parsers' split and
normalize over the files and counts the cables whose normalised text differs (0 means
the speed work left the text every field reads unchanged).
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq

from cablestream.schemas.record import ParseResult
from cablestream.tasks.parse import parse_source

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = REPO_ROOT.parent / "shared" / "corpus-bulk" / "files"
DEFAULT_OUT = REPO_ROOT / "bench" / "out" / "parse_throughput.json"
DEFAULT_BASELINE = "589d8f6"
BASELINE_PACKAGE = "cablestream_baseline"
SLOWEST_SHOWN = 5

Parser = Callable[[bytes, str], list[ParseResult]]


@dataclass(slots=True)
class Figures:
    files: int
    megabytes: float
    cables: int
    rounds: int
    cpu: int | None
    baseline: str
    new_s: float
    baseline_s: float
    floor_s: float
    new_stages_s: float
    baseline_stages_s: float
    slowest: list[tuple[str, float]] = field(default_factory=list)
    normalize_differs: int | None = None

    def rate(self, seconds: float) -> str:
        return (
            f"{seconds:8.3f} s {self.cables / seconds:9.0f} cables/s "
            f"{self.megabytes / seconds:7.1f} MB/s"
        )


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


def load_baseline(commit: str, into: Path) -> ModuleType:
    """The parser package at `commit`, importable as `cablestream_baseline.tasks.parse`.

    Only the pure parser and the schemas it imports are extracted; their absolute
    imports are renamed so both parsers live side by side in this process.
    """
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "tasks/parse", "schemas"],
        check=True,
        capture_output=True,
    ).stdout
    root = into / BASELINE_PACKAGE
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    (root / "tasks" / "__init__.py").write_text("", encoding="utf-8")
    (root / "__init__.py").write_text("", encoding="utf-8")
    for module in root.rglob("*.py"):
        source = module.read_text(encoding="utf-8")
        module.write_text(source.replace("cablestream.", f"{BASELINE_PACKAGE}."), encoding="utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module(f"{BASELINE_PACKAGE}.tasks.parse")


def time_parse(parser: Parser, sources: list[tuple[str, bytes]]) -> tuple[float, int]:
    """CPU seconds to parse every source, and the number of cable records returned."""
    cables = 0
    started = time.process_time()
    for name, data in sources:
        cables += sum(not hasattr(result, "reason") for result in parser(data, name))
    return time.process_time() - started, cables


def time_stages(package: str, sources: list[tuple[str, bytes]]) -> float:
    """Seconds for decode + split + normalize of every source with the parser `package`."""
    decode = importlib.import_module(f"{package}.decode").decode_source
    split = importlib.import_module(f"{package}.split").split_cables
    normalize = importlib.import_module(f"{package}.normalize").normalize
    started = time.process_time()
    for name, data in sources:
        for chunk in split(decode(data, name).text or "", name):
            normalize(chunk.text, chunk.rendering)
    return time.process_time() - started


def slowest_files(sources: list[tuple[str, bytes]]) -> list[tuple[str, float]]:
    """Seconds per returned result of each file with the new parser, slowest first."""
    per_file = []
    for name, data in sources:
        started = time.process_time()
        results = parse_source(data, name)
        per_file.append((name, (time.process_time() - started) / len(results)))
    return sorted(per_file, key=lambda item: -item[1])[:SLOWEST_SHOWN]


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


def normalize_differences(baseline: ModuleType, sources: list[tuple[str, bytes]]) -> int:
    """Cables whose normalised text, rendering or partial flag differ between the parsers."""
    from cablestream.tasks.parse.decode import decode_source
    from cablestream.tasks.parse.normalize import normalize
    from cablestream.tasks.parse.split import split_cables

    old = importlib.import_module(f"{baseline.__name__}.normalize")
    old_split = importlib.import_module(f"{baseline.__name__}.split")
    differ = 0
    for name, data in sources:
        text = decode_source(data, name).text or ""
        for chunk in old_split.split_cables(text, name):
            before = old.normalize(chunk.text, chunk.rendering)
            after = normalize(chunk.text, chunk.rendering)
            differ += (before.text, before.rendering, before.is_partial) != (
                after.text,
                after.rendering,
                after.is_partial,
            )
        differ += len(old_split.split_cables(text, name)) != len(split_cables(text, name))
    return differ


def measure(roots: list[Path], rounds: int, commit: str, check: bool) -> Figures:
    cpu = pin_to_one_core()
    paths = [path for root in roots for path in cable_files(root)]
    sources = [(str(path), path.read_bytes()) for path in paths]
    times: dict[str, list[float]] = {
        "new": [],
        "baseline": [],
        "floor": [],
        "new_stages": [],
        "baseline_stages": [],
    }
    cables = 0
    with tempfile.TemporaryDirectory(prefix="cablestream-bench-") as tmp:
        baseline = load_baseline(commit, Path(tmp))
        for _ in range(rounds):
            times["floor"].append(time_io_floor(paths, Path(tmp)))
            seconds, _baseline_cables = time_parse(baseline.parse_source, sources)
            times["baseline"].append(seconds)
            seconds, cables = time_parse(parse_source, sources)
            times["new"].append(seconds)
            times["baseline_stages"].append(time_stages(baseline.__name__, sources))
            times["new_stages"].append(time_stages("cablestream.tasks.parse", sources))
        differs = normalize_differences(baseline, sources) if check else None
    return Figures(
        files=len(paths),
        megabytes=sum(len(data) for _, data in sources) / 1e6,
        cables=cables,
        rounds=rounds,
        cpu=cpu,
        baseline=commit,
        new_s=statistics.median(times["new"]),
        baseline_s=statistics.median(times["baseline"]),
        floor_s=statistics.median(times["floor"]),
        new_stages_s=statistics.median(times["new_stages"]),
        baseline_stages_s=statistics.median(times["baseline_stages"]),
        slowest=slowest_files(sources),
        normalize_differs=differs,
    )


def profile_parse(sources: list[tuple[str, bytes]], top: int) -> str:
    """cProfile of one parse round: where the parser spends its time (by own time)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    time_parse(parse_source, sources)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def format_figures(figures: Figures) -> str:
    lines = [
        f"{figures.files} files, {figures.megabytes:.1f} MB, {figures.cables} cables; "
        f"median of {figures.rounds} rounds on cpu {figures.cpu}",
        f"new parser      : {figures.rate(figures.new_s)}",
        f"baseline {figures.baseline:7s}: {figures.rate(figures.baseline_s)}",
        f"I/O floor       : {figures.rate(figures.floor_s)}",
        f"speed-up new/baseline: {figures.baseline_s / figures.new_s:.2f}x",
        f"parse/floor: new {figures.new_s / figures.floor_s:.2f}x, "
        f"baseline {figures.baseline_s / figures.floor_s:.2f}x",
        "decode + split + normalize (before the field parsers):",
        f"  new           : {figures.rate(figures.new_stages_s)}",
        f"  baseline      : {figures.rate(figures.baseline_stages_s)}",
        f"  speed-up {figures.baseline_stages_s / figures.new_stages_s:.2f}x; share of parse time: "
        f"new {figures.new_stages_s / figures.new_s:.0%}, "
        f"baseline {figures.baseline_stages_s / figures.baseline_s:.0%}",
        "slowest files (new parser, ms per cable):",
        *(f"  {seconds * 1000:8.1f}  {name}" for name, seconds in figures.slowest),
    ]
    if figures.normalize_differs is not None:
        lines.append(
            f"cables whose normalised text differs from baseline: {figures.normalize_differs}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, action="append", help="folder of cables (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git commit of the baseline")
    parser.add_argument("--check-normalize", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON copy of figures")
    parser.add_argument("--profile", type=int, metavar="N", help="print the N hottest functions")
    args = parser.parse_args(argv)
    roots: list[Path] = args.files or [DEFAULT_FILES]
    missing = [root for root in roots if not root.is_dir()]
    if missing:
        print(f"no cable folder at {missing[0]}", file=sys.stderr)
        return 2
    if args.profile:
        sources = [(str(path), path.read_bytes()) for root in roots for path in cable_files(root)]
        print(profile_parse(sources, args.profile))
        return 0
    figures = measure(roots, max(1, args.rounds), args.baseline, args.check_normalize)
    if figures.cables == 0:
        print("the parser returned no cables: nothing to measure", file=sys.stderr)
        return 1
    print(format_figures(figures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        **asdict(figures),
        "new_cables_per_s": figures.cables / figures.new_s,
        "baseline_cables_per_s": figures.cables / figures.baseline_s,
        "new_mb_per_s": figures.megabytes / figures.new_s,
        "speedup": figures.baseline_s / figures.new_s,
        "new_over_floor": figures.new_s / figures.floor_s,
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
