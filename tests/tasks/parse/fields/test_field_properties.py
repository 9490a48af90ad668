"""Properties of the FIELDS.md rules, on generated input (hypothesis).

Each property writes a field the way real cables vary it (bullet forms, year forms,
station spellings, wrapped tag lines, summary markers) and checks the parser reads back
what was written.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cablestream.tasks.parse.fields.body import parse_summary, split_signature
from cablestream.tasks.parse.fields.markers import FIELD_START
from cablestream.tasks.parse.fields.references import parse_references
from cablestream.tasks.parse.fields.station_table import STATIONS
from cablestream.tasks.parse.fields.stations import canonical_station
from cablestream.tasks.parse.fields.topics import parse_tags

# Stations as telegrams write them: the id spelling, or words that squash to it.
WRITTEN_STATIONS = {
    "STATE": "STATE",
    "SECSTATE": "STATE",
    "THE HAGUE": "THEHAGUE",
    "SAO PAULO": "SAOPAULO",
    "BUENOS AIRES": "BUENOSAIRES",
    "HCMC": "HOCHIMINHCITY",
    "PORT-OF-SPAIN": "PORTOFSPAIN",
    "ASTANA": "ASTANA",
    "NEW DELHI": "NEWDELHI",
}
BULLET_FORMS = ["{}.", "({})", "[{}]", "{})", "{}:", "{} -"]
LETTERS = "ABCDEFGHIJ"
SEPARATORS = [" ", "\n", "\n\n", "  "]


@st.composite
def lettered_lists(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A REF line with a lettered list; the ids it must give for a 2008 cable."""
    count = draw(st.integers(min_value=1, max_value=len(LETTERS)))
    form = draw(st.sampled_from(BULLET_FORMS))
    lower = draw(st.booleans())
    parts, ids = [], []
    for index in range(count):
        written = draw(st.sampled_from(sorted(WRITTEN_STATIONS)))
        serial = draw(st.integers(min_value=1, max_value=999_999))
        year = draw(st.sampled_from([None, 5, 7]))
        letter = LETTERS[index].lower() if lower else LETTERS[index]
        cited = f"{year:02d} {written} {serial:06d}" if year is not None else f"{written} {serial}"
        separator = draw(st.sampled_from(SEPARATORS)) if index else ""
        parts.append(f"{separator}{form.format(letter)} {cited}")
        ids.append(f"{year if year is not None else 8:02d}{WRITTEN_STATIONS[written]}{serial}")
    return "REF: " + "".join(parts) + "\n\nClassified By: X", ids


@settings(max_examples=200, deadline=None)
@given(lettered_lists())
def test_every_item_of_any_lettered_list_is_a_canonical_id(case: tuple[str, list[str]]) -> None:
    text, ids = case
    assert [ref.id for ref in parse_references(text, 2008)] == ids


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(WRITTEN_STATIONS)),
    # From 100 on: `1/2/10` reads as a date, and is one.
    st.lists(st.integers(min_value=100, max_value=99_999), min_size=1, max_size=6, unique=True),
    st.sampled_from([", ", " AND ", "/", ",", " & "]),
)
def test_several_serials_of_one_station(written: str, serials: list[int], joiner: str) -> None:
    text = f"REF: {written} {joiner.join(str(serial) for serial in serials)}"
    station = WRITTEN_STATIONS[written]
    assert [ref.id for ref in parse_references(text, 2009)] == [
        f"09{station}{serial}" for serial in serials
    ]


@given(st.sampled_from(sorted(STATIONS)))
def test_table_stations_are_their_own_canonical_form(station: str) -> None:
    assert canonical_station(station) == station


@given(st.text())
def test_canonical_station_is_letters_only_and_idempotent(text: str) -> None:
    station = canonical_station(text)
    if station is not None:
        assert station.isalpha() and station.isupper() and station.isascii()
        assert canonical_station(station) == station


TAG = st.from_regex(r"\A[A-Z]{2,4}\Z", fullmatch=True).filter(
    # Words that end a tag list (`FOR`, `PAGE`, ...) or open another field on a line of
    # their own (`TAG`, `REF`, `DECL`, `BT`) are no tags.
    lambda tag: (
        not FIELD_START.match(tag)
        and tag not in {"FOR", "PASS", "TO", "AND", "THE", "OF", "INFO", "ALSO", "PAGE"}
    )
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(TAG, min_size=1, max_size=6), min_size=1, max_size=4),
    st.sampled_from([" ", ", "]),
)
def test_wrapped_tag_lines_are_read_in_order(lines: list[list[str]], joiner: str) -> None:
    text = "TAGS: " + "\n".join(joiner.join(line) for line in lines) + "\nSUBJECT: X"
    expected = list(dict.fromkeys(tag for line in lines for tag in line))
    assert parse_tags(text) == expected


SENTENCE = st.from_regex(r"\A[A-Z][a-z]{2,9}( [a-z]{2,9}){1,8}\.\Z", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(SENTENCE, min_size=1, max_size=4).map(" ".join),
    st.sampled_from(["SUMMARY:", "Summary:", "BEGIN SUMMARY", "Summary and Comment:"]),
    st.sampled_from(["END SUMMARY.", "End Summary", "(END SUMMARY)", "-- END  SUMMARY --"]),
)
def test_summary_between_markers_keeps_its_final_period(
    summary: str, opener: str, closer: str
) -> None:
    text = f"1. (C) {opener} {summary} {closer}\n\n2. (C) More text."
    assert parse_summary(text) == summary


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(r"\A[A-Z]{3,12}\Z", fullmatch=True).filter(
        lambda name: name not in {"CONFIDENTIAL", "SECRET", "UNCLASSIFIED", "UNCLAS", "NNNN"}
    ),
    st.lists(
        st.sampled_from(["CONFIDENTIAL", "NNNN", "", "PAGE 04 STATE 015113 211833Z", "SECRET"]),
        max_size=4,
    ),
)
def test_the_signer_is_found_past_banners_and_page_lines(name: str, after: list[str]) -> None:
    text = "The talks went well.\n" + name + "\n" + "\n".join(after)
    assert split_signature(text)[1] == [name]
