"""Field accuracy of the parser over both shared corpora, against the release's own metadata.

Run: `.venv/bin/python bench/accuracy.py [--corpus DIR ...] [--min 0.99] [--failures DIR]`
(default: `../shared/corpus` and `../shared/corpus-bulk`).

Every corpus file is parsed with the public `parse_source`. The records (NoCable results
are not cables) are matched to the manifest lines of their file by position. For each
truth field a cable either matches, misses, or is counted apart:

- `apart: no input`: the input cannot supply the field (see `input_supplies`), so a
  null is right and neither a pass nor a miss;
- `apart: release artifact`: the truth itself is a known artifact of the release
  (see "Release-truth artifacts" below), so the comparison would measure the release.

Cable counts are reported on their own: cables found, missed, spurious records, and
NoCable chunks next to a found cable. Misses go to `bench/out/accuracy_<corpus>.txt`.

Release-truth artifacts (`../shared/FIELDS.md`), accounted for here and only here:
- reference_id / station: an id that is not `<YY><STATION><serial>` is garbled by the
  release (`7575LIBREVILLE1895`, `09SECTION01OF03SANJOSE525`), and so is a station with
  the EFTO caveat fused in (`09EFTOLONDON2688`, stations/README.md): counted apart.
- created: the release's minutes are not truth (corpus README); compared to the hour.
- classification: the release writes NOFORN into the classification (`SECRET//NOFORN`);
  the record keeps it as a caveat, so `classification + "//NOFORN"` is compared.
- origin: the release writes `Embassy Paris` where the telegram writes `AMEMBASSY PARIS`;
  places are compared (`same_place`), not spellings.
- subject_start: a lost leading `(` (also a lost leading quote or bracket), a run-on into
  `REF:` / `Classified By` (also glued: `…CAIROClassified By:`), a trailing
  line-continuation `\\`, a trailing `...` where the release cut it, the label of a doubled
  `SUBJECT: SUBJECT:` are removed from the truth; it is compared as a prefix, ignoring
  case, whitespace and a leading `(C)`-style marking.
- tags: the release's tag index holds only the first TAGS line, so its list must be a
  prefix of the parsed one (compared as sets: the release's link order is not always
  the line's). The release also splits tags into words (`ZANU-PF` -> ZANU, PF;
  `COUNTER TERRORISM`), so both sides are compared word by word.
- references: the csv column lists the cited cables the release resolved, not every
  cable the REF line names (`USUN 6028` of 1975 is missing), so each of its ids must be
  among the parsed ids.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cablestream.schemas.record import CableRecord, NoCable
from cablestream.tasks.parse import parse_source

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI checks the shared folder out beside the clone, as it is here.
SHARED = REPO_ROOT.parent / "shared"
DEFAULT_CORPORA = (SHARED / "corpus", SHARED / "corpus-bulk")
DEFAULT_FAILURES_DIR = REPO_ROOT / "bench" / "out"

FIELD_ORDER = (
    "reference_id",
    "station",
    "created_hour",
    "classification",
    "origin",
    "subject",
    "tags",
    "references",
)
SHORT_NAMES = ("ref_id", "station", "hour", "class", "origin", "subject", "tags", "refs")
# Renderings whose splitter carries the release metadata (page table, csv row).
METADATA_RENDERINGS = frozenset({"release_html", "csv_row"})

APART_NO_INPUT = "no input"
APART_ARTIFACT = "release artifact"

_WELL_FORMED_ID = re.compile(r"^\d{2}(?P<station>[A-Z]+)\d+$")
# The release fused the EFTO caveat of `UNCLAS EFTO LONDON 002688` into the station.
_FUSED_CAVEAT = "EFTO"
# `(C)`, `(SBU)`, `(S/NF)` in front of a subject; the release sometimes lost the `(`.
_LEADING_MARKING = re.compile(r"^\s*\(?[A-Z]{1,4}(?:/[A-Z]{1,4})*\)\s*", re.IGNORECASE)
_RELEASE_SUBJECT_RUN_ON = re.compile(r"\s*(?:(?:REFS?|REFTELS?)\s*:|Classified\s+By\b)", re.I)
# The release lost a leading opening mark: `(`, a quote, a bracket.
_LEADING_OPENERS = re.compile(r"^[\s(\"“‘'\[]+")
_DOUBLED_LABEL = re.compile(r"^\s*SUBJ(?:ECT)?\s*:\s*", re.I)
_WHITESPACE_RUN = re.compile(r"\s+")
_TAG_WORD_SPLIT = re.compile(r"[\s-]+")

# What in a cable's input can give the hour / the year (independent of the parser).
_HOUR_SOURCES = re.compile(
    r"\b\d{6}Z\s+[A-Za-z]{3}\s+\d{2}"  # DTG
    r"|\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}"  # release dump / scrape preface
    r"|\b\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}"  # cables.csv date
    r"|[A-Z][a-z]+day, \d{1,2} [A-Z][a-z]+ \d{4}, \d{2}:\d{2}"  # scrape preface
)
_DECL_DATE = re.compile(
    r"DECL[:;]?\s*(?:\d{1,2}[/-]\d{1,2}[/-]\d{2,4}|\d{4}/\d{1,2}/\d{1,2})", re.I
)

# Words of a post's name that say its kind, not its place.
_POST_KIND_WORDS = re.compile(
    r"\b(?:AMEMBASSY|AMEMB|AMCONSUL|AMCONGEN|USMISSION|USINT|USLO|USDEL|AIT|EMBASSY|CONSULATE|"
    r"GENERAL|US|MISSION|INTERESTS|SECTION|AMERICAN|INSTITUTE|TAIWAN|REO|WASHDC|TO|THE)\b"
)
_DEPARTMENT = re.compile(r"^\s*(?:SECSTATE|SECRETARY OF STATE)\b", re.I)
# Posts renamed between the telegram and the release.
_PLACE_ALIASES = {"KOLKATA": "CALCUTTA", "KYIV": "KIEV", "CHENNAI": "MADRAS", "MUMBAI": "BOMBAY"}


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
    """Per field: matches, comparisons, and cables counted apart (by reason)."""

    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    totals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    apart: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )

    def add(self, name: str, ok: bool) -> None:
        self.totals[name] += 1
        self.hits[name] += int(ok)

    def rate(self, name: str) -> float | None:
        total = self.totals.get(name, 0)
        return self.hits.get(name, 0) / total if total else None


@dataclass(slots=True)
class Report:
    """Everything one accuracy run over one corpus found."""

    name: str = ""
    # repr=False: a failing pytest prints its arguments; the lists would drown it.
    overall: Tally = field(default_factory=Tally, repr=False)
    by_rendering: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally), repr=False)
    failures: list[Failure] = field(default_factory=list, repr=False)
    count_mismatches: list[str] = field(default_factory=list, repr=False)
    files: int = 0
    cables: int = 0
    found: int = 0
    spurious: int = 0
    stray_nocables: int = 0
    seconds: float = 0.0

    @property
    def missed(self) -> int:
        return self.cables - self.found

    def rate(self, name: str) -> float | None:
        return self.overall.rate(name)


# --- comparisons ----------------------------------------------------------------------

Comparison = tuple[bool, str, str]


def _squash(text: str) -> str:
    return _WHITESPACE_RUN.sub(" ", text).strip().casefold()


def normalize_subject(text: str) -> str:
    """Case- and whitespace-insensitive form, without a leading `(C)`-style marking and
    without leading opening marks (the release lost them: `CUBA IS) A STATE …`)."""
    return _squash(_LEADING_OPENERS.sub("", _LEADING_MARKING.sub("", text)))


def clean_release_subject(subject_start: str) -> str:
    """The release's subject without its artifacts: the label of a doubled `SUBJECT:
    SUBJECT:`, a run-on into REF / Classified By (also glued), a trailing `...` where it
    cut the subject, a trailing line-continuation backslash. Lost leading `(` and quotes
    are handled by `normalize_subject`."""
    cleaned = _RELEASE_SUBJECT_RUN_ON.split(_DOUBLED_LABEL.sub("", subject_start), maxsplit=1)[0]
    return cleaned.rstrip().removesuffix("...").removesuffix("\\").rstrip()


# The release's vocabulary: NOFORN is written only after these (never `UNCLASSIFIED//NOFORN`).
_NOFORN_CLASSES = frozenset({"CONFIDENTIAL", "SECRET", "TOP SECRET"})
# Where a text says NOFORN (the release ignores paragraph markings such as `(S/NF)`).
_NOFORN_TEXT = re.compile(r"NOFORN|NOFRN|NOT RELEASABLE TO FOREIGN", re.I)


def release_classification(record: CableRecord) -> str | None:
    """The record's classification written the way the release writes it."""
    if record.classification is None:
        return None
    if "NOFORN" in record.caveats and record.classification in _NOFORN_CLASSES:
        return f"{record.classification}//NOFORN"
    return record.classification


def _tag_words(tags: Iterable[str]) -> set[str]:
    return {word for tag in tags for word in _TAG_WORD_SPLIT.split(tag) if word}


def release_tags_prefix(expected: list[str], got: list[str]) -> bool:
    """Whether the release's tags are, word for word, a prefix of the parsed list."""
    wanted = _tag_words(expected)
    for end in range(len(got) + 1):
        words = _tag_words(got[:end])
        if words == wanted:
            return True
        if not words <= wanted:
            return False
    return False


def place_key(post: str) -> str:
    """A post's place, letters only: `Embassy The Hague` and `AMEMBASSY THE HAGUE` -> HAGUE."""
    if _DEPARTMENT.match(post):
        return "STATE"
    words = _POST_KIND_WORDS.sub(" ", post.upper().replace(",", " "))
    place = re.sub(r"[^A-Z]", "", words)
    return _PLACE_ALIASES.get(place, place)


def same_place(release_origin: str, parsed_origin: str | None) -> bool:
    """Whether two names of a post name the same place (one may qualify the other:
    `USMISSION UNESCO PARIS` / `Embassy Paris`, `Iran RPO Dubai` / `AMCONSUL DUBAI`)."""
    if not parsed_origin:
        return False
    expected, got = place_key(release_origin), place_key(parsed_origin)
    return bool(expected and got) and (expected.endswith(got) or got.endswith(expected))


def truth_station(truth: dict[str, Any]) -> str | None:
    """The station of the release's id; None when the release garbled the id."""
    match = _WELL_FORMED_ID.match(str(truth["reference_id"]))
    if match is None or match["station"].startswith(_FUSED_CAVEAT):
        return None
    return match["station"]


def input_supplies(
    name: str, record: CableRecord | None, rendering: str, truth_noforn: bool = False
) -> bool:
    """Whether the cable's input can supply the field at all (FIELDS.md: headerless
    extracts with no DTG, no date and no DECL date cannot give a year or an hour; a
    text that nowhere says NOFORN cannot give the release's `//NOFORN`)."""
    if rendering in METADATA_RENDERINGS:
        return True
    text = record.body if record is not None else ""
    if name == "classification":
        return not truth_noforn or bool(_NOFORN_TEXT.search(text))
    if name not in ("reference_id", "created_hour"):
        return True
    if _HOUR_SOURCES.search(text):
        return True
    return name == "reference_id" and bool(_DECL_DATE.search(text))


def compare_field(name: str, truth: dict[str, Any], record: CableRecord) -> Comparison | None:
    """Compare one truth field with the record; None when the manifest has no truth for it."""
    if name == "reference_id":
        return _exact(str(truth["reference_id"]), record.reference_id)
    if name == "station":
        return _exact(str(truth_station(truth)), record.station)
    if name == "created_hour":
        expected = truth.get("created_hour") or str(truth.get("created") or "")[:13]
        if not expected:
            return None
        got = record.created.strftime("%Y-%m-%dT%H") if record.created else None
        return _exact(str(expected), got)
    if name == "classification":
        return _exact(str(truth["classification"]), release_classification(record))
    if name == "origin":
        expected = str(truth["origin"])
        return same_place(expected, record.origin), expected, str(record.origin)
    if name == "subject":
        if "subject_start" not in truth:
            return None
        expected = str(truth["subject_start"])
        if record.subject is None:
            return False, expected, "<null>"
        wanted = normalize_subject(clean_release_subject(expected))
        return normalize_subject(record.subject).startswith(wanted), expected, record.subject
    if name == "tags":
        if "tags" not in truth:
            return None
        expected_tags = [str(tag).upper() for tag in truth["tags"]]
        got_tags = [tag.upper() for tag in record.tags]
        ok = release_tags_prefix(expected_tags, got_tags)
        return ok, " ".join(expected_tags), " ".join(got_tags)
    if name == "references":
        if "references" not in truth:
            return None
        expected_refs = set(truth["references"])
        got_refs = {ref.id for ref in record.references if ref.id}
        return expected_refs <= got_refs, _set_text(expected_refs), _set_text(got_refs)
    raise ValueError(f"unknown field {name}")


def apart_reason(
    name: str, truth: dict[str, Any], record: CableRecord | None, rendering: str
) -> str | None:
    """Why a field of a cable is counted apart, or None when it is compared."""
    if name in ("reference_id", "station") and truth_station(truth) is None:
        return APART_ARTIFACT
    truth_noforn = str(truth["classification"]).endswith("//NOFORN")
    if not input_supplies(name, record, rendering, truth_noforn):
        return APART_NO_INPUT
    return None


def _exact(expected: str, got: str | None) -> Comparison:
    return expected == got, expected, "<null>" if got is None else got


def _set_text(values: Iterable[str]) -> str:
    return " ".join(sorted(values))


# --- the run --------------------------------------------------------------------------


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


def _score_entry(
    report: Report, entry: dict[str, Any], record: CableRecord | None, why: str
) -> None:
    truth, rendering = entry["truth"], str(entry["rendering"])
    for name in FIELD_ORDER:
        compared = compare_field(name, truth, record or CableRecord())
        if compared is None:
            continue
        reason = apart_reason(name, truth, record, rendering)
        if reason is not None:
            filled = record is not None and compared[2] not in ("<null>", "None")
            for tally in (report.overall, report.by_rendering[rendering]):
                tally.apart[name][reason] += 1
                if filled:
                    tally.apart[name][f"{reason}, filled"] += 1
            continue
        ok, expected, got = compared if record is not None else (False, compared[1], why)
        report.overall.add(name, ok)
        report.by_rendering[rendering].add(name, ok)
        if not ok:
            report.failures.append(
                Failure(str(entry["file"]), int(entry["index"]), rendering, name, expected, got)
            )


def run(corpus: Path) -> Report:
    """Parse a whole corpus and compare every truth field."""
    report = Report(name=corpus.name)
    started = time.perf_counter()
    for name, entries in sorted(load_manifest(corpus).items()):
        report.files += 1
        report.cables += len(entries)
        results, error = _parse_file(corpus, name)
        records = [result for result in results if isinstance(result, CableRecord)]
        nocables = len(results) - len(records)
        report.found += min(len(records), len(entries))
        report.spurious += max(0, len(records) - len(entries))
        if records:
            report.stray_nocables += nocables
        if error is not None:
            report.count_mismatches.append(f"{name}: parser raised {error}")
        elif len(results) != len(entries):
            report.count_mismatches.append(
                f"{name}: {len(entries)} cables in manifest, {len(records)} records, "
                f"{nocables} NoCable"
            )
        for entry in entries:
            index = int(entry["index"])
            record = records[index] if index < len(records) else None
            why = error or next(
                (f"<NoCable {r.reason}: {r.detail}>" for r in results if isinstance(r, NoCable)),
                "<no record>",
            )
            _score_entry(report, entry, record, why)
    report.seconds = time.perf_counter() - started
    return report


# --- output ---------------------------------------------------------------------------


def _pct(rate: float | None) -> str:
    return "   -  " if rate is None else f"{100 * rate:6.2f}"


def format_summary(report: Report) -> str:
    """Cable counts, per-field accuracy with the cables counted apart, then per rendering."""
    lines = [
        f"== {report.name}: {report.files} files, {report.cables} cables in the manifest, "
        f"parsed in {report.seconds:.1f} s",
        f"cables found {report.found}, missed {report.missed}, spurious records "
        f"{report.spurious}, NoCable chunks beside a found cable {report.stray_nocables}",
        "",
        f"{'field':<16}{'accuracy %':>11}{'matched':>9}{'compared':>10}  counted apart",
    ]
    for name in FIELD_ORDER:
        hits = report.overall.hits.get(name, 0)
        total = report.overall.totals.get(name, 0)
        apart = ", ".join(
            f"{reason} {n}" for reason, n in sorted(report.overall.apart[name].items())
        )
        lines.append(f"{name:<16}{_pct(report.rate(name)):>11}{hits:>9}{total:>10}  {apart}")
    lines += ["", "per rendering (accuracy %):"]
    lines.append(f"{'rendering':<14}{'n':>5}" + "".join(f"{head:>9}" for head in SHORT_NAMES))
    for rendering, tally in sorted(report.by_rendering.items()):
        n = max(tally.totals.values(), default=0)
        cells = "".join(f"{_pct(tally.rate(name)):>9}" for name in FIELD_ORDER)
        lines.append(f"{rendering:<14}{n:>5}{cells}")
    return "\n".join(lines)


def write_failures(report: Report, path: Path) -> None:
    """Tab-separated misses sorted by field then file, count mismatches first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["# cable count mismatches", *report.count_mismatches]
    rows.append("# file\tindex\trendering\tfield\texpected\tgot")
    for failure in sorted(report.failures, key=lambda f: (f.field, f.file, f.index)):
        cells = [failure.file, str(failure.index), failure.rendering, failure.field]
        rows.append("\t".join([*cells, _clip(failure.expected), _clip(failure.got)]))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _clip(text: str, limit: int = 200) -> str:
    flat = repr(text)[1:-1]  # escapes tabs and newlines so each failure stays one line
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def below_threshold(report: Report, minimum: float) -> list[str]:
    """Fields with truth whose accuracy is under `minimum`."""
    return [
        name
        for name in FIELD_ORDER
        if report.rate(name) is not None and (report.rate(name) or 0.0) < minimum
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, action="append", help="repeatable")
    parser.add_argument("--min", type=float, default=0.99, help="target for every field")
    parser.add_argument("--failures", type=Path, default=DEFAULT_FAILURES_DIR)
    args = parser.parse_args(argv)
    status = 0
    for corpus in args.corpus or DEFAULT_CORPORA:
        if not (corpus / "manifest.jsonl").is_file():
            print(f"no corpus manifest under {corpus}", file=sys.stderr)
            return 2
        report = run(corpus)
        print(format_summary(report))
        failures = args.failures / f"accuracy_{corpus.name}.txt"
        write_failures(report, failures)
        print(f"{len(report.failures)} misses written to {failures}\n")
        failing = below_threshold(report, args.min)
        if failing:
            print(
                f"{corpus.name} below {100 * args.min:.0f}%: {', '.join(failing)}", file=sys.stderr
            )
        if report.missed or report.spurious:
            print(
                f"{corpus.name}: {report.missed} cables missed, {report.spurious} spurious records",
                file=sys.stderr,
            )
        if failing or report.missed or report.spurious:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
