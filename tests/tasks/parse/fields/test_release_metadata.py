from datetime import UTC, datetime

import pytest

from cablestream.schemas.record import ReleaseMetadata
from cablestream.tasks.parse.fields.release_metadata import merged, parse_date

FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M")


@pytest.mark.parametrize(
    "value",
    [
        "2008-05-27 07:10",
        "2008-05-27 07:10:59",
        "5/27/2008 7:10",
        "05/27/2008 07:10",
        "12/31/1999 23:59",
        # Spellings only `strptime` reads: one-digit fields, a blank-padded day.
        "2009-2-8 23:00",
        "5/7/2008 7:5",
        "5/ 7/2008 7:05",
        # Out of range or not a date: None, as `strptime` says.
        "13/27/2008 7:10",
        "2009-02-30 10:00",
        "2009-02-28 24:00",
        "2008-00-10 10:10",
        "2008-05-27 07:10:60",
        "2008-05-27T07:10",
        "2008-05-27 07:10 ",
        "",
    ],
)
def test_parse_date_reads_what_strptime_reads(value: str) -> None:
    expected = None
    for fmt in FORMATS:
        try:
            expected = datetime.strptime(value, fmt).replace(tzinfo=UTC)
            break
        except ValueError:
            continue
    assert parse_date(value) == expected


def test_parse_date_only_in_the_given_formats() -> None:
    assert parse_date("2008-05-27 07:10:59", ("%Y-%m-%d %H:%M",)) is None
    assert parse_date("5/27/2008 7:10", ("%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M")) == datetime(
        2008, 5, 27, 7, 10, tzinfo=UTC
    )


def test_merged_keeps_what_the_splitter_carried_and_fills_its_gaps() -> None:
    created = datetime(2009, 1, 5, 13, 1, tzinfo=UTC)
    carried = ReleaseMetadata(reference_id="09ISLAMABAD24", origin=None, references=("A",))
    found = ReleaseMetadata(reference_id="09OTHER1", created=created, origin="Embassy Islamabad")
    assert merged(carried, found) == ReleaseMetadata(
        reference_id="09ISLAMABAD24",
        created=created,
        classification=None,
        origin="Embassy Islamabad",
        references=("A",),
    )
    # A carried id that is no release id (a date from a damaged row) gives way.
    assert merged(ReleaseMetadata(reference_id="2009-06-23"), found).reference_id == "09OTHER1"
