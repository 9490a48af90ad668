"""Field accuracy of the parser over the shared corpus, against the release's own metadata.

Run: `.venv/bin/python bench/accuracy.py [--min 0.98] [--corpus DIR]`

Every corpus file is parsed with the public `parse_source`; its results are matched to
the manifest lines of that file by position (`index` = position in the result list).
For each truth field present on a manifest line the parsed record either matches or is a
failure; a cable the parser did not return (too few results, a NoCable, an exception)
fails every field it has truth for. Failures go to `bench/out/accuracy_failures.txt`.

How truth is compared (corpus README, "manifest.jsonl"):
- reference_id: exact.
- created_hour: first 13 characters of the ISO time (`2008-01-25T11`), from `created`.
- classification: the release writes NOFORN into the classification (`SECRET//NOFORN`);
  the record keeps it as a caveat. A record maps to the release's string as
  `classification + "//NOFORN"` when `NOFORN` is among its caveats (and not already there).
- subject_start: a prefix of the parsed subject, ignoring case and runs of whitespace;
  a leading paragraph marking such as `(C)` / `(SBU)` is dropped on both sides, because
  the release kept it on some subjects (sometimes as `C)`, without its parenthesis).
  Two release artifacts are removed from the truth first (`clean_release_subject`): a
  trailing line-continuation backslash, and a run-on into the REF / Classified By line.
- tags: compared as sets of upper-case tokens.
- references (csv rows only): the set of parsed reference ids equals the release's list.
- origin: the release's post name (`Embassy Astana`) is not the FM line (`AMEMBASSY
  ASTANA`), so it is only checked loosely (the last word of the post's name, or its old
  spelling, occurs in the FM line) and never gates the exit status.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cablestream.schemas.record import CableRecord, NoCable
from cablestream.tasks.parse import parse_source

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI checks the shared folder out beside the clone, as it is here.
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"
DEFAULT_FAILURES = REPO_ROOT / "bench" / "out" / "accuracy_failures.txt"

# The fields whose accuracy gates the exit status (issue 3: >= 98% where truth exists).
GATED_FIELDS = ("reference_id", "classification", "tags", "subject")
FIELD_ORDER = (
    "reference_id",
    "created_hour",
    "classification",
    "subject",
    "tags",
    "references",
    "origin_loose",
)

# `(C)`, `(SBU)`, `(S/NF)` in front of a subject.
# The release sometimes kept it without its opening parenthesis (`S/NF) PORTUGAL: ...`).
_LEADING_MARKING = re.compile(r"^\s*\(?[A-Z]{1,4}(?:/[A-Z]{1,4})*\)\s*", re.IGNORECASE)
# Where a release subject ran on into the next header field (`... AHEAD REF: A. STATE 1`,
# `... TRANSPARENCY Classified By: ...`): the subject ends there.
_RELEASE_SUBJECT_RUN_ON = re.compile(r"\s+(?:(?:REFS?|REFTELS?)\s*:|Classified\s+By\b)", re.I)
_WHITESPACE_RUN = re.compile(r"\s+")
# Release origin names use today's spelling where the FM line has the old one.
_ORIGIN_ALIASES = {"KOLKATA": "CALCUTTA", "KYIV": "KIEV", "CHENNAI": "MADRAS", "MUMBAI": "BOMBAY"}


@dataclass(frozen=True, slots=True)
class Failure:
    """One field of one cable that did not match its truth."""

    file: str
    index: int
    rendering: str
    field: str
    expected: str
    got: str


@dataclass(slots=True)
class Tally:
    """Matches over cables with truth, per field, overall and per rendering."""

    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    totals: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, name: str, ok: bool) -> None:
        self.totals[name] += 1
        self.hits[name] += int(ok)

    def rate(self, name: str) -> float | None:
        total = self.totals.get(name, 0)
        return self.hits.get(name, 0) / total if total else None


@dataclass(slots=True)
class Report:
    """Everything one accuracy run found."""

    # repr=False: a failing pytest prints its arguments; the failure lists would drown it.
    overall: Tally = field(default_factory=Tally, repr=False)
    by_rendering: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally), repr=False)
    failures: list[Failure] = field(default_factory=list, repr=False)
    count_mismatches: list[str] = field(default_factory=list, repr=False)
    cables: int = 0
    files: int = 0
    seconds: float = 0.0
    # The same comparison with NoCable results skipped before indexing (diagnostic only).
    records_only: Report | None = field(default=None, repr=False)

    def rate(self, name: str) -> float | None:
        return self.overall.rate(name)


# --- comparisons: each returns (ok, expected text, got text) ---------------------------


def _squash(text: str) -> str:
    return _WHITESPACE_RUN.sub(" ", text).strip().casefold()


def normalize_subject(text: str) -> str:
    """Case- and whitespace-insensitive form, without a leading `(C)`-style marking."""
    return _squash(_LEADING_MARKING.sub("", text))


def clean_release_subject(subject_start: str) -> str:
    """The release's subject without its two artifacts that no parser should reproduce.

    - a trailing backslash: the release cut wrapped subjects after the first line and
      left the line-continuation mark (`SWISS PRESIDENT MERZ APOLOGIZES TO LIBYA FOR \\`);
    - a run-on into the REF or Classified By line that follows the subject.
    """
    cleaned = _RELEASE_SUBJECT_RUN_ON.split(subject_start, maxsplit=1)[0]
    return cleaned.rstrip().removesuffix("\\").rstrip()


def release_classification(record: CableRecord) -> str | None:
    """The record's classification written the way the release writes it."""
    if record.classification is None:
        return None
    if "NOFORN" in record.caveats and "NOFORN" not in record.classification:
        return f"{record.classification}//NOFORN"
    return record.classification


