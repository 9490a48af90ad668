"""Assemble a record from field parsers (placeholder, being written)."""

from __future__ import annotations

from cablestream.schemas.record import CableRecord, ParseResult


def parse_cable(text: str, rendering: str) -> ParseResult:
    return CableRecord(body=text, rendering=rendering)
