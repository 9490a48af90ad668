"""Where each header field starts: where the fields that wrap over lines stop, and the
lines they can wrap onto."""

from __future__ import annotations

from cablestream.tasks.parse import guard

# A line that opens another header field or the body, so a wrapped field ends there.
FIELD_START = guard.compile(
    r"(?i)^[ \t]*(?:E\.? ?O\.?[ \t]*\d|TAGS?\b|SUBJ(?:ECT)?\b|REFS?\b|REFTEL|"
    r"CLASSIFIED[ \t]+BY|DECL\b|\d{1,3}\.[ \t(]|\(?[A-Z]\)[ \t]|SUMMARY|BEGIN[ \t]+SUMMARY|"
    r"PASS[ \t]|DEPT[ \t]+FOR|FOR[ \t]|SIPDIS|NOFORN|NNNN|BT\b)"
)


def following_lines(text: str, position: int, count: int) -> list[str]:
    """Up to `count` lines after the one `position` is on, without copying the rest of text."""
    lines: list[str] = []
    start = text.find("\n", position)
    while start >= 0 and len(lines) < count:
        end = text.find("\n", start + 1)
        lines.append(text[start + 1 : end if end >= 0 else len(text)])
        start = end
    return lines
