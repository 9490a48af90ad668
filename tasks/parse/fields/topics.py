"""TAGS and SUBJECT: what the cable is about."""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable

from cablestream.tasks.parse import guard
from cablestream.tasks.parse.fields.classification import dedupe
from cablestream.tasks.parse.fields.markers import FIELD_START, following_lines

# The TAGS label: `TAGS:`, `TAG:`, `TAGS` without colon, lower case, and the misspellings
# of real cables (`TAS:`, `TGS:`, `TAGES:`) at a line start; after the E.O. text on the same
# line with its colon, or without one in upper case (the LaTeX form `… DECL: 02/10/2019 TAGS PREL`).
_TAGS = guard.compile(
    r"(?m)(?:^[ \t]*(?i:tags?)\b[:;]?|^[ \t]*(?i:tas|tgs|tages)[:;]|[ \t](?i:tags?):"
    # The literal first, so that the bounded look-behind runs only where ` TAGS` stands.
    r"|[ \t]TAGS(?=[ \t]+[A-Z]{2})(?<=^[ \t]{0,8}E\.? ?O\.?[^\n]{0,80}[ \t]TAGS))"
    r"[ \t]*(?P<tags>[^\n]*)"
)
_SUBJECT_ON_TAGS_LINE = guard.compile(r"(?i)\bSUBJ(?:ECT)?\b")
_TAG_TOKEN = guard.compile(r"[A-Za-z0-9][A-Za-z0-9_&-]*")
# A token that can be a tag on a continuation line: upper case, no prose.
_TAG_SHAPED = guard.compile(r"^[A-Z][A-Z0-9_&-]{0,24}$")
# Words that are prose or addressing, never tags (`USDOC FOR ITA`, `PASS TO`).
_NOT_TAG_WORDS = frozenset({"FOR", "PASS", "TO", "AND", "THE", "OF", "PLEASE", "ALSO", "INFO"})
# What ends the tag list on the next lines: a record dump (`id: 67870`), a page header
# (`SECRET PAGE 02 ROME 03067 211833Z`), a handling caveat.
_NOT_A_TAG_LINE = guard.compile(
    r"(?i)^(?:\w{1,30}+:[ \t]{0,10}+\d|(?:[A-Z]{1,20}+[ \t]++){0,3}+PAGE[ \t]++\d"
    r"|(?:SENSITIVE|UNCLAS|CONFIDENTIAL|SECRET)\b)"
)
# A comma-separated item of several words of which some are not tag codes: one tag
# (`…, HUMAN RIGHTS`, `…, Organized Crime`).
_TAG_CODE = guard.compile(r"^[A-Z]{2,5}$")
_MAX_TAG_LINES = 4
_TOKEN_SEPARATOR = guard.compile(r"[\s,]+")
# Markers tried before giving up: a real preamble has one or two.
_MAX_TAG_MARKERS = 20
# `SUBJECT: …` / `SUBJ: …` at a line start; sharing a line with TAGS only with its colon
# (`… the subject of …` in a passing instruction is not one).
# A damaged `UBJECT:` (first letter lost) counts with its colon.
_SUBJECT = guard.compile(
    r"(?m)(?:^[ \t]*(?i:subj(?:ect)?)\b[ \t]*[:.;-]?|^[ \t]*(?i:ubject):|[ \t](?i:subj(?:ect)?):)"
    r"[ \t]*(?P<subject>[^\n]*)"
)
# A doubled label: `SUBJECT: SUBJECT: …`.
_REPEATED_SUBJECT_LABEL = guard.compile(r"^(?:(?i:subj(?:ect)?)[ \t]*:[ \t]*)+")
# Where a subject runs on into the next field on the same or the next line, also glued
# (`… EGYPTREF: …`): REF labels in capitals or `Ref(s):`, and `Classified By`.
_SUBJECT_RUN_ON = guard.compile(
    r"(?:(?<=[ \t])|(?<=[A-Z]))(?:REF(?:TEL)?S?[ \t]*:|(?i:ref\(s\)):)|[ \t](?i:classified[ \t]+by)\b"
)
_MAX_SUBJECT_LINES = 4
_MAX_SUBJECT_LABELS = 3
_TAG_TOKEN = guard.compile(r"[A-Za-z0-9][A-Za-z0-9_&-]*")
_CONNECTOR_END = guard.compile(
    r"(?i)(?:\b(?:OF|THE|AND|TO|IN|ON|FOR|A|AN|WITH|AT|BY|FROM|OR|ITS|HIS|HER|THEIR|NEW)|[,:;-])$"
)


def _tag_tokens(raw: str) -> list[str]:
    """Tokens of a tag list, upper-cased; a comma item of words that are not all tag
    codes is one multi-word tag (`PHUM, HUMAN RIGHTS`), a space list is one tag a word
    (`OVIP BIDEN JOSEPH`, as the release indexes person tags)."""
    if "," not in raw:
        return [token.upper() for token in _TAG_TOKEN.findall(raw)]
    tags: list[str] = []
    for position, item in enumerate(raw.split(",")):
        words = [token.upper() for token in _TAG_TOKEN.findall(item)]
        if position > 0 and len(words) > 1 and not all(_TAG_CODE.match(w) for w in words):
            tags.append(" ".join(words))
        else:
            tags.extend(words)
    return tags


