"""`Classified By: Pol-Econ Chief Steven Fagin, Reasons 1.4 (b) and (d)`."""

from __future__ import annotations

import regex

from cablestream.tasks.fields.markers import continuation

# At a line start, or after a paragraph opener such as `1. (U)`.
_CLASSIFIED_BY = regex.compile(
    r"(?im)^[ \t]*(?:\d{1,2}\.[ \t]*)?(?:\([A-Z/]{1,8}\)[ \t]*)?CLASSIFIED[ \t]+BY[ \t]*[:.;-]?[ \t]*"
    r"(?P<rest>[^\n]*)"
)
# Where the authority ends and the reasons begin: `, Reasons`, `for reasons`, `Reason:`, `1.4`.
_REASONS_START = regex.compile(
    r"(?i)[ \t,;.]*(?:\bfor\b[ \t]*)?(?:\breasons?\b|\bE\.?O\.?[ \t]*\d{5}\b|\b1\.[45]\b)"
)
# `1.4 (b) and (d)`, `1.4(B), (C), AND (D)`, `1.5 (b,d)`, `1.4 ( b) and (d)`, `1.4 (b/d)`.
_REASON_SECTION = regex.compile(
    r"(?i)\b(?P<section>1\.[45])[ \t]*(?P<letters>(?:[ \t,&/()]|and\b|[a-h](?![a-z]))*)"
)
# A block that stops where its reasons should follow: `… for reasons 1.4`, `… Reasons:`.
_AWAITS_REASONS = regex.compile(r"(?i)(?:\b1\.[45]|\breasons?:?)[ \t]*$")
# Some writers repeat the label: `Classified By: Classified by Pol/Econ Officer …`.
_REPEATED_LABEL = regex.compile(r"(?i)^classified[ \t]+by[ \t]*:?[ \t]*")
_REASON_LETTER = regex.compile(r"(?i)(?<![a-z])([a-h])(?![a-z])")


def parse_classified_by(text: str) -> tuple[str | None, list[str]]:
    """(classifying authority, reasons as `1.4(b)` codes)."""
    match = _CLASSIFIED_BY.search(text)
    if match is None:
        return None, []
    lines = text.split("\n")
    index = text.count("\n", 0, match.start("rest"))
    wrapped = continuation(lines, index, cross_blank=False)[:3]
    block = " ".join(" ".join([match["rest"], *wrapped]).split())
    # The reason letters may wrap onto a line that looks like a list item: `1.4\n(a) (b)`.
    following = index + 1 + len(wrapped)
    if _AWAITS_REASONS.search(block) and following < len(lines):
        block = f"{block} {lines[following].strip()}"
    start = _REASONS_START.search(block)
    authority = (block[: start.start()] if start else block).strip(" ,;:.")
    authority = _REPEATED_LABEL.sub("", authority)
    reasons: list[str] = []
    for section in _REASON_SECTION.finditer(block):
        letters = section["letters"].replace("and", " ").replace("AND", " ")
        reasons.extend(
            f"{section['section']}({letter.lower()})" for letter in _REASON_LETTER.findall(letters)
        )
    return authority or None, list(dict.fromkeys(reasons))
