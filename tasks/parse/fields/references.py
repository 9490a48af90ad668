"""REF line: `REF: A. STATE 1234 B. ANKARA 567` -> canonical cable ids like 08STATE1234.

Ids are the ones the cited cables have as their own reference_id: canonical stations
(`SECSTATE` -> `STATE`), the citing cable's year unless one is written in any of its
forms, one reference per serial (`MALABO 19, 21, 26`). What is not a cable (an e-mail,
a memo, `USDA FAS 57863`) is kind `other`, with `raw` kept and no id.
"""

from __future__ import annotations

from cablestream.schemas.record import Reference
from cablestream.tasks.parse import guard
from cablestream.tasks.parse.fields.markers import FIELD_START
from cablestream.tasks.parse.fields.stations import canonical_station

_LABEL_WORD = r"(?:REF\(S\)|REF(?:TEL)?S?)"
# `REF: …`, `REFS: …`, `REFTEL: …`, `Ref(s): …`, `REF A) …` at a line start; glued after a
# word only with its colon (`… PRIMEREF: …`).
_REF_LABEL = guard.compile(
    rf"(?im)^[ \t]*{_LABEL_WORD}(?![A-Z])[ \t]*[:.;-]?[ \t]*|(?<=[A-Z)])(?-i:{_LABEL_WORD}):[ \t]*"
)
# A repeated label: `REF: REF: A. …`.
_REPEATED_LABEL = guard.compile(rf"(?i)^(?:{_LABEL_WORD}[ \t]*:[ \t]*)+")
# What ends the block on the same line: the next field, or paragraph 1 run on (`… 480  1. (U) …`).
_BLOCK_END = guard.compile(
    r"(?i)\bClassified[ \t]+By\b|\bSUBJECT:|(?<=\s)\d{1,2}\.[ \t]+\([A-Z/]{1,6}\)"
)
_MAX_BLOCK_LINES = 30
# A list item's bullet: `A.`, `(A)`, `[A]`, `A)`, `A:`, `A -`, `a.`.
_BULLET = guard.compile(
    r"(?:^|(?<=[\s;,]))(?:\((?P<letter>[A-Za-z])\)|\[(?P<letter>[A-Za-z])\]"
    r"|(?P<letter>[A-Za-z])(?:[.):]|[ \t]+-))(?=\s|$)"
)
_LINE_BULLET = guard.compile(
    r"^[ \t]*(?:\([A-Za-z]\)|\[[A-Za-z]\]|[A-Za-z](?:[.):]|[ \t]+-))(?=\s|$)"
)
_STATION_WORDS = r"[A-Z][A-Z'.-]*(?:[ \t]+[A-Z][A-Z'.-]*){0,3}"
# `STATE 55259`, `08 STATE 55259`, `'08 BUENOS AIRES 12`, `(99) ROME 3`, `2003 RIO DE JANEIRO 12`,
# `ASUNCION 701 (08)`, `QUITO 4525-91`, with more serials: `MALABO 19, 21`, `KABUL 936/935`.
_CABLE = guard.compile(
    r"(?<![A-Z0-9'])(?:(?P<year>'\d{2}|\(\d{2}\)|(?:19|20)\d{2}|\d{2})[ \t]+)?"
    rf"(?P<station>{_STATION_WORDS})[ \t]+0*+(?P<serial>\d{{1,7}}+)"
    r"(?:[ \t]*\((?P<paren_year>\d{2})\)|-(?P<dash_year>\d{2})(?!\d)|(?![.:]\d|/\d{1,2}/\d{2}))"
    r"(?P<more>(?:[ \t]*(?:,|/|&|\bAND\b)[ \t]*0*+\d{1,7}+(?![.:]\d|/\d{1,2}/\d{2}))*+)"
)
# `09CAIRO0561`, `10-OTTAWA-57`: the id written whole.
_WHOLE_ID = guard.compile(
    r"(?<![A-Z0-9])(?P<year>\d{2})-?(?P<station>[A-Z]{3,30})-?0*(?P<serial>\d{1,7})(?![\dA-Z])"
)
_MORE_SERIAL = guard.compile(r"\d{1,7}")
# Items without bullets: at `;`, `:` or a comma before the next post (`…, ANKARA 12`).
_ITEM_SEPARATOR = guard.compile(r"[;:]|,(?=[ \t]*(?:'?\d{2}[ \t]+)?[A-Z]{2})")
# Items that name something other than a cable: e-mails, memos, reports, a post's airgram.
_NOT_A_CABLE = guard.compile(
    r"(?i)E-?MAIL|@|\bMEMO|\bTALKING\s+POINTS|\bLETTER\b|\bFAX\b|\bTELCON|\bMEMCON|\bIIR\b|"
    r"\bNOTE\b|\bPHONE|\bCONVERSATION|\bREPORT\b|\bARTICLE\b|'S\b|\bA-\d"
)
# A literal of each of those, in capitals: an ASCII item holding none of them names no other
# thing (a case-insensitive alternation has no fast search of its own: ten times the cost).
_NOT_A_CABLE_LITERALS = (
    "MAIL", "@", "MEMO", "TALKING", "LETTER", "FAX", "TELCON", "MEMCON", "IIR", "NOTE",
    "PHONE", "CONVERSATION", "REPORT", "ARTICLE", "'S", "A-",
)  # fmt: skip
# Words that can open an item but never name a post (`THE` can: `THE HAGUE 97`).
_NOT_STATIONS = frozenset(
    {
        "AND", "OF", "SEE", "ALSO", "REF", "REFS", "REFTEL", "REFTELS", "PARA", "PARAS",
        "PARAGRAPH", "USDA", "FAS", "DOD", "DHS", "CIA", "FBI", "DIA", "NSC", "USAID",
        "IN", "ON", "AT", "TO", "FOR", "FROM", "BY", "DATED", "OUR", "YOUR", "NO", "NUMBER",
    }
)  # fmt: skip


