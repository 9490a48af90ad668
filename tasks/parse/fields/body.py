"""The cable text: numbered paragraphs (with repaired numbering), summary, signature."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

import regex

from cablestream.schemas.record import Paragraph
from cablestream.tasks.parse import guard

# `1. (S) Per reftel …`, `12. (C/NF) …`, `1.(C) Summary: …`, `3.  CONFIDENTIAL - ENTIRE TEXT.`
_MARKING = r"\((?P<marking>[A-Z]{1,4}(?:[ \t]*/{1,2}[ \t]*[A-Z]{1,6}){0,3})\)[ \t]*"
_PARAGRAPH_OPENING = rf"[ \t]*(?P<number>\d{{1,3}})\.(?:[ \t]+|$|(?=\())(?:{_MARKING})?"
PARAGRAPH_START = guard.compile(rf"(?m)^{_PARAGRAPH_OPENING}")
# The same after a line end: a scan led by `\n` runs several times faster than one
# trying `^` at every position.
_PARAGRAPH_AFTER_LINE_END = guard.compile(rf"(?m)\n{_PARAGRAPH_OPENING}")
# Unnumbered paragraphs that open with their marking: `(SBU) Poloff delivered …`.
_MARKED_PARAGRAPH_START = guard.compile(rf"(?m)^[ \t]*{_MARKING}(?=\S)")
# Summary openers: `SUMMARY:`, `BEGIN SUMMARY`, `Summary and Comment:`, `Summary/Comment:`,
# `SUMMARY AND ACTION REQUEST:`, `1. (C) Summary:` inside a paragraph.
_SUMMARY_START = guard.compile(
    r"(?i)(?<!END[ \t]{1,3})\b(?:BEGIN[ \t]{1,10}+SUMMARY\b(?:[ \t]{0,10}+[:.-])?|SUMMARY"
    r"(?:[ \t]{1,10}+AND[ \t]{1,10}+(?:COMMENT|ACTION[ \t]+REQUEST)|[ \t]{0,3}+/[ \t]{0,3}+COMMENT)?"
    r"[ \t]{0,10}+[:.-])"
)
# A heading line: `BEGIN SUMMARY`, `---- SUMMARY ----`, or `Summary` over a `====` rule.
_SUMMARY_HEADING = guard.compile(
    r"(?im)^[ \t-]{0,40}+(?:BEGIN[ \t]{1,10}+)?SUMMARY[ \t-]{0,40}+$"
    r"(?:\n[ \t]{0,10}+[=-]{3,}+[ \t]{0,10}+$)?"
)
_SUMMARY_END = guard.compile(r"(?i)\bEND\s{1,10}+(?:OF\s{1,10}+)?SUMMARY\b")
# Lines an opener never sits on: the subject (`FRAUD SUMMARY---HERMOSILLO`), tags, refs.
_NOT_SUMMARY_LINE = guard.compile(r"(?i)^[ \t]*(?:SUBJ|TAGS|REF)")
_MAX_OPENERS = 10
_PARAGRAPH_BREAK = guard.compile(r"\n[ \t]*\n")
# The signer, alone on the last line: `ORDWAY`, `VAN VOORST`, `KEEGAN/SMITH`, or in
# mixed case `Creamer`, `Gfoeller`.
_SIGNER_LINE = guard.compile(
    r"^[ \t]*+(?P<names>[A-Z][A-Z'.-]{1,24}(?:[ /][A-Z][A-Z'.-]{1,24}){0,2}"
    r"|[A-Z][a-z][A-Za-z'-]{1,23}(?: [A-Z][a-z][A-Za-z'-]{1,23})?)$"
)
# ... or run on after the last sentence: `… End Comment. NALAND`.
_SIGNER_RUN_ON = guard.compile(r"(?<=[.!?)\]'\"’][ \t]{1,3})(?P<names>[A-Z][A-Z'-]{2,24})$")
# A release date stamp after the signer: `SOBEL 2008-01-08`.
_TRAILING_DATE = guard.compile(r"[ \t]\d{4}-\d{2}-\d{2}")
# Dots, quotes, commas and `##` damage after the signer (`GILLESPIE##`).
_TRAILER_CHARACTERS = " \t.,\"'#"
# Lines after the signer that are not part of the text: end markers, publishers' rulers,
# classification banners, page headers, operator notes, release stamps.
_END_LINE = guard.compile(
    r"^[ \t]*+(?:NNNN|BT|=++[A-Z ]*+=++|[\"'.,]++"
    r"|(?:UNCLASSIFIED|UNCLAS|CONFIDENTIAL|SECRET|TOP SECRET|LIMITED OFFICIAL USE)\b.*+"
    r"|PAGE[ \t]+\d.*+|NOTE BY OC/.*+|Declassified/Released.*+)?[ \t]*+$",
    regex.IGNORECASE,
)
_MAX_END_LINES = 12
_CLASSIFICATION_WORDS = frozenset({"CONFIDENTIAL", "SECRET", "UNCLASSIFIED", "UNCLAS"})
_NOT_SIGNERS = frozenset(
    {
        "NNNN",
        "BT",
        "SIPDIS",
        "NOFORN",
        "END",
        "COMMENT",
        "SUMMARY",
        "THANKS",
        "Comment",
        "Summary",
        "Thanks",
        "End",
    }
)


def _is_signer(names: str) -> bool:
    """A classification word is never a signer, in any case."""
    return names not in _NOT_SIGNERS and names.upper() not in _CLASSIFICATION_WORDS


def repair_numbers(numbers: list[int]) -> tuple[list[int], bool]:
    """Undo the rendering artifact that glues a `1` before paragraph numbers (`1, 12, 13`).

    A number is taken as garbled when it is not the expected next number but
    reads as `1` followed by it (`12` for 2, `110` for 10, `11` for the first).
    """
    repaired: list[int] = []
    changed = False
    expected = 1
    for number in numbers:
        if number != expected and str(number) == f"1{expected}":
            number = expected
            changed = True
        repaired.append(number)
        expected = number + 1
    return repaired, changed


def _strip_trailer(line: str) -> str:
    """The line without what trails a signer: dots, quotes, `##`, a release date stamp.

    A loop over `rstrip`, not one regex, so that a long run of blanks costs linear time.
    """
    while True:
        line = line.rstrip(_TRAILER_CHARACTERS)
        if len(line) >= 11 and _TRAILING_DATE.fullmatch(line, len(line) - 11):
            line = line[:-11]
            continue
        return line


def split_signature(text: str) -> tuple[str, list[str]]:
    """Remove the signer from the end of the text: (text without it, signers).

    Skips what follows the signer in real cables: banners, page headers, `NNNN`,
    operator notes, release stamps.
    """
    # Only the last lines can hold the signer and what follows it: split those alone.
    head, *lines = text.rstrip().rsplit("\n", _MAX_END_LINES + 1)
    lines.insert(0, head)
    dropped = 0
    while lines and dropped < _MAX_END_LINES and _END_LINE.match(lines[-1]):
        lines.pop()
        dropped += 1
    if not lines:
        return text, []
    last = _strip_trailer(lines[-1])
    alone = _SIGNER_LINE.match(last)
    if alone is not None and _is_signer(alone["names"]):
        # Several signers are joined by a slash; a space belongs to the name (`VAN VOORST`).
        return "\n".join(lines[:-1]), [name for name in alone["names"].split("/") if name]
    run_on = _SIGNER_RUN_ON.search(last, max(0, len(last) - 40))
    if run_on is not None and _is_signer(run_on["names"]):
        lines[-1] = last[: run_on.start()].rstrip()
        return "\n".join(lines), [run_on["names"]]
    return text, []


@dataclass(slots=True)
class Opening:
    """Where a paragraph opens (`12. (C/NF) `): its line start, the end of its opening,
    its number as written (None for an unnumbered marked one) and its marking."""

    start: int
    end: int
    number: int | None
    marking: str | None


def _opening_of(match: guard.Match, start: int, numbered: bool = True) -> Opening:
    number = int(match["number"]) if numbered else None
    return Opening(start, match.end(), number, match["marking"])


def numbered_openings(text: str) -> list[Opening]:
    """Every numbered paragraph opening of the text, in order, in one scan."""
    first = PARAGRAPH_START.match(text)
    openings = [_opening_of(first, 0)] if first else []
    # All matches in one call, under one timeout: a cable has dozens of paragraphs.
    openings += [
        Opening(match.start() + 1, match.end(), int(match["number"]), match["marking"])
        for match in _PARAGRAPH_AFTER_LINE_END.all_matches(text)
    ]
    return openings


def first_paragraph_start(text: str, openings: list[Opening] | None = None) -> int | None:
    """Where the paragraphs begin: the first numbered one, else the first marked one."""
    numbered = numbered_openings(text) if openings is None else openings
    if numbered:
        return numbered[0].start
    marked = _MARKED_PARAGRAPH_START.search(text)
    return marked.start() if marked else None


def parse_paragraphs(
    text: str, openings: list[Opening] | None = None, start: int = 0
) -> tuple[list[Paragraph], bool]:
    """Numbered paragraphs of `text[start:]` (signature already removed): (paragraphs, repaired?).

    `openings`: the numbered openings there, with their places in `text`, when the caller
    has them already.
    """
    if openings is None:
        text, start = text[start:], 0
        openings = numbered_openings(text)
    if not openings:
        # Without numbers, paragraphs are still known by their markings; number stays null.
        text = text[start:]
        marked = [
            _opening_of(match, match.start(), numbered=False)
            for match in _MARKED_PARAGRAPH_START.finditer(text)
        ]
        return _paragraphs(text, marked, [None] * len(marked)), False
    numbers, repaired = repair_numbers([opening.number or 0 for opening in openings])
    return _paragraphs(text, openings, list(numbers)), repaired


def _paragraphs(text: str, starts: list[Opening], numbers: list[int | None]) -> list[Paragraph]:
    ends = [opening.start for opening in starts[1:]] + [len(text)] if starts else []
    return [
        Paragraph(
            number=number,
            classification=_one_line(opening.marking) if opening.marking else None,
            text=" ".join(text[opening.end : end].split()),
        )
        for opening, end, number in zip(starts, ends, numbers, strict=True)
    ]


def _one_line(marking: str) -> str:
    """`C / NF` -> `C / NF` with single blanks (most markings have none to collapse)."""
    return " ".join(marking.split()) if " " in marking or "\t" in marking else marking


# Every summary marker holds the word: each scan starts near where it is written (found in
# a lower-cased copy), since a case-insensitive pattern has no fast search of its own.
_WORD = "summary"
# How far before its word a marker can start (`END`, `OF`, `BEGIN` and blanks).
_BEFORE_WORD = 30
# How far after its word an opener can end (`SUMMARY AND ACTION REQUEST:`).
_AFTER_WORD = 60
# How far into its line a heading's word can stand.
_HEADING_INDENT = 60


def _lowered(text: str) -> str:
    """The text in lower case character for character, so that an offset found in it is the
    same place in the text.

    `str.lower` never shortens a character, and lengthens one only (`İ`, U+0130, becomes
    `i` and a combining dot): when the lengths agree every offset does, else each
    character that would lengthen is kept as it is (no summary marker holds one).
    """
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


def _occurrences(lowered: str, start: int = 0) -> Iterator[int]:
    at = lowered.find(_WORD, start)
    while at != -1:
        yield at
        at = lowered.find(_WORD, at + 1)


def _heading(text: str, lowered: str, before: int | None = None) -> guard.Match | None:
    """The first `SUMMARY` heading line, tried only where the word stands near a line start
    (and only where its line can start before `before`)."""
    for at in _occurrences(lowered):
        if before is not None and at - _HEADING_INDENT > before:
            return None
        line_start = text.rfind("\n", max(0, at - _HEADING_INDENT), at) + 1
        if line_start == 0 and at > _HEADING_INDENT:
            continue
        match = _SUMMARY_HEADING.match(text, line_start)
        if match is not None:
            return match
    return None


def _inline_opener(text: str, lowered: str) -> guard.Match | None:
    """The first `SUMMARY:`-style opener not on the subject, tags or REF line, tried in a
    window around each word (of the first _MAX_OPENERS openers)."""
    tried = 0
    done = 0
    for at in _occurrences(lowered):
        if at < done:
            continue
        end = min(len(text), at + _AFTER_WORD)
        match = _SUMMARY_START.search(text, max(done, at - _BEFORE_WORD), end)
        while match is not None and match.end() <= at:
            match = _SUMMARY_START.search(text, match.end(), end)
        if match is None or match.start() > at:
            continue  # no opener holds this word (one holding a later word is found there)
        done = match.end()
        line_start = text.rfind("\n", 0, match.start()) + 1
        if not _NOT_SUMMARY_LINE.match(text, line_start):
            return match
        tried += 1
        if tried >= _MAX_OPENERS:
            return None
    return None


def _opener(text: str, lowered: str) -> guard.Match | None:
    """The first summary opener that is not on the subject, tags or REF line."""
    found = []
    inline = _inline_opener(text, lowered)
    if inline is not None:
        found.append(inline)
    # A heading wins only by starting first: the words after the inline opener's are not tried.
    heading = _heading(text, lowered, inline.start() if inline is not None else None)
    if heading is not None:
        found.append(heading)
    return min(found, key=lambda match: match.start()) if found else None


def _summary_end(text: str, lowered: str, start: int) -> guard.Match | None:
    """The first `END SUMMARY` after `start`, tried at each following word."""
    for at in _occurrences(lowered, start):
        end = _SUMMARY_END.search(
            text, max(start, at - _BEFORE_WORD), min(len(text), at + len(_WORD) + 1)
        )
        if end is not None:
            return end
    return None


def _first_opening(openings: list[Opening], start: int, end: int | None = None) -> Opening | None:
    """The first numbered opening at or after `start` (and ending by `end`)."""
    at = bisect.bisect_left(openings, start, key=lambda opening: opening.start)
    if at < len(openings) and (end is None or openings[at].end <= end):
        return openings[at]
    return None


def _paragraph_end(text: str, start: int, openings: list[Opening]) -> int:
    """Where the paragraph holding `start` ends: the next numbered paragraph or blank line."""
    ends = [len(text)]
    following = _first_opening(openings, start)
    if following is not None:
        ends.append(following.start)
    blank = _PARAGRAPH_BREAK.search(text, start)
    if blank is not None:
        ends.append(blank.start())
    return min(ends)


def parse_summary(text: str, openings: list[Opening] | None = None) -> str | None:
    """The summary: from its opener to `END SUMMARY`, or to the end of the opener's
    paragraph; with only `END SUMMARY`, from the first paragraph up to it.

    `openings`: the text's numbered paragraph openings when the caller has them already.
    """
    if "ummar" not in text and "UMMAR" not in text:
        return None  # a cheap pre-check before lowering the text
    lowered = _lowered(text)
    if _WORD not in lowered:
        return None
    if openings is None:
        openings = numbered_openings(text)
    start = _opener(text, lowered)
    if start is None:
        end = _summary_end(text, lowered, 0)
        if end is None:
            return None
        paragraph = _first_opening(openings, 0, end.start())
        begin = paragraph.end if paragraph else 0
        return _clean_summary(text[begin : end.start()])
    end = _summary_end(text, lowered, start.end())
    if end is not None:
        # A `---- SUMMARY ----` heading followed by `1. (C) Summary: …`: start at the inline one.
        inline = _SUMMARY_START.search(text, start.end(), min(end.start(), start.end() + 200))
        if inline is not None:
            start = inline
        return _clean_summary(text[start.end() : end.start()])
    body_start = start.end()
    if _SUMMARY_HEADING.made(start):
        # A heading: the summary is the paragraph under it.
        skipped = len(text[body_start:]) - len(text[body_start:].lstrip())
        body_start += skipped
    return _clean_summary(text[body_start : _paragraph_end(text, body_start, openings)])


def _clean_summary(raw: str) -> str | None:
    """One line, without the dashes and brackets around markers; the final period stays."""
    summary = " ".join(raw.split()).lstrip(" -:.").rstrip(" (-")
    return summary or None
