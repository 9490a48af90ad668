"""E.O. line: `E.O. 12958: DECL: 05/27/2023` -> nondisclosure deadline 2023-05-27."""

from __future__ import annotations

from datetime import date

from cablestream.tasks.parse import guard
from cablestream.tasks.parse.fields.dtg import expand_year

# `E.O. 12958: DECL: 05/27/2023`, `EO 12958 DECL: 09/21/10`, `DECL: OADR`, `E.O. 12958: N/A`.
# Also the ISO-like `DECL: 2019/10/08` of a few posts, and dashes: `DECL: 12-29-13`.
_DECL_DATE = guard.compile(
    r"(?i)\bDECL[:;]?[ \t]{0,10}+(?:(?P<month>\d{1,2})(?P<sep>[/-])(?P<day>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})"
    r"|(?P<year>\d{4})/(?P<month>\d{1,2})/(?P<day>\d{1,2}))\b"
)
# Markers that stand where a date would: Originating Agency's Determination Required, …
_DECL_MARKER = guard.compile(
    r"(?i)\bDECL[:;]?[ \t]{0,10}+(?P<marker>OADR|X[1-8](?:[ ,]+X[1-8])*|MR|25X\d)\b"
)


def parse_declassification(text: str) -> tuple[date | None, str | None]:
    """(deadline, marker): the DECL date, or a marker such as OADR kept as a caveat."""
    match = _DECL_DATE.search(text)
    if match:
        raw_year = int(match["year"])
        year = raw_year if raw_year >= 1000 else expand_year(raw_year)
        try:
            return date(year, int(match["month"]), int(match["day"])), None
        except ValueError:
            return None, None
    marker = _DECL_MARKER.search(text)
    if marker:
        return None, "DECL " + " ".join(marker["marker"].upper().split())
    return None, None
