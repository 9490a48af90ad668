"""A deterministic generated corpus of any size, made from the real corpora's cable texts.

Run: `.venv/bin/python bench/generate_corpus.py --cables 251287 --out /tmp/gen --seed 1`

Issue 15 asks for the release's size (251,287 cables) in files that look like the
release's real mix. Every generated cable is a real cable text of `../shared/corpus` or
`../shared/corpus-bulk` (their release_text and release_html files, about 4,300 distinct
cables) in one of the forms below, given a new serial so that every reference_id is
distinct. Shares are of cables:

| rendering    | share | what is written                                                 |
|--------------|-------|-----------------------------------------------------------------|
| release_text | 0.60  | the plain release text (header, blank line, text)               |
| release_html | 0.08  | the real release page (html bases only), ids and serials replaced |
| csv_row      | 0.10  | rows of the release's cables.csv, 20-60 per file: id, date,     |
|              |       | refid, origin, classification, refs, header, content (`\"`, `\'`) |
| crlf         | 0.03  | release text with CRLF line ends                                |
| html_u       | 0.03  | release text with the tag list wrapped in `<u>...</u>`          |
| markdown     | 0.05  | header dropped, partial-extract preface, logical lines unwrapped|
|              |       | and separated by blank lines, `[TAG](#)` links, `1 .` and `1n.` |
|              |       | numbers, `NNNN` at the end                                      |
| latex        | 0.04  | first two header lines joined, lines unwrapped, E.O. and TAGS   |
|              |       | joined, `<u>` tags, ` $\\underline{\\mbox{1}}\\mbox{1}.$` and `1n.` |
| multi        | 0.05  | 3 to 5 release texts back to back, each closed by an `NNNN` line|
| gzip         | 0.02  | a release text gzip-compressed (`.txt.gz`)                      |

(The real corpus has 41% release text, 26% release pages, 2% csv; the bulk corpus 80%
text, 20% pages. Release pages are 40-190 KB, mostly site navigation, so their share of
cables is kept small: 8% of the cables are about a third of the bytes.)

Layout of `--out`: `manifest.jsonl` in the corpus' format (file, index, rendering,
derived, derivation, base_file, truth with the new reference_id) and `files/NNNN/`
folders of at most 1000 files, so `bench/accuracy.py --corpus OUT` and
`bench/parse_throughput.py --files OUT/files` run on it unchanged.

Speed: each (base cable, rendering) is rendered once into a template in which the
serial is a marker; a generated cable only fills the markers in (and gzips).
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"
DEFAULT_BULK = REPO_ROOT.parent / "shared" / "corpus-bulk"
FILES_PER_FOLDER = 1000
PARTIAL_PREFACE = (
    "This record is a partial extract of the original cable. "
    "The full text of the original cable is not available."
)

# Markers left in templates where the new serial goes: \x00S6\x01 = serial padded to 6
# digits, \x00D\x01 = the DE line's 4-digit message number, \x00R\x01 = the reference id.
_MARKER = re.compile(r"\x00(S\d+|D|R)\x01")
# `08ASTANA988` -> year 08, station ASTANA, serial 988.
_REFERENCE_ID = re.compile(r"^(\d{2})([A-Z][A-Z-]*[A-Z])(\d+)$")
# `DE RUEHTA #0988 1480710` or `DE RUEHMIL #0176/01 2310918`: the message number.
_DE_NUMBER = re.compile(r"(?m)^(DE \S+ #)(\d{1,5})")
# The two `<pre>` blocks of a release page: header, then text.
_PRE_BLOCK = re.compile(r"<code><pre>(.*?)</pre></code>", re.DOTALL)
# `<a id='par1' href='#par1'>¶</a>`: paragraph anchors, removed with their pilcrow.
_PAR_ANCHOR = re.compile(r"<a id='par\d+' href='#par\d+'>¶</a>")
_HTML_TAG = re.compile(r"</?a\b[^>]*>")
_BLANK = re.compile(r"^[ \t]*$")
# Lines that begin a new logical line when wrapped lines are joined.
_LOGICAL_START = re.compile(
    r"^\s*(?:E\.?\s?O\.?\s|TAGS?\b|SUBJ(?:ECT)?\b|REFS?\b|REFTEL|Classified\s+By|"
    r"CLASSIFIED\s+BY|SIPDIS|NOFORN|STPDTS|EXDIS|NODIS|SENSITIVE|¶|\d{1,2}\s?\.\s|"
    r"\(?[A-Z]\)\s|[A-Z]\.\s|SUMMARY|END SUMMARY|BEGIN SUMMARY|COMMENT|END COMMENT|"
    r"[A-Z][A-Z ]+ 0{3,}\d+\s+\d{3}(?:\.\d)? OF \d{3})",
    re.IGNORECASE,
)
# A numbered paragraph at the start of a line: `1. (C) text`, `¶2. text`.
_PARAGRAPH_NUMBER = re.compile(r"(?m)^(\s*)¶?(\d{1,2})\.(?=\s)")
_TAGS_LINE = re.compile(r"(?m)^(TAGS?:?[ \t]+)(.*?)[ \t]*$")
_EO_LINE = re.compile(r"^\s*E\.?\s?O\.?\s", re.IGNORECASE)
_TAGS_START = re.compile(r"^\s*TAGS?\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Base:
    """A real cable, with markers where its serial is written."""

    file: str
    truth: dict[str, Any]
    year: str
    station: str
    header: str  # the telegram header block ("" when headerless)
    text: str  # from the classification/serial line on
    page: str | None  # the whole release page, for release_html bases

    @property
    def release_text(self) -> str:
        return f"{self.header}\n\n{self.text}" if self.header else self.text


# --- reading the real corpus --------------------------------------------------------------


def _serial_pattern(station: str, serial: str) -> re.Pattern[str]:
    """`ASTANA 000988`, `BUENOS AIRES 000174`, `ankara 000348`: station, then padded serial."""
    letters = r"\s*".join(re.escape(letter) for letter in station.replace("-", ""))
    return re.compile(rf"(?<![A-Za-z])({letters}\s+)(0*{serial})(?!\d)", re.IGNORECASE)


def mark_serials(text: str, station: str, serial: str) -> tuple[str, int]:
    """Replace every `STATION 000988` (serial and page lines) with a width marker."""
    pattern = _serial_pattern(station, serial)
    marked, count = pattern.subn(lambda m: f"{m.group(1)}\x00S{len(m.group(2))}\x01", text)

    def de_number(match: re.Match[str]) -> str:
        # The DE line carries the serial's last four digits.
        if int(match.group(2)) % 10_000 == int(serial) % 10_000:
            return f"{match.group(1)}\x00D\x01"
        return match.group(0)

    return _DE_NUMBER.sub(de_number, marked), count


def split_header(text: str, first_serial_at: int) -> tuple[str, str]:
    """Header block and text: the text starts at the line holding the first serial."""
    line_start = text.rfind("\n", 0, first_serial_at) + 1
    return text[:line_start].rstrip(), text[line_start:].strip("\n")


def _page_text(page: str) -> tuple[str, str] | None:
    """The release page's header and text as plain text, as the release's text form has."""
    blocks = _PRE_BLOCK.findall(page)
    if len(blocks) != 2:
        return None
    header, text = (html.unescape(_HTML_TAG.sub("", _PAR_ANCHOR.sub("", b))) for b in blocks)
    return header.strip("\n"), text.strip("\n")


def load_bases(*corpora: Path) -> list[Base]:
    """Every release_text / release_html cable whose serial can be found in its text."""
    bases = []
    for corpus in corpora:
        with (corpus / "manifest.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                entry = json.loads(line)
                if entry["rendering"] in ("release_text", "release_html") and "note" not in entry:
                    base = _load_base(corpus, entry)
                    if base is not None:
                        bases.append(base)
    return bases


def _load_base(corpus: Path, entry: dict[str, Any]) -> Base | None:
    truth = entry["truth"]
    parts = _REFERENCE_ID.match(truth["reference_id"])
    if parts is None:
        return None
    year, station, serial = parts.groups()
    raw = (corpus / entry["file"]).read_text(encoding="utf-8", errors="replace")
    page = None
    if entry["rendering"] == "release_html":
        pieces = _page_text(raw)
        if pieces is None:
            return None
        header, body = pieces
        page, page_count = mark_serials(
            raw.replace(truth["reference_id"], "\x00R\x01"), station, serial
        )
        if page_count == 0:
            return None
        marked, count = mark_serials(body, station, serial)
        header, _ = mark_serials(header, station, serial)
        if count == 0:
            return None
        text = marked.strip("\n")
    else:
        marked, count = mark_serials(raw, station, serial)
        if count == 0:
            return None
        header, text = split_header(marked, marked.index("\x00S"))
    return Base(f"{corpus.name}/{entry['file']}", truth, year, station, header, text, page)


# --- renderings (each turns a base into a template) ----------------------------------------


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.split("\n")]


def logical_lines(text: str) -> list[str | None]:
    """Wrapped lines joined into logical lines; None stands for a blank line."""
    out: list[str | None] = []
    for line in _lines(text):
        if _BLANK.match(line):
            out.append(None)
        elif out and out[-1] is not None and not _LOGICAL_START.match(line):
            out[-1] = f"{out[-1]} {line.strip()}"
        else:
            out.append(line.strip())
    return out


def garble_paragraph_numbers(text: str, first: str) -> str:
    """Paragraph 1 written `first`, paragraphs n >= 2 written `1n.` (2 -> 12, 10 -> 110)."""

    def garble(match: re.Match[str]) -> str:
        number = int(match.group(2))
        return match.group(1) + (first if number == 1 else f"1{number}.")

    return _PARAGRAPH_NUMBER.sub(garble, text)


def _tag_tokens(tags: str) -> list[str]:
    return [token for token in re.split(r"[,\s]+", tags) if token]


def render_release_text(base: Base) -> str:
    return base.release_text.rstrip("\n") + "\n"


def render_crlf(base: Base) -> str:
    return render_release_text(base).replace("\n", "\r\n")


def _u_tags(text: str) -> str:
    return _TAGS_LINE.sub(lambda m: f"{m.group(1)}<u>{m.group(2)}</u>", text, count=1)


def render_html_u(base: Base) -> str:
    return _u_tags(render_release_text(base))


def render_markdown(base: Base) -> str:
    """A web scrape: no header, the partial-extract preface, one logical line per block."""
    blocks = [line for line in logical_lines(base.text) if line is not None]
    body = "\n\n".join(blocks)
    body = _TAGS_LINE.sub(
        lambda m: m.group(1) + " ".join(f"[{t}](#)" for t in _tag_tokens(m.group(2))), body, count=1
    )
    body = garble_paragraph_numbers(body, "1 .")
    return f"\n\n{PARTIAL_PREFACE}\n\n{body}\n\nNNNN\n"


def render_latex(base: Base) -> str:
    """A PDF/LaTeX round trip: joined header start, unwrapped lines, LaTeX paragraph 1."""
    header = _lines(base.header)
    if len(header) >= 2 and header[0].startswith("VZCZC"):
        header = [f"{header[0]} {header[1].strip()}", *header[2:]]
    joined: list[str] = []
    for line in logical_lines(base.text):
        if line is None:
            joined.append("")
            continue
        if _TAGS_START.match(line):
            line = _u_tags(line)
            if joined and _EO_LINE.match(joined[-1]):
                joined[-1] = f"{joined[-1]} {line}"
                continue
        joined.append(line)
    text = "\n".join(joined)
    text = garble_paragraph_numbers(text, r" $\underline{\mbox{1}}\mbox{1}.$")
    head = "\n".join(header)
    return f"{head}\n\n{text}\n" if head else f"{text}\n"


def render_release_html(base: Base) -> str:
    assert base.page is not None
    return base.page


def render_gzip(base: Base) -> str:
    return render_release_text(base)


def _csv_field(value: str) -> str:
    """Quoted as the release's cables.csv quotes: backslash escapes, no doubled quotes."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")
    return f'"{escaped}"'


