"""Write accepted rows into the hive-partitioned lake, atomically per file.

A batch's files are first written under the control folder's
`staging/<batch_id>/` with the same relative layout they will have, then
renamed into place: partition files into the lake, quarantine tables into the
control folder (same filesystem, so each rename is atomic). pyarrow's
`write_dataset` is not transactional (arrow #11781), so the commit rolls
forward (see `tasks/ledger/protocol.py`): the ledger records every staged
path and outcome first (the point of no return), then the files are renamed
in, then the batch is committed. A batch that dies before the point of no
return published nothing; one that dies after it is finished by recovery
(`finish` in `tasks/batch/commit.py`), never undone, so no reader sees a row
that later goes away. An object-store lake's batches are staged on the store
itself (`push_staging`, before the point of no return) and published by a copy
on the server (`publish_staged`; `tasks/lake/store.py`), so that any host can
finish them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cablestream.schemas import lake as layout
from cablestream.schemas import versions
from cablestream.schemas.arrow import PARTITION_SCHEMA
from cablestream.tasks.lake.partition import partitioned
from cablestream.tasks.lake.store import is_data_name, rename_into, store_for

# ~16k cables of ~6 KB text make row groups of tens of MB: large enough for
# scans, small enough that a reader filtering on a few columns skips well.
ROW_GROUP_ROWS = 16_384
MAX_ROWS_PER_FILE = 1_000_000
COMPRESSION = "zstd"
# Dictionary encoding only for columns whose values repeat (for a text column pyarrow
# builds a dictionary per page and drops it), min/max statistics only for short scalar
# columns (a body's min and max would sit in every file's footer): a group's ~90
# partition files cost 25% less CPU and are 12% smaller.
DICTIONARY_COLUMNS = (
    "precedence",
    "origin",
    "station",
    "classification",
    "classified_by",
    "rendering",
    "parser_version",
    "batch_id",
)
STATISTICS_COLUMNS = (
    *DICTIONARY_COLUMNS,
    "record_id",
    "reference_id",
    "created",
    "nondisclosure_deadline",
    "is_partial",
    "source_offset",
    "ingested_at",
)


def write_parquet(rows: pa.Table, path: Path) -> None:
    """Write one lake data file (the lake's compression, encodings and statistics)."""
    pq.write_table(
        rows,
        path,
        compression=COMPRESSION,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=list(DICTIONARY_COLUMNS),
        write_statistics=list(STATISTICS_COLUMNS),
    )


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A file written under the batch's staging dir; `relative` is its final path in the lake."""

    staged: Path
    relative: str


def _staged_files(stage: Path) -> list[StagedFile]:
    files: list[StagedFile] = []
    for path in sorted(stage.rglob("*")):
        if path.is_file():
            layout.inside(stage, path)
            files.append(StagedFile(path, path.relative_to(stage).as_posix()))
    return files


def stage_rows(table: pa.Table, lake: Path, batch_id: str, part: str = "") -> list[StagedFile]:
    """Write the rows as zstd Parquet under the batch's staging dir, one folder per partition.

    `part` tells apart the files of a second write of the same batch (a replacement's
    kept rows). The rows are sorted by partition once (one contiguous copy) and each
    partition is written as a slice of it, one file at a time: pyarrow's `write_dataset`
    kept a writer (and its buffers) open per partition, ~270 MB for a group of 3,400
    cables over ~100 months, and wrote a table of one chunk per parsed file 2-5x slower.
    """
    if table.num_rows == 0:
        return []
    stage = layout.staging_dir(lake, batch_id)
    record_schema(lake)
    rows = versions.with_version(partitioned(table))
    order = pc.sort_indices(rows, [(name, "ascending") for name in PARTITION_SCHEMA.names])
    rows = rows.take(order)
    keys = rows.select(PARTITION_SCHEMA.names)
    rows = rows.drop_columns(PARTITION_SCHEMA.names)
    template = layout.data_file_basename(batch_id, part)
    files: list[StagedFile] = []
    for (year, month), start, count in _runs(keys):
        for first in range(start, start + count, MAX_ROWS_PER_FILE):
            size = min(MAX_ROWS_PER_FILE, start + count - first)
            name = template.format(i=(first - start) // MAX_ROWS_PER_FILE)
            relative = f"year={int(year)}/month={int(month)}/{name}"
            target = stage / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            write_parquet(rows.slice(first, size), target)
            files.append(StagedFile(target, relative))
    return files


def _runs(keys: pa.Table) -> list[tuple[tuple[int, ...], int, int]]:
    """(partition values, first row, rows) of each run of equal keys of a sorted table."""
    values = list(zip(*(keys.column(name).to_pylist() for name in keys.column_names), strict=True))
    runs = []
    start = 0
    for index in range(1, len(values) + 1):
        if index == len(values) or values[index] != values[start]:
            runs.append((values[start], start, index - start))
            start = index
    return runs


def record_schema(lake: Path) -> None:
    """Record the schema version the lake's writers use in its control folder (`schema.json`).

    Written before the first file of a new version is staged (so the record is never
    behind the files), atomically, and only when it changes.
    """
    record = {
        "schema_version": versions.SCHEMA_VERSION,
        "metadata_key": versions.METADATA_KEY.decode(),
        "columns_since": {
            field.name: versions.since(field.name) for field in versions.read_schema()
        },
    }
    path = layout.schema_record_path(lake)
    text = json.dumps(record, indent=2) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)


def publish(lake: Path, staged: list[StagedFile]) -> list[str]:
    """Put staged files in place; returns their relative paths (see `layout.output_path`).

    Data files go to the lake's store (renamed into a folder, put into an object store:
    `tasks/lake/store.py`), quarantine tables are renamed into the control folder.
    Idempotent: a file already published (by a concurrent `finish`) is skipped.
    """
    store = store_for(lake)
    published = []
    for item in staged:
        if is_data_name(item.relative):
            store.publish(item.staged, item.relative)
        else:
            rename_into(item.staged, layout.output_path(lake, item.relative))
        published.append(item.relative)
    return published


def remove_output(lake: Path, relative: str) -> None:
    """Delete a published file (a data file from the store, a quarantine table); idempotent."""
    if is_data_name(relative):
        store_for(lake).delete(relative)
    else:
        layout.output_path(lake, relative).unlink(missing_ok=True)


def move_legacy_control(lake: Path) -> list[str]:
    """Move a lake's `_state`, `_quarantine`, ... (the first layout) into its control folder.

    Without this a lake of the first layout would lose its ledger and be
    ingested again. Returns the folders moved; refuses to merge into a folder
    that is already there.
    """
    moved = []
    control = layout.control_root(lake)
    for legacy, current in layout.LEGACY_CONTROL_DIRS.items():
        source = lake / legacy
        if not source.is_dir():
            continue
        target = control / current
        if target.exists():
            raise FileExistsError(
                f"{source} (earlier layout) and {target} both exist: merge them by hand"
            )
        control.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        moved.append(legacy)
    return moved


def clear_staging(lake: Path, batch_id: str) -> None:
    """Remove the batch's staging folder (and an object-store lake's staging prefix)."""
    shutil.rmtree(layout.staging_dir(lake, batch_id), ignore_errors=True)
    store = store_for(lake)
    if not store.local:
        store.clear_staged(batch_id)


def push_staging(lake: Path, batch_id: str) -> None:
    """An object-store lake: move the batch's locally staged files into its staging prefix
    on the store, where any host can publish them (`tasks/lake/store.py`). Idempotent;
    nothing to do for a local lake."""
    store = store_for(lake)
    if store.local:
        return
    store.push(batch_id, [(item.staged, item.relative) for item in staged_tree(lake, batch_id)])
    shutil.rmtree(layout.staging_dir(lake, batch_id), ignore_errors=True)


def sweep_staging(lake: Path, settled: Callable[[str], bool]) -> list[str]:
    """An object-store lake: delete the staging prefixes of batches that are `settled`
    (committed, undone): what a group task staged after its batch was given up (a worker
    on another machine goes on when the flow's process dies). Returns their ids."""
    store = store_for(lake)
    if store.local:
        return []
    swept = [batch_id for batch_id in store.staged_batches() if settled(batch_id)]
    for batch_id in swept:
        store.clear_staged(batch_id)
    return swept


def pull_staging(lake: Path, batch_id: str) -> None:
    """An object-store lake: bring the batch's staged files back into its local staging
    folder, to be rewritten there (a replacement), then pushed again."""
    store = store_for(lake)
    if not store.local:
        store.pull(batch_id, layout.staging_dir(lake, batch_id))


def staged_outputs(lake: Path, batch_id: str) -> list[str]:
    """The relative names of everything the batch staged (locally, or on the store)."""
    names = [item.relative for item in staged_tree(lake, batch_id)]
    store = store_for(lake)
    if not store.local:
        names += store.staged(batch_id)
    return sorted(set(names))


def publish_staged(lake: Path, batch_id: str) -> list[str]:
    """Publish everything the batch staged (`publish`); an object-store lake's staging
    prefix: data files copied to their keys on the server, quarantine tables fetched
    into this host's control folder. Idempotent, as `publish`."""
    published = publish(lake, staged_tree(lake, batch_id))
    store = store_for(lake)
    if store.local:
        return published
    for relative in store.staged(batch_id):
        if is_data_name(relative):
            store.publish_staged(batch_id, relative)
        else:
            store.fetch_staged(batch_id, relative, layout.output_path(lake, relative))
        published.append(relative)
    return published


def staged_tree(lake: Path, batch_id: str) -> list[StagedFile]:
    """Everything under the batch's staging dir (rows and quarantine files alike)."""
    stage = layout.staging_dir(lake, batch_id)
    return _staged_files(stage) if stage.exists() else []
