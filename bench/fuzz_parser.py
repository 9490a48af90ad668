"""Fuzz `parse_source` in-process: mutated real cables and adversarial generators.

Run: `.venv/bin/python bench/fuzz_parser.py [--inputs 100000] [--workers 2] [--seed 0]
[--growth-sizes 50000,200000,800000] [--replay INDEX]`

Every input is a pure function of (seed, index), so any finding can be replayed with
`--replay INDEX`. Inputs:

- mutated (90%): a real file of `../shared/corpus` or `../shared/corpus-bulk` with 1-8
  mutations (header tokens spliced in, ranges cut or doubled, long blank runs, repeated
  fragments, truncation, line swaps, byte flips), then re-encoded (UTF-8, cp1252,
  UTF-16, CRLF) and sometimes gzipped, in one or two members;
- adversarial (10%): one of the generator families below at a real cable's size
  (2-64 KB): long runs of blanks, unclosed tags, nested markup, huge lines, spaced
  letters, repeated headers.

Reported: inputs run, exceptions (must be 0), inputs that hit the hang limit (the worker
is killed and replaced; must be 0), `parse_timeout` results, and the worst CPU time per
returned result (a cable or a NoCable) overall and per kind. CPU time, not wall time: the
machine is shared, and a busy neighbour must not look like a slow parser. Then, for each
adversarial family, CPU seconds at each of `--growth-sizes` and the growth factor per
step: linear code grows by the size factor (4x), quadratic code by its square.
Workers are processes, so an input that hangs in C code can be killed; inside each
worker `parse_source` is called directly, as ingest calls it.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import multiprocessing
import queue
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cablestream.schemas.record import NoCable
from cablestream.tasks.parse import parse_source

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA = [REPO_ROOT.parent / "shared" / "corpus", REPO_ROOT.parent / "shared" / "corpus-bulk"]
DEFAULT_OUT = REPO_ROOT / "bench" / "out" / "fuzz_parser.json"
REAL_SIZE_LIMIT = 64_000
PER_CABLE_TARGET_S = 0.050

# Fragments of every rendering the parser recognises.
TOKENS = [
    "VZCZC",
    "VZCZCXYZ0002\n",
    "NNNN\n",
    "DE RUEHTA #0988 1480710\n",
    "O 270710Z MAY 08\n",
    "FM AMEMBASSY ASTANA\n",
    "TO RUEHC/SECSTATE WASHDC IMMEDIATE 2481\n",
    "INFO ",
    "S E C R E T ",
    "C O N F I D E N T I A L ",
    "SECTION 01 OF 02 ",
    "ASTANA 000988 ",
    "ALGIERS 00000085  002 OF 002\n",
    "SIPDIS",
    "NOFORN\n",
    "E.O. 12958: DECL: 05/27/2023 ",
    "TAGS: ",
    "SUBJECT: ",
    "REF: A. STATE 1234 B. ",
    "Classified By: ",
    "Reasons 1.4 (b) and (d)",
    "1. (C) ",
    "12. (S/NF) ",
    "1 . ",
    "(SBU) ",
    r"$\underline{\mbox{1}}\mbox{1}.$ ",
    "SUMMARY: ",
    "END SUMMARY ",
    "&#x000A;",
    "&amp;",
    "<a id='par1' href='#par1'>¶</a>",
    "<code><pre>",
    "</pre>",
    "<td>",
    "<table class='cable'>",
    "[KNNP](#) ",
    "This record is a partial extract of the original cable. ",
    '"1","2/25/1972 9:30","72TEHRAN1164",',
    "id: 1\ndate: 1/1/2009 10:00\nrefid: 09ROME1\norigin: x\nclassification: x\n"
    "destination: \nheader:\n",
    "2007-09-13 05:53:00\t07BERN896\tEmbassy Bern\tUNCLASSIFIED\t\t",
    "Tuesday, 08 September 2009, 05:22 ",
    "Cable dated:2008-06-03T15:39:00",
    " \\\n",
    "ORDWAY\n",
    "\t",
    "\r\n",
    "\n\n",
    "\u00a0",
    "\ufffd",
    "—",
]


def _blank_run(size: int) -> str:
    return " " * size + "x"


def _signer_blanks(size: int) -> str:
    """A blank run on the signer's line, as in the 877 s trailer case of issue 17."""
    return "1. (C) Text.\nORDWAY" + " " * size + "x\n"


