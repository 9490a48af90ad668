"""Where each header field starts: shared by the parsers of fields that wrap over lines."""

from __future__ import annotations

import regex

# A line that opens another header field or the body, so a wrapped field ends there.
FIELD_START = regex.compile(
    r"(?i)^[ \t]*(?:E\.? ?O\.?[ \t]*\d|TAGS?\b|SUBJ(?:ECT)?\b|REFS?\b|REFTEL|"
    r"CLASSIFIED[ \t]+BY|DECL\b|\d{1,3}\.[ \t(]|\(?[A-Z]\)[ \t]|SUMMARY|BEGIN[ \t]+SUMMARY|"
    r"PASS[ \t]|DEPT[ \t]+FOR|FOR[ \t]|SIPDIS|NOFORN|NNNN|BT\b)"
)


def continuation(lines: list[str], start: int, *, cross_blank: bool) -> list[str]:
    """Lines after `start` that continue a wrapped field.

    Stops at a blank line (or, with `cross_blank`, at the second one in a row,
    for renderings that put a blank line after every line) and at any field start.
    """
    taken: list[str] = []
    blank_run = 0
    for line in lines[start + 1 :]:
        if not line.strip():
            blank_run += 1
            if not cross_blank or blank_run > 1:
                break
            continue
        if FIELD_START.match(line):
            break
        blank_run = 0
        taken.append(line.strip())
    return taken
