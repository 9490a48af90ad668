"""Rendering detection and normalisation: the one place where markup is removed.

Every field parser reads the plain telegram text this module produces: LF
line ends, no HTML/markdown/LaTeX markup, spaced-out words joined, page-break
lines dropped, the partial-extract notice lifted into a flag.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import regex

# `<a href='/tag/PREL_0.html'>PREL</a>`, `<u>`, `<br />` …
_HTML_TAG = regex.compile(r"<(?:/?[A-Za-z][A-Za-z0-9]*)(?:\s[^<>]{0,500})?/?>")
_HTML_LINE_BREAK = regex.compile(r"<br\s*/?>|&#x0*A;|&#0*10;", regex.IGNORECASE)
_HTML_ENTITY = regex.compile(r"&(?:#\d{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,8});")
# `[KNNP](#)`
_MARKDOWN_LINK = regex.compile(r"\[([^\[\]\n]{0,200})\]\([^()\s]{0,500}\)")
# `\underline{\mbox{1}}` and friends, innermost first.
_LATEX_COMMAND = regex.compile(r"\\(?:mbox|underline|textbf|textit|emph|text)\{([^{}\n]{0,200})\}")
# `$11.$` left once the commands are gone.
_LATEX_MATH = regex.compile(r"\$([^$\n]{0,40})\$")
# `C O N F I D E N T I A L`, `S e c r e t`, `SE C R E T`: letters spaced out, the
# first group sometimes two letters wide.
_SPACED_WORD = regex.compile(r"(?<![A-Za-z])[A-Za-z]{1,2}(?: [A-Za-z]){3,}(?![A-Za-z])")
# Markdown scrape writes paragraph numbers `1 .`
_SPACED_PARAGRAPH_DOT = regex.compile(r"(?m)^([ \t]*\d{1,3}) \.(?=\s)")
# `ALGIERS 00000085  002 OF 002`: page header repeated inside the text.
_PAGE_BREAK_LINE = regex.compile(
    r"(?m)^[ \t]*[A-Z][A-Z .'-]{1,30} 0{3,}\d{1,6}\s+\d{3}(?:\.\d)? OF \d{3}[ \t]*$\n?"
)
_PARTIAL_NOTICE = regex.compile(
    r"(?im)^[ \t]*This record is a partial extract of the original cable\.[^\n]*$\n?"
)
# Release dumps continue lines with a backslash: `UNCLAS BERN 000896 \`.
_BACKSLASH_CONTINUATION = regex.compile(r"(?m)(?<![ \t])[ \t]*\\$")
# A preface date glued to the classification line in scraped extracts:
# `Tuesday, 08 September 2009, 05:22 UNCLAS …`, `Cable dated:2008-06-03T15:39:00C O N …`.
_GLUED_PREFACE_DATE = regex.compile(
    r"(?m)^([ \t]*(?:Cable dated:[ \t]*\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?"
    r"|[A-Z][a-z]{2,8}day, \d{1,2} [A-Z][a-z]{2,8} \d{4}, \d{2}:\d{2}))[ \t]*(?=\S)"
)
# Header fields run together when a rendering unwrapped lines: `000868SIPDISNEA FOR …
# TCOYNEE.O. 12958: DECL: 06/03/2018 TAGS: EPET`. Each field goes back on its own line.
_GLUED_FIELD = regex.compile(
    r"(?:E\.O\. ?\d{5}|TAGS:|SUBJECT:|Classified By:|CLASSIFIED BY:|REF(?:TEL)?S?: |SIPDIS)"
)


@dataclass(slots=True)
class NormalizedText:
    text: str
    rendering: str
    is_partial: bool


def detect_rendering(text: str, default: str) -> str:
    """Name the rendering from its markup; `default` comes from the splitter."""
    if "\\mbox" in text or "\\underline" in text:
        return "latex"
    if "](#)" in text or _SPACED_PARAGRAPH_DOT.search(text):
        return "markdown"
    if default == "telegram" and _HTML_TAG.search(text):
        return "html_fragment"
    return default


def strip_markup(text: str, rendering: str) -> str:
    """Remove HTML tags and entities, markdown links and LaTeX residue."""
    if "<" in text or "&#" in text:
        text = _HTML_LINE_BREAK.sub("\n", text)
        text = _HTML_TAG.sub("", text)
    if _HTML_ENTITY.search(text):
        text = html.unescape(text)
    text = text.replace("¶", "")
    text = _MARKDOWN_LINK.sub(r"\1", text)
    previous = None
    while previous != text:
        previous = text
        text = _LATEX_COMMAND.sub(r"\1", text)
    # Only LaTeX renderings own `$…$`; elsewhere a dollar sign is money.
    return _LATEX_MATH.sub(r"\1", text) if rendering == "latex" else text


def _unglue_field(match: regex.Match[str]) -> str:
    """Start a header field on its own line when text precedes it on the same line.

    `REF:` needs whitespace before it, `SIPDIS` a digit (the serial it was glued to).
    """
    text, start, field = match.string, match.start(), match.group(0)
    # Look back over blanks only: scanning the whole line would be quadratic on long lines.
    glued_to = start
    while glued_to > 0 and text[glued_to - 1] in " \t":
        glued_to -= 1
    previous = text[glued_to - 1] if glued_to > 0 else "\n"
    if previous == "\n":
        return field
    if field.startswith("REF") and glued_to == start:
        return field
    if field == "SIPDIS" and not (glued_to == start and previous.isdigit()):
        return field
    return "\n" + field


def join_spaced_words(text: str) -> str:
    """`C O N F I D E N T I A L` -> `CONFIDENTIAL`."""
    return _SPACED_WORD.sub(lambda match: match.group(0).replace(" ", ""), text)


def normalize(text: str, rendering: str = "telegram") -> NormalizedText:
    """Turn one cable's raw text in any rendering into plain telegram text."""
    rendering = detect_rendering(text, rendering)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = strip_markup(text, rendering)
    if "\\\n" in text or text.endswith("\\"):
        text = _BACKSLASH_CONTINUATION.sub("", text)
    text = _GLUED_PREFACE_DATE.sub("\\1\n", text)
    text = _GLUED_FIELD.sub(_unglue_field, text)
    text = join_spaced_words(text)
    text = _SPACED_PARAGRAPH_DOT.sub(r"\1.", text)
    is_partial = bool(_PARTIAL_NOTICE.search(text))
    text = _PARTIAL_NOTICE.sub("", text)
    text = _PAGE_BREAK_LINE.sub("", text)
    # Per-line rstrip: ten times faster than a regex over the text, and linear on blank runs.
    text = "\n".join(line.rstrip(" \t\u00a0") for line in text.split("\n")).strip("\n")
    return NormalizedText(text=text, rendering=rendering, is_partial=is_partial)
