"""Rendering detection and normalisation: the one place where markup is removed.

Every field parser reads the plain telegram text this module produces: LF
line ends, no HTML/markdown/LaTeX markup, page-break lines dropped, the
partial-extract notice lifted into a flag, trailing blanks gone.

Each repair runs over the text it is needed in, once:

- markup (tags, entities, links, LaTeX) anywhere in the text: it is in every line
  of a web rendering;
- the header repairs (fields glued together, spaced-out words, preface dates,
  markdown paragraph dots) only over the head: the routing header, the serial
  line, the preamble and the first two paragraphs, where the fields are read;
- the body after it gets one line pass (trailing blanks), and the line repairs it
  needs (page-break lines, backslash continuations, spaced classification banners,
  the partial notice) only where their literal occurs.

Speed and safety: a literal every match must contain is looked for first (`str`
search runs at memory speed, a regex scan at a tenth of it), and the patterns that
do run are linear: bounded repeats, line-anchored, tried once per line at most.
Each is compiled with `guard.compile`, so the parse budget stops any that is not.
"""

from __future__ import annotations

import html
import string
from collections.abc import Callable
from dataclasses import dataclass

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
_SPACED_BANNERS = ("C O N F I D E N T I A L", "S E C R E T", "U N C L A S", "C O R R E C T E D")
# A numbered paragraph's line (`12. (S/NF) …`), led by the line end before it.
_PARAGRAPH_LINE = guard.compile(r"(?m)\n[ \t]*\d{1,3}\.(?:[ \t]|$|\()")
# Paragraphs the head takes: `Classified By` can stand in paragraph 1, and the summary
# opens in paragraph 1 or 2.
_HEAD_PARAGRAPHS = 2
# `\underline{\mbox{1}}` is two commands deep; real renderings never nest more.
_MAX_LATEX_NESTING = 6
# Every ASCII letter reads `a`: in that copy of a text, a spaced word shows as `a a a a`.
_LETTER_SHAPES = bytes.maketrans(string.ascii_letters.encode(), b"a" * len(string.ascii_letters))


@dataclass(slots=True)
class NormalizedText:
    text: str
    rendering: str
    is_partial: bool


def _has_spaced_paragraph_dot(text: str) -> bool:
    """Whether a line opens with a markdown paragraph number `1 .`: each ` .` found by
    its literal, its line start tried once."""
    at = text.find(" .")
    while at != -1:
        # A digit before it first: most ` .` follow a word, and their line need not be cut out.
        if text[at - 1 : at].isdigit():
            line_start = text.rfind("\n", 0, at) + 1
            number = text[line_start:at].lstrip(" \t")
            if 0 < len(number) <= 3 and number.isdigit() and text[at + 2 : at + 3].isspace():
                return True
        at = text.find(" .", at + 2)
    return False


def detect_rendering(text: str, default: str) -> str:
    """Name the rendering from its markup; `default` comes from the splitter."""
    if "\\" in text and ("\\mbox" in text or "\\underline" in text):
        return "latex"
    # A rare character first, at memory speed, before the longer literal's scan.
    if ("]" in text and "](#)" in text) or _has_spaced_paragraph_dot(text):
        return "markdown"
    if default == "telegram" and "<" in text and _HTML_TAG.search(text):
        return "html_fragment"
    return default


def strip_markup(text: str, rendering: str) -> str:
    """Remove HTML tags and entities, markdown links and LaTeX residue."""
    # Rare characters first, at memory speed, before a longer literal's scan.
    if "<" in text or ("&" in text and "&#" in text):
        # The release pages' own spelling first, at memory speed; the pattern for the rest.
        text = text.replace("&#x000A;", "\n")
        if "<" in text or ("&" in text and "&#" in text):
            text = _HTML_LINE_BREAK.sub("\n", text)
        if "<" in text:
            text = _HTML_TAG.sub("", text)
    if "&" in text and _HTML_ENTITY.search(text):
        text = html.unescape(text)
    text = text.replace("¶", "")
    if "]" in text and "](" in text:
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


def _join_spaces(match: guard.Match) -> str:
    return match.group(0).replace(" ", "")


def _join_spaced_on_lines(text: str, next_at: Callable[[int], int]) -> str:
    """Join the spaced words of each line holding a place `next_at(position)` finds
    (the next one at or after `position`, -1 when there is none); other lines are kept."""
    at = next_at(0)
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
        at = next_at(line_end)
    pieces.append(text[done:])
    return "".join(pieces)


