"""Read one inbox file with a size cap and hash it (the bytes the ledger keys on).

A file is opened once, and only a regular file under the inbox is read: every
folder from the inbox down and the file itself are opened with `O_NOFOLLOW`
relative to their parent's descriptor (`openat`), so a name swapped for a
symlink after discovery is refused, not followed, and a path longer than
PATH_MAX still opens. Size and mtime come from `fstat` of the opened
descriptor, before and after the read: what was hashed is what was fingerprinted.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

# Failure reason codes (quarantine reasons, except VANISHED and CHANGING).
UNREADABLE = "unreadable"
OVERSIZED = "oversized"
NOT_REGULAR = "not_regular"
# The file went away, or changed while it was read: not a fault of the file, take it later.
VANISHED = "vanished"
CHANGING = "changing"


@dataclass(frozen=True, slots=True)
class SourceBytes:
    """A file's content hash, and its bytes unless it could not or should not be read.

    `failure` is a reason code: `oversized` (bytes not kept, hash of the whole
    file), `unreadable` or `not_regular` (no content hash: `sha256` is a stand-in
    derived from the path and the error, so the ledger can still key it), or
    `vanished` / `changing` (nothing to record: the file is looked at again later).
    `size` and `mtime_ns` are those of the opened file (fstat).
    """

    sha256: str
    size: int
    data: bytes | None
    failure: str | None = None
    detail: str = ""
    mtime_ns: int = 0


def open_under(root: str | os.PathLike[str], relative: str) -> int:
    """A descriptor of `root/relative`, every component opened without following symlinks."""
    # The parts `PurePosixPath(relative).parts` gives, without its parsing (run per file).
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if not parts or relative.startswith("/") or ".." in parts:
        raise OSError(errno.EINVAL, f"not a path inside the inbox: {relative!r}")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(parts[-1], _OPEN_FLAGS, dir_fd=folder)
    finally:
        os.close(folder)


def stand_in(relative: str, error: str) -> str:
    """The hash a file that could not be read is keyed by (from its name and the error)."""
    return hashlib.sha256(f"unreadable:{relative}:{error}".encode("utf-8", "replace")).hexdigest()


def read_capped(handle: BinaryIO, max_bytes: int) -> tuple[str, int, bytes]:
    """Hash a stream to its end, keeping its bytes up to `max_bytes`: (sha256, size, kept).

    Reads a chunk at a time, so an oversized file costs its hash, not its memory.
    """
    digest = hashlib.sha256()
    kept: list[bytes] = []
    size = 0
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if size <= max_bytes:
            kept.append(chunk)
    # One chunk (most files) is returned as it is: joining a single bytes copies nothing.
    return digest.hexdigest(), size, b"".join(kept) if size <= max_bytes else b""


def capped_result(
    sha256: str, size: int, kept: bytes, max_bytes: int, mtime_ns: int
) -> SourceBytes:
    """A file read whole: its bytes, or only its hash when it is over the cap (`oversized`)."""
    if size > max_bytes:
        detail = f"{size} bytes is over the {max_bytes}-byte cap"
        return SourceBytes(sha256, size, None, OVERSIZED, detail, mtime_ns)
    return SourceBytes(sha256, size, kept, mtime_ns=mtime_ns)


def read_inbox_file(
    inbox: str | os.PathLike[str], relative: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> SourceBytes:
    """Read and hash the regular file `inbox/relative`; never raises on I/O errors."""
    try:
        fd = open_under(inbox, relative)
    except OSError as error:
        return open_failure(relative, error)
    return _read_open(fd, relative, max_bytes)


def read_source(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SourceBytes:
    """Read and hash a file named by the user (`cablestream parse`); never raises on I/O errors."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as error:
        return open_failure(str(path), error)
    return _read_open(fd, str(path), max_bytes)


def open_failure(name: str, error: OSError) -> SourceBytes:
    """What a file that could not be opened becomes (a reason code, a stand-in hash)."""
    if error.errno == errno.ENOENT:
        return SourceBytes("", 0, None, VANISHED, "not found")
    if error.errno in (errno.ELOOP, errno.ENOTDIR):
        detail = "a symlink (or a path through one): not read"
        return SourceBytes(stand_in(name, detail), 0, None, NOT_REGULAR, detail)
    detail = f"{type(error).__name__}: {error.strerror}"
    return SourceBytes(stand_in(name, detail), 0, None, UNREADABLE, detail)


def _read_open(fd: int, name: str, max_bytes: int) -> SourceBytes:
    """Hash (and keep up to `max_bytes` of) an opened file; closes it."""
    # Unbuffered: each read is one system call straight into the chunk (no copy via a buffer).
    with os.fdopen(fd, "rb", buffering=0) as handle:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            detail = "not a regular file (a fifo, a device or a folder): not read"
            return SourceBytes(stand_in(name, detail), 0, None, NOT_REGULAR, detail)
        try:
            sha256, size, kept = read_capped(handle, max_bytes)
        except OSError as error:
            detail = f"{type(error).__name__}: {error.strerror}"
            return SourceBytes(stand_in(name, detail), 0, None, UNREADABLE, detail)
        after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or (
        size != after.st_size
    ):
        return SourceBytes("", size, None, CHANGING, "written to while it was read")
    return capped_result(sha256, size, kept, max_bytes, after.st_mtime_ns)
