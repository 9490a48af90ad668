"""The cable text: numbered paragraphs (with repaired numbering), summary, signature."""

from __future__ import annotations

import regex

from cablestream.schemas.record import Paragraph

# `1. (S) Per reftel …`, `12. (C/NF) …`, `1.(C) Summary: …`, `3.  CONFIDENTIAL - ENTIRE TEXT.`
_MARKING = r"\((?P<marking>[A-Z]{1,4}(?:[ \t]*/{1,2}[ \t]*[A-Z]{1,6}){0,3})\)[ \t]*"
PARAGRAPH_START = regex.compile(
    rf"(?m)^[ \t]*(?P<number>\d{{1,3}})\.(?:[ \t]+|$|(?=\())(?:{_MARKING})?"
)
# Unnumbered paragraphs that open with their marking: `(SBU) Poloff delivered …`.
_MARKED_PARAGRAPH_START = regex.compile(rf"(?m)^[ \t]*{_MARKING}(?=\S)")
# `SUMMARY: …`, `BEGIN SUMMARY`, `Summary and Comment:`; ends at `END SUMMARY`.
_SUMMARY_START = regex.compile(
    r"(?i)(?<!END[ \t]{1,3})\b(?:BEGIN[ \t]+)?SUMMARY(?:[ \t]+AND[ \t]+(?:COMMENT|ACTION REQUEST))?[ \t]*[:.-]"
)
_SUMMARY_BEGIN_LINE = regex.compile(r"(?im)^[ \t-]*(?:BEGIN[ \t]+)?SUMMARY[ \t-]*$")
_SUMMARY_END = regex.compile(r"(?i)\bEND\s+(?:OF\s+)?SUMMARY\b")
# The signer, alone on the last line: `ORDWAY`, `VAN VOORST`, `KEEGAN/SMITH`, or in
# mixed case `Creamer`, `Gfoeller`.
_SIGNER_LINE = regex.compile(
    r"^[ \t]*(?P<names>[A-Z][A-Z'.-]{1,24}(?:[ /][A-Z][A-Z'.-]{1,24}){0,2}"
    r"|[A-Z][a-z][A-Za-z'-]{1,23}(?: [A-Z][a-z][A-Za-z'-]{1,23})?)[ \t]*$"
)
# ... or run on after the last sentence: `… End Comment. NALAND`.
_SIGNER_RUN_ON = regex.compile(r"(?<=[.!?)\]'\"’][ \t]{1,3})(?P<names>[A-Z][A-Z'-]{2,24})[ \t]*$")
# What trails the signer in some renderings: a release date stamp, dots, quotes, commas.
_SIGNER_TRAILER = regex.compile(r"(?:[ \t]+\d{4}-\d{2}-\d{2}|[ \t.,\"'])+$")
# Lines after the text that are not part of it: end markers and publishers' rulers.
_END_LINE = regex.compile(r"^[ \t]*(?:NNNN|BT|=+[A-Z ]*=+|[\"'.,]+)?[ \t]*$")
_NOT_SIGNERS = frozenset(
    {
        "NNNN",
        "BT",
        "SIPDIS",
        "NOFORN",
        "END",
        "CONFIDENTIAL",
        "SECRET",
        "UNCLASSIFIED",
        "UNCLAS",
        "COMMENT",
        "SUMMARY",
        "THANKS",
        "Comment",
        "Summary",
        "Thanks",
        "End",
    }
)


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


def split_signature(text: str) -> tuple[str, list[str]]:
    """Remove the signer from the end of the text: (text without it, signers)."""
    lines = text.rstrip().split("\n")
    while lines and _END_LINE.match(lines[-1]):
        lines.pop()
    if not lines:
        return text, []
    last = _SIGNER_TRAILER.sub("", lines[-1])
    alone = _SIGNER_LINE.match(last)
    if alone is not None and alone["names"] not in _NOT_SIGNERS:
        # Several signers are joined by a slash; a space belongs to the name (`VAN VOORST`).
        return "\n".join(lines[:-1]), [name for name in alone["names"].split("/") if name]
    run_on = _SIGNER_RUN_ON.search(last)
    if run_on is not None and run_on["names"] not in _NOT_SIGNERS:
        lines[-1] = last[: run_on.start()].rstrip()
        return "\n".join(lines), [run_on["names"]]
    return text, []


def first_paragraph_start(text: str) -> int | None:
    """Where the paragraphs begin: the first numbered one, else the first marked one."""
    match = PARAGRAPH_START.search(text) or _MARKED_PARAGRAPH_START.search(text)
    return match.start() if match else None


def parse_paragraphs(text: str) -> tuple[list[Paragraph], bool]:
    """Numbered paragraphs of the text (signature already removed): (paragraphs, repaired?)."""
    starts = list(PARAGRAPH_START.finditer(text))
    if not starts:
        # Without numbers, paragraphs are still known by their markings; number stays null.
        marked = list(_MARKED_PARAGRAPH_START.finditer(text))
        return _paragraphs(text, marked, [None] * len(marked)), False
    numbers, repaired = repair_numbers([int(match["number"]) for match in starts])
    return _paragraphs(text, starts, list(numbers)), repaired


def _paragraphs(
    text: str, starts: list[regex.Match[str]], numbers: list[int | None]
) -> list[Paragraph]:
    ends = [match.start() for match in starts[1:]] + [len(text)] if starts else []
    return [
        Paragraph(
            number=number,
            classification=" ".join(match["marking"].split()) if match["marking"] else None,
            text=" ".join(text[match.end() : end].split()),
        )
        for match, end, number in zip(starts, ends, numbers, strict=True)
    ]


def parse_summary(text: str) -> str | None:
    """Text between a SUMMARY opener and END SUMMARY; None without both."""
    openers = [m for m in (_SUMMARY_START.search(text), _SUMMARY_BEGIN_LINE.search(text)) if m]
    if not openers:
        return None
    start = min(openers, key=lambda match: match.start())
    end = _SUMMARY_END.search(text, start.end())
    if end is None:
        return None
    # A `---- SUMMARY ----` heading followed by `1. (C) Summary: …`: start at the inline one.
    inline = _SUMMARY_START.search(text, start.end(), min(end.start(), start.end() + 200))
    if inline is not None:
        start = inline
    summary = " ".join(text[start.end() : end.start()].split()).lstrip(" -").rstrip(" .(-")
    return summary or None
