"""Reading the lake's data files (the cable rows), by the documented glob."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cablestream.tasks.lake.partition import data_files
from cablestream.tasks.lake.store import store_for


def lake_record_ids(lake: Path) -> list[str]:
    """record_id of every row the documented glob reads (duplicates kept)."""
    files = [str(path) for path in data_files(lake)]
    if not files:
        return []
    table = ds.dataset(files, format="parquet").to_table(columns=["record_id"])
    return [str(value) for value in table.column("record_id").to_pylist()]


def partition_files(lake: Path) -> dict[str, list[str]]:
    """Lake-relative data files per partition folder (`year=2008/month=5`)."""
    files: dict[str, list[str]] = {}
    for path in data_files(lake):
        relative = path.relative_to(lake).as_posix()
        files.setdefault(path.parent.relative_to(lake).as_posix(), []).append(relative)
    return files


# Per lake: the (reference_id, source_sha256) columns of its data files, in blocks of the
# files first read together. Lake data files are never changed in place (a rewrite is a
# new name), so a file read once stays right until it goes; each call reads only the
# files new since the last one. Without it every batch read the reference ids of the
# whole lake: quadratic over a long pass. One compact table per block, not one per file:
# a small table read from Parquet costs ~3 KB beside its rows, and a lake has a file per
# partition per batch (~10k at the release's size, in each worker process).
@dataclass(frozen=True, slots=True)
class _Block:
    rows: dict[str, int]  # lake-relative file -> its rows, in the table's order
    table: pa.Table  # their rows, one chunk


_REFERENCE_INDEX: dict[Path, list[_Block]] = {}
_REFERENCE_INDEX_LOCK = threading.Lock()
_INDEX_COLUMNS = ["reference_id", "source_sha256"]


def _block(tables: dict[str, pa.Table]) -> _Block | None:
    """One block of these files' rows (None: no file)."""
    if not tables:
        return None
    joined = pa.concat_tables(list(tables.values()), promote_options="permissive")
    return _Block({name: table.num_rows for name, table in tables.items()}, joined.combine_chunks())


def _kept(block: _Block, listed: set[str]) -> _Block | None:
    """The block without its files that are gone (compacted or replaced since)."""
    if block.rows.keys() <= listed:
        return block
    tables = {}
    offset = 0
    for name, rows in block.rows.items():
        if name in listed:
            tables[name] = block.table.slice(offset, rows)
        offset += rows
    return _block(tables)


def _reference_index(lake_root: Path) -> pa.Table | None:
    """reference_id and source_sha256 of every row of the lake's data files (None: no rows).

    The files are listed and read through the lake's store (a folder or an object store).
    """
    store = store_for(lake_root)
    with _REFERENCE_INDEX_LOCK:
        listed = store.data_files()
        present = set(listed)
        blocks = [
            kept
            for block in _REFERENCE_INDEX.get(lake_root, [])
            if (kept := _kept(block, present)) is not None
        ]
        known = {name for block in blocks for name in block.rows}
        new: dict[str, pa.Table] = {}
        for relative in listed:
            if relative in known:
                continue
            try:
                new[relative] = store.read_table(relative, _INDEX_COLUMNS)
            except FileNotFoundError:
                continue  # compacted away since it was listed
            except (KeyError, pa.ArrowInvalid):
                continue  # a file of a schema without these columns
        if (added := _block(new)) is not None:
            blocks.append(added)
        _REFERENCE_INDEX[lake_root] = blocks
        tables = [block.table for block in blocks]
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def existing_reference_ids(
    lake_root: Path, candidates: pa.Array, leaving: frozenset[str] = frozenset()
) -> set[str]:
    """Reference ids among `candidates` that accepted rows in the lake already carry.

    Rows of the sources in `leaving` (content hashes whose rows the batch replaces) do
    not count: they are the batch's own older version.
    """
    if len(candidates) == 0:
        return set()
    index = _reference_index(lake_root.resolve())
    if index is None:
        return set()
    wanted = pc.is_in(index.column("reference_id"), candidates)
    if leaving:
        theirs = pc.is_in(index.column("source_sha256"), pa.array(sorted(leaving), pa.string()))
        wanted = pc.and_(wanted, pc.invert(theirs))
    found = index.column("reference_id").filter(pc.fill_null(wanted, False))
    return {value for value in found.to_pylist() if value is not None}
