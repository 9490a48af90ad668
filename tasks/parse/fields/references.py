"""REF line: `REF: A. STATE 1234 B. ANKARA 567` -> canonical cable ids like 08STATE1234."""

from __future__ import annotations

import regex

from cablestream.schemas.record import Reference
from cablestream.tasks.parse.fields.markers import FIELD_START

# `REF: …`, `REFS: …`, `REF A: …`, `REFTEL: …` at the start of a line.
_REF_LINE = regex.compile(
    r"(?im)^[ \t]*(?:REFS?|REFTELS?)\b[ \t]*(?:[A-Z][.)]?[ \t]*)?[:.;-]?[ \t]*(?P<rest>[^\n]*)$"
)
# Bullets that open list items: `A.`, `(B)`, `C)`, at the start or after a separator.
_BULLET = regex.compile(r"(?:^|(?<=[\s;:,]))\(?(?P<bullet>[A-Z])(?:\.|\))(?=\s)")
# `STATE 55259`, `08 STATE 55259`, `BUENOS AIRES 144`, `USUN NEW YORK 1234`.
_CABLE_REF = regex.compile(
    r"^(?:(?P<year>\d{2})[ \t]+)?(?P<station>[A-Z][A-Z'.-]*(?:[ \t][A-Z][A-Z'.-]*){0,3})"
    r"[ \t]+0*(?P<serial>\d{1,7})\b"
)
# Words that can open a list item but never a station (`THE` can: `THE HAGUE 97`).
_NOT_STATIONS = frozenset({"AND", "OF", "SEE", "ALSO", "REF", "REFTEL", "PARA", "PARAS"})


def _reference_text(text: str) -> str | None:
    match = _REF_LINE.search(text)
    if match is None:
        return None
    lines = text.split("\n")
    index = text.count("\n", 0, match.start("rest"))
    parts = [match["rest"]]
    for line in lines[index + 1 : index + 12]:
        if not line.strip() or (FIELD_START.match(line) and not _BULLET.match(line.strip())):
            break
        parts.append(line.strip())
    return " ".join(" ".join(parts).split())


def _items(raw: str) -> list[tuple[str | None, str]]:
    bullets = list(_BULLET.finditer(raw))
    if bullets:
        return [
            (match["bullet"], raw[match.end() : following].strip(" ;:,."))
            for match, following in zip(
                bullets, [*(b.start() for b in bullets[1:]), len(raw)], strict=True
            )
        ]
    return [
        (None, item.strip(" ."))
        for item in regex.split(r"[;:]|,(?=\s*[A-Z])", raw)
        if item.strip(" .")
    ]


def parse_reference(bullet: str | None, raw: str, citing_year: int | None) -> Reference:
    """One reference: a cable id when it names a station and serial, `other` otherwise."""
    match = _CABLE_REF.match(raw.upper())
    if match and match["station"].split()[0] not in _NOT_STATIONS:
        year = match["year"] or (f"{citing_year % 100:02d}" if citing_year else None)
        if year is not None:
            station = "".join(match["station"].split())
            return Reference(bullet, "cable", f"{year}{station}{int(match['serial'])}", raw)
    return Reference(bullet, "other", None, raw)


def parse_references(text: str, citing_year: int | None) -> list[Reference]:
    """Every item of the REF line; ids take the citing cable's year unless one is written."""
    raw = _reference_text(text)
    if not raw:
        return []
    return [parse_reference(bullet, item, citing_year) for bullet, item in _items(raw) if item]
