"""The inbox in an object store (`s3://bucket/prefix`, or any filesystem URL pyarrow or fsspec
knows), under the rules of the local folder (`folder.py`), and the few calls that take
either kind of inbox (`Inbox`).

Discovery is a listing of the prefix: key, size and LastModified per object. Hidden and
temporary names are skipped as in a folder, a `NAME.done` object marks NAME ready, and
the settle rule (`settle.py`) applies to LastModified (an object appears whole, but a
producer may put it again). A key is never trusted as a path: only its name under the
inbox prefix is used, and a name with an empty, `.` or `..` part is skipped, so a key
can neither leave the prefix nor name two objects at once. Reads stream by ranges (one
chunk in memory at a time, past the cap only hashed), and a read during which the
object changed (size or LastModified) is left for a later scan, as for a file.

Credentials and endpoint come from the usual AWS variables or profile, read by pyarrow
or fsspec (the filesystem is opened by the caller: `tasks/lake/store.open_filesystem`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import pyarrow.fs as pafs

from cablestream.tasks.inbox import read
from cablestream.tasks.inbox.folder import (
    DONE_SUFFIX,
    InboxFile,
    is_candidate_name,
    is_walked_folder,
    scan_inbox,
)
from cablestream.tasks.inbox.read import SourceBytes


@dataclass(frozen=True, slots=True)
class ObjectInbox:
    """The objects under `root` in `filesystem`; `url` is what the user named."""

    url: str
    filesystem: pafs.FileSystem
    root: str

    def __str__(self) -> str:
        return self.url

    def key(self, relative: str) -> str:
        if not is_safe_name(relative):
            raise ValueError(f"not a name inside the inbox: {relative!r}")
        return f"{self.root}/{relative}"

    def scan(self) -> Iterator[InboxFile]:
        """Every candidate object under the prefix, by name."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        prefix = self.root + "/"
        objects = {
            info.path.removeprefix(prefix): info
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File and info.path.startswith(prefix)
        }
        for relative in sorted(objects):
            *folders, name = relative.split("/")
            if not is_safe_name(relative) or not is_candidate_name(name):
                continue
            if not all(is_walked_folder(folder) for folder in folders):
                continue
            info = objects[relative]
            yield InboxFile(
                path=relative,
                size=int(info.size or 0),
                mtime_ns=int(info.mtime_ns or 0),
                has_marker=relative + DONE_SUFFIX in objects,
            )

    def read(self, relative: str, max_bytes: int) -> SourceBytes:
        """Read and hash one object (see `read.SourceBytes`); never raises on I/O errors."""
        key = self.key(relative)
        try:
            before = self.filesystem.get_file_info(key)
            if before.type == pafs.FileType.NotFound:
                return SourceBytes("", 0, None, read.VANISHED, "not found")
            if before.type != pafs.FileType.File:
                detail = "not an object (a folder): not read"
                return SourceBytes(
                    read.stand_in(relative, detail), 0, None, read.NOT_REGULAR, detail
                )
            with self.filesystem.open_input_stream(key) as stream:
                sha256, size, kept = read.read_capped(cast(BinaryIO, stream), max_bytes)
            after = self.filesystem.get_file_info(key)
        except FileNotFoundError:
            return SourceBytes("", 0, None, read.VANISHED, "not found")
        except OSError as error:
            detail = f"{type(error).__name__}: {error}"
            return SourceBytes(read.stand_in(relative, detail), 0, None, read.UNREADABLE, detail)
        if (after.size, after.mtime_ns) != (before.size, before.mtime_ns) or size != after.size:
            return SourceBytes("", size, None, read.CHANGING, "put again while it was read")
        return read.capped_result(sha256, size, kept, max_bytes, int(after.mtime_ns or 0))

    def open(self, relative: str) -> BinaryIO:
        """The object for reading by ranges (its head first: gzip sizing reads two bytes)."""
        return cast(BinaryIO, self.filesystem.open_input_file(self.key(relative)))


def is_safe_name(relative: str) -> bool:
    """A name under the prefix that is one object's: no empty, `.` or `..` part."""
    return bool(relative) and all(part not in ("", ".", "..") for part in relative.split("/"))


# An inbox: a local folder, or a prefix of an object store.
Inbox = Path | ObjectInbox


def inbox_files(inbox: Inbox) -> Iterator[InboxFile]:
    """The candidate files of either kind of inbox (`folder.scan_inbox`, `ObjectInbox.scan`)."""
    return inbox.scan() if isinstance(inbox, ObjectInbox) else scan_inbox(inbox)


def read_file(inbox: Inbox, item: InboxFile, max_bytes: int) -> SourceBytes:
    """Read and hash one file of either kind of inbox; never raises on I/O errors."""
    if isinstance(inbox, ObjectInbox):
        return inbox.read(item.path, max_bytes)
    return read.read_inbox_file(inbox, item.raw_path or item.path, max_bytes)


def open_file(inbox: Inbox, item: InboxFile) -> BinaryIO:
    """One file of either kind of inbox, opened for reading (OSError when it cannot be)."""
    if isinstance(inbox, ObjectInbox):
        return inbox.open(item.path)
    return os.fdopen(read.open_under(inbox, item.raw_path or item.path), "rb")
