"""Split one decoded source into cable chunks, whatever its publication form.

Release HTML pages and `cables.csv` rows also carry the release's own
metadata (reference id, date, classification); it travels with the chunk as
`ReleaseMetadata` so the field parsers can fall back on it.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from datetime import datetime

from cablestream.schemas.record import ReleaseMetadata
from cablestream.tasks.parse import guard
from cablestream.tasks.parse.fields.release_metadata import parse_date
from cablestream.tasks.parse.normalize import strip_markup


@dataclass(slots=True)
class CableChunk:
    text: str
    offset: int
    rendering: str
    release: ReleaseMetadata = field(default_factory=ReleaseMetadata)
    warnings: list[str] = field(default_factory=list)


# `<code><pre>R 250930Z FEB 72 &#x000A;FM …</pre></code>`: opening and closing tags,
# paired by `_elements` (a lazy `<pre>(.*?)</pre>` rescans the rest of the page for every
# unclosed opening tag: quadratic).
# Cases spelled out: IGNORECASE would cost the scans their fast search for `<`.
_PRE_OPEN = guard.compile(r"<[pP][rR][eE][^>]{0,200}>")
_PRE_CLOSE = guard.compile(r"</[pP][rR][eE]>")
_RELEASE_TABLE_OPEN = guard.compile(r"<table class=['\"]cable['\"]>")
_RELEASE_TABLE_CLOSE = guard.compile(r"</table>")
_TABLE_CELL_OPEN = guard.compile(r"<td>")
_TABLE_CELL_CLOSE = guard.compile(r"</td>")
_HTML_END = guard.compile(r"</[hH][tT][mM][lL]>")
# First line of a cables.csv row: `"2","2/25/1972 9:30","72TEHRAN1164",…`
_CSV_ROW_START = guard.compile(r'(?m)^"\d{1,7}","\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}","')
# A release record dump: `id: 217139` / `date: 7/17/2009 16:20` / `refid: 09QUITO602` /
# `origin:` / `classification:` / `destination:` (references) / `header:`, then the cable.
# An empty field has no blank after its colon (`destination:`).
_RECORD_BLOCK = guard.compile(
    r"(?m)^id: \d{1,9}\r?\ndate: ?(?P<date>[^\r\n]*)\r?\nrefid: ?(?P<refid>[^\r\n]*)\r?\n"
    r"origin: ?(?P<origin>[^\r\n]*)\r?\nclassification: ?(?P<classification>[^\r\n]*)\r?\n"
    r"destination: ?(?P<references>[^\r\n]*)\r?\nheader:[ \t]*\r?\n"
)
# A release row embedded in release text, up to where its text column starts:
# `2007-09-13 05:53:00<TAB>07BERN896<TAB>Embassy Bern<TAB>UNCLASSIFIED//…<TAB>refs<TAB>`,
# `27613,2/24/2005 16:09,05BOGOTA1775,"Embassy Bogota",CONFIDENTIAL//NOFORN,refs,"`.
_EMBEDDED_ROW = guard.compile(
    r"(?m)^(?:(?P<tsv_date>\d{4}-\d{2}-\d{2} \d{2}:\d{2}):\d{2}\t(?P<refid>[^\t\n]*)\t"
    r"(?P<origin>[^\t\n]*)\t(?P<classification>[^\t\n]*)\t(?P<references>[^\t\n]*)\t"
    r"|\d{1,9},(?P<csv_date>\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}),(?P<refid>[^,\n]*),"
    r"(?P<origin>\"[^\"\n]*\"|[^,\n]*),(?P<classification>[^,\n]*),(?P<references>[^,\n]*),\"?)"
)
# What every unquoted cables.csv row holds (`,2/24/2005 `): a literal-led scan for the
# rare texts worth the line-anchored pattern above (a TSV row needs a tab).
_CSV_ROW_HINT = guard.compile(r",\d{1,2}/\d{1,2}/\d{4} ")
_RELEASE_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M")
# `NNNN` closes a telegram; `VZCZC` opens one.
_END_MARKER = guard.compile(r"(?m)^[ \t]*NNNN[ \t]*(?:\r?\n|\Z)")
# `VZCZC` at a line start: found by its literal, then the line start checked.
_START_MARKER = guard.compile(r"(?m)^[ \t]*VZCZC")


def _elements(
    text: str,
    opening: guard.Pattern,
    closing: guard.Pattern,
    pos: int = 0,
    endpos: int | None = None,
    limit: int | None = None,
) -> list[tuple[int, int]]:
    """(start, end) of the content of each element, as `opening(.*?)closing` finds them
    (the first `limit` of them).

    Linear: each search starts where the last one stopped, and an opening tag with no
    closing tag after it ends the scan (no later one can have a closing tag either).
    """
    end = len(text) if endpos is None else endpos
    spans: list[tuple[int, int]] = []
    while (limit is None or len(spans) < limit) and (
        start := opening.search(text, pos, end)
    ) is not None:
        close = closing.search(text, start.end(), end)
        if close is None:
            break
        spans.append((start.end(), close.start()))
        pos = close.end()
    return spans


def _cell_text(cell: str) -> str:
    return " ".join(strip_markup(cell, "html").split())


def _parse_release_created(value: str) -> datetime | None:
    """The release's own date forms: `2008-05-27 07:10`, `5/27/2008 7:10`."""
    return parse_date(value.strip(), _RELEASE_DATE_FORMATS)


