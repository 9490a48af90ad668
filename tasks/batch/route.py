"""Route a claimed batch's files: parse them, and send what is not a cable to the quarantine.

Pure: bytes in, records and quarantine entries out (no I/O, no ledger). The files
of a batch are parsed concurrently, a chunk of files (`CHUNK_BYTES`) per task: the
`regex` module releases the GIL while it matches, so threads use every core
(bench/pass_cores.py measures it). Each chunk's cables become Arrow rows as soon as
it is parsed, so a batch never holds its bytes, its records and its table at once.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

import pyarrow as pa

from cablestream.schemas.arrow import CABLE_SCHEMA, records_to_table
from cablestream.schemas.record import CableRecord, NoCable
from cablestream.tasks.batch.claim import ClaimedBatch, LoadedFile
from cablestream.tasks.lake.quarantine import QuarantineEntry
from cablestream.tasks.ledger.protocol import FileOutcome
from cablestream.tasks.parse import parse_source

# Threads parsing the files of one batch (one per core by default).
PARSE_WORKERS = os.cpu_count() or 1


@dataclass(slots=True)
class ParsedBatch:
    batch_id: str
    table: pa.Table
    entries: list[QuarantineEntry]
    outcomes: dict[int, FileOutcome]
    source_copies: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes
    cables: int = 0
    duplicates: int = 0


def route_source(
    data: bytes, path: str, sha256: str
) -> tuple[list[CableRecord], list[QuarantineEntry]]:
    """Parse one source: its cables, and a quarantine entry for each piece that is none."""
    cables: list[CableRecord] = []
    entries: list[QuarantineEntry] = []
    for result in parse_source(data, path, sha256):
        if isinstance(result, CableRecord):
            cables.append(result)
        elif isinstance(result, NoCable):
            entries.append(
                QuarantineEntry(
                    path, sha256, result.reason, result.detail, source_offset=result.source_offset
                )
            )
    return cables, entries


# A parse task takes files up to this much text: its cables become one Arrow table
# (building a table costs ~0.4 ms of fixed work, as much as parsing a cable, so not
# one per file), and a batch holds at most a task's records per worker at once.
CHUNK_BYTES = 1 << 20

# One file to parse: (bytes, path, sha256).
Source = tuple[bytes, str, str]


def parse_chunk(
    sources: list[Source],
) -> tuple[pa.Table | None, list[tuple[int, list[QuarantineEntry]]]]:
    """Parse a few files: their cables as one Arrow table (None: no cable), and per file
    its number of cables and its quarantine entries."""
    records: list[CableRecord] = []
    per_file = []
    for data, path, sha256 in sources:
        cables, entries = route_source(data, path, sha256)
        records.extend(cables)
        per_file.append((len(cables), entries))
    return (records_to_table(records) if records else None), per_file


def _chunks(files: list[LoadedFile]) -> list[list[LoadedFile]]:
    chunks: list[list[LoadedFile]] = []
    size = CHUNK_BYTES
    for item in files:
        assert item.data is not None
        if size >= CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item.data)
    return chunks


def _sources(chunk: list[LoadedFile]) -> list[Source]:
    return [(item.data or b"", item.claim.path, item.claim.sha256) for item in chunk]


def parse_batch(batch: ClaimedBatch, workers: int = PARSE_WORKERS) -> ParsedBatch:
    """Split and parse every claimed file on `workers` threads (1: on this one);
    NoCable results and read failures become entries.

    A parsed file's bytes are released (`data` set to None) unless the file is
    rejected whole, when they are kept for its quarantine copy.
    """
    parsed = ParsedBatch(batch.batch_id, CABLE_SCHEMA.empty_table(), [], {})
    chunks = _chunks([item for item in batch.files if _to_parse(item, parsed)])
    tables: list[pa.Table] = []
    with ExitStack() as stack:
        if workers > 1:
            pool = ThreadPoolExecutor(workers, thread_name_prefix="cablestream-parse")
            results = stack.enter_context(pool).map(parse_chunk, map(_sources, chunks))
        else:  # a worker process's one core: no pool
            results = map(parse_chunk, map(_sources, chunks))
        for chunk, (rows, per_file) in zip(chunks, results, strict=True):
            if rows is not None:
                tables.append(rows)
                parsed.cables += rows.num_rows
            for item, (cables, entries) in zip(chunk, per_file, strict=True):
                claim = item.claim
                parsed.entries.extend(entries)
                if cables:
                    parsed.outcomes[claim.file_id] = FileOutcome("committed")
                    item.data = None
                else:
                    assert item.data is not None
                    parsed.source_copies[claim.sha256] = item.data
                    reason = entries[-1].reason if entries else None
                    parsed.outcomes[claim.file_id] = FileOutcome("quarantined", reason)
    if tables:
        parsed.table = pa.concat_tables(tables)
    return parsed


def _to_parse(item: LoadedFile, parsed: ParsedBatch) -> bool:
    """Whether the file is parsed; a duplicate or an unread file is settled here instead."""
    claim = item.claim
    if claim.duplicate_of is not None:
        parsed.outcomes[claim.file_id] = FileOutcome(
            "duplicate", f"same content as {claim.duplicate_of}"
        )
        parsed.duplicates += 1
        return False
    if item.data is None:
        parsed.entries.append(
            QuarantineEntry(claim.path, claim.sha256, item.failure or "unreadable", item.detail)
        )
        parsed.outcomes[claim.file_id] = FileOutcome("quarantined", item.failure)
        return False
    return True