def _continues_tags(line: str, previous: str) -> bool:
    """A wrapped TAGS line: only tag-shaped tokens, or anything after a trailing comma."""
    if not line or FIELD_START.match(line) or _NOT_A_TAG_LINE.match(line):
        return False
    if previous.rstrip().endswith(","):
        return True
    tokens = [token for token in _TOKEN_SEPARATOR.split(line) if token]
    return bool(tokens) and all(
        _TAG_SHAPED.match(token) and token not in _NOT_TAG_WORDS for token in tokens
    )


def parse_tags(text: str) -> list[str]:
    """Tag tokens of the TAGS line and its wrapped continuation lines, upper-cased, in
    order, de-duplicated; stops at SUBJECT, prose, a record dump or a page header."""
    # The first TAGS marker that is followed by tags (`CORRECTED COPY - TAG` is not).
    for match in itertools.islice(_TAGS.finditer(text), _MAX_TAG_MARKERS):
        first, *cut = _SUBJECT_ON_TAGS_LINE.split(match["tags"], maxsplit=1)
        raw = [first]
        if not cut:
            for line in following_lines(text, match.end(), _MAX_TAG_LINES):
                line = line.strip()
                if not _continues_tags(line, raw[-1]):
                    break
                raw.append(line)
        tags = dedupe([tag for part in raw for tag in _tag_tokens(part)])
        if tags:
            return tags
    return []


def _mostly_upper(line: str) -> bool:
    """At least 80% of the line's letters are capitals."""
    if line.isascii():
        # Counted by deleting letters from a byte copy: C speed, where a loop over the
        # characters cost more than the rest of the subject's reading.
        data = line.encode("ascii")
        letters = len(data) - len(data.translate(None, _ASCII_LETTERS))
        capitals = len(data) - len(data.translate(None, _ASCII_CAPITALS))
        return letters > 0 and capitals >= 0.8 * letters
    alphabetic = "".join(filter(str.isalpha, line))
    return bool(alphabetic) and sum(map(str.isupper, alphabetic)) >= 0.8 * len(alphabetic)


_ASCII_LETTERS = string.ascii_letters.encode()
_ASCII_CAPITALS = string.ascii_uppercase.encode()


_SINGLE_LINE_BREAK = guard.compile(r"\S\n[ \t]*\S")
_DOUBLE_LINE_BREAK = guard.compile(r"\S\n[ \t]*\n[ \t]*\S")


def is_double_spaced(text: str) -> bool:
    """Whether the rendering puts a blank line after nearly every line (markdown/LaTeX scrapes)."""
    single = len(_SINGLE_LINE_BREAK.findall(text))
    double = len(_DOUBLE_LINE_BREAK.findall(text))
    return double > single


def parse_subject(text: str, *, double_spaced: bool | None = None) -> str | None:
    """The SUBJECT line unwrapped over its continuation lines; None when absent or empty.

    A wrap crosses a blank line only where the rendering puts blank lines
    between all lines (`double_spaced`; judged from `text` when not given, and only
    when a wrap meets a blank line), or where the line so far visibly continues
    (`… BOARD OF`). An upper-case subject continues only with upper-case lines. A
    doubled label (`SUBJECT: SUBJECT: …`, put on two lines by normalisation) gives
    the second one.
    """
    judged: list[bool] = []

    def blank_lines_between_all() -> bool:
        if double_spaced is not None:
            return double_spaced
        if not judged:
            judged.append(is_double_spaced(text))
        return judged[0]

    for match in itertools.islice(_SUBJECT.finditer(text), _MAX_SUBJECT_LABELS):
        subject = _unwrapped_subject(text, match, blank_lines_between_all)
        if subject is not None:
            return subject
    return None


# Lines a wrapped subject can take: each added line or blank line needs the next one to
# be a line of the subject, so _MAX_SUBJECT_LINES lines span at most twice as many.
_MAX_SUBJECT_SPAN = 2 * _MAX_SUBJECT_LINES + 2


def _unwrapped_subject(
    text: str, match: guard.Match, double_spaced: Callable[[], bool]
) -> str | None:
    """One SUBJECT label's text over its continuation lines; None when empty."""
    # Only the lines a wrap can reach: splitting the whole preamble cost more than the rest.
    lines = following_lines(text, match.end("subject"), _MAX_SUBJECT_SPAN)
    parts = [match["subject"].strip()]
    upper = _mostly_upper(parts[0])

    def ends_subject(line: str) -> bool:
        return bool(FIELD_START.match(line) or (upper and parts[0] and not _mostly_upper(line)))

    index = 0
    while index < len(lines) and len(parts) <= _MAX_SUBJECT_LINES:
        line = lines[index].strip()
        index += 1
        if not line:
            following = lines[index].strip() if index < len(lines) else ""
            # A line that ends the subject after the blank one ends it here too: the rendering's
            # spacing (two scans of the text) is judged only when it decides.
            if not following or ends_subject(following):
                break
            if not (_CONNECTOR_END.search(parts[-1]) or double_spaced()):
                break
            continue
        if ends_subject(line):
            break
        parts.append(line)
    subject = _REPEATED_SUBJECT_LABEL.sub("", " ".join(" ".join(parts).split()))
    run_on = _SUBJECT_RUN_ON.search(subject)
    if run_on is not None and run_on.start() > 0:
        subject = subject[: run_on.start()].rstrip()
    return subject or None
