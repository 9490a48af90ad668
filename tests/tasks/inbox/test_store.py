"""The inbox in an object store (moto's S3 server): discovery by listing, reads by stream."""

from __future__ import annotations

import hashlib

import pytest

from cablestream.tasks.inbox import read
from cablestream.tasks.inbox.settle import Settler
from cablestream.tasks.inbox.store import ObjectInbox, inbox_files, open_file, read_file
from cablestream.tasks.lake.store import open_filesystem

from ...conftest import S3Server


@pytest.fixture
def inbox(s3_server: S3Server) -> tuple[S3Server, str, ObjectInbox]:
    bucket = s3_server.bucket()
    url = f"s3://{bucket}/inbox"
    return s3_server, bucket, ObjectInbox(url, *open_filesystem(url))


def test_listing_skips_hidden_temp_and_unsafe_names_and_sees_markers(
    inbox: tuple[S3Server, str, ObjectInbox],
) -> None:
    server, bucket, source = inbox
    for key in (
        "inbox/a/one.txt",
        "inbox/two.txt",
        "inbox/two.txt.done",
        "inbox/.hidden.txt",
        "inbox/half.txt.part",
        "inbox/building.tmp/inner.txt",
        "inbox/a//empty-part.txt",
        "inbox-other/not-ours.txt",
    ):
        server.put(bucket, key, b"text")
    found = {item.path: item for item in inbox_files(source)}
    assert sorted(found) == ["a/one.txt", "two.txt"]
    assert found["two.txt"].has_marker and not found["a/one.txt"].has_marker
    assert found["a/one.txt"].size == 4 and found["a/one.txt"].mtime_ns > 0
    # The settle rule reads the objects' LastModified: just put, they wait; a marker does not.
    now = found["a/one.txt"].mtime_ns / 1e9
    assert [item.path for item in Settler(60).ready(list(found.values()), now=now)] == ["two.txt"]


def test_reads_hash_the_object_and_keep_bytes_up_to_the_cap(
    inbox: tuple[S3Server, str, ObjectInbox],
) -> None:
    server, bucket, source = inbox
    data = b"SECRET ASTANA 000988\n" * 1000
    server.put(bucket, "inbox/cable.txt", data)
    (item,) = inbox_files(source)
    whole = read_file(source, item, max_bytes=len(data))
    assert (whole.sha256, whole.data, whole.failure) == (
        hashlib.sha256(data).hexdigest(),
        data,
        None,
    )
    assert whole.mtime_ns == item.mtime_ns
    capped = read_file(source, item, max_bytes=100)
    assert capped.failure == read.OVERSIZED and capped.data is None
    assert capped.sha256 == whole.sha256 and capped.size == len(data)
    with open_file(source, item) as handle:
        assert handle.read(6) == b"SECRET"  # a range read of the head


def test_an_object_gone_before_its_read_is_left_for_later(
    inbox: tuple[S3Server, str, ObjectInbox],
) -> None:
    server, bucket, source = inbox
    server.put(bucket, "inbox/cable.txt", b"x")
    (item,) = inbox_files(source)
    source.filesystem.delete_file(source.key("cable.txt"))
    assert read_file(source, item, 100).failure == read.VANISHED
    with pytest.raises(ValueError, match="not a name inside the inbox"):
        source.key("../lake/x")
