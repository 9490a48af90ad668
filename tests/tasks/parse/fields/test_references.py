"""REF lines: every FIELDS.md form, with real snippets (file names) and invented ones."""

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
        # 0009_887c9f0fa53b1c4a.txt: USUN is USUNNEWYORK in ids.
        ("REF: STATE 272523; USUN 6028", 1975, ["75STATE272523", "75USUNNEWYORK6028"]),
    ],
)
def test_reference_ids(text: str, year: int, ids: list[str]) -> None:
    assert [ref.id for ref in parse_references(text, year)] == ids


@pytest.mark.parametrize(
    ("written", "station"),
    [
        ("SECSTATE 15113", "STATE"),
        ("HK 2001", "HONGKONG"),
        ("HCMC 45", "HOCHIMINHCITY"),
        ("RIO 88", "RIODEJANEIRO"),
        ("UNVIE 310", "UNVIEVIENNA"),
        ("THE HAGUE 12", "THEHAGUE"),
        ("HAGUE 12", "THEHAGUE"),
        ("ST. PETERSBURG 7", "STPETERSBURG"),
        ("N'DJAMENA 7", "NDJAMENA"),
        ("PORT-OF-SPAIN 7", "PORTOFSPAIN"),
        ("SAO PAULO 007", "SAOPAULO"),
    ],
)
def test_stations_are_canonical(written: str, station: str) -> None:
    (ref,) = parse_references(f"REF: {written}", 2008)
    assert ref.id is not None and ref.id[2:].rstrip("0123456789") == station


@pytest.mark.parametrize(
    ("item", "ref_id"),
    [
        ("ASUNCION 701 (08)", "08ASUNCION701"),
        ("QUITO 4525-91", "91QUITO4525"),
        ("'08 BUENOS AIRES 12", "08BUENOSAIRES12"),
        ("(99) ROME 3", "99ROME3"),
        ("09CAIRO0561", "09CAIRO561"),
        ("10-OTTAWA-57", "10OTTAWA57"),
        ("2003 RIO DE JANEIRO 12", "03RIODEJANEIRO12"),
        ("07 STATE 163194", "07STATE163194"),
        # No year written: the citing cable's.
        ("ROME 3", "05ROME3"),
    ],
)
def test_an_explicit_year_wins_in_every_form(item: str, ref_id: str) -> None:
    assert [ref.id for ref in parse_references(f"REF: {item}", 2005)] == [ref_id]


@pytest.mark.parametrize(
    "text",
    [
        "REF: A. LIMA 1 B. LIMA 2 C. LIMA 3",
        "REF: (A) LIMA 1 (B) LIMA 2 (C) LIMA 3",
        "REF: [A] LIMA 1 [B] LIMA 2 [C] LIMA 3",
        "REF: A) LIMA 1 B) LIMA 2 C) LIMA 3",
        "REF: A: LIMA 1 B: LIMA 2 C: LIMA 3",
        "REF: A - LIMA 1 B - LIMA 2 C - LIMA 3",
        "REF: a. LIMA 1 b. LIMA 2 c. LIMA 3",
        "REF: A. LIMA 1\nB. LIMA 2\nC. LIMA 3",
        # 0189_b860acee29f46487.txt: items continue after a blank line.
        "REF: A. LIMA 00001\n\nB. LIMA 00002\nC. LIMA 00003\n\nClassified By: Amb. X",
        "REF: A. LIMA 1\n     B. LIMA 2\n\n     C. LIMA 3\n\n1. (C) Text",
    ],
)
def test_every_item_of_a_lettered_list_in_every_bullet_form(text: str) -> None:
    refs = parse_references(text, 2009)
    assert [(ref.bullet, ref.id) for ref in refs] == [
        ("A", "09LIMA1"),
        ("B", "09LIMA2"),
        ("C", "09LIMA3"),
    ]


@pytest.mark.parametrize(
    ("item", "ids"),
    [
        # 0524_46697b7de1b0d4d6.txt
        (
            "MALABO 19, 21, 26, 27, 31",
            ["07MALABO19", "07MALABO21", "07MALABO26", "07MALABO27", "07MALABO31"],
        ),
        ("BRASILIA 2799 AND 2764", ["07BRASILIA2799", "07BRASILIA2764"]),
        ("KABUL 936/935", ["07KABUL936", "07KABUL935"]),
        ("STATE 12 AND ANKARA 34", ["07STATE12", "07ANKARA34"]),
    ],
)
def test_several_serials_in_one_item_are_several_references(item: str, ids: list[str]) -> None:
    assert [ref.id for ref in parse_references(f"REF: {item}", 2007)] == ids


@pytest.mark.parametrize(
    "text",
    [
        "REF: STATE 55259",
        "REFS: STATE 55259",
        "REFTEL: STATE 55259",
        "Ref(s): STATE 55259",
        "REF A) STATE 55259",
        "REF: REF: STATE 55259",
        "ref: state 55259",
        "SUBJECT: CLIMATE TALKS AT THE PRIMEREF: STATE 55259",
    ],
)
def test_label_variants(text: str) -> None:
    assert [ref.id for ref in parse_references(text, 2008)] == ["08STATE55259"]


@pytest.mark.parametrize(
    "item",
    [
        # 0305: an e-mail is no cable id (today `07LEE-GOLDSTEINEMAIL5`).
        "LEE-GOLDSTEIN EMAIL 05/11/07",
        "E-MAIL FROM POLOFF 3 MARCH",
        "MEMO OF CONVERSATION 12",
        "TALKING POINTS 2",
        "USDA FAS 57863",
        "STATE'S A-077 OF MAY 15",
        "IIR 6906012405",
    ],
)
def test_what_is_not_a_cable_is_other_without_an_id(item: str) -> None:
    assert parse_references(f"REF: {item}", 2007) == [Reference(None, "other", None, item)]


def test_mixed_list_keeps_bullets_and_raw() -> None:
    refs = parse_references(
        "REF: A) TALLINN 366 B) LEE-GOLDSTEIN EMAIL 05/11/07\nC) TALLINN 347", 2007
    )
    assert refs == [
        Reference("A", "cable", "07TALLINN366", "TALLINN 366"),
        Reference("B", "other", None, "LEE-GOLDSTEIN EMAIL 05/11/07"),
        Reference("C", "cable", "07TALLINN347", "TALLINN 347"),
    ]


def test_without_year_no_id_is_guessed() -> None:
    assert parse_references("REF: STATE 55259", None) == [
        Reference(None, "other", None, "STATE 55259")
    ]


def test_no_ref_line() -> None:
    assert parse_references("SUBJECT: NOTHING CITED\nThe reference desk said so.", 2008) == []


def test_block_stops_at_a_paragraph_run_on_the_same_line() -> None:
    # 1618_3c392713503d0a68.txt (corpus-bulk)
    text = "REF: A) STATE 132944, B) TRIPOLI 480  1. (U) The Government of Libya (GOL) said."
    assert [ref.id for ref in parse_references(text, 2008)] == ["08STATE132944", "08TRIPOLI480"]
