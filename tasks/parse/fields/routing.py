"""Telegram routing: transmission id, FM origin, TO and INFO recipients."""

from __future__ import annotations

from dataclasses import dataclass

from cablestream.schemas.record import Recipient
from cablestream.tasks.parse import guard
from cablestream.tasks.parse.fields.dtg import UNWRAPPED_HEADER

# `VZCZCXYZ0002 OO RUEHWEB`
_TRANSMISSION = guard.compile(r"(?m)^[ \t]*(VZCZC[A-Z0-9]{1,20})")
# `FM AMEMBASSY ASTANA`
_ORIGIN = guard.compile(r"(?m)^[ \t]*FM[ \t]+(\S[^\n]{0,120}?)[ \t]*$")
# `RUEHC/SECSTATE WASHDC IMMEDIATE 2481`, old style `SECSTATE WASHDC 7561`: an optional
# routing indicator, the addressee, an optional precedence and message number.
_ROUTE = guard.compile(r"[A-Z][A-Z0-9]{3,7}/")
_PRECEDENCES = ("NIACT IMMEDIATE", "IMMEDIATE", "PRIORITY", "ROUTINE", "FLASH")
_PRECEDENCE_ENDINGS = tuple(" " + word for word in _PRECEDENCES)
_MAX_MCN_DIGITS = 6
_MAX_NAME = 120
# `XMT` opens a block of posts excluded from a collective: they are no recipients.
BLOCK_START = guard.compile(r"^[ \t]{0,20}+(TO|INFO|XMT)[ \t]++(.*+)$")
_BLOCK_KEYWORDS = ("TO", "INFO", "XMT")
# `PAGE 02 STATE 015113 211833Z`: a page header of old printouts, inside the routing block.
_PAGE_HEADER = guard.compile(r"^[ \t]{0,20}+PAGE[ \t]++\d")
# Lines that end a routing block: a blank, `BT`, the classification line and so on.
_BLOCK_END = guard.compile(r"^[ \t]*(?:$|BT\b|FM\b|[A-Z]?[A-Z] \d{6}Z|ZEN\b)")
# Header lines the routing parsers understand; any other line is kept in `rescued`.
_KNOWN_HEADER_LINE = guard.compile(
    r"^[ \t]*(?:$|VZCZC|DE[ \t]|ZNY|ZNR|ZZH|ZFR|BT\b|FM[ \t]|TO[ \t]|INFO[ \t]|[A-Z][A-Z0-9]{3,7}/|"
    r"[ZOPR]{1,2}(?: [ZOPR])?[ \t]+\d{6}Z|\d{6}Z|"
    # `OO RUEHCHI RUEHCN …` and its continuation lines: relay routing indicators.
    r"(?:[ZOPR]{2}[ \t]+)?R[A-Z]{4,6}(?:[ \t]+R[A-Z]{4,6})*[ \t]*$)"
)
_MAX_RESCUED = 20


def parse_transmission_id(header: str) -> str | None:
    match = _TRANSMISSION.search(header)
    return match.group(1) if match else None


# `AMEMBASSY MEXICO//POL//`: an office after the post is not part of the origin.
_OFFICE_SUFFIX = guard.compile(r"[ \t]*//[^\n]*$")


def parse_origin(header: str) -> str | None:
    """The FM line as written, office suffixes removed."""
    match = _ORIGIN.search(header)
    return " ".join(_OFFICE_SUFFIX.sub("", match.group(1)).split()) or None if match else None


def parse_unwrapped_origin(text: str) -> str | None:
    """The FM post of a routing header that a rendering unwrapped onto one line."""
    match = UNWRAPPED_HEADER.search(text)
    return " ".join(match["post"].split()) if match else None


# `DE RUEHAC #0071/01 0421519`: routing indicator, then the station's serial number.
_DE_LINE = guard.compile(r"(?m)^[ \t]*DE[ \t]+[A-Z]{4,7}[ \t]+#(?P<serial>\d{1,7})")


def parse_de_serial(header: str) -> int | None:
    """The message serial from the `DE` line, for cables whose serial line is missing."""
    match = _DE_LINE.search(header)
    return int(match["serial"]) if match else None


def block_start(line: str) -> guard.Match | None:
    """`TO …`, `INFO …`, `XMT …`: the line opening a routing block (literal check first)."""
    if not line.lstrip(" \t").startswith(_BLOCK_KEYWORDS):
        return None
    return BLOCK_START.match(line)


def _split_tail(rest: str) -> tuple[str, str | None, str | None]:
    """(name, precedence, mcn): the longest `[ PRECEDENCE][ MCN]` tail that leaves a name."""
    name, mcn = rest, None
    head, _, last = name.rpartition(" ")
    if head and last.isdecimal() and len(last) <= _MAX_MCN_DIGITS:
        name, mcn = head, last
    if name.endswith(_PRECEDENCE_ENDINGS):
        for ending in _PRECEDENCE_ENDINGS:
            if name.endswith(ending) and len(name) > len(ending):
                return name[: -len(ending)], ending[1:], mcn
    return name, None, mcn


def parse_recipient(line: str) -> Recipient | None:
    """One addressee line, blanks collapsed; None when no addressee name is left.

    String operations, not one pattern: a lazy name followed by optional tails made the
    pattern try every split of the line.
    """
    text = " ".join(line.split())
    route = _ROUTE.match(text)
    # With the routing indicator if what follows it can be an addressee, else without.
    readings: list[tuple[str | None, str]] = (
        [(route.group(0)[:-1], text[route.end() :])] if route else []
    )
    readings.append((None, text))
    for route_name, rest in readings:
        if not rest:
            continue
        name, precedence, mcn = _split_tail(rest)
        if len(name) > _MAX_NAME:
            continue
        return Recipient(route_name, name.strip(), precedence, mcn) if name.strip() else None
    return None


@dataclass(slots=True)
class RoutingLines:
    """What the routing header's lines give: the TO and INFO addressees, and the lines no
    routing parser understands (`N: text`, N the line's number in the header)."""

    to: list[Recipient]
    info: list[Recipient]
    rescued: list[str]


def parse_routing_lines(header: str) -> RoutingLines:
    """TO and INFO blocks (a keyword line, then one addressee per line until the block
    ends) and the rescued lines, in one pass over the header's lines.

    `XMT` blocks (posts excluded from a collective) and page headers give no addressee.
    A line is rescued outside a block (which lasts to its first blank line, for this) when
    _KNOWN_HEADER_LINE does not match it; the first _MAX_RESCUED are kept.
    """
    blocks: dict[str, list[Recipient]] = {"TO": [], "INFO": [], "XMT": []}
    rescued: list[str] = []
    current: str | None = None
    in_block = False
    for number, line in enumerate(header.split("\n"), 1):
        start = block_start(line)
        if start:
            in_block = True
        elif not line.strip():
            in_block = False
        if not in_block and len(rescued) < _MAX_RESCUED and not _KNOWN_HEADER_LINE.match(line):
            rescued.append(f"{number}: {line.strip()}")
        if start:
            current = start.group(1)
            line = start.group(2)
        elif current is None or _BLOCK_END.match(line):
            current = None
            continue
        if "PAGE" in line and _PAGE_HEADER.match(line):
            continue
        recipient = parse_recipient(line)
        if recipient is not None:
            blocks[current].append(recipient)
    return RoutingLines(blocks["TO"], blocks["INFO"], rescued)