def _repeat(fragment: str) -> Callable[[int], str]:
    def make(size: int) -> str:
        return fragment * max(1, size // len(fragment))

    return make


def _nested(opening: str, inner: str, closing: str) -> Callable[[int], str]:
    def make(size: int) -> str:
        depth = max(1, size // (len(opening) + len(closing)))
        return opening * depth + inner + closing * depth

    return make


def _spaced_letters(size: int) -> str:
    return "S " * (size // 2) + "\n"


def _release_page_unclosed(size: int) -> str:
    return "<html><table class='cable'>" + "<td><pre>" * (size // 9) + "</html>"


# Adversarial families: name -> generator of about `size` characters.
FAMILIES: dict[str, Callable[[int], str]] = {
    "blanks": _blank_run,
    "blank_lines": _repeat(" \t \n"),
    "signer_blanks": _signer_blanks,
    "unclosed_pre": _repeat("<pre>"),
    "unclosed_td_table": _release_page_unclosed,
    "unclosed_tag_name": lambda size: "<" + "a" * size,
    "nested_latex": _nested("\\mbox{", "1", "}"),
    "unclosed_latex": _repeat("\\underline{\\mbox{"),
    "nested_html": _nested("<u>", "PREL", "</u>"),
    "nested_brackets": _nested("[", "KNNP", "](#)"),
    "huge_line_subject": _repeat("SUBJECT: "),
    "huge_line_ref": _repeat("REF: A. STATE 1234 B. "),
    "huge_line_tags": _repeat("TAGS: PREL, "),
    "huge_line_paragraphs": _repeat("1. (C) "),
    "huge_line_decl": _repeat("E.O. 12958: DECL: 01/01/"),
    "huge_line_classified_by": _repeat("Classified By: 1.4 (b) and "),
    "spaced_letters": _spaced_letters,
    "spaced_words": _repeat("C O N F I D E N T I A L "),
    "repeated_vzczc": _repeat("VZCZC\n"),
    "repeated_nnnn": _repeat("NNNN\n"),
    "repeated_record_blocks": _repeat(TOKENS[38]),
    "repeated_csv_rows": _repeat('"1","2/25/1972 9:30","'),
    "repeated_page_breaks": _repeat("ALGIERS 00000085  002 OF 002 "),
    "repeated_glued_fields": _repeat("000868SIPDIS TAGS: "),
    "summary_openers": _repeat("SUMMARY: END SUMMARY "),
    "parentheses": _repeat("(("),
}


@dataclass(slots=True)
class FuzzInput:
    index: int
    kind: str
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Job:
    """A fuzz input by its index, or a growth input: a family at one size."""

    index: int
    family: str | None = None
    size: int = 0


@dataclass(slots=True)
class Outcome:
    job: Job
    kind: str
    cpu_s: float
    results: int
    timeouts: int
    error: str | None = None


@dataclass(slots=True)
class Report:
    inputs: int = 0
    exceptions: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    parse_timeouts: int = 0
    worst_per_kind: dict[str, tuple[float, int]] = field(default_factory=dict)
    slow_inputs: list[tuple[float, int, str]] = field(default_factory=list)
    growth: dict[str, list[float]] = field(default_factory=dict)
    growth_sizes: list[int] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        job = outcome.job
        if outcome.error is not None:
            self.exceptions.append(f"{describe(job)} ({outcome.kind}): {outcome.error}")
        if job.family is not None:
            self.growth.setdefault(job.family, [0.0] * len(self.growth_sizes))
            self.growth[job.family][self.growth_sizes.index(job.size)] = outcome.cpu_s
            return
        self.inputs += 1
        if outcome.error is not None:
            return
        self.parse_timeouts += outcome.timeouts
        per_result = outcome.cpu_s / max(outcome.results, 1)
        worst, _ = self.worst_per_kind.get(outcome.kind, (0.0, -1))
        if per_result > worst:
            self.worst_per_kind[outcome.kind] = (per_result, job.index)
        if per_result > PER_CABLE_TARGET_S:
            self.slow_inputs.append((per_result, job.index, outcome.kind))

    @property
    def worst(self) -> tuple[float, int]:
        return max(self.worst_per_kind.values(), default=(0.0, -1))


def load_corpus(roots: list[Path]) -> list[tuple[str, bytes]]:
    skip = {"manifest.jsonl", "README.md"}
    files = []
    for root in roots:
        folder = root / "files"
        if folder.is_dir():
            files += [
                (p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.name not in skip
            ]
    return files


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 8)):
        at = rng.randint(0, len(text))
        choice = rng.random()
        if choice < 0.3:
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif choice < 0.45:
            text = text[:at] + rng.choice(TOKENS) * rng.randint(2, 500) + text[at:]
        elif choice < 0.6:
            text = text[:at] + text[at + rng.randint(1, 200) :]
        elif choice < 0.7:
            start = rng.randint(0, len(text))
            text = text[:at] + text[start : start + rng.randint(1, 2000)] + text[at:]
        elif choice < 0.8:
            text = text[:at] + rng.choice(" \t\n") * rng.randint(100, 5000) + text[at:]
        elif choice < 0.85:
            text = text[:at]
        elif choice < 0.93:
            lines = text.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:
            text = text[:at] + chr(rng.randint(0, 0x2FFF)) + text[at:]
    return text


def _encode(rng: random.Random, text: str, name: str) -> tuple[bytes, str]:
    choice = rng.random()
    if choice < 0.8:
        data = text.encode("utf-8", errors="replace")
    elif choice < 0.88:
        data = text.encode("cp1252", errors="replace")
    elif choice < 0.93:
        data = text.encode("utf-16", errors="replace")
    else:
        data = text.replace("\n", "\r\n").encode("utf-8", errors="replace")
    if rng.random() < 0.05:
        cut = rng.randint(0, len(data))
        members = [data[:cut], data[cut:]] if rng.random() < 0.5 else [data]
        data = b"".join(gzip.compress(member, mtime=0) for member in members)
        name += ".gz"
    return data, name


def make_input(index: int, seed: int, corpus: list[tuple[str, bytes]]) -> FuzzInput:
    """The input number `index` of run `seed`: the same bytes every time."""
    rng = random.Random(f"{seed}:{index}")
    if rng.random() < 0.9 and corpus:
        name, original = rng.choice(corpus)
        if name.endswith(".gz"):
            original = gzip.decompress(original)
        text = _mutate(rng, original.decode("utf-8", errors="replace"))
        data, name = _encode(rng, text, name)
        return FuzzInput(index, "mutated", f"fuzz/{index}/{name}", data)
    family = rng.choice(sorted(FAMILIES))
    text = FAMILIES[family](rng.randint(2_000, REAL_SIZE_LIMIT))
    if rng.random() < 0.5 and corpus:
        # Inside a real cable, where the field parsers look for it.
        _, host = rng.choice(corpus)
        host_text = host.decode("utf-8", errors="replace")
        at = rng.randint(0, len(host_text))
        text = host_text[:at] + text + host_text[at:]
    return FuzzInput(index, family, f"fuzz/{index}/{family}.txt", text.encode())


def describe(job: Job) -> str:
    return f"input {job.index}" if job.family is None else f"{job.family} at {job.size} B"


def build(job: Job, seed: int, corpus: list[tuple[str, bytes]]) -> FuzzInput:
    if job.family is None:
        return make_input(job.index, seed, corpus)
    text = FAMILIES[job.family](job.size)
    return FuzzInput(job.index, job.family, f"growth/{job.family}.txt", text.encode())


def run_one(job: Job, item: FuzzInput) -> Outcome:
    started = time.process_time()
    try:
        results = parse_source(item.data, item.name)
    except Exception:  # the finding itself: parse_source must never raise
        error = traceback.format_exc(limit=3).strip().splitlines()
        return Outcome(job, item.kind, time.process_time() - started, 0, 0, error[-1])
    cpu_s = time.process_time() - started
    timeouts = sum(isinstance(r, NoCable) and r.reason == "parse_timeout" for r in results)
    return Outcome(job, item.kind, cpu_s, len(results), timeouts)


def _worker(
    jobs: list[Job], seed: int, roots: list[Path], out: multiprocessing.Queue[object]
) -> None:
    corpus = load_corpus(roots)
    for job in jobs:
        out.put(("start", job))
        out.put(("done", run_one(job, build(job, seed, corpus))))
    out.put(("finished", None))


def growth_jobs(sizes: list[int]) -> list[Job]:
    return [Job(-1, family, size) for family in sorted(FAMILIES) for size in sizes]


def run_jobs(
    jobs: list[Job], seed: int, roots: list[Path], workers: int, hang_s: float, report: Report
) -> None:
    """Run the jobs over `workers` processes; a worker stuck past `hang_s` is replaced."""
    context = multiprocessing.get_context("fork")
    pending = [jobs[w::workers] for w in range(workers)]
    running: dict[
        int, tuple[multiprocessing.process.BaseProcess, multiprocessing.Queue[object]]
    ] = {}
    current: dict[int, tuple[Job, float]] = {}

    def start(worker: int) -> None:
        channel: multiprocessing.Queue[object] = context.Queue()
        process = context.Process(
            target=_worker, args=(pending[worker], seed, roots, channel), daemon=True
        )
        process.start()
        running[worker] = (process, channel)

    for worker in range(workers):
        if pending[worker]:
            start(worker)
    while running:
        for worker, (process, channel) in list(running.items()):
            try:
                message = channel.get(timeout=0.05)
            except queue.Empty:
                started = current.get(worker)
                if started and time.monotonic() - started[1] > hang_s:
                    process.kill()
                    process.join()
                    report.hangs.append(describe(started[0]))
                    report.inputs += started[0].family is None
                    del running[worker]
                    stuck = pending[worker].index(started[0])
                    pending[worker] = pending[worker][stuck + 1 :]
                    current.pop(worker)
                    if pending[worker]:
                        start(worker)
                elif not process.is_alive() and channel.empty():
                    del running[worker]
                continue
            match message:
                case ("start", Job() as job):
                    current[worker] = (job, time.monotonic())
                case ("done", Outcome() as outcome):
                    report.add(outcome)
                case ("finished", None):
                    process.join()
                    del running[worker]


def format_report(report: Report) -> str:
    worst_s, worst_index = report.worst
    lines = [
        f"inputs: {report.inputs}   exceptions: {len(report.exceptions)}   "
        f"hangs (killed): {len(report.hangs)}   parse_timeout results: {report.parse_timeouts}",
        f"worst CPU time per result: {worst_s * 1000:.1f} ms (input {worst_index}); "
        f"inputs over {PER_CABLE_TARGET_S * 1000:.0f} ms per result: {len(report.slow_inputs)}",
        "worst per kind (ms per result, input):",
        *(
            f"  {kind:24s} {seconds * 1000:8.1f}  {index}"
            for kind, (seconds, index) in sorted(report.worst_per_kind.items())
        ),
    ]
    if report.slow_inputs:
        lines.append("slowest inputs (ms per result, input, kind):")
        lines += [
            f"  {seconds * 1000:8.1f}  {index}  {kind}"
            for seconds, index, kind in sorted(report.slow_inputs, reverse=True)[:15]
        ]
    lines += [f"  exception: {line}" for line in report.exceptions[:20]]
    lines += [f"  hang: {hang}" for hang in report.hangs[:20]]
    if report.growth:
        header = "  ".join(f"{size // 1000:>7d} KB" for size in report.growth_sizes)
        lines.append(f"growth (CPU s at each size; factor per step)  {header}")
        for family, times in report.growth.items():
            factors = [later / max(earlier, 1e-4) for earlier, later in itertools.pairwise(times)]
            lines.append(
                f"  {family:24s} "
                + "  ".join(f"{seconds:10.3f}" for seconds in times)
                + "   x"
                + " x".join(f"{factor:.1f}" for factor in factors)
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hang-s", type=float, default=60.0, help="kill an input after this")
    parser.add_argument("--growth-sizes", default="50000,200000,800000")
    parser.add_argument("--replay", type=int, metavar="INDEX", help="write input INDEX to stdout")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.replay is not None:
        item = make_input(args.replay, args.seed, load_corpus(CORPORA))
        print(f"{item.kind} {item.name} {len(item.data)} bytes", file=sys.stderr)
        sys.stdout.buffer.write(item.data)
        return 0
    sizes = [int(size) for size in args.growth_sizes.split(",") if size]
    report = Report(growth_sizes=sizes)
    started = time.monotonic()
    jobs = [Job(index) for index in range(args.inputs)] + growth_jobs(sizes)
    run_jobs(jobs, args.seed, CORPORA, max(1, args.workers), args.hang_s, report)
    print(format_report(report))
    print(f"wall time {time.monotonic() - started:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    return 1 if report.exceptions or report.hangs else 0


if __name__ == "__main__":
    sys.exit(main())