def _origin_places(release_origin: str) -> list[str]:
    """Names of the post that its FM line should contain: the last word of the release's
    name (`Embassy Buenos Aires` -> AIRES, `American Institute Taiwan, Taipei` -> TAIPEI)."""
    if release_origin.casefold() == "secretary of state":
        return ["SECSTATE"]
    place = release_origin.upper().split()[-1]
    return [place, _ORIGIN_ALIASES[place]] if place in _ORIGIN_ALIASES else [place]


Comparison = tuple[bool, str, str]


def compare_field(name: str, truth: dict[str, Any], record: CableRecord) -> Comparison | None:
    """Compare one truth field with the record; None when the manifest has no truth for it."""
    if name == "reference_id":
        return _exact(str(truth["reference_id"]), record.reference_id)
    if name == "created_hour":
        expected = truth.get("created_hour") or str(truth.get("created") or "")[:13]
        if not expected:
            return None
        got = record.created.strftime("%Y-%m-%dT%H") if record.created else None
        return _exact(str(expected), got)
    if name == "classification":
        return _exact(str(truth["classification"]), release_classification(record))
    if name == "subject":
        if "subject_start" not in truth:
            return None
        expected = str(truth["subject_start"])
        if record.subject is None:
            return False, expected, "<null>"
        wanted = normalize_subject(clean_release_subject(expected))
        ok = normalize_subject(record.subject).startswith(wanted)
        return ok, expected, record.subject
    if name == "tags":
        if "tags" not in truth:
            return None
        expected_tags = {str(tag).upper() for tag in truth["tags"]}
        got_tags = {tag.upper() for tag in record.tags}
        return expected_tags == got_tags, _set_text(expected_tags), _set_text(got_tags)
    if name == "references":
        if "references" not in truth:
            return None
        expected_refs = set(truth["references"])
        got_refs = {ref.id for ref in record.references if ref.id}
        return expected_refs == got_refs, _set_text(expected_refs), _set_text(got_refs)
    if name == "origin_loose":
        got = record.origin or ""
        ok = any(place in got.upper() for place in _origin_places(str(truth["origin"])))
        return ok, str(truth["origin"]), got
    raise ValueError(f"unknown field {name}")


def _exact(expected: str, got: str | None) -> Comparison:
    return expected == got, expected, "<null>" if got is None else got


def _set_text(values: Iterable[str]) -> str:
    return " ".join(sorted(values))


# --- the run ------------------------------------------------------------------------------


