"""Layout of the lake on disk: folder names, file names and partition paths.

Everything that turns values into paths lives here, so that the one rule
(a path built from cable data never leaves the lake) is checked in one place.
"""

from __future__ import annotations

import re
from pathlib import Path

# lake/
#   year=2008/month=5/part-<batch_id>-0.parquet   accepted rows (hive partitions, integer values)
#   year=0/month=0/...                              cables without a date (sentinel partition)
#   _state/ledger.sqlite                            the ingest ledger (SQLite, WAL)
#   _staging/<batch_id>/...                         a batch's files before they are renamed in
#   _quarantine/reasons/part-<batch_id>.parquet     why input was rejected (one row per reason)
#   _quarantine/rows/part-<batch_id>.parquet        rows validation dropped, with the reason
#   _quarantine/files/<sha256>.src                  a copy of each source file rejected whole
#   _quality/                                       validation results (written by validation)
STATE_DIR = "_state"
LEDGER_FILE = "ledger.sqlite"
STAGING_DIR = "_staging"
QUARANTINE_DIR = "_quarantine"
QUARANTINE_REASONS_DIR = "reasons"
QUARANTINE_ROWS_DIR = "rows"
QUARANTINE_FILES_DIR = "files"
QUALITY_DIR = "_quality"

# Readers skip files and folders whose names start with `_` or `.`, so the
# lake root reads as one hive dataset with only the partition folders in it.
UNDATED_YEAR = 0
UNDATED_MONTH = 0
MIN_YEAR = 1
MAX_YEAR = 9999

# A batch id: `20261125T100450Z-3f9a1c2b` (UTC start time + random suffix).
_BATCH_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UnsafePathError(ValueError):
    """A path computed for the lake would land outside it."""


def check_batch_id(batch_id: str) -> str:
    if not _BATCH_ID.match(batch_id):
        raise UnsafePathError(f"not a batch id: {batch_id!r}")
    return batch_id


def partition_values(year: int | None, month: int | None) -> tuple[int, int]:
    """Sanitised integer partition values: anything out of range goes to the undated sentinel."""
    if (
        year is None
        or month is None
        or not MIN_YEAR <= int(year) <= MAX_YEAR
        or not 1 <= int(month) <= 12
    ):
        return UNDATED_YEAR, UNDATED_MONTH
    return int(year), int(month)


def partition_dir(year: int | None, month: int | None) -> str:
    """`year=2008/month=5` (the path equal to the integer value, no zero padding)."""
    y, m = partition_values(year, month)
    return f"year={y}/month={m}"


def data_file_basename(batch_id: str) -> str:
    """Template for pyarrow's `basename_template`: one name per batch, `{i}` counts files."""
    return f"part-{check_batch_id(batch_id)}-{{i}}.parquet"


def staging_dir(lake: Path, batch_id: str) -> Path:
    return lake / STAGING_DIR / check_batch_id(batch_id)


def quarantine_copy_name(sha256: str) -> str:
    """Content-addressed name of a quarantined source copy (never the source's own name)."""
    if not _SHA256.match(sha256):
        raise UnsafePathError(f"not a sha256: {sha256!r}")
    return f"{sha256}.src"


def inside(root: Path, path: Path) -> Path:
    """`path` resolved, or UnsafePathError when it is not strictly inside `root`."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved == resolved_root or not resolved.is_relative_to(resolved_root):
        raise UnsafePathError(f"{path} is outside {root}")
    return resolved
