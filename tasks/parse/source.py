"""Where a cable is parsed: source bytes in, one typed result per cable out.

Pure code: no file I/O, no Prefect. The ingest flow and the `parse` CLI both
call `parse_source`.
"""

from __future__ import annotations

import hashlib

from cablestream.schemas.record import CableRecord, NoCable, ParseResult
from cablestream.tasks.parse.decode import decode_source
from cablestream.tasks.parse.fields.cable import parse_cable
from cablestream.tasks.parse.split import split_cables


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
        self._bytes += len(self._text[self._chars : char_offset].encode("utf-8"))
        self._chars = char_offset
        return self._bytes


def parse_source(data: bytes, source_path: str) -> list[ParseResult]:
    """Parse every cable in one source file's bytes.

    Returns one CableRecord per recognised cable, or a single NoCable when the
    file holds none. Never raises on any input.
    """
    source_sha256 = hashlib.sha256(data).hexdigest()
    decoded = decode_source(data, source_path)
    if decoded.text is None:
        return [
            NoCable(decoded.failure or "unreadable", decoded.detail, source_path, source_sha256)
        ]
    byte_offset = ByteOffsets(decoded.text)
    results: list[ParseResult] = []
    for index, chunk in enumerate(split_cables(decoded.text, source_path)):
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
        parsed.parse_warnings = [*decoded.warnings, *chunk.warnings, *parsed.parse_warnings]
        results.append(parsed)
    if not results:
        results.append(NoCable("no_cable", "no cable text found", source_path, source_sha256))
    return results


__all__ = ["CableRecord", "NoCable", "ParseResult", "parse_source", "record_id_for"]
