"""Rendering detection and normalisation: the one place where markup is removed.

Every field parser reads the plain telegram text this module produces: LF
line ends, no HTML/markdown/LaTeX markup, spaced-out words joined, page-break
lines dropped, the partial-extract notice lifted into a flag.

Speed and safety: each step runs only where its pattern can match. A literal
every match must contain is looked for first (`str` search runs at memory speed,
a regex scan at a tenth of it), and the patterns that do run are linear: bounded
repeats, line-anchored, tried once per line at most. Each is compiled with
`guard.compile`, so the parse budget stops any that is not.
"""

from __future__ import annotations

import html
import string
from dataclasses import dataclass

import regex

from cablestream.tasks.parse import guard

# `<a href='/tag/PREL_0.html'>PREL</a>`, `<u>`, `<br />` …
_HTML_TAG = guard.compile(r"<(?:/?[A-Za-z][A-Za-z0-9]*)(?:\s[^<>]{0,500})?/?>")
# Cases spelled out: IGNORECASE would cost the scan its fast search for `<` and `&`.
_HTML_LINE_BREAK = guard.compile(r"<[bB][rR]\s*/?>|&#[xX]0*[aA];|&#0*10;")
_HTML_ENTITY = guard.compile(r"&(?:#\d{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,8});")
# `[KNNP](#)`
_MARKDOWN_LINK = guard.compile(r"\[([^\[\]\n]{0,200})\]\([^()\s]{0,500}\)")
# `\underline{\mbox{1}}` and friends, innermost first.
_LATEX_COMMAND = guard.compile(r"\\(?:mbox|underline|textbf|textit|emph|text)\{([^{}\n]{0,200})\}")
# `$11.$` left once the commands are gone.
_LATEX_MATH = guard.compile(r"\$([^$\n]{0,40})\$")
# `C O N F I D E N T I A L`, `S e c r e t`, `SE C R E T`: letters spaced out, the
# first group sometimes two letters wide.
_SPACED_WORD = guard.compile(r"(?<![A-Za-z])[A-Za-z]{1,2}(?: [A-Za-z]){3,}(?![A-Za-z])")
# Line-anchored patterns below start with the line end before their line: `normalize`
# works on the text with a line end put before it, so every line has one, and a scan led
# by `\n` runs several times faster than one trying `^` at every position.
# Markdown scrape writes paragraph numbers `1 .`
_SPACED_PARAGRAPH_DOT = guard.compile(r"\n([ \t]*\d{1,3}) \.(?=\s)")
# `ALGIERS 00000085  002 OF 002`: page header repeated inside the text.
_PAGE_BREAK_LINE = guard.compile(
    r"(?m)^[ \t]*[A-Z][A-Z .'-]{1,30} 0{3,}\d{1,6}\s+\d{3}(?:\.\d)? OF \d{3}[ \t]*$\n?"
)
# The notice with the line end before it: dropping both leaves the line end after it.
_PARTIAL_NOTICE = guard.compile(
    r"(?i)\n[ \t]*This record is a partial extract of the original cable\.[^\n]*"
)
# Release dumps continue lines with a backslash: `UNCLAS BERN 000896 \`.
_BACKSLASH_CONTINUATION = guard.compile(r"(?m)(?<![ \t])[ \t]*\\$")
# A preface date glued to the classification line in scraped extracts:
# `Tuesday, 08 September 2009, 05:22 UNCLAS …`, `Cable dated:2008-06-03T15:39:00C O N …`.
_GLUED_PREFACE_DATE = guard.compile(
    r"\n([ \t]*(?:Cable dated:[ \t]*\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?"
    r"|[A-Z][a-z]{2,8}day, \d{1,2} [A-Z][a-z]{2,8} \d{4}, \d{2}:\d{2}))[ \t]*(?=\S)"
)
# Header fields run together when a rendering unwrapped lines: `000868SIPDISNEA FOR …
# TCOYNEE.O. 12958: DECL: 06/03/2018 TAGS: EPET`. Each field goes back on its own line.
# An E.O. field holds its order's number, then `:`, `DECL` or `N/A`; an order named in
# a SUBJECT (`… UNDER E.O. 13382`) is no field.
_GLUED_FIELD = guard.compile(
    r"(?:E\.O\. ?\d{5}(?=[ \t]*(?::|DECL|N/A))|TAGS:|SUBJECT:|Classified By:|CLASSIFIED BY:|REF(?:TEL)?S?: |SIPDIS)"
)
# How each of those fields starts: none can start inside another, so each place one
# starts is judged on its own.
_GLUED_FIELD_OPENERS = (
    "E.O.",
    "TAGS:",
    "SUBJECT:",
    "Classified By:",
    "CLASSIFIED BY:",
    "REF",
    "SIPDIS",
)
# `\underline{\mbox{1}}` is two commands deep; real renderings never nest more.
_MAX_LATEX_NESTING = 6
# Every ASCII letter reads `a`: in that copy of a text, a spaced word shows as `a a a a`.
_LETTER_SHAPES = bytes.maketrans(string.ascii_letters.encode(), b"a" * len(string.ascii_letters))


@dataclass(slots=True)
class NormalizedText:
    text: str
    rendering: str
    is_partial: bool


def detect_rendering(text: str, default: str) -> str:
    """Name the rendering from its markup; `default` comes from the splitter."""
    if "\\" in text and ("\\mbox" in text or "\\underline" in text):
        return "latex"
    if "](#)" in text or (" ." in text and _SPACED_PARAGRAPH_DOT.search(f"\n{text}")):
        return "markdown"
    if default == "telegram" and "<" in text and _HTML_TAG.search(text):
        return "html_fragment"
    return default


