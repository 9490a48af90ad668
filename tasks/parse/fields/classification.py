"""The classification + serial line and the handling caveats under it.

`SECRET ASTANA 000988` (after spaced letters were joined), `UNCLAS SECTION 01 OF 02
BRASILIA 000123`, lower-cased early versions `Confidential section 01 of 04 ankara 000348`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import regex

from cablestream.tasks.parse import guard

CAVEATS = (
    "SIPDIS",
    "STPDTS",
    "NOFORN",
    "NODIS",
    "EXDIS",
    "LIMDIS",
    "NOCONTRACT",
    "ORCON",
    "PROPIN",
    "SENSITIVE BUT UNCLASSIFIED",
    "SENSITIVE",
    "SPECAT",
    "EFTO",
    "FOR OFFICIAL USE ONLY",
)
_CAVEAT_ALTERNATION = "|".join(regex.escape(caveat) for caveat in CAVEATS)
# The first letter is sometimes typed twice (`UUNCLAS`, `SSECRET`).
_CLASSIFICATION_WORD = (
    r"T?TOP SECRET|S?SECRET|C?CONFIDENTIAL|U?UNCLASSIFIED|U?UNCLAS|L?LIMITED OFFICIAL USE"
)

# Lines that may be the serial line: a classification word opens them (publishers sometimes
# left a stray `]` or `>` before it). Only these lines are matched in full, each cut to
# _MAX_SERIAL_LINE characters, so the scan stays linear on any input.
_CANDIDATE_LINE = rf"[ \t\]\[|>*#.-]{{0,10}}+(?i:(?={_CLASSIFICATION_WORD}))"
_SERIAL_CANDIDATE = guard.compile(rf"^{_CANDIDATE_LINE}")
# The same after a line end: a scan led by `\n` is several times faster than one trying `^`.
_SERIAL_CANDIDATE_AFTER_LINE_END = guard.compile(rf"\n{_CANDIDATE_LINE}")
_MAX_SERIAL_LINE = 400
_SERIAL_LINE = guard.compile(
    rf"(?i)(?P<classification>{_CLASSIFICATION_WORD})"
    rf"(?P<markers>(?:[ \t]{{0,10}}+/{{1,2}}+[ \t]{{0,10}}+|[ \t]{{1,10}}+)(?:{_CAVEAT_ALTERNATION}|E F T O))*+"
    r"[ \t]{1,10}+(?:SECTION[ \t]{1,10}+\d{1,2}[ \t]{1,10}+OF[ \t]{1,10}+\d{1,2}[ \t]{1,10}+)?"
    r"(?:\d{2}[ \t]{1,10}+)?(?!SECTION\b)"
    r"(?P<station>[A-Z][A-Z.'-]{0,30}+(?:[ \t][A-Z][A-Z.'-]{0,30}+){0,3}?)[ \t]{1,10}+0*+(?P<serial>\d{1,7}+)"
    # The serial may be glued to what follows (`ANKARA 008305S/CT FOR REAP`), never to a digit.
    r"(?P<trailer>[^\n\d][^\n]*+)?$"
)
_CAVEAT_TOKEN = guard.compile(rf"(?i)\b(?:{_CAVEAT_ALTERNATION})\b")
# A run of caveats, also glued together (`SIPDISNOFORN` is two), ending at a word boundary.
_LEADING_CAVEATS = guard.compile(rf"(?i)(?:[ \t,/]*(?:{_CAVEAT_ALTERNATION}))+\b")
_CAVEAT_IN_RUN = guard.compile(rf"(?i){_CAVEAT_ALTERNATION}")
_CAVEAT_INITIALS = frozenset(caveat[0] for caveat in CAVEATS)
# A bare classification line at the very top of old printouts and some renderings.
# Also the field form `CLASSIFICATION: SECRET` of some extracts.
_BARE_CLASSIFICATION = guard.compile(
    rf"(?im)^[ \t]{{0,40}}+(?:CLASSIFICATION:[ \t]{{0,10}}+)?({_CLASSIFICATION_WORD})[ \t]{{0,40}}+$"
)
_DOUBLED_FIRST_LETTER = guard.compile(r"^(\w)\1(?=[A-Z])")
_FOUO_CLASSIFICATION = "UNCLASSIFIED//FOR OFFICIAL USE ONLY"


@dataclass(slots=True)
class SerialLine:
    """What the classification line says, and where the cable text starts after it."""

    classification: str | None
    station: str | None
    serial: int | None
    caveats: list[str] = field(default_factory=list)
    # Where the line starts and ends in the text; both 0 when there is no serial line.
    start: int = 0
    end: int = 0
    # What follows the serial on its line (passing lines that a rendering joined on).
    trailer: str = ""


def normalize_classification(word: str, caveats: list[str]) -> str:
    """`UNCLAS` + `SENSITIVE` -> `UNCLASSIFIED//FOR OFFICIAL USE ONLY`; others upper-cased."""
    word = _DOUBLED_FIRST_LETTER.sub(r"\1", " ".join(word.upper().split()))
    if word in ("UNCLAS", "UNCLASSIFIED"):
        # EFTO (encrypted for transmission only) marks unclassified traffic as sensitive too.
        sensitive = {
            "SENSITIVE",
            "SENSITIVE BUT UNCLASSIFIED",
            "FOR OFFICIAL USE ONLY",
            "EFTO",
        } & set(caveats)
        return _FOUO_CLASSIFICATION if sensitive else "UNCLASSIFIED"
    return word


_NOT_LETTERS = guard.compile(r"[^A-Z]+")
# The release's classification strings, keyed by their letters alone, so that a
# garbled copy (`UNCLASSIFIED//FOR OFFICIA LUSEONLY`) still maps to its string.
_RELEASE_CLASSIFICATIONS = {
    regex.sub(r"[^A-Z]", "", value): value
    for value in ("UNCLASSIFIED", _FOUO_CLASSIFICATION, "CONFIDENTIAL", "SECRET", "TOP SECRET")
}


# The routing header's security line: `ZNY SSSSS ZZH` (secret), `ZNR UUUUU ZZH` (unclassified).
_SECURITY_LINE = guard.compile(r"(?m)^[ \t]*ZN[YR][ \t]+(?P<code>TTTTT|SSSSS|CCCCC|UUUUU)\b")
_SECURITY_CODES = {
    "TTTTT": "TOP SECRET",
    "SSSSS": "SECRET",
    "CCCCC": "CONFIDENTIAL",
    "UUUUU": "UNCLASSIFIED",
}


def from_security_line(header: str) -> str | None:
    """The classification the routing header announces, for cables without a serial line."""
    match = _SECURITY_LINE.search(header)
    return _SECURITY_CODES[match["code"]] if match else None


def from_release(value: str) -> tuple[str, list[str]]:
    """The release's string (`SECRET//NOFORN`) as classification + caveats, as the text has them."""
    upper = value.upper()
    noforn = upper.replace(" ", "").endswith("//NOFORN")
    if noforn:
        upper = upper[: upper.rindex("/") - 1]
    letters = _NOT_LETTERS.sub("", upper)
    word = _RELEASE_CLASSIFICATIONS.get(letters, " ".join(upper.split()))
    return word, ["NOFORN"] if noforn else []


