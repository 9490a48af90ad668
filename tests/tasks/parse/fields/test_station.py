"""Station and origin: the sending post, however the text or the release names it."""

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cablestream.schemas.record import CableRecord
from cablestream.tasks.parse.fields.cable import parse_cable
from cablestream.tasks.parse.fields.reference_id import decide_reference_id, station_of
from cablestream.tasks.parse.fields.release_metadata import find_release_metadata
from cablestream.tasks.parse.fields.station import decide_origin, decide_station
from cablestream.tasks.parse.fields.station_table import STATIONS
from cablestream.tasks.parse.fields.stations import (
    canonical_station,
    origin_of_station,
    station_from_post,
)

STATIONS_TSV = Path(__file__).resolve().parents[5] / "shared" / "stations" / "stations.tsv"


def test_committed_table_matches_the_shared_stations_list() -> None:
    if not STATIONS_TSV.is_file():
        pytest.skip("shared stations list not present")
    with STATIONS_TSV.open(encoding="utf-8", newline="") as handle:
        rows = {
            row["station"]: (row["origin"], int(row["cables"]))
            for row in csv.DictReader(handle, delimiter="\t")
        }
    assert rows == STATIONS


@pytest.mark.parametrize(
    ("written", "station"),
    [
        ("SECSTATE", "STATE"),
        ("STATE", "STATE"),
        ("HK", "HONGKONG"),
        ("HCMC", "HOCHIMINHCITY"),
        ("RIO", "RIODEJANEIRO"),
        ("UNVIE", "UNVIEVIENNA"),
        ("THE HAGUE", "THEHAGUE"),
        ("HAGUE", "THEHAGUE"),
        ("ST. PETERSBURG", "STPETERSBURG"),
        ("N'DJAMENA", "NDJAMENA"),
        ("PORT-OF-SPAIN", "PORTOFSPAIN"),
        ("SAO PAULO", "SAOPAULO"),
        ("USUN NEW YORK", "USUNNEWYORK"),
        # Not in the table: taken from the text, never rejected.
        ("KANDAHAR", "KANDAHAR"),
        ("", None),
        (None, None),
    ],
)
def test_canonical_station(written: str | None, station: str | None) -> None:
    assert canonical_station(written) == station


@pytest.mark.parametrize(
    ("post", "station"),
    [
        ("AMEMBASSY ASTANA", "ASTANA"),
        ("AMCONSUL SHENYANG", "SHENYANG"),
        ("AMEMBASSY BUENOS AIRES", "BUENOSAIRES"),
        ("AMEMBASSY THE HAGUE", "THEHAGUE"),
        ("SECSTATE WASHDC", "STATE"),
        ("USMISSION USUN NEW YORK", "USUNNEWYORK"),
        ("USMISSION USNATO", "USNATO"),
        ("USMISSION UNVIE VIENNA", "UNVIEVIENNA"),
        ("USINT HAVANA", "HAVANA"),
        ("AIT TAIPEI", "AITTAIPEI"),
        ("AMEMBASSY MEXICO//POL//", "MEXICO"),
        # The release's Origin texts.
        ("Embassy The Hague", "THEHAGUE"),
        ("Secretary of State", "STATE"),
        ("Mission USNATO", "USNATO"),
        ("US Interests Section Havana", "HAVANA"),
        ("Consulate Kolkata", "KOLKATA"),
        ("Embassy Kyiv", "KYIV"),
        ("Consulate Kandahar", "KANDAHAR"),
        ("CIA WASHDC", None),
        (None, None),
    ],
)
def test_station_from_post(post: str | None, station: str | None) -> None:
    assert station_from_post(post) == station


def test_origin_of_station_is_the_release_name() -> None:
    assert origin_of_station("THEHAGUE") == "Embassy The Hague"
    assert origin_of_station("KANDAHAR") is None


@pytest.mark.parametrize(
    ("fm", "release", "serial_place", "origin"),
    [
        ("AMEMBASSY ASTANA", "Embassy Astana", "ASTANA", "AMEMBASSY ASTANA"),
        (None, "Embassy The Hague", "THEHAGUE", "Embassy The Hague"),
        # `CONFIDENTIAL SECTION 01 OF 03 HELSINKI 001603` and nothing else.
        (None, None, "HELSINKI", "Embassy Helsinki"),
        (None, None, "KANDAHAR", "KANDAHAR"),
        (None, None, None, None),
    ],
)
def test_decide_origin(
    fm: str | None, release: str | None, serial_place: str | None, origin: str | None
) -> None:
    assert decide_origin(fm, release, serial_place) == origin


@pytest.mark.parametrize(
    ("reference_id", "serial_station", "fm", "release", "station"),
    [
        ("08ASTANA988", "ASTANA", "AMEMBASSY ASTANA", None, "ASTANA"),
        # The release's garbled id says nothing: the serial line does.
        ("09SECTION01OF03SANJOSE525", "SANJOSE", None, None, "SANJOSE"),
        ("7575LIBREVILLE1895", None, None, "Embassy Libreville", "LIBREVILLE"),
        (None, None, "SECSTATE WASHDC", None, "STATE"),
        (None, None, None, "Embassy Paris", "PARIS"),
        (None, None, None, None, None),
    ],
)
def test_decide_station(
    reference_id: str | None,
    serial_station: str | None,
    fm: str | None,
    release: str | None,
    station: str | None,
) -> None:
    assert decide_station(reference_id, serial_station, fm, release) == station


def test_station_of_reads_only_well_formed_ids() -> None:
    assert station_of("08NEWDELHI3429") == "NEWDELHI"
    assert station_of("7575LIBREVILLE1895") is None
    assert station_of(None) is None


