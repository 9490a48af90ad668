"""Release metadata printed inside a cable's text, in the forms scrapes and dumps left it.

`id: 228953 date: 10/8/2009 14:21 refid: 09QUITO873 origin: Embassy Quito
classification: CONFIDENTIAL` (one field per line or joined on one line), one value
per line (`145314` / `2008-03-11 19:40:00` / `08MEXICO714` / `Embassy Mexico` /
`CONFIDENTIAL//NOFORN`), the same joined by blanks or tabs, glued to other text.
The splitter lifts the forms it cuts cables at; these are the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cablestream.schemas.record import ReleaseMetadata
from cablestream.tasks.parse import guard

# Between values: a line end, tab or comma with blanks around it, or blanks alone. Bounded
# and possessive, so a long blank run costs linear time.
_SEPARATOR = r"(?:[ \t]{0,10}+[\n,][ \t]{0,10}+|[ \t]{1,10}+)"
# Anchored on the date (the record id before it is not needed), then refid, origin and
# classification in the release's order, each label optional.
_METADATA = guard.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?|\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2})"
    rf"{_SEPARATOR}(?:refid:[ \t]{{0,5}}+)?(?P<refid>\d{{2}}[A-Z]{{2,30}}+\d{{1,7}}+)\b"
    rf"{_SEPARATOR}(?:origin:[ \t]{{0,5}}+)?\"?(?P<origin>[A-Z][A-Za-z ,.'()-]{{1,60}}?)\"?"
    rf"{_SEPARATOR}(?:classification:[ \t]{{0,5}}+)?"
    r"(?P<classification>(?:UNCLASSIFIED|CONFIDENTIAL|SECRET|TOP SECRET)"
    r"(?://(?:NOFORN|FOR OFFICIAL USE ONLY))?)\b"
)
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M")
# Each date format as the release writes it (ASCII digits), with where year,
# month, day, hour, minute (and second) stand among its groups: read by a pattern at a
# tenth of `strptime`'s cost. What it does not read, or reads out of range, goes to `strptime`.
_DATE_SPELLINGS = {
    "%Y-%m-%d %H:%M:%S": (
        guard.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"),
        (0, 1, 2, 3, 4, 5),
    ),
    "%Y-%m-%d %H:%M": (
        guard.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2})"),
        (0, 1, 2, 3, 4),
    ),
    "%m/%d/%Y %H:%M": (
        guard.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}) ([0-9]{1,2}):([0-9]{2})"),
        (2, 0, 1, 3, 4),
    ),
}


def parse_date(value: str, formats: tuple[str, ...] = _DATE_FORMATS) -> datetime | None:
    """The date of the first of `formats` that `datetime.strptime` reads `value` with, in
    UTC; None when none does. Every format is one of _DATE_SPELLINGS."""
    for fmt in formats:
        spelling, order = _DATE_SPELLINGS[fmt]
        spelled = spelling.fullmatch(value)
        if spelled is not None:
            parts = spelled.groups()
            year, month, day, hour, minute = (int(parts[index]) for index in order[:5])
            second = int(parts[order[5]]) if len(order) > 5 else 0
            try:
                return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            except ValueError:
                pass  # out of range (`2009-02-30`): `strptime` says so too
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


# Every date form above writes its time `7:10`/`07:10` at most this far after the date's start.
_TIME_COLON_OFFSET = 13


def _first_time_colon(text: str) -> int:
    """Where the first `:` between a digit and two digits stands (-1 if none); digits as
    the pattern reads them (any Unicode decimal digit)."""
    at = text.find(":", 1)
    while at != -1:
        after = text[at + 1 : at + 3]
        if len(after) == 2 and after.isdecimal() and text[at - 1].isdecimal():
            return at
        at = text.find(":", at + 1)
    return -1


def find_release_metadata(text: str) -> ReleaseMetadata:
    """The first release metadata block printed in `text`; empty when there is none."""
    # Led by a digit, the pattern is tried at every digit of the header: started only where
    # its first time can be (a colon among digits), it finds the same first block.
    colon = _first_time_colon(text)
    if colon < 0:
        return ReleaseMetadata()
    match = _METADATA.search(text, max(0, colon - _TIME_COLON_OFFSET))
    if match is None:
        return ReleaseMetadata()
    return ReleaseMetadata(
        reference_id=match["refid"],
        created=parse_date(match["date"]),
        classification=match["classification"],
        origin=" ".join(match["origin"].split()).strip(" ,"),
    )


# What a release id looks like, garbled ones included (`7575LIBREVILLE1895`); a date
# taken from a damaged row (`2009-06-23 10:45:00`) is not one.
_ID_SHAPE = guard.compile(r"^\d{2}[A-Z0-9]*[A-Z][A-Z0-9]*\d$")


def merged(carried: ReleaseMetadata, found: ReleaseMetadata) -> ReleaseMetadata:
    """The metadata the splitter carried, its gaps filled from what the text prints."""
    carried_id = carried.reference_id if _ID_SHAPE.match(carried.reference_id or "") else None
    # Built field by field: `dataclasses.replace` cost as much as the rest of the merge.
    return ReleaseMetadata(
        reference_id=carried_id or found.reference_id,
        created=carried.created or found.created,
        classification=carried.classification or found.classification,
        origin=carried.origin or found.origin,
        references=carried.references,
    )