def load_manifest(corpus: Path) -> dict[str, list[dict[str, Any]]]:
    """Manifest lines grouped by file, each group sorted by index."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with (corpus / "manifest.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            groups[entry["file"]].append(entry)
    for entries in groups.values():
        entries.sort(key=lambda entry: int(entry["index"]))
    return groups


def _parse_file(corpus: Path, name: str) -> tuple[list[CableRecord | NoCable], str | None]:
    """Parse one corpus file; an exception is reported, never raised (the parser promises)."""
    try:
        return parse_source((corpus / name).read_bytes(), name), None
    except Exception as exc:  # the accuracy run must survive a parser bug
        return [], f"{type(exc).__name__}: {exc}"


def _score_missing(report: Report, entry: dict[str, Any], why: str) -> None:
    """A cable the parser did not produce fails every field it has truth for."""
    truth = entry["truth"]
    for name in FIELD_ORDER:
        if compare_field(name, truth, CableRecord()) is None:
            continue
        _record(report, entry, name, (False, _truth_text(name, truth), why))


def _truth_text(name: str, truth: dict[str, Any]) -> str:
    keys = {
        "subject": "subject_start",
        "origin_loose": "origin",
        "created_hour": "created_hour" if "created_hour" in truth else "created",
    }
    value = truth.get(keys.get(name, name))
    return " ".join(sorted(value)) if isinstance(value, list) else str(value)


def _record(report: Report, entry: dict[str, Any], name: str, result: Comparison) -> None:
    ok, expected, got = result
    rendering = str(entry["rendering"])
    report.overall.add(name, ok)
    report.by_rendering[rendering].add(name, ok)
    if not ok:
        failure = Failure(str(entry["file"]), int(entry["index"]), rendering, name, expected, got)
        report.failures.append(failure)


def _score_file(
    report: Report, entries: list[dict[str, Any]], results: list[Any], error: str | None
) -> None:
    """Compare each manifest line of one file with the result at its index."""
    for entry in entries:
        index = int(entry["index"])
        result = results[index] if index < len(results) else None
        if isinstance(result, CableRecord):
            for field_name in FIELD_ORDER:
                compared = compare_field(field_name, entry["truth"], result)
                if compared is not None:
                    _record(report, entry, field_name, compared)
        elif isinstance(result, NoCable):
            _score_missing(report, entry, f"<NoCable {result.reason}: {result.detail}>")
        else:
            _score_missing(report, entry, f"<no result at index {index}: {error or ''}>")


def run(corpus: Path = DEFAULT_CORPUS, progress: Callable[[str], None] | None = None) -> Report:
    """Parse the whole corpus and compare every truth field.

    Also scores a second alignment, `records_only`, that skips NoCable results before
    indexing: the gap between the two shows how much a splitter that emits spurious
    chunks costs, apart from the field parsers.
    """
    report = Report()
    report.records_only = Report()
    started = time.perf_counter()
    for name, entries in sorted(load_manifest(corpus).items()):
        report.files += 1
        results, error = _parse_file(corpus, name)
        cables = [result for result in results if isinstance(result, CableRecord)]
        report.cables += len(cables)
        if error is not None:
            report.count_mismatches.append(f"{name}: parser raised {error}")
        elif len(results) != len(entries):
            report.count_mismatches.append(
                f"{name}: {len(entries)} cables in manifest, {len(results)} results "
                f"({len(cables)} records)"
            )
        _score_file(report, entries, list(results), error)
        _score_file(report.records_only, entries, list(cables), error)
        if progress is not None:
            progress(name)
    report.seconds = time.perf_counter() - started
    return report


# --- output -------------------------------------------------------------------------------


def _pct(rate: float | None) -> str:
    return "   -  " if rate is None else f"{100 * rate:6.2f}"


def format_summary(report: Report) -> str:
    """Per-field accuracy overall, then one row per rendering."""
    lines = [
        f"{report.files} files, {report.cables} records parsed in {report.seconds:.1f} s; "
        f"{len(report.count_mismatches)} files with a cable count mismatch",
        "",
        f"{'field':<16}{'accuracy %':>11}{'matched':>10}{'truth':>8}",
    ]
    for name in FIELD_ORDER:
        hits = report.overall.hits.get(name, 0)
        total = report.overall.totals.get(name, 0)
        gate = "  (gated)" if name in GATED_FIELDS else ""
        lines.append(f"{name:<16}{_pct(report.rate(name)):>11}{hits:>10}{total:>8}{gate}")
    if report.records_only is not None:
        alternative = ", ".join(
            f"{name} {_pct(report.records_only.rate(name)).strip()}%" for name in GATED_FIELDS
        )
        lines.append(f"(matching by index among records only, NoCables skipped: {alternative})")
    lines += ["", "per rendering (accuracy %):"]
    short = ["ref_id", "hour", "class", "subject", "tags", "refs", "origin~"]
    lines.append(f"{'rendering':<14}{'n':>5}" + "".join(f"{head:>9}" for head in short))
    for rendering, tally in sorted(report.by_rendering.items()):
        n = tally.totals.get("reference_id", 0)
        cells = "".join(f"{_pct(tally.rate(name)):>9}" for name in FIELD_ORDER)
        lines.append(f"{rendering:<14}{n:>5}{cells}")
    return "\n".join(lines)


def write_failures(report: Report, path: Path) -> None:
    """Tab-separated failures sorted by field then file, count mismatches first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["# cable count mismatches"]
    rows += report.count_mismatches
    rows.append("# file\tindex\trendering\tfield\texpected\tgot")
    for failure in sorted(report.failures, key=lambda f: (f.field, f.file, f.index)):
        rows.append(
            "\t".join(
                [
                    failure.file,
                    str(failure.index),
                    failure.rendering,
                    failure.field,
                    _clip(failure.expected),
                    _clip(failure.got),
                ]
            )
        )
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _clip(text: str, limit: int = 200) -> str:
    flat = repr(text)[1:-1]  # escapes tabs and newlines so each failure stays one line
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def below_threshold(report: Report, minimum: float) -> list[str]:
    """Gated fields whose accuracy is under `minimum` (no truth at all counts as failing)."""
    return [name for name in GATED_FIELDS if (report.rate(name) or 0.0) < minimum]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--min", type=float, default=0.98, help="gate for the gated fields")
    parser.add_argument("--failures", type=Path, default=DEFAULT_FAILURES)
    args = parser.parse_args(argv)
    if not (args.corpus / "manifest.jsonl").is_file():
        print(f"no corpus manifest under {args.corpus}", file=sys.stderr)
        return 2
    report = run(args.corpus)
    print(format_summary(report))
    write_failures(report, args.failures)
    print(f"\n{len(report.failures)} field failures written to {args.failures}")
    failing = below_threshold(report, args.min)
    if failing:
        print(f"below {100 * args.min:.0f}%: {', '.join(failing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
