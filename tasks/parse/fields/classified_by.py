"""`Classified By: Pol-Econ Chief Steven Fagin, Reasons 1.4 (b) and (d)`."""

from __future__ import annotations

from cablestream.tasks.parse import guard
from cablestream.tasks.parse.fields.body import PARAGRAPH_START
from cablestream.tasks.parse.fields.markers import FIELD_START, following_lines

# At a line start, or after a paragraph opener such as `1. (U)`.
# Also mid-line after a sentence: `CONFIDENTIAL - ENTIRE TEXT. CLASSIFIED BY …`.
_CLASSIFIED_BY = guard.compile(
    r"(?im)(?:^[ \t]{0,20}+(?:\d{1,2}\.[ \t]{0,5}+)?(?:\([A-Z/]{1,8}\)[ \t]{0,5}+)?|(?<=[.;][ \t]{1,3}))"
    r"CLASSIFIED[ \t]{1,5}+BY[ \t]{0,5}+[:.;-]?[ \t]{0,10}+(?P<rest>[^\n]*)"
)
# Where the authority ends and the reasons begin: `, Reasons`, `for reasons`, `Reason:`, `1.4`.
# The separator run is only tried from its first character: tried from each one, a long run
# of `, , ,` costs quadratic time.
_REASONS_START = guard.compile(
    r"(?i)(?<![ \t,;.])[ \t,;.]*+(?:\bfor\b[ \t]*)?(?:\breasons?\b|\bE\.?O\.?[ \t]*\d{5}\b|\b1[.,][45]\b)"
)
# `1.4 (b) and (d)`, `1.4(B), (C), AND (D)`, `1.5 (b,d)`, `1.4 ( b) and (d)`, `1.4 (b/d)`,
# and `1,4 (b)` with a comma for the dot.
_REASON_SECTION = guard.compile(
    r"(?i)\b1[.,](?P<section>[45])\.?[ \t]*(?P<letters>(?:[ \t,&/()]|and\b|[a-h](?![a-z]))*+)"
)
# Lines that continue the block although they look like a new field: `for reasons …`,
# `E.O. 12958 reasons …`, reason letters `(a) (b)`, `& d).`
_WRAP_START = guard.compile(r"(?i)^[ \t]*(?:for\b|reasons?\b|E\.?O\.?|\(|&|and\b)")
# A section number split by a wrap: `1.\n4 (b)`, `1\n.4 (b)`.
_SPLIT_SECTION = guard.compile(r"\b1[ \t]*\.[ \t]*([45])\b")
_MAX_WRAPPED_LINES = 3
# Some writers repeat the label: `Classified By: Classified by Pol/Econ Officer …`.
_REPEATED_LABEL = guard.compile(r"(?i)^classified[ \t]+by[ \t]*:?[ \t]*")
_REASON_LETTER = guard.compile(r"(?i)(?<![a-z])([a-h])(?![a-z])")


def _block(text: str, match: guard.Match) -> str:
    """The Classified By line with the lines it wraps onto, joined on one line."""
    parts = [match["rest"]]
    for line in following_lines(text, match.end("rest"), _MAX_WRAPPED_LINES):
        if not line.strip() or PARAGRAPH_START.match(line):
            break
        if FIELD_START.match(line) and not _WRAP_START.match(line):
            break
        parts.append(line)
    return " ".join(" ".join(parts).split())


# A label starts at most this far before its word (`12. (S/NF) ` and blanks).
_BEFORE_WORD = 48


def _first_word(text: str) -> int:
    """Where `classified` is first written (lower, capitalised or upper case), or -1."""
    found = [at for at in (text.find("lassified"), text.find("LASSIFIED")) if at > 0]
    return min(found) - 1 if found else -1


def _label(text: str) -> guard.Match | None:
    """The first `Classified By` label at or after the line of the word's first lower,
    capitalised or upper case spelling (a literal check before the case-insensitive scan).

    In ASCII text each line holding the word in any spelling (found in a lower-cased copy)
    is searched alone: a label never spans lines, so the first line whose search finds one
    holds the first label, and the lines between are not scanned.
    """
    first = _first_word(text)
    if first < 0:
        return None
    # The scan starts at the line of the first word: no label starts before it.
    line_start = text.rfind("\n", max(0, first - _BEFORE_WORD), first) + 1
    if not text.isascii():
        return _CLASSIFIED_BY.search(text, line_start)
    lowered = text.lower()
    at = lowered.find("classified", line_start)
    while at != -1:
        line_end = text.find("\n", at)
        line_end = len(text) if line_end < 0 else line_end
        # From the line start, or where a label opening the line at most could start.
        newline = text.rfind("\n", max(0, at - _BEFORE_WORD), at)
        start = max(line_start, newline + 1 if newline >= 0 else at - _BEFORE_WORD)
        match = _CLASSIFIED_BY.search(text, start, line_end)
        if match is not None:
            return match
        at = lowered.find("classified", line_end)
    return None


def parse_classified_by(text: str) -> tuple[str | None, list[str]]:
    """(classifying authority, reasons as `1.4(b)` codes)."""
    match = _label(text)
    if match is None:
        return None, []
    block = _SPLIT_SECTION.sub(r"1.\1", _block(text, match))
    start = _REASONS_START.search(block)
    authority = (block[: start.start()] if start else block).strip(" ,;:.")
    authority = _REPEATED_LABEL.sub("", authority)
    reasons: list[str] = []
    for section in _REASON_SECTION.finditer(block):
        letters = section["letters"].replace("and", " ").replace("AND", " ")
        reasons.extend(
            f"1.{section['section']}({letter.lower()})"
            for letter in _REASON_LETTER.findall(letters)
        )
    return authority or None, list(dict.fromkeys(reasons))
