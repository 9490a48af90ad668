"""TAGS and SUBJECT: what the cable is about."""

from __future__ import annotations

import regex

from cablestream.tasks.parse.fields.classification import dedupe
from cablestream.tasks.parse.fields.markers import FIELD_START

# `TAGS: PREL, PGOV KZ`, `Tags: prel`, `TAG PREL` at a line start; `… TAGS: PREL` (with its
# colon) after the E.O. text.
_TAGS = regex.compile(r"(?m)(?:^[ \t]*(?i:tags?)\b[:;]?|[ \t](?i:tags?):)[ \t]*(?P<tags>[^\n]*)")
# `SUBJECT: …` / `SUBJ: …` at a line start; sharing a line with TAGS only with its colon
# (`… the subject of …` in a passing instruction is not one).
_SUBJECT = regex.compile(
    r"(?m)(?:^[ \t]*(?i:subj(?:ect)?)\b[ \t]*[:.;-]?|[ \t](?i:subj(?:ect)?):)[ \t]*(?P<subject>[^\n]*)"
)
_MAX_SUBJECT_LINES = 4
_TAG_TOKEN = regex.compile(r"[A-Za-z0-9][A-Za-z0-9_&-]*")
_CONNECTOR_END = regex.compile(
    r"(?i)(?:\b(?:OF|THE|AND|TO|IN|ON|FOR|A|AN|WITH|AT|BY|FROM|OR|ITS|HIS|HER|THEIR|NEW)|[,:;-])$"
)


def _line_index(text: str, position: int) -> int:
    return text.count("\n", 0, position)


def parse_tags(text: str) -> list[str]:
    """Tag tokens of the TAGS line, upper-cased, in order, de-duplicated; stops at SUBJECT.

    Only the TAGS line itself counts, as in the release's own tag index: a
    wrapped second line (`RO, SY, UK`) stays in the body, not in `tags`.
    """
    # The first TAGS marker that is followed by tags (`CORRECTED COPY - TAG` is not).
    for match in _TAGS.finditer(text):
        raw = regex.split(r"(?i)\bSUBJ(?:ECT)?\b", match["tags"], maxsplit=1)[0]
        tags = dedupe([token.upper() for token in _TAG_TOKEN.findall(raw)])
        if tags:
            return tags
    return []


def _mostly_upper(line: str) -> bool:
    letters = [char for char in line if char.isalpha()]
    return bool(letters) and sum(char.isupper() for char in letters) >= 0.8 * len(letters)


def parse_subject(text: str, *, double_spaced: bool) -> str | None:
    """The SUBJECT line unwrapped over its continuation lines; None when absent or empty.

    A wrap crosses a blank line only where the rendering puts blank lines
    between all lines, or where the line so far visibly continues (`… BOARD OF`).
    An upper-case subject continues only with upper-case lines.
    """
    match = _SUBJECT.search(text)
    if match is None:
        return None
    lines = text.split("\n")
    parts = [match["subject"].strip()]
    upper = _mostly_upper(parts[0])
    index = _line_index(text, match.start("subject")) + 1
    while index < len(lines) and len(parts) <= _MAX_SUBJECT_LINES:
        line = lines[index].strip()
        index += 1
        if not line:
            ends_open = bool(_CONNECTOR_END.search(parts[-1]))
            next_blank = index >= len(lines) or not lines[index].strip()
            if next_blank or not (double_spaced or ends_open):
                break
            continue
        if FIELD_START.match(line) or (upper and parts[0] and not _mostly_upper(line)):
            break
        parts.append(line)
    subject = " ".join(" ".join(parts).split())
    return subject or None
