import gzip

import pytest

from cablestream.tasks.parse.decode import decode_source, gunzip_capped


def test_utf8_text() -> None:
    decoded = decode_source("Minister Naimi’s offer".encode())
    assert decoded.text == "Minister Naimi’s offer"
    assert decoded.warnings == []


def test_invalid_utf8_is_replaced_with_a_warning() -> None:
    decoded = decode_source(b"CONFIDENTIAL caf\xe9 text")
    assert decoded.text == "CONFIDENTIAL caf\ufffd text"
    assert decoded.warnings == ["decoded_with_replacement"]


def test_gzip_is_unpacked() -> None:
    decoded = decode_source(gzip.compress(b"SECRET ASTANA 000988"))
    assert decoded.text == "SECRET ASTANA 000988"
    # Compression is a transport, not a defect: no warning.
    assert decoded.warnings == []


@pytest.mark.parametrize(
    ("data", "failure"),
    [
        (b"", "empty"),
        (b"  \n\n ", "empty"),
        (b"\x00\x01\x02binary\x00", "binary"),
        (b"\x1f\x8b not really gzip", "bad_gzip"),
    ],
)
def test_unreadable_inputs_are_typed_failures(data: bytes, failure: str) -> None:
    decoded = decode_source(data)
    assert decoded.text is None
    assert decoded.failure == failure


def test_truncated_gzip_is_bad_gzip() -> None:
    packed = gzip.compress(b"SECRET ASTANA 000988\n" * 1000)
    decoded = decode_source(packed[: len(packed) // 2])
    assert (decoded.text, decoded.failure) == (None, "bad_gzip")
    assert "truncated" in decoded.detail


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"A" * 2_000_000)
    with pytest.raises(ValueError, match="exceeds"):
        gunzip_capped(bomb, limit=1_000_000)
    assert gunzip_capped(bomb, limit=3_000_000) == b"A" * 2_000_000
