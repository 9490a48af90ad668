"""Date-time group and precedence: `O 270710Z MAY 08` -> 2008-05-27T07:10Z, IMMEDIATE."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime

from cablestream.tasks.parse import guard

MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
PROSIGNS = {"Z": "FLASH", "O": "IMMEDIATE", "P": "PRIORITY", "R": "ROUTINE"}

# `O 270710Z MAY 08`, `P R 281848Z DEC 66`, a bare `201247Z Jan 04` in partial extracts.
_DTG_LINE = (
    r"[ \t]*(?:(?P<prosign>[ZOPR]{1,2}(?: [ZOPR])?)[ \t]+)?"
    r"(?P<day>\d{2})(?P<hour>\d{2})(?P<minute>\d{2})Z[ \t]+(?P<month>[A-Z]{3})[ \t]+(?P<year>\d{2}|\d{4})\b"
)
_DTG = guard.compile(rf"(?i)^{_DTG_LINE}")
# The same after a line end: a scan led by `\n` is several times faster than one trying `^`.
_DTG_AFTER_LINE_END = guard.compile(rf"(?i)\n{_DTG_LINE}")


def expand_year(two_digits: int) -> int:
    """Two-digit years: cables run from the 1960s to 2010."""
    return 1900 + two_digits if two_digits >= 60 else 2000 + two_digits


# A routing header unwrapped onto one line: `… ZNY SSSSS ZZH R 052031Z JUN 09 FM AMCONSUL
# MONTERREY TO …`. The `ZZH` before and the `FM … TO` after tell it from a date in prose.
UNWRAPPED_HEADER = guard.compile(
    r"\bZZH[ \t]+(?:(?P<prosign>[ZOPR]{1,2}(?: [ZOPR])?)[ \t]+)?"
    r"(?P<day>\d{2})(?P<hour>\d{2})(?P<minute>\d{2})Z[ \t]+(?P<month>[A-Z]{3})[ \t]+(?P<year>\d{2})"
    r"(?:[ \t]+Z[A-Z]{2})?[ \t]+FM[ \t]+(?P<post>[A-Z][A-Z .'-]{1,60}?)[ \t]+TO\b"
)


def parse_dtg(header: str) -> tuple[datetime | None, str | None]:
    """The first DTG line of the header: (created in UTC, precedence from its prosign)."""
    first = _DTG.match(header)
    return _first_valid_dtg(
        itertools.chain([first] if first else [], _DTG_AFTER_LINE_END.finditer(header))
    )


def parse_unwrapped_dtg(text: str) -> tuple[datetime | None, str | None]:
    """The DTG of a routing header that a rendering unwrapped onto one line."""
    return _first_valid_dtg(UNWRAPPED_HEADER.finditer(text))


def _first_valid_dtg(
    matches: Iterable[guard.Match],
) -> tuple[datetime | None, str | None]:
    for match in matches:
        month = MONTHS.get(match["month"].upper())
        if month is None:
            continue
        raw_year = int(match["year"])
        year = raw_year if raw_year >= 1000 else expand_year(raw_year)
        try:
            created = datetime(
                year, month, int(match["day"]), int(match["hour"]), int(match["minute"]), tzinfo=UTC
            )
        except ValueError:
            continue
        prosign = match["prosign"]
        precedence = PROSIGNS.get(prosign[0].upper()) if prosign else None
        return created, precedence
    return None, None


# Preface dates of scraped extracts: `Tuesday, 08 September 2009, 05:22`,
# `Cable dated:2008-06-03T15:39:00`.
_PREFACE_DATE = guard.compile(
    r"(?m)^[ \t]*(?:[A-Z][a-z]{2,8}day, (?P<day>\d{1,2}) (?P<month>[A-Z][a-z]{2,8}) (?P<year>\d{4}), "
    r"(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"|Cable dated:[ \t]*(?P<iso>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}))"
)


def parse_preface_date(header: str) -> datetime | None:
    """The date a scraped extract prints above the text, when it has no DTG."""
    match = _PREFACE_DATE.search(header)
    if match is None:
        return None
    try:
        if match["iso"]:
            return datetime.strptime(match["iso"], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
        month = MONTHS.get(match["month"][:3].upper())
        if month is None:
            return None
        return datetime(
            int(match["year"]),
            month,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


_USUAL_HOLDS = (10, 15, 20, 25, 30)
# Holds a weekday in the text can pick instead: five years was common too.
_OTHER_HOLDS = (5,)
# `Tuesday, April 12`, `Thursday (June 2)`: a weekday named with its date.
_WEEKDAY_DATE = guard.compile(
    r"(?i)\b(?P<weekday>MON|TUES|WEDNES|THURS|FRI|SATUR|SUN)DAY,?\s{1,4}+\(?"
    r"(?P<month>JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]{0,6}+\.?[ \t]{1,3}+"
    r"(?P<day>\d{1,2})(?!\d)"
)
_WEEKDAYS = ("MON", "TUES", "WEDNES", "THURS", "FRI", "SATUR", "SUN")
_MAX_WEEKDAY_DATES = 20


def _weekday_dates(text: str) -> list[tuple[int, int, int]]:
    """(month, day, weekday) of the weekday-named dates of a text."""
    found = []
    for match in itertools.islice(_WEEKDAY_DATE.finditer(text), _MAX_WEEKDAY_DATES):
        found.append(
            (
                MONTHS[match["month"].upper()],
                int(match["day"]),
                _WEEKDAYS.index(match["weekday"].upper()),
            )
        )
    return found


def _weekday_fits(year: int, dates: list[tuple[int, int, int]]) -> int:
    """How many weekday-named dates fall on their weekday in `year` or the next year
    (a cable of late December speaks of `Friday Jan 2`)."""
    fits = 0
    for month, day, weekday in dates:
        for candidate in (year, year + 1):
            try:
                if date(candidate, month, day).weekday() == weekday:
                    fits += 1
                    break
            except ValueError:
                break
    return fits


def infer_year_from_declassification(
    deadline: date, text: str = "", latest_year: int = 2010
) -> int | None:
    """Origin year from a DECL date: the shortest usual hold that puts it within the release.

    Measured on the corpus cables that have both a DTG and a DECL date: DECL years up
    to 2020 are 10 years on (267 of 300), 2023-25 are 15, 2026-30 are 20, 2032-35 are
    25 and 2038-39 are 30; the release ends in 2010. Where the text names a weekday
    with its date (`Tuesday, April 12`) that the usual hold contradicts, a hold that fits wins
    (`0181_4cb5e6602899e7fe.txt`: DECL 04/13/2010 and `Tuesday, April 12` give 2005).
    """
    usual = [deadline.year - hold for hold in _USUAL_HOLDS if deadline.year - hold <= latest_year]
    # Every weekday name ends in `day`: a literal check before the case-insensitive scan.
    dates = _weekday_dates(text) if "day" in text.lower() else []
    if dates and usual and _weekday_fits(usual[0], dates) < len(dates):
        # The usual hold contradicts the text's weekdays: a hold that fits them all wins.
        others = [deadline.year - hold for hold in _OTHER_HOLDS] + usual[1:]
        for year in others:
            if year <= latest_year and _weekday_fits(year, dates) == len(dates):
                return year
    return usual[0] if usual else None