def strip_markup(text: str, rendering: str) -> str:
    """Remove HTML tags and entities, markdown links and LaTeX residue."""
    if "<" in text or "&#" in text:
        # The release pages' own spelling first, at memory speed; the pattern for the rest.
        text = text.replace("&#x000A;", "\n")
        if "<" in text or "&#" in text:
            text = _HTML_LINE_BREAK.sub("\n", text)
        if "<" in text:
            text = _HTML_TAG.sub("", text)
    if "&" in text and _HTML_ENTITY.search(text):
        text = html.unescape(text)
    text = text.replace("¶", "")
    if "](" in text:
        text = _MARKDOWN_LINK.sub(r"\1", text)
    if "\\" in text:
        # Innermost command first, one level per pass: bounded, so nesting cannot make it quadratic.
        for _ in range(_MAX_LATEX_NESTING):
            text, replaced = _LATEX_COMMAND.subn(r"\1", text)
            if not replaced:
                break
    # Only LaTeX renderings own `$…$`; elsewhere a dollar sign is money.
    return _LATEX_MATH.sub(r"\1", text) if rendering == "latex" else text


def _unglued_at(text: str, start: int) -> bool:
    """Whether the header field at `start` is glued to text before it on the same line.

    `REF:` needs whitespace before it, `SIPDIS` a digit (the serial it was glued to).
    """
    # Look back over blanks only: scanning the whole line would be quadratic on long lines.
    glued_to = start
    while glued_to > 0 and text[glued_to - 1] in " \t":
        glued_to -= 1
    previous = text[glued_to - 1] if glued_to > 0 else "\n"
    # Most fields open their line: known without running the pattern.
    if previous == "\n":
        return False
    field = _GLUED_FIELD.match(text, start)
    if field is None:
        return False
    if field.group(0).startswith("REF") and glued_to == start:
        return False
    return not (field.group(0) == "SIPDIS" and not (glued_to == start and previous.isdigit()))


def unglue_fields(text: str) -> str:
    """Start each header field on its own line when text precedes it on the same line."""
    starts = set()
    for opener in _GLUED_FIELD_OPENERS:
        at = text.find(opener)
        while at != -1:
            starts.add(at)
            at = text.find(opener, at + 1)
    cuts = [start for start in sorted(starts) if _unglued_at(text, start)]
    if not cuts:
        return text
    pieces = [text[begin:end] for begin, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return "\n".join(pieces)


def _join_spaces(match: regex.Match[str]) -> str:
    return match.group(0).replace(" ", "")


def join_spaced_words(text: str) -> str:
    """`C O N F I D E N T I A L` -> `CONFIDENTIAL`.

    Only lines holding four spaced letters (`X X X X`, which every spaced word has)
    are rewritten; they are found in a byte copy of the text where each letter reads
    `a` (Latin-1 with replacement keeps one byte per character, so offsets agree).
    """
    shapes = text.encode("latin-1", errors="replace").translate(_LETTER_SHAPES)
    at = shapes.find(b"a a a a")
    if at == -1:
        return text
    pieces = []
    done = 0
    while at != -1:
        line_start = text.rfind("\n", done, at) + 1 or done
        line_end = text.find("\n", at)
        if line_end == -1:
            line_end = len(text)
        pieces += [text[done:line_start], _SPACED_WORD.sub(_join_spaces, text[line_start:line_end])]
        done = line_end
        at = shapes.find(b"a a a a", line_end)
    pieces.append(text[done:])
    return "".join(pieces)


def drop_page_break_lines(text: str) -> str:
    """Drop the page headers repeated inside the text (`ALGIERS 00000085  002 OF 002`).

    Every such line holds `000` after its post name: only lines with one are tried,
    each once, where its pattern is anchored.
    """
    at = text.find("000")
    if at == -1 or " OF " not in text:
        return text
    pieces = []
    done = 0
    while at != -1:
        line_start = text.rfind("\n", done, at) + 1 or done
        page_break = _PAGE_BREAK_LINE.match(text, line_start)
        if page_break is not None:
            pieces.append(text[done:line_start])
            done = page_break.end()
            at = text.find("000", done)
            continue
        line_end = text.find("\n", at)
        at = -1 if line_end == -1 else text.find("000", line_end)
    pieces.append(text[done:])
    return "".join(pieces)


def normalize(text: str, rendering: str = "telegram") -> NormalizedText:
    """Turn one cable's raw text in any rendering into plain telegram text."""
    rendering = detect_rendering(text, rendering)
    # A line end before the text: the line-anchored patterns are led by one (dropped at the end).
    text = "\n" + text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = strip_markup(text, rendering)
    if "\\" in text and ("\\\n" in text or text.endswith("\\")):
        text = _BACKSLASH_CONTINUATION.sub("", text)
    if "Cable dated:" in text or "day, " in text:
        text = _GLUED_PREFACE_DATE.sub("\n\\1\n", text)
    text = unglue_fields(text)
    text = join_spaced_words(text)
    if " ." in text:
        text = _SPACED_PARAGRAPH_DOT.sub(r"\n\1.", text)
    # A literal check first: the notice is written in lower or upper case (mixed case not seen).
    partial_notice = None
    if "xtract" in text or "XTRACT" in text:
        partial_notice = _PARTIAL_NOTICE.search(text)
        if partial_notice is not None:
            text = _PARTIAL_NOTICE.sub("", text)
    text = drop_page_break_lines(text)
    # Per-line rstrip: ten times faster than a regex over the text, and linear on blank runs.
    text = "\n".join(line.rstrip(" \t\u00a0") for line in text.split("\n")).strip("\n")
    return NormalizedText(text=text, rendering=rendering, is_partial=partial_notice is not None)
