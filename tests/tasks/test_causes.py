"""One-line causes: disk full, read-only, a held ledger lock, named as such."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from cablestream.tasks.causes import one_line_cause
from cablestream.tasks.ledger.sqlite import SqliteLedger


def test_errno_faults_are_named_with_their_file() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "/lake/year=2008/x.parquet")
    assert one_line_cause(full) == (
        "disk full (ENOSPC: no space left on device): /lake/year=2008/x.parquet"
    )
    assert one_line_cause(OSError(errno.EROFS, "Read-only file system", "/lake")).startswith(
        "read-only filesystem (EROFS)"
    )


def test_a_ledger_held_locked_by_another_process_is_named(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    holder = sqlite3.connect(ledger.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        waiting = sqlite3.connect(ledger.path, timeout=0.1)
        try:
            waiting.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            cause = one_line_cause(error)
        waiting.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert cause.startswith("the ledger is locked by another process")
    assert "\n" not in cause