def split_release_page(page: str) -> list[CableChunk]:
    """A release cable page: metadata table, then header and text in two `<pre>` blocks.

    Empty when the text is no release page: no `<pre>` element, `<pre` never written in
    lower case, or neither a `<table` nor `</html>`.
    """
    # On the page itself: a lower-cased copy of the whole page (50 KB of styles and scripts
    # before the text) cost more than this scan led by `<`.
    pre_spans = _elements(page, _PRE_OPEN, _PRE_CLOSE)
    if not pre_spans:
        return []
    # The first element's own tag usually shows the lower-case `<pre`: no scan of the page.
    tag = page.rfind("<", 0, pre_spans[0][0])
    if not page.startswith("<pre", tag) and "<pre" not in page:
        return []
    table_at = page.find("<table")
    if table_at < 0 and not _HTML_END.search(page):
        return []
    blocks = [page[start:end] for start, end in pre_spans]
    release = ReleaseMetadata()
    # The metadata table's tag opens with `<table`: its scan starts at the first one.
    table = (
        _elements(page, _RELEASE_TABLE_OPEN, _RELEASE_TABLE_CLOSE, table_at, limit=1)
        if table_at >= 0
        else []
    )
    if table:
        cell_spans = _elements(page, _TABLE_CELL_OPEN, _TABLE_CELL_CLOSE, *table[0])
        cells = [_cell_text(page[start:end]) for start, end in cell_spans]
        if len(cells) >= 5:
            release = ReleaseMetadata(
                reference_id=cells[0] or None,
                created=_parse_release_created(cells[1]),
                classification=cells[3] or None,
                origin=cells[4] or None,
            )
    text = "\n\n".join(blocks)
    return [CableChunk(text, pre_spans[0][0], "html", release)]


def split_csv_rows(text: str) -> list[CableChunk]:
    """Rows of the release's cables.csv: id, date, refid, origin, class, refs, header, content."""
    starts = [match.start() for match in _CSV_ROW_START.finditer(text)]
    chunks: list[CableChunk] = []
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        try:
            rows = list(
                csv.reader(
                    io.StringIO(text[start:end], newline=""), escapechar="\\", doublequote=False
                )
            )
        except csv.Error:
            rows = []
        fields = rows[0] if rows else []
        if len(fields) < 8:
            chunks.append(CableChunk(text[start:end], start, "csv", warnings=["csv_row_malformed"]))
            continue
        release = ReleaseMetadata(
            reference_id=fields[2] or None,
            created=_parse_release_created(fields[1]),
            classification=fields[4] or None,
            origin=fields[3] or None,
            references=tuple(ref for ref in fields[5].split("|") if ref),
        )
        chunks.append(CableChunk(f"{fields[6]}\n\n{fields[7]}", start, "csv", release))
    return chunks


