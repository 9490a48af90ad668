"""The `station` and `origin` fields: which post sent the cable.

`origin` is the FM line as written (office suffixes removed); without one, the
release metadata's Origin, else the release's name of the post the serial line
names. `station` is the post in its reference-id spelling, from whichever part of
the text or metadata names it.
"""

from __future__ import annotations

from cablestream.tasks.parse.fields.reference_id import station_of
from cablestream.tasks.parse.fields.stations import origin_of_station, station_from_post


def decide_origin(
    fm_origin: str | None, release_origin: str | None, serial_place: str | None
) -> str | None:
    """The FM line, else the release's Origin, else the post the serial line names."""
    if fm_origin:
        return fm_origin
    if release_origin:
        return release_origin
    if serial_place:
        return origin_of_station(serial_place) or serial_place
    return None


def decide_station(
    reference_id: str | None,
    serial_station: str | None,
    fm_origin: str | None,
    release_origin: str | None,
) -> str | None:
    """The station of the cable's own id, else the first other source that names the post."""
    return (
        station_of(reference_id)
        or serial_station
        or station_from_post(fm_origin)
        or station_from_post(release_origin)
    )
