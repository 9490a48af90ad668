"""The classification + serial line and the handling caveats under it.

`SECRET ASTANA 000988` (after spaced letters were joined), `UNCLAS SECTION 01 OF 02
BRASILIA 000123`, lower-cased early versions `Confidential section 01 of 04 ankara 000348`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

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
_CLASSIFICATION_WORD = r"TOP SECRET|SECRET|CONFIDENTIAL|UNCLASSIFIED|UNCLAS|LIMITED OFFICIAL USE"

_SERIAL_LINE = regex.compile(
    rf"(?im)^[ \t]*(?P<classification>{_CLASSIFICATION_WORD})"
    rf"(?P<markers>(?:[ \t]*/{{1,2}}[ \t]*|[ \t]+)(?:{_CAVEAT_ALTERNATION}|E F T O))*"
    r"[ \t]+(?:SECTION[ \t]+\d{1,2}[ \t]+OF[ \t]+\d{1,2}[ \t]+)?"
    r"(?:\d{2}[ \t]+)?(?!SECTION\b)(?P<station>[A-Z][A-Z.'-]*(?:[ \t][A-Z][A-Z.'-]*){0,3})[ \t]+0*(?P<serial>\d{1,7})"
    r"(?P<trailer>(?:[ \t]+[^\n]*)?)$"
)
# A line holding only handling markers: `SIPDIS`, `NOFORN SIPDIS`, `STPDTS`.
_CAVEAT_LINE = regex.compile(rf"(?i)^[ \t]*(?:(?:{_CAVEAT_ALTERNATION})[ \t,/]*)+$")
_CAVEAT_TOKEN = regex.compile(rf"(?i)\b(?:{_CAVEAT_ALTERNATION})\b")
_LEADING_CAVEATS = regex.compile(rf"(?i)(?:[ \t,/]*(?:{_CAVEAT_ALTERNATION})\b)+")
# A bare classification line at the very top of old printouts and some renderings.
_BARE_CLASSIFICATION = regex.compile(rf"(?im)^[ \t]*({_CLASSIFICATION_WORD})[ \t]*$")
_FOUO_CLASSIFICATION = "UNCLASSIFIED//FOR OFFICIAL USE ONLY"


@dataclass(slots=True)
class SerialLine:
    """What the classification line says, and where the cable text starts after it."""

    classification: str | None
    station: str | None
    serial: int | None
    caveats: list[str] = field(default_factory=list)
    end: int = 0


def normalize_classification(word: str, caveats: list[str]) -> str:
    """`UNCLAS` + `SENSITIVE` -> `UNCLASSIFIED//FOR OFFICIAL USE ONLY`; others upper-cased."""
    word = " ".join(word.upper().split())
    if word in ("UNCLAS", "UNCLASSIFIED"):
        sensitive = {"SENSITIVE", "SENSITIVE BUT UNCLASSIFIED", "FOR OFFICIAL USE ONLY"} & set(
            caveats
        )
        return _FOUO_CLASSIFICATION if sensitive else "UNCLASSIFIED"
    return word


# The release's classification strings, keyed by their letters alone, so that a
# garbled copy (`UNCLASSIFIED//FOR OFFICIA LUSEONLY`) still maps to its string.
_RELEASE_CLASSIFICATIONS = {
    regex.sub(r"[^A-Z]", "", value): value
    for value in ("UNCLASSIFIED", _FOUO_CLASSIFICATION, "CONFIDENTIAL", "SECRET", "TOP SECRET")
}


def from_release(value: str) -> tuple[str, list[str]]:
    """The release's string (`SECRET//NOFORN`) as classification + caveats, as the text has them."""
    upper = value.upper()
    noforn = upper.replace(" ", "").endswith("//NOFORN")
    if noforn:
        upper = upper[: upper.rindex("/") - 1]
    letters = regex.sub(r"[^A-Z]", "", upper)
    word = _RELEASE_CLASSIFICATIONS.get(letters, " ".join(upper.split()))
    return word, ["NOFORN"] if noforn else []


def find_serial_line(text: str) -> SerialLine:
    """The first classification + station + serial line, or the bare classification word."""
    match = _SERIAL_LINE.search(text)
    if match is None:
        bare = _BARE_CLASSIFICATION.search(text)
        word = bare.group(1) if bare else None
        return SerialLine(word, None, None, end=0)
    caveats = [token.upper() for token in _CAVEAT_TOKEN.findall(match["markers"] or "")]
    # Caveats run on after the serial when a rendering joined lines: `… 000251 NOFORN SIPDIS`.
    trailer = _LEADING_CAVEATS.match(match["trailer"])
    caveats += (
        [token.upper() for token in _CAVEAT_TOKEN.findall(trailer.group(0))] if trailer else []
    )
    station: str | None = "".join(match["station"].upper().split())
    if station and set(station) == {"X"}:
        station = None  # redacted by the publisher: the origin line may still name it
    return SerialLine(match["classification"], station, int(match["serial"]), caveats, match.end())


def parse_caveat_lines(lines: list[str]) -> list[str]:
    """Caveats from lines that hold nothing but handling markers."""
    found: list[str] = []
    for line in lines:
        if _CAVEAT_LINE.match(line):
            found.extend(token.upper() for token in _CAVEAT_TOKEN.findall(line))
    return found


def dedupe(items: list[str]) -> list[str]:
    """Keep the first occurrence of each item, in order."""
    return list(dict.fromkeys(items))
