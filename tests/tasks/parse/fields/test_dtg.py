from datetime import UTC, date, datetime

import pytest

from cablestream.tasks.parse.fields.dtg import (
    infer_year_from_declassification,
    parse_dtg,
    parse_preface_date,
)


@pytest.mark.parametrize(
    ("header", "created", "precedence"),
    [
        (
            "DE RUEHTA #0988 1480710\nZNY SSSSS ZZH\nO 270710Z MAY 08\nFM AMEMBASSY ASTANA",
            datetime(2008, 5, 27, 7, 10, tzinfo=UTC),
            "IMMEDIATE",
        ),
        (
            "R 250930Z FEB 72 \nFM AMEMBASSY TEHRAN",
            datetime(1972, 2, 25, 9, 30, tzinfo=UTC),
            "ROUTINE",
        ),
        (
            "P R 281848Z DEC 66\nFM AMEMBASSY BUENOS AIRES",
            datetime(1966, 12, 28, 18, 48, tzinfo=UTC),
            "PRIORITY",
        ),
        (
            "P 121736Z MAR 08 ZDK\nFM AMEMBASSY MADRID",
            datetime(2008, 3, 12, 17, 36, tzinfo=UTC),
            "PRIORITY",
        ),
        ("Z 010001Z JAN 10", datetime(2010, 1, 1, 0, 1, tzinfo=UTC), "FLASH"),
        # A bare DTG in a partial extract carries no precedence prosign.
        ("201247Z Jan 04", datetime(2004, 1, 20, 12, 47, tzinfo=UTC), None),
        # Impossible dates are skipped, not raised.
        ("O 320710Z MAY 08", None, None),
        ("O 270710Z XYZ 08", None, None),
        ("no date-time group here", None, None),
    ],
)
def test_parse_dtg(header: str, created: datetime | None, precedence: str | None) -> None:
    assert parse_dtg(header) == (created, precedence)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "Tuesday, 08 September 2009, 05:22\nUNCLAS SECTION 01 OF 04 STOCKHOLM 000569",
            datetime(2009, 9, 8, 5, 22, tzinfo=UTC),
        ),
        ("Cable dated:2008-06-03T15:39:00\nCONFIDENTIAL", datetime(2008, 6, 3, 15, 39, tzinfo=UTC)),
        ("Someday, 31 Smarch 2009, 05:22", None),
        ("VZCZCXYZ0002", None),
    ],
)
def test_parse_preface_date(header: str, expected: datetime | None) -> None:
    assert parse_preface_date(header) == expected


@pytest.mark.parametrize(
    ("deadline", "year"),
    [
        (date(2015, 6, 15), 2005),  # the usual ten-year hold
        (date(2023, 5, 27), 2008),  # the Astana seed: a fifteen-year hold
        (date(2028, 10, 9), 2008),  # twenty years
        (date(2039, 2, 18), 2009),  # a thirty-year hold: the shorter ones don't fit
        (date(2034, 7, 1), 2009),
        (date(1983, 12, 31), 1973),
        (date(2060, 1, 1), None),
    ],
)
def test_infer_year_from_declassification(deadline: date, year: int | None) -> None:
    assert infer_year_from_declassification(deadline) == year


@pytest.mark.parametrize(
    ("deadline", "text", "year"),
    [
        # 0181_4cb5e6602899e7fe.txt: April 12 was a Tuesday in 2005, not in 2000.
        (date(2010, 4, 13), "informed us last night, Tuesday,\nApril 12, that", 2005),
        # A weekday that fits the usual hold keeps it, also one of the next January.
        (date(2013, 12, 31), "deliver it on Friday Jan 2.", 2003),
        (date(2015, 6, 15), "We met on Wednesday, June 15.", 2005),
        # A weekday no hold fits says nothing.
        (date(2015, 6, 15), "On Monday, February 30 nothing.", 2005),
    ],
)
def test_weekday_named_dates_choose_the_hold(deadline: date, text: str, year: int) -> None:
    assert infer_year_from_declassification(deadline, text) == year
