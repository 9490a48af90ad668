"""Reading the lake's data files (the cable rows), by the documented glob."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

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


def existing_reference_ids(
    lake_root: Path, candidates: pa.Array, leaving: frozenset[str] = frozenset()
) -> set[str]:
    """Reference ids among `candidates` that accepted rows in the lake already carry.

    Rows of the sources in `leaving` (content hashes whose rows the batch replaces) do
    not count: they are the batch's own older version.
    """
    if not lake_root.is_dir() or len(candidates) == 0:
        return set()
    # Readers skip `_`/`.` names, so only the partition folders are read.
    dataset = ds.dataset(str(lake_root), format="parquet", partitioning="hive")
    if not dataset.files or "reference_id" not in dataset.schema.names:
        return set()
    wanted = ds.field("reference_id").isin(candidates)
    if leaving:
        wanted = wanted & ~ds.field("source_sha256").isin(sorted(leaving))
    found = dataset.to_table(columns=["reference_id"], filter=wanted)
    return {value for value in found.column("reference_id").to_pylist() if value is not None}
