"""Bring the lake up to the current parser: re-parse the sources of rows an older one wrote.

`cablestream reprocess` (flows/reprocess.py) runs these steps; every batch is one
replacement (`tasks/replace.py`): the sources' new rows are written and their old rows
(and quarantine entries) removed in one crash-safe ledger batch, so a source is in
the lake exactly once whatever happens. A source is found by its content hash: the
ledger knows every path that held it, and the bytes are read again from the inbox or
the archive (and hashed: only the same bytes count). Sources that are nowhere are
listed, never silently skipped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from packaging.version import InvalidVersion, Version

from cablestream.schemas.arrow import CABLE_SCHEMA, records_to_table
from cablestream.schemas.record import CableRecord
from cablestream.tasks.batch.route import ParsedBatch, route_source
from cablestream.tasks.inbox.read import read_inbox_file
from cablestream.tasks.lake.partition import data_files
from cablestream.tasks.lake.quarantine import QuarantineEntry
from cablestream.tasks.ledger.protocol import Ledger


@dataclass(frozen=True, slots=True)
class StaleSource:
    """A source file some of whose rows an older parser wrote."""

    sha256: str
    source_path: str  # as its rows record it
    rows: int
    parser_versions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FoundSource:
    source: StaleSource
    data: bytes
    found_at: str  # `inbox/<path>` or `archive/<path>`

    @property
    def path(self) -> str:
        return self.source.source_path

    @property
    def size(self) -> int:
        return len(self.data)


def older_than(version: str | None, below: str) -> bool:
    """Whether a row's parser_version is below `below` (a missing or unreadable one is)."""
    try:
        return version is None or Version(version) < Version(below)
    except InvalidVersion:
        return True


def stale_sources(lake: Path, below: str) -> list[StaleSource]:
    """Sources with at least one row whose parser_version is below `below`, by content hash."""
    rows: dict[str, int] = defaultdict(int)
    paths: dict[str, str] = {}
    seen: dict[str, set[str]] = defaultdict(set)
    for path in data_files(lake):
        table = pq.read_table(path, columns=["source_sha256", "source_path", "parser_version"])
        for sha, source_path, version in zip(
            table.column("source_sha256").to_pylist(),
            table.column("source_path").to_pylist(),
            table.column("parser_version").to_pylist(),
            strict=True,
        ):
            rows[sha] += 1
            paths.setdefault(sha, source_path)
            seen[sha].add(version or "")
    return [
        StaleSource(sha, paths[sha], rows[sha], tuple(sorted(seen[sha])))
        for sha in sorted(rows)
        if any(older_than(version or None, below) for version in seen[sha])
    ]


def find_source(
    source: StaleSource, ledger: Ledger, roots: dict[str, Path], max_file_bytes: int
) -> FoundSource | None:
    """The source's bytes from the first root (inbox, archive) holding them under a known path."""
    candidates = dict.fromkeys([source.source_path, *ledger.source_paths(source.sha256)])
    for name, root in roots.items():
        for path in candidates:
            read = read_inbox_file(root, path, max_file_bytes)
            if read.data is not None and read.sha256 == source.sha256:
                return FoundSource(source, read.data, f"{name}/{path}")
    return None


def find_stale(
    lake: Path, ledger: Ledger, roots: dict[str, Path], below: str, max_file_bytes: int
) -> tuple[list[FoundSource], list[StaleSource]]:
    """The stale sources, split into those found (with their bytes) and those found nowhere."""
    found: list[FoundSource] = []
    missing: list[StaleSource] = []
    for source in stale_sources(lake, below):
        located = find_source(source, ledger, roots, max_file_bytes)
        if located is None:
            missing.append(source)
        else:
            found.append(located)
    return found, missing


def parse_found(batch_id: str, found: list[FoundSource]) -> ParsedBatch:
    """Parse the sources again under the paths their rows record (pure, like `parse_batch`).

    A source that no longer yields a cable is quarantined whole (with a copy), as ingest
    would have done: its old rows go all the same.
    """
    records: list[CableRecord] = []
    entries: list[QuarantineEntry] = []
    copies: dict[str, bytes] = {}
    for item in found:
        cables, pieces = route_source(item.data, item.source.source_path, item.source.sha256)
        records.extend(cables)
        entries.extend(pieces)
        if not cables:
            copies[item.source.sha256] = item.data
    table = records_to_table(records) if records else CABLE_SCHEMA.empty_table()
    return ParsedBatch(batch_id, table, entries, {}, copies, cables=len(records))
