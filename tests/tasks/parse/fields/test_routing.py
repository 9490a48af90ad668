import pytest

from cablestream.schemas.record import Recipient
from cablestream.tasks.parse.fields.routing import (
    parse_de_serial,
    parse_origin,
    parse_recipient,
    parse_routing_lines,
    parse_transmission_id,
    parse_unwrapped_origin,
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
    routing = parse_routing_lines(ASTANA_HEADER)
    assert routing.to == [Recipient("RUEHC", "SECSTATE WASHDC", "IMMEDIATE", "2481")]
    assert routing.info == [Recipient("RUEHUNV", "USMISSION UNVIE VIENNA", "IMMEDIATE", "0055")]
    assert routing.rescued == []


def test_info_block_continues_over_lines() -> None:
    routing = parse_routing_lines(MILAN_HEADER)
    to, info = routing.to, routing.info
    assert to == [Recipient("RUEHC", "SECSTATE WASHDC", None, "1832")]
    assert [r.route for r in info] == ["RUEHRO", "RUEHFL", "RUEHNP", "RHEHNSC"]
    assert info[-1] == Recipient("RHEHNSC", "NSC WASHDC", None, None)


def test_old_cables_have_no_routing_indicators() -> None:
    routing = parse_routing_lines(OLD_HEADER)
    to, info = routing.to, routing.info
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
    ("header", "serial"),
    [
        ("DE RUEHAC #0071/01 0421519", 71),
        ("DE RUEHTA #0988 1480710", 988),
        ("FM AMEMBASSY ASTANA", None),
    ],
)
def test_parse_de_serial(header: str, serial: int | None) -> None:
    assert parse_de_serial(header) == serial


@pytest.mark.parametrize(
    ("header", "origin"),
    [
        ("FM AMEMBASSY ASTANA", "AMEMBASSY ASTANA"),
        # Office suffixes are not part of the post.
        ("FM AMEMBASSY MEXICO//POL//", "AMEMBASSY MEXICO"),
        ("FM  SECSTATE   WASHDC", "SECSTATE WASHDC"),
        ("TO SECSTATE WASHDC", None),
    ],
)
def test_parse_origin(header: str, origin: str | None) -> None:
    assert parse_origin(header) == origin


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        # 0404_0277e1406e95c4f3.md: a header unwrapped onto one line.
        (
            "DE RUEHQT #0873/01 2811421 ZNY CCCCC ZZH R 081421Z OCT 09 FM AMEMBASSY QUITO TO "
            "RUEHC/SECSTATE WASHDC 0168",
            "AMEMBASSY QUITO",
        ),
        ("ZZH P 190618Z FEB 08 ZDK FM AMCONSUL JEDDAH TO RUEHEE/ARAB LEAGUE", "AMCONSUL JEDDAH"),
        ("the FM band was used by the mission to reach listeners", None),
    ],
)
def test_parse_unwrapped_origin(text: str, origin: str | None) -> None:
    assert parse_unwrapped_origin(text) == origin


def test_xmt_lines_and_page_headers_are_no_recipients() -> None:
    header = (
        "FM SECSTATE WASHDC\n"
        "TO ALL NATO CAPITALS COLLECTIVE IMMEDIATE\n"
        "PAGE 02 STATE 015113 211833Z\n"
        "AMEMBASSY KABUL IMMEDIATE 1234\n"
        "XMT AMEMBASSY REYKJAVIK\n"
        "AMEMBASSY LUXEMBOURG\n"
        "INFO USMISSION USNATO IMMEDIATE 0001\n"
    )
    routing = parse_routing_lines(header)
    to, info = routing.to, routing.info
    assert [r.name for r in to] == ["ALL NATO CAPITALS COLLECTIVE", "AMEMBASSY KABUL"]
    assert [r.name for r in info] == ["USMISSION USNATO"]


def test_lines_outside_routing_blocks_are_rescued_by_number() -> None:
    header = (
        "VZCZCXYZ0002 OO RUEHWEB\n"
        "MYSTERY LINE 42\n"
        "FM AMEMBASSY ASTANA\n"
        "TO RUEHC/SECSTATE WASHDC IMMEDIATE 2481\n"
        # Inside the TO block up to its blank line: an addressee, not a rescued line.
        "ODD ADDRESSEE LINE\n"
        "\n"
        "ANOTHER ODD LINE\n"
    )
    routing = parse_routing_lines(header)
    assert [r.name for r in routing.to] == ["SECSTATE WASHDC", "ODD ADDRESSEE LINE"]
    assert routing.rescued == ["2: MYSTERY LINE 42", "7: ANOTHER ODD LINE"]


def test_at_most_twenty_lines_are_rescued() -> None:
    routing = parse_routing_lines("\n".join(f"ODD LINE {n}" for n in range(30)))
    assert routing.rescued == [f"{n + 1}: ODD LINE {n}" for n in range(20)]