def _csv_date(truth: dict[str, Any]) -> str:
    """The csv's `M/D/YYYY H:MM` from the truth (minute 00 where it only gives the hour)."""
    stamp = str(truth.get("created") or f"{truth['created_hour']}:00")
    year, month, day = (int(part) for part in stamp[:10].split("-"))
    return f"{month}/{day}/{year} {int(stamp[11:13])}:{stamp[14:16]}"


def render_csv_row(base: Base) -> str:
    """One cables.csv row: the running number as its id, the truth's metadata, header, text."""
    truth = base.truth
    fields = [
        _csv_date(truth),
        "\x00R\x01",
        str(truth["origin"]),
        str(truth["classification"]),
        "",  # references: the new serials are nobody's
        base.header,
        base.text,
    ]
    return '"\x00S1\x01",' + ",".join(_csv_field(field) for field in fields) + "\n"


@dataclass(frozen=True, slots=True)
class Rendering:
    name: str
    weight: float  # share of the generated cables written in this rendering
    extension: str
    derivation: tuple[str, ...]
    render: Callable[[Base], str]
    needs_page: bool = False
    per_file: tuple[int, int] = (1, 1)  # cables in one file: fewest, most
    derived: bool = True  # False: a form the release itself published (page, text, csv)

    @property
    def mean_per_file(self) -> float:
        return sum(self.per_file) / 2