@dataclass(slots=True)
class Classification:
    """The decided classification, the caveats with any the release adds, and why."""

    value: str | None
    caveats: list[str]
    warnings: list[str] = field(default_factory=list)


def decide_classification(
    serial: SerialLine, header: str, release_classification: str | None, caveats: list[str]
) -> Classification:
    """The text's serial line first, then the release's string, then the routing header.

    The release's `X//NOFORN` makes NOFORN a caveat even where the serial line says only X.
    """
    released, released_caveats = (
        from_release(release_classification) if release_classification else (None, [])
    )
    if serial.classification:
        value = normalize_classification(serial.classification, caveats)
        return Classification(value, dedupe([*caveats, *released_caveats]))
    if released:
        return Classification(
            released,
            dedupe([*caveats, *released_caveats]),
            ["classification_from_release_metadata"],
        )
    from_header = from_security_line(header)
    if from_header:
        return Classification(from_header, caveats, ["classification_from_routing_header"])
    return Classification(None, caveats, ["classification_missing"])


def _line_end(text: str, position: int) -> int:
    """The end of the line `position` is on (a line cut at _MAX_SERIAL_LINE ends later)."""
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def _candidates(text: str) -> Iterator[tuple[int, int]]:
    """(line start, where the classification word starts) of each candidate line."""
    first = _SERIAL_CANDIDATE.match(text)
    if first is not None:
        yield 0, first.end()
    for candidate in _SERIAL_CANDIDATE_AFTER_LINE_END.finditer(text):
        yield candidate.start() + 1, candidate.end()


