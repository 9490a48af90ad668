"""The two seed cables, field by field, as issue 3 states them."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cablestream.schemas.record import CableRecord, NoCable, Recipient
from cablestream.tasks.parse.fields.cable import parse_cable

SEEDS = Path(__file__).resolve().parents[5] / "shared" / "seeds"


def _cable(text: str) -> CableRecord:
    """Parse text that holds a cable: anything else fails the test."""
    record = parse_cable(text, "telegram")
    assert isinstance(record, CableRecord)
    return record


def _seed(name: str) -> CableRecord:
    path = SEEDS / name
    if not path.exists():
        pytest.skip("shared seeds not present")
    return _cable(path.read_text(encoding="utf-8"))


def test_astana_telegram() -> None:
    record = _seed("000_1fc624bd0934a77e.txt")
    assert record.reference_id == "08ASTANA988"
    assert record.created == datetime(2008, 5, 27, 7, 10, tzinfo=UTC)
    assert record.precedence == "IMMEDIATE"
    assert record.transmission_id == "VZCZCXYZ0002"
    assert record.origin == "AMEMBASSY ASTANA"
    assert record.station == "ASTANA"
    assert record.recipients == [Recipient("RUEHC", "SECSTATE WASHDC", "IMMEDIATE", "2481")]
    assert record.info_recipients == [
        Recipient("RUEHUNV", "USMISSION UNVIE VIENNA", "IMMEDIATE", "0055")
    ]
    assert record.classification == "SECRET"
    assert record.caveats == ["STPDTS"]
    assert record.nondisclosure_deadline == date(2023, 5, 27)
    assert record.tags == ["IAEA", "KNNP", "PREL", "AORC", "KZ", "SY"]
    assert record.subject == "KAZAKHSTAN: DEMARCHE DELIVERED ON IAEA BOARD OF GOVERNORS' MESA SEAT"
    assert [ref.id for ref in record.references] == ["08STATE55259"]
    assert record.classified_by == "Pol-Econ Chief Steven Fagin"
    assert record.classification_reasons == ["1.4(b)", "1.4(d)"]
    assert [(p.number, p.classification) for p in record.paragraphs] == [(1, "S"), (2, "S")]
    assert record.signed_by == ["ORDWAY"]
    assert "paragraph_number_repaired" in record.parse_warnings
    assert not record.is_partial


def test_almaty_partial_extract_infers_year_from_decl() -> None:
    record = _seed("003_50fb3cc46dd8191c.txt")
    assert record.classification == "CONFIDENTIAL"
    assert "SIPDIS" in record.caveats
    assert record.is_partial
    assert record.nondisclosure_deadline == date(2015, 6, 15)
    assert record.tags[:6] == ["KNNP", "KZ", "MNUC", "PARM", "PREL", "WMD"]
    assert record.subject == "KAZAKHSTAN: CANWFZ TREATY"
    assert record.classified_by == "Ambassador John Ordway"
    assert [(p.number, p.classification) for p in record.paragraphs] == [
        (1, "C"),
        (2, "C"),
        (3, "C"),
    ]
    assert record.signed_by == ["ORDWAY"]
    assert record.reference_id == "05ALMATY2231"
    assert [ref.id for ref in record.references] == ["05STATE109258"]
    assert "year_inferred_from_decl" in record.parse_warnings
    # No FM line: the serial line `ALMATY 002231` names the post.
    assert record.origin == "ALMATY" and record.station == "ALMATY"
    assert record.transmission_id is None


def test_old_cable_without_routing_indicators() -> None:
    text = (
        "R 250930Z FEB 72 \nFM AMEMBASSY TEHRAN\nTO SECSTATE WASHDC 7561 \nINFO SECDEF\n\n"
        "UNCLASSIFIED SECTION 01 OF 01 TEHRAN 1164 \n \nE.O. 12958: AS AMENDED; DECLASSIFIED JUNE 21, 2006 \n"
        "TAGS: MASS, MARR, IR \nSUBJECT: ACCELERATION OF F-4ES FOR IRAN \n \n"
        "REF: TEHRAN 1091: TEHRAN 263: MOSCOW 1603 \n \nBEGIN SUMMARY \n \nAZIMI ASKS. END SUMMARY \n \n"
        "1. ON FEB 24 CHARGE WAS CONVOKED.\n"
    )
    record = _cable(text)
    assert record.reference_id == "72TEHRAN1164"
    assert record.precedence == "ROUTINE"
    assert record.summary == "AZIMI ASKS."
    assert [ref.id for ref in record.references] == ["72TEHRAN1091", "72TEHRAN263", "72MOSCOW1603"]
    assert record.nondisclosure_deadline is None


@pytest.mark.parametrize(
    "text", ["", "hello world", "1. a list\n2. of things", "<html><body>menu</body></html>"]
)
def test_text_without_a_cable_is_a_typed_result(text: str) -> None:
    assert isinstance(parse_cable(text, "telegram"), NoCable)


def test_header_only_cable_takes_its_serial_from_the_de_line() -> None:
    header = (
        "VZCZCXYZ0000\nOO RUEHWEB\n\nDE RUEHAC #0071/01 0421519\nZNY CCCCC ZZH\n"
        "O R 111519Z FEB 10\nFM AMEMBASSY ASUNCION\nTO RUEHC/SECSTATE WASHDC IMMEDIATE 0489\n"
    )
    record = _cable(header)
    assert record.reference_id == "10ASUNCION71"
    assert record.origin == "AMEMBASSY ASUNCION"


def test_header_lines_the_parser_does_not_know_are_rescued_with_their_line_numbers() -> None:
    text = (
        "VZCZCXRO2163\nRR RUEHCN RUEHGH\nRUEHLZ RUEHPOD\nDE RUEHSH #0004/01 0070012\n"
        "ZNY SSSSS ZZH\nR 070012Z JAN 10\nMYSTERY LINE 42\nFM AMCONSUL SHENYANG\n"
        "TO RUEHC/SECSTATE WASHDC 8952\n\nSECRET SHENYANG 000004\n\nSUBJECT: X\n"
    )
    record = _cable(text)
    assert record.rescued == ["7: MYSTERY LINE 42"]


def test_caveats_come_from_their_slot_under_the_serial_line() -> None:
    text = (
        "UNCLAS SECTION 01 OF 03 MADRID 000843\n\nSIPDIS\n\nE.O. 12958: DECL: N/A\n"
        "TAGS: ECON SP\nSUBJECT: SPAIN: INTERNET SURVEY PROJECT\n\nREF: LONDON 1814\n\n"
        "SENSITIVE BUT UNCLASSIFIED\n\n1. (SBU) Summary: After consulting rights-holders.\n"
    )
    record = _cable(text)
    assert record.caveats == ["SIPDIS"]
    assert record.classification == "UNCLASSIFIED"
    sensitive = _cable(text.replace("SIPDIS\n", "SIPDIS\nSENSITIVE\n"))
    assert sensitive.classification == "UNCLASSIFIED//FOR OFFICIAL USE ONLY"