RENDERINGS = (
    Rendering("release_text", 0.60, ".txt", (), render_release_text, derived=False),
    Rendering(
        "release_html", 0.08, ".html", (), render_release_html, needs_page=True, derived=False
    ),
    Rendering("csv_row", 0.10, ".csv", (), render_csv_row, per_file=(20, 60), derived=False),
    Rendering("crlf", 0.03, ".txt", ("crlf_line_ends",), render_crlf),
    Rendering("html_u", 0.03, ".txt", ("u_tags",), render_html_u),
    Rendering(
        "markdown",
        0.05,
        ".md",
        (
            "header_dropped",
            "partial_extract_preface",
            "lines_unwrapped",
            "markdown_tag_links",
            "paragraph_numbers_garbled",
        ),
        render_markdown,
    ),
    Rendering(
        "latex",
        0.04,
        ".txt",
        (
            "lines_unwrapped",
            "header_lines_joined",
            "u_tags",
            "eo_tags_joined",
            "latex_residue_paragraph_numbers",
        ),
        render_latex,
    ),
    Rendering(
        "multi",
        0.05,
        ".txt",
        ("several_cables_in_one_file", "nnnn_end_markers"),
        render_release_text,
        per_file=(3, 5),
    ),
    Rendering("gzip", 0.02, ".txt.gz", ("gzip",), render_gzip),
)


