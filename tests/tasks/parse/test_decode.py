import gzip

import pytest

from cablestream.tasks.parse.decode import (
    MAX_DECOMPRESSED_BYTES,
    GzipTooLarge,
    decode_source,
    gunzip_capped,
)


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


def test_every_gzip_member_is_read() -> None:
    """`cat a.gz b.gz` is one valid gzip file: the second cable must not be dropped."""
    data = gzip.compress(b"SECRET ASTANA 000988\n") + gzip.compress(b"SECRET ASTANA 000989\n")
    assert decode_source(data).text == "SECRET ASTANA 000988\nSECRET ASTANA 000989\n"


def test_zero_padding_after_the_last_member_is_allowed() -> None:
    data = gzip.compress(b"SECRET ASTANA 000988\n") + b"\x00" * 512
    assert decode_source(data).text == "SECRET ASTANA 000988\n"


def test_data_after_the_last_member_is_bad_gzip() -> None:
    decoded = decode_source(gzip.compress(b"SECRET ASTANA 000988\n") + b"trailing junk")
    assert (decoded.text, decoded.failure) == (None, "bad_gzip")
    assert "after the last gzip member" in decoded.detail


def test_the_cap_counts_all_members_together() -> None:
    member = gzip.compress(b"A" * 600_000)
    with pytest.raises(GzipTooLarge):
        gunzip_capped(member + member, limit=1_000_000)
    assert len(gunzip_capped(member + member, limit=1_200_000)) == 1_200_000


def test_a_gzip_bomb_is_its_own_reason() -> None:
    bomb = gzip.compress(b"\n" * (MAX_DECOMPRESSED_BYTES + 1))
    decoded = decode_source(bomb)
    assert (decoded.text, decoded.failure) == (None, "gzip_too_large")
    assert str(MAX_DECOMPRESSED_BYTES) in decoded.detail
