"""The Ledger in a PostgreSQL database that several ingesting processes and hosts share.

`PostgresLedger("postgresql://user:password@host/db")` keeps the same tables and
rules as the embedded SQLite ledger (`sql.py`); what changes is how
writers that run at the same time are kept apart:

- a claim takes, for each candidate, a transaction-scoped advisory lock on its
  path and one on its content hash with `pg_try_advisory_xact_lock`, and skips
  the file when another claim holds either (it is looked at again next pass,
  when that claim has committed): two processes never claim one file, nor one
  content under two names;
- the fence before publishing and a takeover of a stale batch both read the
  batch's row `FOR UPDATE`, so exactly one of them wins;
- leases and retry times are read against the server's clock, so hosts whose
  clocks differ agree on when a lease ran out; a host that died is known by
  its lease alone (its pid cannot be checked from another host): a live host
  renews its leases (`SqlLedger.renew_leases`), a dead one's run out.

One database (or schema, through the URL's `options=-csearch_path=…`) per lake.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg

from cablestream.tasks.ledger.protocol import Candidate, LedgerUnavailable
from cablestream.tasks.ledger.sql import (
    DEFAULT_LEASE_SECONDS,
    Connection,
    Cursor,
    SqlLedger,
    schema_statements,
)

CONNECT_TIMEOUT_SECONDS = 10
# Held while the tables are created, so that processes starting together do not race.
_SCHEMA_LOCK_KEY = 0x6361626C65  # "cable"


class _Placeholders:
    """A psycopg connection that takes the ledger's `?` placeholders."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self.connection.execute(sql.replace("?", "%s"), parameters)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)


class PostgresLedger(SqlLedger):
    """The Ledger in PostgreSQL (psycopg 3); one connection per operation."""

    LOCK_ROW = " FOR UPDATE"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        super().__init__(lease_seconds)
        self.url = url
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK_KEY,))
            for statement in schema_statements("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"):
                db.execute(statement)

    def __repr__(self) -> str:
        return f"PostgresLedger({safe_url(self.url)!r})"

    def _connect(self) -> AbstractContextManager[Connection]:
        return _open(self.url)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        # Commits when the block ends, rolls back when it raises.
        with _open(self.url) as db, db.connection.transaction():
            yield db

    def _now(self, db: Connection) -> float:
        return float(db.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])

    def _may_claim(self, db: Connection, item: Candidate) -> bool:
        # Two locks (seeds 0 and 1 keep the path and the content keys apart); a hash
        # collision only makes a claim skip a file until the next pass.
        row = db.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(?, 0))"
            " AND pg_try_advisory_xact_lock(hashtextextended(?, 1))",
            (item.path, item.sha256),
        ).fetchone()
        return bool(row[0])


@contextmanager
def _open(url: str) -> Iterator[_Placeholders]:
    try:
        connection = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="cablestream",
        )
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split())
        raise LedgerUnavailable(f"ledger {safe_url(url)}: {reason}") from None
    with connection:
        yield _Placeholders(connection)


@contextmanager
def read_only(url: str) -> Iterator[Connection]:
    """A connection to the ledger at `url` that cannot change it (status, quarantine ls)."""
    with _open(url) as db:
        db.execute("SET default_transaction_read_only = on")
        yield db


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host = info.get("host", "")
    port = f":{info['port']}" if "port" in info else ""
    return f"postgresql://{info.get('user', '')}@{host}{port}/{info.get('dbname', '')}"