# --- generation ---------------------------------------------------------------------------


class TemplateCache:
    """Each (base, rendering) is rendered once; cables only fill in their serial."""

    def __init__(self) -> None:
        self._templates: dict[tuple[int, str], str] = {}

    def get(self, index: int, base: Base, rendering: Rendering) -> str:
        key = (index, rendering.name)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = rendering.render(base)
        return template


def fill(template: str, reference_id: str, serial: int) -> str:
    """Write the new serial (padded as the original was) and reference id into a template."""

    def value(match: re.Match[str]) -> str:
        kind = match.group(1)
        if kind == "R":
            return reference_id
        if kind == "D":
            return f"{serial % 10_000:04d}"
        return str(serial).zfill(int(kind[1:]))

    return _MARKER.sub(value, template)


@dataclass(frozen=True, slots=True)
class Cable:
    base: Base
    reference_id: str
    text: str


def generate(bases: list[Base], cables: int, seed: int) -> Iterator[tuple[Rendering, list[Cable]]]:
    """Files as (rendering, cables in file order), deterministic for a seed."""
    rng = random.Random(seed)
    with_page = [i for i, base in enumerate(bases) if base.page is not None]
    # Chosen per file: a file of several cables weighs its cable share over its mean count.
    weights = [
        r.weight / r.mean_per_file if (not r.needs_page or with_page) else 0.0 for r in RENDERINGS
    ]
    cache = TemplateCache()
    made = 0
    while made < cables:
        rendering = rng.choices(RENDERINGS, weights)[0]
        count = min(rng.randint(*rendering.per_file), cables - made)
        pool = with_page if rendering.needs_page else range(len(bases))
        file_cables = []
        for _ in range(count):
            made += 1
            index = rng.choice(pool)
            base = bases[index]
            # The running number is the serial: distinct for every generated cable.
            reference_id = f"{base.year}{base.station}{made}"
            text = fill(cache.get(index, base, rendering), reference_id, made)
            file_cables.append(Cable(base, reference_id, text))
        yield rendering, file_cables


