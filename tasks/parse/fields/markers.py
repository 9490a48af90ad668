"""Where each header field starts: where the fields that wrap over lines stop."""

from __future__ import annotations

from cablestream.tasks.parse import guard

# A line that opens another header field or the body, so a wrapped field ends there.
FIELD_START = guard.compile(
    r"(?i)^[ \t]*(?:E\.? ?O\.?[ \t]*\d|TAGS?\b|SUBJ(?:ECT)?\b|REFS?\b|REFTEL|"
    r"CLASSIFIED[ \t]+BY|DECL\b|\d{1,3}\.[ \t(]|\(?[A-Z]\)[ \t]|SUMMARY|BEGIN[ \t]+SUMMARY|"
    r"PASS[ \t]|DEPT[ \t]+FOR|FOR[ \t]|SIPDIS|NOFORN|NNNN|BT\b)"
)