def _reference_block(text: str) -> str | None:
    """The REF label's text with its continuation lines, also across blank lines
    when the next line carries on the list (`B. LA PAZ 00600`)."""
    # Every label spelling holds the letters: a literal check before the scan.
    label = _REF_LABEL.search(text) if "ref" in text.lower() else None
    if label is None:
        return None
    first_end = text.find("\n", label.end())
    first_end = len(text) if first_end < 0 else first_end
    parts = [_REPEATED_LABEL.sub("", text[label.end() : first_end])]
    # Each part is searched for the block's end once, when it is taken: a long glued first
    # line searched again at every following line cost 30 scans of it.
    ended = _BLOCK_END.search(parts[0]) is not None
    pending_blank = False
    for line in text[first_end + 1 :].split("\n", _MAX_BLOCK_LINES)[:_MAX_BLOCK_LINES]:
        if ended:
            break
        stripped = line.strip()
        if not stripped:
            pending_blank = True
            continue
        bullet = _LINE_BULLET.match(stripped) is not None
        if pending_blank and not bullet:
            break
        if FIELD_START.match(stripped) and not bullet:
            break
        parts.append(stripped)
        ended = _BLOCK_END.search(stripped) is not None
        pending_blank = False
    block = " ".join(" ".join(parts).split())
    end = _BLOCK_END.search(block)
    return block[: end.start()] if end else block


def _items(block: str) -> list[tuple[str | None, str]]:
    """The list's items: at bullets in letter order (or opening a line), else at `;`/`,`."""
    bullets: list[tuple[str, guard.Match]] = []
    expected = "A"
    for match in _BULLET.finditer(block):
        letter = match["letter"].upper()
        if letter == expected or (bullets and letter == bullets[-1][0]):
            bullets.append((letter, match))
            expected = chr(ord(letter) + 1)
    if bullets:
        ends = [match.start() for _, match in bullets[1:]] + [len(block)]
        head = block[: bullets[0][1].start()].strip(" ;:,.")
        items: list[tuple[str | None, str]] = [(None, head)] if head else []
        items += [
            (letter, block[match.end() : end].strip(" ;:,."))
            for (letter, match), end in zip(bullets, ends, strict=True)
        ]
        return items
    return [(None, item.strip(" .")) for item in _ITEM_SEPARATOR.split(block) if item.strip(" .")]


def _year(written: str | None, citing_year: int | None) -> str | None:
    if written:
        return written.strip("'()")[-2:]
    return f"{citing_year % 100:02d}" if citing_year is not None else None


def _cable_ids(item: str, citing_year: int | None) -> list[str]:
    """Every cable id an item names; empty when it names none or something else."""
    upper = item.upper()
    ids: list[str] = []
    for match in _CABLE.finditer(upper):
        words = match["station"].split()
        while words and words[0] in _NOT_STATIONS:
            words.pop(0)
        station = canonical_station(" ".join(words))
        if not station:
            continue
        year = _year(match["year"] or match["paren_year"] or match["dash_year"], citing_year)
        if year is None:
            continue
        serials = [match["serial"], *_MORE_SERIAL.findall(match["more"] or "")]
        ids += [f"{year}{station}{int(serial)}" for serial in serials]
    if not ids:
        for match in _WHOLE_ID.finditer(upper):
            station = canonical_station(match["station"])
            if station and station not in _NOT_STATIONS:
                ids.append(f"{match['year']}{station}{int(match['serial'])}")
    return ids


def _names_other_thing(item: str) -> bool:
    """Whether an item names an e-mail, memo, report or the like (`_NOT_A_CABLE`)."""
    if item.isascii():
        upper = item.upper()
        if not any(literal in upper for literal in _NOT_A_CABLE_LITERALS):
            return False
    return _NOT_A_CABLE.search(item) is not None


def parse_reference_item(bullet: str | None, raw: str, citing_year: int | None) -> list[Reference]:
    """One item of the REF list: one reference per cable it names, or one `other`."""
    if not _names_other_thing(raw):
        ids = _cable_ids(raw, citing_year)
        if ids:
            return [Reference(bullet, "cable", ref_id, raw) for ref_id in dict.fromkeys(ids)]
    return [Reference(bullet, "other", None, raw)]


def parse_references(text: str, citing_year: int | None) -> list[Reference]:
    """Every reference of the REF block; ids take the citing cable's year unless one is written."""
    block = _reference_block(text)
    if not block:
        return []
    return [
        reference
        for bullet, item in _items(block)
        if item
        for reference in parse_reference_item(bullet, item, citing_year)
    ]