def file_bytes(rendering: Rendering, cables: list[Cable]) -> bytes:
    if rendering.name == "multi":
        text = "\n".join(f"{cable.text.rstrip()}\n\nNNNN\n" for cable in cables)
    else:
        text = "".join(cable.text for cable in cables)  # one cable, or csv rows
    data = text.encode("utf-8")
    # mtime=0 keeps the gzip bytes, and so the corpus, deterministic.
    return gzip.compress(data, compresslevel=6, mtime=0) if rendering.name == "gzip" else data


def manifest_lines(name: str, rendering: Rendering, cables: list[Cable]) -> Iterator[str]:
    for index, cable in enumerate(cables):
        truth = {k: v for k, v in cable.base.truth.items() if k != "references"}
        truth["reference_id"] = cable.reference_id
        entry = {
            "file": name,
            "index": index,
            "rendering": rendering.name,
            "derived": rendering.derived,
            "derivation": ["serial_replaced", *rendering.derivation],
            "base_file": cable.base.file,
            "truth": truth,
        }
        yield json.dumps(entry, ensure_ascii=False)


def write_corpus(corpora: list[Path], out: Path, cables: int, seed: int) -> tuple[int, int, int]:
    """Write files and manifest; returns (files, cables, bytes written)."""
    bases = load_bases(*corpora)
    if not bases:
        raise SystemExit(f"no usable base cables under {', '.join(map(str, corpora))}")
    files_dir = out / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    files = written = made = 0
    with (out / "manifest.jsonl").open("w", encoding="utf-8") as manifest:
        for rendering, file_cables in generate(bases, cables, seed):
            folder = f"{files // FILES_PER_FOLDER:04d}"
            name = f"files/{folder}/{files:07d}_{rendering.name}{rendering.extension}"
            if files % FILES_PER_FOLDER == 0:
                (files_dir / folder).mkdir(exist_ok=True)
            data = file_bytes(rendering, file_cables)
            (out / name).write_bytes(data)
            manifest.writelines(
                f"{line}\n" for line in manifest_lines(name, rendering, file_cables)
            )
            files += 1
            written += len(data)
            made += len(file_cables)
    return files, made, written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cables", type=int, required=True, help="number of cables to make")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--corpus",
        type=Path,
        nargs="+",
        default=[c for c in (DEFAULT_CORPUS, DEFAULT_BULK) if (c / "manifest.jsonl").is_file()],
        help="real corpora whose cables are the bases (default: corpus and corpus-bulk)",
    )
    args = parser.parse_args(argv)
    if (args.out / "manifest.jsonl").exists():
        print(f"{args.out} already holds a corpus; choose an empty folder", file=sys.stderr)
        return 2
    started = time.perf_counter()
    files, cables, written = write_corpus(args.corpus, args.out, args.cables, args.seed)
    seconds = time.perf_counter() - started
    print(
        f"{cables} cables in {files} files, {written / 1e6:.1f} MB, "
        f"written to {args.out} in {seconds:.1f} s (seed {args.seed})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
