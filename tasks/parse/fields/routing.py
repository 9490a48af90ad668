"""Telegram routing: transmission id, FM origin, TO and INFO recipients."""

from __future__ import annotations

import regex

from cablestream.schemas.record import Recipient

# `VZCZCXYZ0002 OO RUEHWEB`
_TRANSMISSION = regex.compile(r"(?m)^[ \t]*(VZCZC[A-Z0-9]{1,20})")
# `FM AMEMBASSY ASTANA`
_ORIGIN = regex.compile(r"(?m)^[ \t]*FM[ \t]+(\S[^\n]{0,120}?)[ \t]*$")
# `RUEHC/SECSTATE WASHDC IMMEDIATE 2481`, old style `SECSTATE WASHDC 7561`.
_RECIPIENT = regex.compile(
    r"^(?:(?P<route>[A-Z][A-Z0-9]{3,7})/)?(?P<name>[^\n]{1,120}?)"
    r"(?:[ \t]+(?P<precedence>NIACT IMMEDIATE|IMMEDIATE|PRIORITY|ROUTINE|FLASH))?"
    r"(?:[ \t]+(?P<mcn>\d{1,6}))?[ \t]*$"
)
BLOCK_START = regex.compile(r"^[ \t]*(TO|INFO)[ \t]+(.*)$")
# Lines that end a routing block: a blank, `BT`, the classification line and so on.
_BLOCK_END = regex.compile(r"^[ \t]*(?:$|BT\b|FM\b|[A-Z]?[A-Z] \d{6}Z|ZEN\b)")


def parse_transmission_id(header: str) -> str | None:
    match = _TRANSMISSION.search(header)
    return match.group(1) if match else None


def parse_origin(header: str) -> str | None:
    match = _ORIGIN.search(header)
    return " ".join(match.group(1).split()) if match else None


# The post's kind in an FM line: `AMEMBASSY ASTANA`, `AMCONSUL CAPE TOWN`, `USMISSION USUN NEW YORK`.
_POST_KIND = regex.compile(
    r"^(?:AMEMBASSY|AMEMB|AMCONSUL|AMCONGEN|USMISSION|USINT|USLO|USOFFICE|AIT)[ \t]+"
)


# `DE RUEHAC #0071/01 0421519`: routing indicator, then the station's serial number.
_DE_LINE = regex.compile(r"(?m)^[ \t]*DE[ \t]+[A-Z]{4,7}[ \t]+#(?P<serial>\d{1,7})")


def parse_de_serial(header: str) -> int | None:
    """The message serial from the `DE` line, for cables whose serial line is missing."""
    match = _DE_LINE.search(header)
    return int(match["serial"]) if match else None


def station_from_origin(origin: str | None) -> str | None:
    """The station name of a reference id from the FM line, for serial lines whose station is redacted."""
    if not origin:
        return None
    if origin.startswith("SECSTATE"):
        return "STATE"
    name = _POST_KIND.sub("", origin)
    return "".join(name.split()) if name != origin else None


def parse_recipient(line: str) -> Recipient | None:
    match = _RECIPIENT.match(" ".join(line.split()))
    if match is None or not match["name"].strip():
        return None
    return Recipient(match["route"], match["name"].strip(), match["precedence"], match["mcn"])


def parse_recipients(header: str) -> tuple[list[Recipient], list[Recipient]]:
    """TO and INFO blocks: a keyword line, then one addressee per line until the block ends."""
    blocks: dict[str, list[Recipient]] = {"TO": [], "INFO": []}
    current: str | None = None
    for line in header.split("\n"):
        start = BLOCK_START.match(line)
        if start:
            current = start.group(1)
            line = start.group(2)
        elif current is None or _BLOCK_END.match(line):
            current = None
            continue
        recipient = parse_recipient(line)
        if recipient is not None:
            blocks[current].append(recipient)
    return blocks["TO"], blocks["INFO"]
