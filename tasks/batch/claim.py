"""Which files make a batch, and claiming them: read + hash each file once, one ledger transaction."""

from __future__ import annotations

import os
import secrets
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

import pyarrow as pa

from cablestream.schemas import lake as layout
from cablestream.tasks.inbox import read
from cablestream.tasks.inbox.folder import InboxFile
from cablestream.tasks.inbox.settle import ready_in_one_scan
from cablestream.tasks.inbox.store import Inbox, ObjectInbox, inbox_files, open_file, read_file
from cablestream.tasks.lake.store import is_url, open_filesystem
from cablestream.tasks.ledger.protocol import Candidate, ClaimedFile, Ledger
from cablestream.tasks.parse.decode import (
    MAX_DECOMPRESSED_BYTES,
    GzipTooLarge,
    gunzip_capped,
    is_gzip,
)


def open_inbox(name: str) -> Inbox:
    """The inbox a name gives: an object store's URL (`s3://bucket/prefix`), else a folder.

    StoreError when no filesystem knows the URL's scheme.
    """
    if is_url(name):
        return ObjectInbox(name, *open_filesystem(name))
    return Path(name)


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
    files: Iterable[_File],
    max_files: int,
    max_bytes: int,
    size_of: Callable[[_File], int] | None = None,
) -> Iterator[list[_File]]:
    """Group files (ready inbox files, sources to parse again) into micro-batches of at
    most `max_files` files / `max_bytes` bytes, each batch as soon as it is complete.

    `size_of` (e.g. `expanded_size`) counts a gzip file at its decompressed size: a
    batch's memory grows with the text it parses, not with what lies on disk.
    """
    current: list[_File] = []
    size = 0
    for item in files:
        item_size = item.size if size_of is None else size_of(item)
        if current and (len(current) >= max_files or size + item_size > max_bytes):
            yield current
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        yield current


def expanded_size(inbox: Inbox, item: InboxFile, max_file_bytes: int) -> int:
    """A file's size once decompressed when it is gzip (the parser's cap + 1 past the
    cap), else its size on disk.

    Read through the same safe open as the claim; only a file that starts with the
    gzip magic is read whole (and inflated once more here: memory stays that of one
    file). A file that cannot be read or inflated keeps its size on disk: it is
    quarantined without being parsed.
    """
    if item.size > max_file_bytes:
        return item.size
    try:
        opened = open_file(inbox, item)
    except OSError:
        return item.size
    with opened as handle:
        try:
            data = handle.read(2)
            if not is_gzip(data):
                return item.size
            data += handle.read(max_file_bytes)
        except OSError:
            return item.size
    try:
        return len(gunzip_capped(data))
    except GzipTooLarge:
        return MAX_DECOMPRESSED_BYTES + 1
    except (ValueError, zlib.error):
        return item.size


def scan_fresh(inbox: Inbox, ledger: Ledger, only: list[str] | None = None) -> Iterator[InboxFile]:
    """Inbox files the ledger does not hold with the same path, size and mtime, as the
    scan finds them (a hint: the claim decides, in its transaction).

    `only` limits them to those inbox-relative paths.
    """
    wanted = None if only is None else set(only)
    known = ledger.fingerprints()
    for item in inbox_files(inbox):
        if wanted is not None and item.path not in wanted:
            continue
        if (item.path, item.size, item.mtime_ns) not in known:
            yield item


def fresh_files(inbox: Inbox, ledger: Ledger, only: list[str] | None = None) -> list[InboxFile]:
    """`scan_fresh` as a list (a watcher compares successive scans)."""
    return list(scan_fresh(inbox, ledger, only))


def has_work(inbox: Inbox, lake: Path, ledger_url: str | None, settle_seconds: float) -> bool:
    """Whether a pass would do anything: a batch to recover or a new ready file."""
    from cablestream.tasks.ledger.sqlite import open_ledger

    if ledger_url is None and not layout.ledger_path(lake).exists():
        return any(ready_in_one_scan(inbox_files(inbox), settle_seconds))
    ledger = open_ledger(lake, ledger_url)
    return bool(ledger.stale_batches()) or any(
        ready_in_one_scan(scan_fresh(inbox, ledger), settle_seconds)
    )


