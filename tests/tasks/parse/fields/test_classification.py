import pytest

from cablestream.tasks.parse.fields.classification import (
    find_serial_line,
    from_release,
    from_security_line,
    normalize_classification,
    parse_caveat_lines,
)


@pytest.mark.parametrize(
    ("text", "classification", "station", "serial", "caveats"),
    [
        ("SECRET ASTANA 000988\n\nSTPDTS", "SECRET", "ASTANA", 988, []),
        ("CONFIDENTIAL SECTION 01 OF 03 CAPE TOWN 00097 \n", "CONFIDENTIAL", "CAPETOWN", 97, []),
        ("UNCLASSIFIED SECTION 01 OF 01 TEHRAN 1164 \n", "UNCLASSIFIED", "TEHRAN", 1164, []),
        ("Secret state 068250\n\nSipdis", "Secret", "STATE", 68250, []),
        ("\tUNCLAS BERN 000896 \n", "UNCLAS", "BERN", 896, []),
        # Old cables may write the year before the station.
        ("CONFIDENTIAL 75 LIBREVILLE 1895 \n", "CONFIDENTIAL", "LIBREVILLE", 1895, []),
        # A doubled first letter is a typo in the release text.
        ("UUNCLAS MANAGUA 001002\n", "UUNCLAS", "MANAGUA", 1002, []),
    ],
)
def test_find_serial_line(
    text: str, classification: str, station: str | None, serial: int, caveats: list[str]
) -> None:
    found = find_serial_line(text)
    assert (found.classification, found.station, found.serial, found.caveats) == (
        classification,
        station,
        serial,
        caveats,
    )
    assert found.end > 0


def test_bare_classification_word_without_serial() -> None:
    found = find_serial_line("CONFIDENTIAL\n\nPAGE 01        CAPE T  00097  01 OF 03  182017Z")
    assert (found.classification, found.station, found.end) == ("CONFIDENTIAL", None, 0)


@pytest.mark.parametrize(
    ("word", "caveats", "expected"),
    [
        ("UNCLAS", ["SIPDIS", "SENSITIVE"], "UNCLASSIFIED//FOR OFFICIAL USE ONLY"),
        ("UNCLAS", ["SENSITIVE BUT UNCLASSIFIED"], "UNCLASSIFIED//FOR OFFICIAL USE ONLY"),
        ("UNCLAS", ["SIPDIS"], "UNCLASSIFIED"),
        ("Confidential", [], "CONFIDENTIAL"),
        ("UUNCLAS", ["SENSITIVE"], "UNCLASSIFIED//FOR OFFICIAL USE ONLY"),
        ("SSECRET", [], "SECRET"),
        ("SECRET", ["NOFORN"], "SECRET"),
    ],
)
def test_normalize_classification(word: str, caveats: list[str], expected: str) -> None:
    assert normalize_classification(word, caveats) == expected


def test_caveats_open_preamble_lines() -> None:
    lines = ["", "NOFORN ", "SIPDIS", "SIPDIS", "DEPT FOR EUR/CACEN", "SENSITIVE BUT UNCLASSIFIED"]
    assert parse_caveat_lines(lines) == ["NOFORN", "SIPDIS", "SIPDIS", "SENSITIVE BUT UNCLASSIFIED"]
    # An unwrapping rendering ran the passing instructions on after the markers.
    assert parse_caveat_lines(["SIPDIS SENSITIVE SIPDIS USDOC FOR ITA/MAC"]) == [
        "SIPDIS",
        "SENSITIVE",
        "SIPDIS",
    ]
    assert parse_caveat_lines(["STATE FOR NEA/ARPI NOFORN"]) == []


@pytest.mark.parametrize(
    ("value", "classification", "caveats"),
    [
        ("SECRET//NOFORN", "SECRET", ["NOFORN"]),
        ("CONFIDENTIAL", "CONFIDENTIAL", []),
        ("UNCLASSIFIED//FOR OFFICIAL USE ONLY", "UNCLASSIFIED//FOR OFFICIAL USE ONLY", []),
        # A release row whose columns were garbled by spacing.
        ("UNCLASSIFIED//FOR OFFICIA LUSEONLY    ", "UNCLASSIFIED//FOR OFFICIAL USE ONLY", []),
    ],
)
def test_from_release(value: str, classification: str, caveats: list[str]) -> None:
    assert from_release(value) == (classification, caveats)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("DE RUEHAC #0071/01 0421519\nZNY CCCCC ZZH\nO R 111519Z FEB 10", "CONFIDENTIAL"),
        ("ZNY SSSSS ZZH", "SECRET"),
        ("ZNR UUUUU ZZH", "UNCLASSIFIED"),
        ("FM AMEMBASSY ASUNCION", None),
    ],
)
def test_from_security_line(header: str, expected: str | None) -> None:
    assert from_security_line(header) == expected


@pytest.mark.parametrize(
    ("text", "station", "serial"),
    [
        # 3533_df2b7a78fa6a955e.txt (corpus-bulk): a stray bracket before the line.
        ("]CONFIDENTIAL SECTION 01 OF 02 LIMA 003571\nSIPDIS", "LIMA", 3571),
        # 1112_e4b19ec811e4038d.txt (corpus-bulk): the serial glued to the passing line.
        ("SECRET SECTION 01 OF 05 ANKARA 008305S/CT FOR REAP\n", "ANKARA", 8305),
        (
            "C O N F I D E N T I A L".replace(" ", "") + " SAO PAULO 000123 NOFORN SIPDIS",
            "SAOPAULO",
            123,
        ),
    ],
)
def test_find_serial_line_in_damaged_forms(text: str, station: str, serial: int) -> None:
    found = find_serial_line(text)
    assert (found.station, found.serial) == (station, serial)
    assert text[found.start : found.end].rstrip("\n") == text.split("\n")[0]
