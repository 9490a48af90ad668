"""What only the embedded SQLite ledger does (its rules are tested in test_sql.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cablestream.tasks.ledger.sqlite import SqliteLedger


def test_sqlite_ledger_writes_ahead(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "state" / "ledger.sqlite")
    with sqlite3.connect(ledger.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
