"""Layout on disk: the lake's data root, the control folder beside it, output paths.

The partition rule itself is `tasks/lake/partition.py`.

Everything that turns values into paths lives here, so that the one rule
(a path built from cable data never leaves its root) is checked in one place.

The lake folder holds nothing but cable partitions, so every reader pointed at
it (DuckDB `read_parquet('LAKE')` or a `**` glob, Polars `scan_parquet(LAKE)`,
pandas, Spark) sees exactly the cable rows. The ledger, staging, quarantine and
quality outputs live in a control folder beside it (`data/lake` ->
`data/lake.cablestream`): a sibling, so it is on the same filesystem and a
staged file is renamed into the lake atomically. `CABLESTREAM_CONTROL` names
another control folder (it must be on the lake's filesystem).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

# LAKE/                                   the data root: cable rows only
#   year=2008/month=5/part-<batch_id>-0.parquet   accepted rows (hive partitions, integer values)
#   year=0/month=0/...                            cables without a date (sentinel partition)
# LAKE.cablestream/                       the control folder (`control_root`)
#   state/ledger.sqlite                           the ingest ledger (SQLite, WAL)
#   state/schema.json                             the lake's schema version (schemas/versions.py)
#   staging/<batch_id>/...                        a batch's files before they are renamed in
#   quarantine/reasons/part-<batch_id>.parquet    why input was rejected (one row per reason)
#   quarantine/rows/part-<batch_id>.parquet       rows validation dropped, with the reason
#   quarantine/files/<sha256>.src                 a copy of each source file rejected whole
#   quality/                                      validation results, Data Docs, report.html
#   snapshots/NNNNNN/year=2008/month=5/...        committed data files, frozen (hard links;
#   snapshots/current -> NNNNNN                   tasks/snapshot.py): read during compaction
CONTROL_SUFFIX = ".cablestream"
CONTROL_ENV = "CABLESTREAM_CONTROL"
STATE_DIR = "state"
LEDGER_FILE = "ledger.sqlite"
SCHEMA_RECORD_FILE = "schema.json"
STAGING_DIR = "staging"
QUARANTINE_DIR = "quarantine"
QUARANTINE_REASONS_DIR = "reasons"
QUARANTINE_ROWS_DIR = "rows"
QUARANTINE_FILES_DIR = "files"
QUALITY_DIR = "quality"
REPORT_FILE = "report.html"
# The first layout kept these inside the lake; `move_legacy_control` (tasks/lake/writer.py)
# moves them out.
LEGACY_CONTROL_DIRS = {
    "_state": STATE_DIR,
    "_staging": STAGING_DIR,
    "_quarantine": QUARANTINE_DIR,
    "_quality": QUALITY_DIR,
}

# A batch id: `20261125T100450Z-3f9a1c2b` (UTC start time + random suffix).
_BATCH_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UnsafePathError(ValueError):
    """A path computed for the lake would land outside it."""


def check_batch_id(batch_id: str) -> str:
    if not _BATCH_ID.match(batch_id):
        raise UnsafePathError(f"not a batch id: {batch_id!r}")
    return batch_id


def data_file_basename(batch_id: str, part: str = "") -> str:
    """Template for pyarrow's `basename_template`: one name per batch (and `part`: a second
    write of the batch, `[a-z]+`), `{i}` counts files."""
    if part and not (part.isascii() and part.isalpha() and part.islower()):
        raise UnsafePathError(f"not a file part: {part!r}")
    suffix = f"-{part}" if part else ""
    return f"part-{check_batch_id(batch_id)}{suffix}-{{i}}.parquet"


def control_root(lake: Path) -> Path:
    """The lake's control folder: `CABLESTREAM_CONTROL`, else `LAKE.cablestream` beside the lake."""
    override = os.environ.get(CONTROL_ENV)
    if override:
        return Path(override).resolve()
    resolved = lake.resolve()
    if resolved.parent == resolved:
        raise UnsafePathError(f"a lake needs a parent folder for its control folder: {lake}")
    return resolved.parent / f"{resolved.name}{CONTROL_SUFFIX}"


def ledger_path(lake: Path) -> Path:
    return control_root(lake) / STATE_DIR / LEDGER_FILE


def schema_record_path(lake: Path) -> Path:
    return control_root(lake) / STATE_DIR / SCHEMA_RECORD_FILE


def staging_dir(lake: Path, batch_id: str) -> Path:
    return control_root(lake) / STAGING_DIR / check_batch_id(batch_id)


def quarantine_dir(lake: Path, table: str | None = None) -> Path:
    """The quarantine folder, or one of its tables (`reasons`, `rows`, `files`)."""
    folder = control_root(lake) / QUARANTINE_DIR
    return folder if table is None else folder / table


def quality_dir(lake: Path) -> Path:
    return control_root(lake) / QUALITY_DIR


def report_path(lake: Path) -> Path:
    return quality_dir(lake) / REPORT_FILE


def output_path(lake: Path, relative: str) -> Path:
    """Where a batch output recorded by its relative path lives.

    Quarantine outputs (`quarantine/...`, or `_quarantine/...` as ledgers of the
    first layout recorded them) are in the control folder, partition files
    (`year=Y/month=M/...`) in the data root; either way inside its root.
    """
    parts = PurePosixPath(relative).parts
    if parts and LEGACY_CONTROL_DIRS.get(parts[0], parts[0]) == QUARANTINE_DIR:
        root = control_root(lake)
        return inside(root, root.joinpath(QUARANTINE_DIR, *parts[1:]))
    return inside(lake, lake / relative)


def quarantine_copy_name(sha256: str) -> str:
    """Content-addressed name of a quarantined source copy (never the source's own name)."""
    if not _SHA256.match(sha256):
        raise UnsafePathError(f"not a sha256: {sha256!r}")
    return f"{sha256}.src"


def quarantine_copy_relative(sha256: str) -> str:
    """A quarantined source copy's path relative to the control folder (`copy_path`)."""
    return f"{QUARANTINE_DIR}/{QUARANTINE_FILES_DIR}/{quarantine_copy_name(sha256)}"


def inside(root: Path, path: Path) -> Path:
    """`path` resolved, or UnsafePathError when it is not strictly inside `root`."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved == resolved_root or not resolved.is_relative_to(resolved_root):
        raise UnsafePathError(f"{path} is outside {root}")
    return resolved
