from datetime import date

import pytest

from cablestream.tasks.parse.fields.declassification import parse_declassification


@pytest.mark.parametrize(
    ("text", "deadline", "marker"),
    [
        ("E.O. 12958: DECL: 05/27/2023 TAGS: IAEA KNNP", date(2023, 5, 27), None),
        ("EO 12958 DECL: 09/21/10", date(2010, 9, 21), None),
        ("E.o. 12958: decl: 07/01/2034", date(2034, 7, 1), None),
        ("E.O. 12356:  DECL:  OADR", None, "DECL OADR"),
        ("E.O. 12958: N/A", None, None),
        ("E.O. 12958: DECL: 2019/10/08", date(2019, 10, 8), None),
        ("E.O. 12958: DECL:  9/14/2016", date(2016, 9, 14), None),
        ("E.O. 12958: AS AMENDED; DECLASSIFIED JUNE 21, 2006", None, None),
        ("E.O. 12958: DECL: 13/45/2020", None, None),
        # A DECL date written with dashes is a date (FIELDS.md).
        ("E.O. 12958: DECL: 12-29-13", date(2013, 12, 29), None),
        ("E.O. 12958: DECL: 12-29/13", None, None),
    ],
)
def test_parse_declassification(text: str, deadline: date | None, marker: str | None) -> None:
    assert parse_declassification(text) == (deadline, marker)
