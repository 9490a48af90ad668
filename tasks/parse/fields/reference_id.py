"""The `reference_id` field: year + station + serial without leading zeros (`08ASTANA988`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cablestream.tasks.parse import guard

# `08ASTANA988`: what a well-formed id looks like (the release garbled a few).
_REFERENCE_ID = guard.compile(r"^(?P<year>\d{2})(?P<station>[A-Z]{2,40})(?P<serial>\d{1,7})$")


@dataclass(slots=True)
class ReferenceId:
    value: str | None
    warnings: list[str] = field(default_factory=list)


def format_reference_id(year: int, station: str, serial: int) -> str:
    return f"{year % 100:02d}{station}{serial}"


def station_of(reference_id: str | None) -> str | None:
    """The station part of a well-formed id; None for a garbled or missing one."""
    match = _REFERENCE_ID.match(reference_id or "")
    return match["station"] if match else None


def _truncated(serial: int, de_serial: int) -> bool:
    """Whether the serial line lost trailing digits (`REYKJAVIK 00040QSITIVE` for #0401):
    the DE line's number is longer and starts with the serial line's digits."""
    short, long = str(serial), str(de_serial)
    return serial != de_serial and len(long) > len(short) and long.startswith(short)


def names_another_cable(serial: int | None, de_serial: int | None) -> bool:
    """Whether the serial line names another cable than the routing header's `DE` line.

    The `DE` line holds the low four digits of the serial, so only a serial it could
    hold in full is compared. The header names the cable it carries: where the two
    disagree (a scrape printed one cable's header over another's text, a retyped
    serial line), the release's id is the header's in 8 of the 10 such cables of both
    shared corpora whose id tells.
    """
    if serial is None or de_serial is None or serial >= 10_000:
        return False
    return serial != de_serial and not _truncated(serial, de_serial)


def decide_reference_id(
    station: str | None,
    serial: int | None,
    de_serial: int | None,
    year: int | None,
    release_reference_id: str | None,
) -> ReferenceId:
    """The id from the text, unless the release names the cable itself.

    The serial comes from the serial line; the DE line's `#9854` holds only the low
    four digits of `49854`, so it is the last resort, or the fix of a serial line
    that lost its last digits.
    """
    number = serial if serial is not None else de_serial
    if serial is not None and de_serial is not None and _truncated(serial, de_serial):
        number = de_serial
    if names_another_cable(serial, de_serial):
        number = de_serial
    parsed = (
        format_reference_id(year, station, number)
        if station and number is not None and year is not None
        else None
    )
    if release_reference_id:
        warnings = (
            ["reference_id_differs_from_release"]
            if parsed and parsed != release_reference_id
            else []
        )
        return ReferenceId(release_reference_id, warnings)
    return ReferenceId(parsed, [] if parsed else ["reference_id_missing"])