@pytest.mark.parametrize(
    ("args", "value", "warnings"),
    [
        (("ASTANA", 988, 988, 2008, None), "08ASTANA988", []),
        # The DE line's `#9854` holds the low four digits only: the serial line wins.
        (("STATE", 49854, 9854, 2009, None), "09STATE49854", []),
        (("STATE", None, 9854, 2009, None), "09STATE9854", []),
        (("ASTANA", 988, None, None, None), None, ["reference_id_missing"]),
        (
            ("ASTANA", 988, None, 2008, "08ASTANA989"),
            "08ASTANA989",
            ["reference_id_differs_from_release"],
        ),
    ],
)
def test_decide_reference_id(
    args: tuple[str | None, int | None, int | None, int | None, str | None],
    value: str | None,
    warnings: list[str],
) -> None:
    decided = decide_reference_id(*args)
    assert (decided.value, decided.warnings) == (value, warnings)


@pytest.mark.parametrize(
    ("text", "refid", "origin", "classification"),
    [
        # 0404_0277e1406e95c4f3.md: a record dump joined on one line.
        (
            "id: 228953 date: 10/8/2009 14:21 refid: 09QUITO873 origin: Embassy Quito "
            "classification: CONFIDENTIAL destination: 09QUITO849 header: VZCZCXYZ0092",
            "09QUITO873",
            "Embassy Quito",
            "CONFIDENTIAL",
        ),
        # 0248_43746967a06413e0.txt: one value per line.
        (
            "RHMFIUU/HQ BICE INTEL WASHINGTON DC\n\n198618\n2009-03-24 18:51:00\n"
            "09HERMOSILLO71\nConsulate Hermosillo\nUNCLASSIFIED\n\nVZCZCXRO8588",
            "09HERMOSILLO71",
            "Consulate Hermosillo",
            "UNCLASSIFIED",
        ),
        # The same joined on one line, glued before the header.
        (
            "145314 2008-03-11 19:40:00 08MEXICO714 Embassy Mexico CONFIDENTIAL//NOFORN VZCZC",
            "08MEXICO714",
            "Embassy Mexico",
            "CONFIDENTIAL//NOFORN",
        ),
        (
            "144052\t2008-03-04 00:29:00\t08TAIPEI800\tAmerican Institute Taiwan, Taipei\tSECRET",
            "08TAIPEI800",
            "American Institute Taiwan, Taipei",
            "SECRET",
        ),
        ("The meeting on 2008-03-04 12:00 was cancelled.", None, None, None),
        # A one-digit hour; an earlier time (`at 10:30`) and E.O. colons are no block.
        (
            "E.O. 12958: DECL: 05/27/2023\nMet at 10:30 today.\n"
            "id: 1 date: 3/4/2008 7:05 refid: 08ROME12 origin: Embassy Rome "
            "classification: SECRET",
            "08ROME12",
            "Embassy Rome",
            "SECRET",
        ),
    ],
)
def test_find_release_metadata(
    text: str, refid: str | None, origin: str | None, classification: str | None
) -> None:
    found = find_release_metadata(text)
    assert (found.reference_id, found.origin, found.classification) == (
        refid,
        origin,
        classification,
    )


def test_release_metadata_date_forms() -> None:
    found = find_release_metadata(
        "id: 1 date: 10/8/2009 14:21 refid: 09QUITO873 origin: Embassy Quito classification: SECRET"
    )
    assert found.created == datetime(2009, 10, 8, 14, 21, tzinfo=UTC)


def test_a_serial_line_that_lost_digits_is_fixed_from_the_de_line() -> None:
    # 0798_b6a4a8bc0ce66548.txt (corpus-bulk): `REYKJAVIK 00040QSITIVE`, `DE RUEHRK #0401/01`.
    assert decide_reference_id("REYKJAVIK", 40, 401, 2006, None).value == "06REYKJAVIK401"
    # A serial the DE line holds in full whose number differs: the routing header names
    # the cable (0019_969cb202c895b94b.txt of corpus-bulk: NAIROBI 004428 under #4427).
    assert decide_reference_id("NAIROBI", 4428, 4427, 2007, None).value == "07NAIROBI4427"
    # Five digits: the DE line holds only the low four, so the serial line stays.
    assert decide_reference_id("PARTO", 41305, 5, 2009, None).value == "09PARTO41305"


def test_a_header_over_another_cables_text_names_the_cable() -> None:
    # 1002_222bcabecb4a7368.txt (corpus-bulk): La Paz's header #0751 over a Bogota serial line.
    text = (
        "VZCZCXRO1\nDE RUEHLP #0751/01 0911234\nZNY CCCCC ZZH\nP 311234Z MAR 08\n"
        "FM AMEMBASSY LA PAZ\nTO RUEHC/SECSTATE WASHDC PRIORITY 1\n\n"
        "CONFIDENTIAL BOGOTA 004036\n\nE.O. 12958: DECL: 03/31/2018\nTAGS: PREL\n"
        "SUBJECT: A SUBJECT\n\n1. (C) Text.\n"
    )
    record = parse_cable(text, "telegram")
    assert isinstance(record, CableRecord)
    assert (record.reference_id, record.station) == ("08LAPAZ751", "LAPAZ")


def test_a_damaged_release_id_gives_way_to_the_printed_one() -> None:
    from cablestream.schemas.record import ReleaseMetadata
    from cablestream.tasks.parse.fields.release_metadata import merged

    carried = ReleaseMetadata(reference_id="2009-06-23 10:45:00", origin="Embassy Bern")
    found = ReleaseMetadata(reference_id="09BERN260")
    assert merged(carried, found).reference_id == "09BERN260"
    assert merged(ReleaseMetadata(reference_id="7575LIBREVILLE1895"), found).reference_id == (
        "7575LIBREVILLE1895"
    )
