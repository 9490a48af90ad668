"""Which files make a batch, and claiming them: read + hash each file once, one ledger transaction."""

from __future__ import annotations

import os
import secrets
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from cablestream.schemas import lake as layout
from cablestream.tasks.inbox import read
from cablestream.tasks.inbox.folder import InboxFile, scan_inbox
from cablestream.tasks.inbox.read import read_inbox_file
from cablestream.tasks.inbox.settle import Settler
from cablestream.tasks.ledger.protocol import Candidate, ClaimedFile, Ledger
from cablestream.tasks.parse.decode import (
    MAX_DECOMPRESSED_BYTES,
    GzipTooLarge,
    gunzip_capped,
    is_gzip,
)


def new_batch_id() -> str:
    """`20261125T100450Z-3f9a1c2b`: sortable by start time, unique by its random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


class _Planned(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...


_File = TypeVar("_File", bound=_Planned)


def plan_batches(
    files: list[_File],
    max_files: int,
    max_bytes: int,
    sizes: Mapping[str, int] | None = None,
) -> list[list[_File]]:
    """Group files (ready inbox files, sources to parse again) into micro-batches of at
    most `max_files` files / `max_bytes` bytes.

    `sizes` (path -> bytes, from `expanded_sizes`) counts a gzip file at its decompressed
    size: a batch's memory grows with the text it parses, not with what lies on disk.
    """
    batches: list[list[_File]] = []
    current: list[_File] = []
    size = 0
    for item in files:
        item_size = item.size if sizes is None else sizes.get(item.path, item.size)
        if current and (len(current) >= max_files or size + item_size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        batches.append(current)
    return batches


def expanded_sizes(inbox: Path, files: list[InboxFile], max_file_bytes: int) -> dict[str, int]:
    """The size of each gzip file once decompressed (the parser's cap + 1 past the cap).

    Read through the same safe open as the claim; only files that start with the
    gzip magic are read whole (and inflated once more here: memory stays that of
    one file). Files that cannot be read or inflated keep their size on disk: they
    are quarantined without being parsed.
    """
    sizes: dict[str, int] = {}
    for item in files:
        if item.size > max_file_bytes:
            continue
        try:
            fd = read.open_under(inbox, item.raw_path or item.path)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as handle:
            try:
                data = handle.read(2)
                if not is_gzip(data):
                    continue
                data += handle.read(max_file_bytes)
            except OSError:
                continue
        try:
            sizes[item.path] = len(gunzip_capped(data))
        except GzipTooLarge:
            sizes[item.path] = MAX_DECOMPRESSED_BYTES + 1
        except (ValueError, zlib.error):
            continue
    return sizes


def fresh_files(inbox: Path, ledger: Ledger, only: list[str] | None = None) -> list[InboxFile]:
    """Inbox files the ledger does not hold with the same path, size and mtime.

    `only` limits the result to those inbox-relative paths.
    """
    files = list(scan_inbox(inbox))
    if only is not None:
        wanted = set(only)
        files = [item for item in files if item.path in wanted]
    known = ledger.fingerprints()
    return [item for item in files if (item.path, item.size, item.mtime_ns) not in known]


def has_work(inbox: Path, lake: Path, ledger_url: str | None, settle_seconds: float) -> bool:
    """Whether a pass would do anything: a batch to recover or a new ready file."""
    from cablestream.tasks.ledger.sqlite import open_ledger

    if ledger_url is None and not layout.ledger_path(lake).exists():
        return any(Settler(settle_seconds).ready(list(scan_inbox(inbox))))
    ledger = open_ledger(lake, ledger_url)
    return bool(ledger.stale_batches()) or bool(
        Settler(settle_seconds).ready(fresh_files(inbox, ledger))
    )


@dataclass(slots=True)
class LoadedFile:
    claim: ClaimedFile
    data: bytes | None
    failure: str | None
    detail: str
    found: InboxFile  # as the scan saw it (its on-disk name need not be the ledger's text path)


@dataclass(slots=True)
class ClaimedBatch:
    batch_id: str
    files: list[LoadedFile]

    @property
    def bytes(self) -> int:
        return sum(item.claim.size for item in self.files)


def read_and_claim(
    inbox: Path,
    files: list[InboxFile],
    ledger: Ledger,
    batch_id: str,
    max_file_bytes: int,
    keep_bytes: bool = True,
) -> ClaimedBatch:
    """Read and hash each file, then claim them in one transaction.

    With `keep_bytes` the bytes are kept for parsing here; without, only the hashes
    are kept (memory of one file at a time) and `load_claimed` reads the files again
    where they are parsed.

    A file that went away, or whose size or mtime (of the opened file) moved since it
    was found, is left for a later scan. One that cannot be read is claimed under a
    stand-in hash (it goes to the quarantine) and read again after a back-off.
    """
    loaded: dict[str, tuple[Candidate, bytes | None, str | None, str, InboxFile]] = {}
    for item in files:
        source = read_inbox_file(inbox, item.raw_path or item.path, max_file_bytes)
        if source.failure in (read.VANISHED, read.CHANGING):
            continue
        unreadable = source.failure in (read.UNREADABLE, read.NOT_REGULAR)
        if not unreadable and (source.size, source.mtime_ns) != (item.size, item.mtime_ns):
            continue
        candidate = Candidate(item.path, source.sha256, item.size, item.mtime_ns, unreadable)
        data = source.data if keep_bytes else None
        loaded[item.path] = (candidate, data, source.failure, source.detail, item)
    claimed = ledger.claim(batch_id, [entry[0] for entry in loaded.values()])
    batch = ClaimedBatch(batch_id, [])
    for claim in claimed:
        _, data, failure, detail, found = loaded[claim.path]
        batch.files.append(LoadedFile(claim, data, failure, detail, found))
    return batch


def load_claimed(inbox: Path, batch: ClaimedBatch, max_file_bytes: int) -> ClaimedBatch:
    """A copy of a batch claimed without its bytes, with them read again.

    Each file must still hold the content it was claimed with: one that changed or
    went away since is not parsed (its claimed content is gone; a changed file is
    found again by the next scan under its new size and mtime) but quarantined as
    `changing` / `vanished`. Files that failed at the claim or duplicate another keep
    that outcome.
    """
    loaded = ClaimedBatch(batch.batch_id, [])
    for item in batch.files:
        copy = LoadedFile(item.claim, item.data, item.failure, item.detail, item.found)
        loaded.files.append(copy)
        if item.failure is not None or item.data is not None or item.claim.duplicate_of:
            continue
        source = read_inbox_file(inbox, item.found.raw_path or item.found.path, max_file_bytes)
        if source.failure is None and source.sha256 == item.claim.sha256:
            copy.data = source.data
        elif source.failure == read.VANISHED:
            copy.failure, copy.detail = read.VANISHED, "went away after it was claimed"
        else:
            copy.failure, copy.detail = read.CHANGING, "changed after it was claimed"
    return loaded
