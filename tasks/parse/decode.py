"""Turn a source file's bytes into text: gunzip with a cap, decode, refuse binaries.

Sizes and formats come from the bytes themselves, never from what the text claims.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
# Share of control bytes (other than tab/CR/LF/FF) above which a file is binary.
_BINARY_CONTROL_SHARE = 0.05
_CONTROL_BYTES = bytes(byte for byte in range(32) if byte not in (9, 10, 12, 13))


@dataclass(slots=True)
class DecodedSource:
    """Text of a source, or why there is none (`failure` is a stable reason code)."""

    text: str | None
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None
    detail: str = ""


class GzipTooLarge(ValueError):
    """The gzip data decompresses to more than the cap."""


def gunzip_capped(data: bytes, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress every member of gzip data (`cat a.gz b.gz` is one valid gzip file).

    Raises GzipTooLarge once the members together pass `limit` bytes (a gzip bomb stops
    there, having inflated at most `limit + 1` bytes), ValueError on a cut-off or corrupt
    stream or on data after the last member that is not zero padding.
    """
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(wbits=47)
        # Never 0 here: max_length 0 would mean "no limit".
        out += inflater.decompress(rest, limit + 1 - len(out))
        if len(out) > limit or inflater.unconsumed_tail:
            raise GzipTooLarge(f"decompressed size exceeds {limit} bytes")
        # zlib does not raise on a stream that stops early: a cut-off file is not a cable file.
        if not inflater.eof:
            raise ValueError("gzip stream is truncated")
        rest = inflater.unused_data.lstrip(b"\x00")
        if not rest:
            return bytes(out)
        if rest[:2] != _GZIP_MAGIC:
            raise ValueError("data after the last gzip member is not gzip")


def is_gzip(data: bytes) -> bool:
    """The bytes start like gzip data (by the magic number, never by the file name)."""
    return data[:2] == _GZIP_MAGIC


def _looks_binary(data: bytes) -> bool:
    sample = data[:65536]
    if b"\x00" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > _BINARY_CONTROL_SHARE * max(len(sample), 1)


def decode_source(data: bytes, source_path: str = "") -> DecodedSource:
    """Decode one source file. Never raises: failures come back as a reason code."""
    warnings: list[str] = []
    if is_gzip(data):
        try:
            data = gunzip_capped(data)
        except GzipTooLarge as error:
            return DecodedSource(None, failure="gzip_too_large", detail=str(error))
        except (ValueError, zlib.error) as error:
            return DecodedSource(None, failure="bad_gzip", detail=str(error))
    # Blank: `isspace` reads the same bytes as `strip` without copying the file.
    if not data or data.isspace():
        return DecodedSource(None, failure="empty", detail="file holds no text")
    if _looks_binary(data):
        return DecodedSource(None, failure="binary", detail="file holds binary data, not text")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Latin-1 style bytes in old renderings: keep the text, flag the repair.
        text = data.decode("utf-8", errors="replace")
        warnings.append("decoded_with_replacement")
    return DecodedSource(text, warnings)