def split_record_dumps(text: str) -> list[CableChunk]:
    """Release record dumps, each block's metadata carried with its cable."""
    blocks = list(_RECORD_BLOCK.finditer(text))
    chunks = []
    for block, end in zip(blocks, [*(b.start() for b in blocks[1:]), len(text)], strict=True):
        release = ReleaseMetadata(
            reference_id=block["refid"].strip() or None,
            created=_parse_release_created(block["date"]),
            classification=block["classification"].strip() or None,
            origin=block["origin"].strip() or None,
            references=tuple(ref for ref in block["references"].strip().split("|") if ref),
        )
        chunks.append(CableChunk(text[block.end() : end], block.end(), "record_dump", release))
    preview = text[: blocks[0].start()] if blocks else ""
    if not preview.strip():
        return chunks
    if not _holds_cable(preview) or _same_cable(preview, chunks[0].text):
        # A truncated preview of the same cable, or a notice with no cable of its own.
        chunks[0].warnings.append("preview_before_record_dropped")
    elif _header_only(preview):
        # A routing header with no text of its own, then the dump: the release shows
        # them as one cable, so they are one record (`0265_1d6dfa7a23bc9c72.txt`). The
        # header names the cable; a dump of another cable's id is text printed under it.
        first = chunks[0]
        release = first.release if _names_cable(preview, first.release) else ReleaseMetadata()
        chunks[0] = CableChunk(f"{preview}\n{first.text}", 0, first.rendering, release)
    else:
        chunks.insert(0, CableChunk(preview, 0, "telegram"))
    return chunks


# Lines only a cable has: routing header (transmission id, `DE` line, `FM` line, DTG),
# E.O. and TAGS lines, numbered paragraphs. E-mail wrappers, release notices and
# publishers' trailers (`End Cable Text`) have none.
_CABLE_LINE = guard.compile(
    r"(?m)^[ \t]*(?:VZCZC|DE[ \t]+[A-Z]{4,7}[ \t]|FM[ \t]|(?i:tags?)\b|E\.? ?O\.?[ \t]*\d"
    r"|(?:[ZOPR]{1,2}[ \t]+)?\d{6}Z[ \t]|\d{1,3}\.[ \t])"
)
# Where the text of a cable starts: its serial line or its preamble.
_TEXT_LINE = guard.compile(r"(?im)^[ \t]*(?:E\.? ?O\.?[ \t]*\d|TAGS?\b|SUBJ|\d{1,3}\.[ \t])")
# A serial line with its letters spaced out or not: `C O N F I D E N T I A L  ROME 003081`.
_SERIAL_LINE = guard.compile(
    r"(?m)^[ \t]*(?:U ?N ?C ?L ?A ?S|C ?O ?N ?F ?I ?D ?E ?N ?T ?I ?A ?L|S ?E ?C ?R ?E ?T)\b"
    r"[^\n]{0,120}?[A-Z][ \t]+\d{3,7}[ \t]*$"
)


# `DE RUEHAC #0071/01 0421519`: the serial's low four digits.
_DE_SERIAL = guard.compile(r"(?m)^[ \t]*DE[ \t]+[A-Z]{4,7}[ \t]+#0*(?P<serial>\d{1,7})")
_ID_SERIAL = guard.compile(r"0*(?P<serial>\d{1,7})$")


def _names_cable(header: str, release: ReleaseMetadata) -> bool:
    """Whether the release id names the cable of this routing header (same `DE` serial)."""
    de_line = _DE_SERIAL.search(header)
    refid = _ID_SERIAL.search(release.reference_id or "")
    if de_line is None or refid is None:
        return True
    return int(de_line["serial"]) % 10_000 == int(refid["serial"]) % 10_000


