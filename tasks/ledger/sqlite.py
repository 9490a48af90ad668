"""The embedded ledger: the `Ledger` protocol (`tasks/ledger/protocol.py`) in one SQLite file.

The default lives in the control folder's `state/ledger.sqlite` (WAL, `schemas/lake.py`).
Its statements are `sql.py`'s; SQLite runs one write transaction at a time
(`BEGIN IMMEDIATE`), which is all the isolation they need here.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cablestream.schemas import lake as layout
from cablestream.tasks.ledger.sql import (
    DEFAULT_LEASE_SECONDS,
    Connection,
    SqlLedger,
    schema_statements,
)

if TYPE_CHECKING:
    from cablestream.tasks.ledger.postgres import PostgresLedger


class SqliteLedger(SqlLedger):
    """The Ledger in one SQLite file (WAL, full sync); one connection per operation."""

    def __init__(self, path: Path, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        super().__init__(lease_seconds)
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            for statement in schema_statements("INTEGER PRIMARY KEY"):
                db.execute(statement)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _now(self, db: Connection) -> float:
        return time.time()


def open_ledger(lake: Path, url: str | None = None) -> SqliteLedger | PostgresLedger:
    """The ledger at `url` (PostgreSQL), else the lake's own embedded one
    (`state/ledger.sqlite` in its control folder)."""
    if url is not None:
        from cablestream.tasks.ledger.postgres import PostgresLedger

        return PostgresLedger(url)
    return SqliteLedger(layout.ledger_path(lake))


@contextmanager
def _read_only_file(path: Path) -> Iterator[Connection]:
    with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)) as db:
        yield db


def read_only_ledger(lake: Path, url: str | None = None) -> AbstractContextManager[Connection]:
    """A connection that only reads the ledger `open_ledger` would open (and never creates
    it): for commands that report (`status`, `quarantine ls`)."""
    if url is not None:
        from cablestream.tasks.ledger.postgres import read_only

        return read_only(url)
    return _read_only_file(layout.ledger_path(lake))
