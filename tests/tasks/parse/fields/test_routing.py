import pytest

from cablestream.schemas.record import Recipient
from cablestream.tasks.parse.fields.routing import (
    parse_de_serial,
    parse_origin,
    parse_recipient,
    parse_recipients,
    parse_transmission_id,
    station_from_origin,
)

ASTANA_HEADER = """VZCZCXYZ0002 OO RUEHWEB

DE RUEHTA #0988 1480710
ZNY SSSSS ZZH
O 270710Z MAY 08
FM AMEMBASSY ASTANA
TO RUEHC/SECSTATE WASHDC IMMEDIATE 2481
INFO RUEHUNV/USMISSION UNVIE VIENNA IMMEDIATE 0055
"""

MILAN_HEADER = """VZCZCXRO7221 RR RUEHFL RUEHNP

DE RUEHMIL #0176/01 2310918
ZNY CCCCC ZZH
R 190918Z AUG 09
FM AMCONSUL MILAN
TO RUEHC/SECSTATE WASHDC 1832
INFO RUEHRO/AMEMBASSY ROME 8896
RUEHFL/AMCONSUL FLORENCE 0221
RUEHNP/AMCONSUL NAPLES 0216
RHEHNSC/NSC WASHDC
"""

OLD_HEADER = """R 250930Z FEB 72
FM AMEMBASSY TEHRAN
TO SECSTATE WASHDC 7561
INFO SECDEF
EUCOM
CSAF
"""


def test_astana_routing() -> None:
    assert parse_transmission_id(ASTANA_HEADER) == "VZCZCXYZ0002"
    assert parse_origin(ASTANA_HEADER) == "AMEMBASSY ASTANA"
    assert parse_recipients(ASTANA_HEADER) == (
        [Recipient("RUEHC", "SECSTATE WASHDC", "IMMEDIATE", "2481")],
        [Recipient("RUEHUNV", "USMISSION UNVIE VIENNA", "IMMEDIATE", "0055")],
    )


def test_info_block_continues_over_lines() -> None:
    to, info = parse_recipients(MILAN_HEADER)
    assert to == [Recipient("RUEHC", "SECSTATE WASHDC", None, "1832")]
    assert [r.route for r in info] == ["RUEHRO", "RUEHFL", "RUEHNP", "RHEHNSC"]
    assert info[-1] == Recipient("RHEHNSC", "NSC WASHDC", None, None)


def test_old_cables_have_no_routing_indicators() -> None:
    to, info = parse_recipients(OLD_HEADER)
    assert to == [Recipient(None, "SECSTATE WASHDC", None, "7561")]
    assert [r.name for r in info] == ["SECDEF", "EUCOM", "CSAF"]
    assert parse_transmission_id(OLD_HEADER) is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "RUEHC/SECSTATE WASHDC NIACT IMMEDIATE 0001",
            Recipient("RUEHC", "SECSTATE WASHDC", "NIACT IMMEDIATE", "0001"),
        ),
        (
            "RHMFISS/HQ USCENTCOM MACDILL AFB FL PRIORITY",
            Recipient("RHMFISS", "HQ USCENTCOM MACDILL AFB FL", "PRIORITY", None),
        ),
        ("SECSTATE WASHDC PRIORITY", Recipient(None, "SECSTATE WASHDC", "PRIORITY", None)),
        ("   ", None),
    ],
)
def test_parse_recipient(line: str, expected: Recipient | None) -> None:
    assert parse_recipient(line) == expected


@pytest.mark.parametrize(
    ("origin", "station"),
    [
        ("AMCONSUL SHENYANG", "SHENYANG"),
        ("AMEMBASSY BUENOS AIRES", "BUENOSAIRES"),
        ("SECSTATE WASHDC", "STATE"),
        ("USMISSION USUN NEW YORK", "USUNNEWYORK"),
        ("CIA WASHDC", None),
        (None, None),
    ],
)
def test_station_from_origin(origin: str | None, station: str | None) -> None:
    assert station_from_origin(origin) == station


@pytest.mark.parametrize(
    ("header", "serial"),
    [
        ("DE RUEHAC #0071/01 0421519", 71),
        ("DE RUEHTA #0988 1480710", 988),
        ("FM AMEMBASSY ASTANA", None),
    ],
)
def test_parse_de_serial(header: str, serial: int | None) -> None:
    assert parse_de_serial(header) == serial