def _holds_cable(text: str) -> bool:
    return _CABLE_LINE.search(text) is not None


def _header_only(text: str) -> bool:
    """A routing header alone: no serial line, preamble or paragraph under it."""
    return _SERIAL_LINE.search(text) is None and _TEXT_LINE.search(text) is None


def _serial_line(text: str) -> str | None:
    """The first serial line, blanks removed (`CONFIDENTIALSECTION01OF02QUITO001978`)."""
    match = _SERIAL_LINE.search(text)
    return "".join(match.group(0).split()) if match else None


def _same_cable(preview: str, text: str) -> bool:
    """Whether `preview` is a copy of the start of the cable in `text`: its first lines
    are the first lines of `text`, or it names the same serial line."""
    opening = _opening(preview)
    if opening and opening == _opening(text)[: len(opening)]:
        return True
    serial = _serial_line(preview)
    return serial is not None and serial == _serial_line(text)


def _opening(text: str) -> list[str]:
    """The first three non-blank lines: transmission id, precedence, `DE` line with the serial.

    Read line by line from the start, so a long cable costs no more than its opening.
    """
    opening: list[str] = []
    start = 0
    while len(opening) < 3 and start <= len(text):
        end = text.find("\n", start)
        if end == -1:
            end = len(text)
        line = text[start:end].strip(" \t\r\\")
        if line:
            opening.append(line)
        start = end + 1
    return opening


def lift_embedded_row(chunk: CableChunk) -> CableChunk:
    """A release row (TSV dump or unquoted cables.csv) inside release text: keep its metadata.

    The row's leading columns are cut so the cable text starts its own line; a copy
    of the same header printed before the row is dropped.
    """
    if "\t" not in chunk.text and not _CSV_ROW_HINT.search(chunk.text):
        return chunk
    row = _EMBEDDED_ROW.search(chunk.text)
    if row is None:
        return chunk
    created = _parse_release_created(row["tsv_date"] or row["csv_date"] or "")
    release = ReleaseMetadata(
        reference_id=row["refid"].strip() or None,
        created=created,
        classification=" ".join(row["classification"].split()) or None,
        origin=row["origin"].strip('" ') or None,
        references=tuple(ref for ref in row["references"].split("|") if ref.strip()),
    )
    before, after = chunk.text[: row.start()], chunk.text[row.end() :]
    if before.strip() and _opening(before) == _opening(after):
        return CableChunk(
            after, chunk.offset + row.end(), chunk.rendering, release, ["repeated_header_dropped"]
        )
    return CableChunk(before + after, chunk.offset, chunk.rendering, release, chunk.warnings)


def _start_markers(segment: str) -> list[int]:
    """Where each line opening with `VZCZC` starts: the literal is found first, and only
    its first occurrence on a line is tried (a later one has text before it)."""
    starts = []
    previous = -1
    at = segment.find("VZCZC")
    while at != -1:
        line_end = segment.rfind("\n", max(previous, 0), at)
        if (previous < 0 or line_end != -1) and _START_MARKER.match(segment, line_end + 1, at + 5):
            starts.append(line_end + 1)
        previous = at
        at = segment.find("VZCZC", at + 5)
    return starts


def _end_marker_ends(text: str) -> list[int]:
    """Where each `NNNN` line ends: the literal is found first, and only its first
    occurrence on a line is tried at the line's start (a later one has text before it)."""
    ends = []
    previous = -1
    at = text.find("NNNN")
    while at != -1:
        line_end = text.rfind("\n", max(previous, 0), at)
        if previous < 0 or line_end != -1:
            marker = _END_MARKER.match(text, line_end + 1)
            if marker is not None:
                ends.append(marker.end())
        previous = at
        at = text.find("NNNN", at + 4)
    return ends


def _shifted(chunks: list[CableChunk], offset: int) -> list[CableChunk]:
    for chunk in chunks:
        chunk.offset += offset
    return chunks