# A pass's plan as columns: `InboxFile`'s fields.
_PLAN_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("has_marker", pa.bool_()),
        ("raw_path", pa.binary()),  # the name's bytes (not UTF-8: that is why it is set)
    ]
)


@dataclass(frozen=True, slots=True)
class Plan:
    """A pass's ready files, held as Arrow columns (tens of bytes a file, where a list of
    `InboxFile`s costs a few hundred and Prefect links each element of a list a task
    returns), made into micro-batches one at a time as the pass asks for them.

    A batch counts a gzip file at its expanded size (`expanded_size`, which reads the
    file), so batches are made when it is their turn (`groups`), not at discovery: on a
    cold page cache those reads take longer than anything else discovery does, and here
    they overlap with the groups being processed (the claim then reads the files from
    the cache). `batches` is the count by on-disk size, exact when no file is gzip and
    otherwise the fewest there can be (each file counted at no more than its real size).
    """

    files: pa.Table  # _PLAN_SCHEMA, in scan order
    bytes: int  # on disk
    batches: int
    inbox: Inbox
    max_files: int
    max_bytes: int
    max_file_bytes: int

    def groups(self) -> Iterator[list[InboxFile]]:
        """Each batch's files (`plan_batches`, gzip files at their expanded size), made
        when it is its turn; the plan's files are turned into `InboxFile`s a chunk at a
        time."""

        def expanded(item: InboxFile) -> int:
            return expanded_size(self.inbox, item, self.max_file_bytes)

        yield from plan_batches(self._inbox_files(), self.max_files, self.max_bytes, expanded)

    def _inbox_files(self) -> Iterator[InboxFile]:
        for chunk in self.files.to_batches(max_chunksize=max(1, self.max_files)):
            rows = chunk.to_pydict()
            raw_paths = [None if raw is None else os.fsdecode(raw) for raw in rows["raw_path"]]
            yield from (
                InboxFile(*fields)
                for fields in zip(
                    rows["path"],
                    rows["size"],
                    rows["mtime_ns"],
                    rows["has_marker"],
                    raw_paths,
                    strict=True,
                )
            )


def plan_pass(
    inbox: Inbox,
    ready: Iterable[InboxFile],
    max_files: int,
    max_bytes: int,
    max_file_bytes: int,
) -> Plan:
    """The ready files (an iterator: a scan) as a `Plan`, holding one chunk of
    `InboxFile`s at a time; no file is read here."""
    chunks: list[pa.RecordBatch] = []
    on_disk = batches = 0
    for batch in plan_batches(ready, max_files, max_bytes):
        columns = [
            [item.path for item in batch],
            [item.size for item in batch],
            [item.mtime_ns for item in batch],
            [item.has_marker for item in batch],
            [None if i.raw_path is None else os.fsencode(i.raw_path) for i in batch],
        ]
        chunks.append(pa.RecordBatch.from_arrays(columns, schema=_PLAN_SCHEMA))
        batches += 1
        on_disk += sum(item.size for item in batch)
    files = pa.Table.from_batches(chunks, _PLAN_SCHEMA)
    return Plan(files, on_disk, batches, inbox, max_files, max_bytes, max_file_bytes)


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
    inbox: Inbox,
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
        source = read_file(inbox, item, max_file_bytes)
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


def load_claimed(inbox: Inbox, batch: ClaimedBatch, max_file_bytes: int) -> ClaimedBatch:
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
        source = read_file(inbox, item.found, max_file_bytes)
        if source.failure is None and source.sha256 == item.claim.sha256:
            copy.data = source.data
        elif source.failure == read.VANISHED:
            copy.failure, copy.detail = read.VANISHED, "went away after it was claimed"
        else:
            copy.failure, copy.detail = read.CHANGING, "changed after it was claimed"
    return loaded
