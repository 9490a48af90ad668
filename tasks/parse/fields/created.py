"""The `created` field: when the cable was sent, and how sure the parser is of it.

Sources, best first: the telegram's DTG (also inside a header unwrapped onto one
line), a preface date of a scraped extract, the release metadata, and last the
DECL date minus the usual hold, which gives only a date (said by a warning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from cablestream.tasks.parse.fields import dtg


@dataclass(slots=True)
class Created:
    """The decided creation time; `year` also feeds reference ids when only it is known."""

    value: datetime | None
    precedence: str | None
    warnings: list[str] = field(default_factory=list)

    @property
    def year(self) -> int | None:
        return self.value.year if self.value is not None else None


def decide_created(
    header: str,
    preamble: str,
    release_created: datetime | None,
    deadline: date | None,
    text: str = "",
) -> Created:
    """The cable's creation time from its text, else the release's, else the DECL date
    (with the weekday-named dates of `text` to choose the hold)."""
    value, precedence = dtg.parse_dtg(header or preamble)
    if value is None:
        value, precedence = dtg.parse_unwrapped_dtg(f"{header}\n{preamble}")
    if value is not None:
        return Created(value, precedence)
    preface = dtg.parse_preface_date(header)
    if preface is not None:
        return Created(preface, None)
    if release_created is not None:
        return Created(release_created, None, ["created_from_release_metadata"])
    if deadline is not None:
        year = dtg.infer_year_from_declassification(deadline, text)
        if year is not None:
            day = min(deadline.day, 28) if deadline.month == 2 else deadline.day
            inferred = datetime(year, deadline.month, day, tzinfo=UTC)
            # Only the date is known: the 00:00 is no DTG, and the warnings say so.
            return Created(inferred, None, ["year_inferred_from_decl", "created_date_only"])
    return Created(None, None, ["created_missing"])
