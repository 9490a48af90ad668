"""Reading the lake's data files (the cable rows), by the documented glob."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cablestream.tasks.lake.partition import data_files


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


# Per lake: data file -> its (reference_id, source_sha256) columns. Lake data files are
# never changed in place (a rewrite is a new name), so a file read once stays right
# until it goes; each call reads only the files new since the last one. Without it every
# batch read the reference ids of the whole lake: quadratic over a long pass.
_REFERENCE_INDEX: dict[Path, dict[Path, pa.Table]] = {}
_REFERENCE_INDEX_LOCK = threading.Lock()
_INDEX_COLUMNS = ["reference_id", "source_sha256"]


def _reference_index(lake_root: Path) -> pa.Table | None:
    """reference_id and source_sha256 of every row of the lake's data files (None: no rows)."""
    with _REFERENCE_INDEX_LOCK:
        known = _REFERENCE_INDEX.setdefault(lake_root, {})
        current: dict[Path, pa.Table] = {}
        for path in data_files(lake_root):
            table = known.get(path)
            if table is None:
                try:
                    table = pq.read_table(path, columns=_INDEX_COLUMNS)
                except FileNotFoundError:
                    continue  # compacted away since it was listed
                except (KeyError, pa.ArrowInvalid):
                    continue  # a file of a schema without these columns
            current[path] = table
        _REFERENCE_INDEX[lake_root] = current
        tables = list(current.values())
    return pa.concat_tables(tables, promote_options="permissive") if tables else None


def existing_reference_ids(
    lake_root: Path, candidates: pa.Array, leaving: frozenset[str] = frozenset()
) -> set[str]:
    """Reference ids among `candidates` that accepted rows in the lake already carry.

    Rows of the sources in `leaving` (content hashes whose rows the batch replaces) do
    not count: they are the batch's own older version.
    """
    if not lake_root.is_dir() or len(candidates) == 0:
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