def split_telegrams(text: str) -> list[CableChunk]:
    """Plain text: one cable, or several closed by `NNNN` / opened by `VZCZC`.

    A segment holding a release record dump is split by its record blocks
    instead, since the dump repeats the `VZCZC` header of its own preview.
    """
    chunks: list[CableChunk] = []
    # Each scan only where its literal is: most files hold one cable and no dump.
    segment_ends = _end_marker_ends(text)
    for seg_start, seg_end in itertools.pairwise([0, *segment_ends, len(text)]):
        segment = text[seg_start:seg_end]
        content = segment.strip()
        # Stripped, an end marker alone reads `NNNN`: nothing to split in this segment.
        if not content or content == "NNNN":
            continue
        if "\nrefid:" in segment and _RECORD_BLOCK.search(segment):
            chunks += _shifted(split_record_dumps(segment), seg_start)
            continue
        starts = _start_markers(segment)
        pieces: list[CableChunk] = []
        last_opening: list[str] = []
        for start, end in itertools.pairwise(sorted({0, *starts, len(segment)})):
            piece = segment[start:end]
            if piece.strip() in ("", "NNNN"):
                continue
            # Release text prints the header block, then the text opening with the same
            # header again: the first copy is a preview of the second, not a cable.
            # Either copy may come first (some files repeat the header at the end): keep the longer.
            opening = _opening(piece)
            if pieces and last_opening == opening:
                if len(piece) > len(pieces[-1].text):
                    pieces[-1] = CableChunk(piece, seg_start + start, "telegram")
                pieces[-1].warnings = ["repeated_header_dropped"]
                continue
            pieces.append(CableChunk(piece, seg_start + start, "telegram"))
            last_opening = opening
        chunks += [lift_embedded_row(piece) for piece in pieces]
    return _without_text_beside_cables(text, chunks) if len(chunks) > 1 else chunks


def _without_text_beside_cables(text: str, chunks: list[CableChunk]) -> list[CableChunk]:
    """One record per cable: what holds no cable of its own is not a record.

    Text before the first cable (an e-mail wrapper, a `Cable Text:` line, a preview of
    the serial line) introduces it and is kept with its text; text after a cable (a
    publisher's `End Cable Text`, an index line) is dropped with a warning; a copy of
    the previous cable's header printed after its `NNNN` is the same cable.
    """
    kept: list[CableChunk] = []
    lead_in: CableChunk | None = None
    for chunk in chunks:
        if chunk.rendering == "telegram" and not _holds_cable(chunk.text):
            if kept:
                kept[-1].warnings.append("text_after_cable_dropped")
            elif lead_in is None:
                lead_in = chunk
            continue
        if lead_in is not None and chunk.rendering == "telegram":
            chunk = CableChunk(
                text[lead_in.offset : chunk.offset] + chunk.text,
                lead_in.offset,
                chunk.rendering,
                chunk.release,
                chunk.warnings,
            )
        elif lead_in is not None:
            chunk.warnings.append("text_before_cable_dropped")
        lead_in = None
        previous = kept[-1] if kept else None
        if (
            previous is not None
            and previous.rendering == chunk.rendering == "telegram"
            and _opening(previous.text) == _opening(chunk.text)
        ):
            longer = chunk if len(chunk.text) > len(previous.text) else previous
            longer.warnings = [*longer.warnings, "repeated_header_dropped"]
            kept[-1] = longer
            continue
        kept.append(chunk)
    return kept or chunks


def split_cables(text: str, source_path: str = "") -> list[CableChunk]:
    """Every cable chunk of a decoded source, in file order."""
    # A cables.csv row opens with its quoted id: the pattern only where one can.
    if text.lstrip("\ufeff").startswith('"') and _CSV_ROW_START.match(text.lstrip("\ufeff")):
        return split_csv_rows(text)
    # A page holds `<`, found at memory speed: most texts have none.
    if "<" in text:
        chunks = split_release_page(text)
        if chunks:
            return chunks
    return split_telegrams(text)


__all__ = ["CableChunk", "split_cables"]
