"""Where a cable is parsed: source bytes in, one typed result per cable out.

Pure code: no file I/O, no Prefect. The ingest flow and the `parse` CLI both
call `parse_source`.
"""

from __future__ import annotations

import hashlib

from cablestream.schemas.record import CableRecord, NoCable, ParseResult
from cablestream.tasks.parse import guard
from cablestream.tasks.parse.decode import decode_source
from cablestream.tasks.parse.fields.cable import parse_cable
from cablestream.tasks.parse.split import split_cables

# Time budget of one file's parse: a fixed part plus a part per MB of its text. A real
# cable parses in milliseconds (40 ms per MB at 25 MB/s); the budget is only the last
# guard against an input that makes some pattern slow, and leaves room for a loaded machine.
PARSE_BUDGET_BASE_S = 2.0
PARSE_BUDGET_PER_MB_S = 1.0


def parse_budget_s(text_length: int) -> float:
    """Seconds one source file's parse may take before it is given up as `parse_timeout`."""
    return PARSE_BUDGET_BASE_S + PARSE_BUDGET_PER_MB_S * text_length / 1_000_000


def record_id_for(source_sha256: str, index: int) -> str:
    """Stable id of one rendering: sha256 of the source content hash and the cable's index."""
    return hashlib.sha256(f"{source_sha256}:{index}".encode()).hexdigest()


class ByteOffsets:
    """Byte offsets in the (decompressed) UTF-8 source of character offsets in its text.

    Chunks come in file order, so each lookup encodes only the text since the last
    one: linear in the file, where encoding every prefix would be quadratic.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._chars = 0
        self._bytes = 0

    def __call__(self, char_offset: int) -> int:
        if char_offset < self._chars:
            self._chars = self._bytes = 0
        passed = self._text[self._chars : char_offset]
        # ASCII text (a release page's styles and scripts, most cables) is one byte a character.
        self._bytes += len(passed) if passed.isascii() else len(passed.encode("utf-8"))
        self._chars = char_offset
        return self._bytes


def parse_source(
    data: bytes, source_path: str, source_sha256: str | None = None
) -> list[ParseResult]:
    """Parse every cable in one source file's bytes.

    Returns one CableRecord per recognised cable, or a single NoCable when the
    file holds none. Never raises on any input, and never runs (much) past its time
    budget: a parse that does gives one file-level NoCable `parse_timeout`.
    `source_sha256` is the hash of `data` when the caller already has it (the
    ingest reads and hashes each file once).
    """
    if source_sha256 is None:
        source_sha256 = hashlib.sha256(data).hexdigest()
    decoded = decode_source(data, source_path)
    if decoded.text is None:
        return [
            NoCable(decoded.failure or "unreadable", decoded.detail, source_path, source_sha256)
        ]
    budget = parse_budget_s(len(decoded.text))
    try:
        with guard.time_budget(budget):
            return _parse_text(decoded.text, decoded.warnings, source_path, source_sha256)
    except guard.ParseTimeout:
        detail = f"parse ran past its budget of {budget:.1f} s (a pathological input)"
        return [NoCable("parse_timeout", detail, source_path, source_sha256)]


def _parse_text(
    text: str, decode_warnings: list[str], source_path: str, source_sha256: str
) -> list[ParseResult]:
    byte_offset = ByteOffsets(text)
    results: list[ParseResult] = []
    for index, chunk in enumerate(split_cables(text, source_path)):
        # Between cables too, not only inside patterns: raises once the budget is spent.
        guard.remaining()
        parsed = parse_cable(chunk.text, chunk.rendering, chunk.release)
        if isinstance(parsed, NoCable):
            results.append(
                NoCable(
                    parsed.reason,
                    parsed.detail,
                    source_path,
                    source_sha256,
                    byte_offset(chunk.offset),
                )
            )
            continue
        parsed.record_id = record_id_for(source_sha256, index)
        parsed.source_path = source_path
        parsed.source_sha256 = source_sha256
        parsed.source_offset = byte_offset(chunk.offset)
        parsed.parse_warnings = [*decode_warnings, *chunk.warnings, *parsed.parse_warnings]
        results.append(parsed)
    if not results:
        results.append(NoCable("no_cable", "no cable text found", source_path, source_sha256))
    return results


__all__ = ["CableRecord", "NoCable", "ParseResult", "parse_source", "record_id_for"]