def join_spaced_words(text: str) -> str:
    """`C O N F I D E N T I A L` -> `CONFIDENTIAL`.

    Only lines holding four spaced letters (`X X X X`, which every spaced word has)
    are rewritten; they are found in a byte copy of the text where each letter reads
    `a` (Latin-1 with replacement keeps one byte per character, so offsets agree).
    """
    shapes = text.encode("latin-1", errors="replace").translate(_LETTER_SHAPES)
    return _join_spaced_on_lines(text, lambda position: shapes.find(b"a a a a", position))


def join_spaced_banners(text: str) -> str:
    """Spaced classification banners of continuation pages, found by their literals:
    `C O N F I D E N T I A L SECTION 02 OF 04 VATICAN 003507`, `C O R R E C T E D C O P Y`
    (the only spaced words seen in cable bodies)."""

    def next_banner(position: int) -> int:
        found = [at for banner in _SPACED_BANNERS if (at := text.find(banner, position)) != -1]
        return min(found) if found else -1

    return _join_spaced_on_lines(text, next_banner)


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


def _strip_trailing_blanks(text: str) -> str:
    # Per line: ten times faster than a regex over the text, and linear on blank runs.
    if (
        " \n" not in text
        and ("\t" not in text or "\t\n" not in text)
        and not text.endswith((" ", "\t"))
    ):
        return text
    return "\n".join(line.rstrip(" \t") for line in text.split("\n"))


def drop_partial_notice(text: str) -> tuple[str, bool]:
    """The text without the partial-extract notice, and whether it held one."""
    # A literal check first: the notice is written in lower or upper case (mixed case not seen).
    if "xtract" not in text and "XTRACT" not in text:
        return text, False
    text, dropped = _PARTIAL_NOTICE.subn("", text)
    return text, dropped > 0


def body_start(text: str, rendering: str) -> int:
    """Where the head ends: the line of the third numbered paragraph (len(text) if none).

    The head holds every part a field is read from: the routing header, the serial
    line, the preamble, `Classified By` inside paragraph 1 and the summary opener of
    paragraphs 1 and 2. Markdown and LaTeX number their paragraphs in markup of their
    own (`1 .`, `$11.$`): their whole text is head.
    """
    if rendering in ("markdown", "latex"):
        return len(text)
    position = 0
    for _ in range(_HEAD_PARAGRAPHS):
        paragraph = _PARAGRAPH_LINE.search(text, position)
        if paragraph is None:
            return len(text)
        position = paragraph.end()
    paragraph = _PARAGRAPH_LINE.search(text, position)
    return len(text) if paragraph is None else paragraph.start()


def repair_head(text: str) -> tuple[str, bool]:
    """Every repair, over the head: (repaired text, partial notice found)."""
    if "\\" in text and ("\\\n" in text or text.endswith("\\")):
        text = _BACKSLASH_CONTINUATION.sub("", text)
    if "Cable dated:" in text or "day, " in text:
        text = _GLUED_PREFACE_DATE.sub("\n\\1\n", text)
    text = unglue_fields(text)
    text = join_spaced_words(text)
    if " ." in text:
        text = _SPACED_PARAGRAPH_DOT.sub(r"\n\1.", text)
    text, is_partial = drop_partial_notice(text)
    text = drop_page_break_lines(text)
    return _strip_trailing_blanks(text), is_partial


def repair_body(text: str) -> tuple[str, bool]:
    """The line repairs a body needs, each only where its literal occurs: (text, partial).

    `text` starts with the line end before its first line, and so does the result."""
    if "\\" in text and ("\\\n" in text or text.endswith("\\")):
        text = _BACKSLASH_CONTINUATION.sub("", text)
    if _has_spaced_paragraph_dot(text):
        text = _SPACED_PARAGRAPH_DOT.sub(r"\n\1.", text)
    text = join_spaced_banners(text)
    text, is_partial = drop_partial_notice(text)
    text = drop_page_break_lines(text)
    return _strip_trailing_blanks(text), is_partial


def normalize(text: str, rendering: str = "telegram") -> NormalizedText:
    """Turn one cable's raw text in any rendering into plain telegram text."""
    rendering = detect_rendering(text, rendering)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\u00a0" in text:
        text = text.replace("\u00a0", " ")
    # A line end before the text: the line-anchored patterns are led by one (dropped at the end).
    text = strip_markup("\n" + text, rendering)
    cut = body_start(text, rendering)
    # The line end between them ends the head (a repair dropping the head's last line drops
    # it too) and also leads the body (its line-anchored patterns are led by one).
    head, head_partial = repair_head(text[: cut + 1])
    body, body_partial = repair_body(text[cut:]) if cut < len(text) else ("\n", False)
    return NormalizedText(
        text=(head + body[1:]).strip("\n"),
        rendering=rendering,
        is_partial=head_partial or body_partial,
    )