def find_serial_line(text: str) -> SerialLine:
    """The first classification + station + serial line, or the bare classification word."""
    match, line_start = None, 0
    for candidate_start, word_start in _candidates(text):
        line_end = text.find("\n", word_start, word_start + _MAX_SERIAL_LINE)
        end = line_end if line_end >= 0 else min(len(text), word_start + _MAX_SERIAL_LINE)
        match = _SERIAL_LINE.match(text, word_start, end)
        if match is not None:
            line_start = candidate_start
            break
    if match is None:
        bare = _BARE_CLASSIFICATION.search(text)
        word = bare.group(1) if bare else None
        return SerialLine(word, None, None, end=0)
    caveats = [token.upper() for token in _CAVEAT_TOKEN.findall(match["markers"] or "")]
    # Caveats run on after the serial when a rendering joined lines: `… 000251 NOFORN SIPDIS`.
    trailer = _LEADING_CAVEATS.match(match["trailer"] or "")
    caveats += (
        [token.upper() for token in _CAVEAT_IN_RUN.findall(trailer.group(0))] if trailer else []
    )
    station: str | None = "".join(match["station"].upper().split())
    if station and set(station) == {"X"}:
        station = None  # redacted by the publisher: the origin line may still name it
    return SerialLine(
        match["classification"],
        station,
        int(match["serial"]),
        caveats,
        line_start,
        _line_end(text, match.end()),
        match["trailer"] or "",
    )


def parse_caveat_lines(lines: list[str]) -> list[str]:
    """Caveats from the handling markers that open preamble lines.

    Usually a marker stands alone on its line; unwrapping renderings run the
    passing instructions on after it (`SIPDIS SENSITIVE SIPDIS USDOC FOR …`).
    """
    found: list[str] = []
    for line in lines:
        # The first letter first: the case-insensitive pattern only where a caveat can start.
        if line.lstrip(" \t,/")[:1].upper() not in _CAVEAT_INITIALS:
            continue
        leading = _LEADING_CAVEATS.match(line)
        if leading:
            found.extend(token.upper() for token in _CAVEAT_IN_RUN.findall(leading.group(0)))
    return found


# A caveat written in capitals as a word of an upper-case handling line, also at its end
# (`SOUTHCOM ALSO FOR POLAD SENSITIVE SIPDIS`, `… USDA FOR FAS/OA SIPDIS SENSITIVE`).
_CAVEAT_WORD = guard.compile(
    rf"(?<![A-Za-z])(?:{_CAVEAT_ALTERNATION.replace('(?i)', '')})(?![a-z])"
)
_LOWER_CASE = guard.compile(r"[a-z]")


def parse_caveat_words(lines: list[str]) -> list[str]:
    """Caveats written anywhere in upper-case handling lines (prose lines are skipped)."""
    # One scan over the upper-case lines joined (a line end is a word boundary, as a line's end was).
    upper_case = "\n".join(line for line in lines if line and not _LOWER_CASE.search(line))
    return _CAVEAT_WORD.findall(upper_case) if upper_case else []


def dedupe(items: list[str]) -> list[str]:
    """Keep the first occurrence of each item, in order."""
    return list(dict.fromkeys(items))
