"""The Ledger's rules in SQL, written once for every database that implements it.

`SqlLedger` holds every statement of the ledger (`protocol.py` tells the batch
protocol); `sqlite.py` and `postgres.py` are its two databases. A database fills in how to connect, how to open a write transaction,
whose clock counts, and how concurrent writers are kept apart:

- SQLite runs one write transaction at a time (`BEGIN IMMEDIATE`), so it needs
  no more than that;
- PostgreSQL runs them side by side: a claim takes a transaction-scoped lock on
  each candidate's path and content and skips what another claim holds (the
  `SKIP LOCKED` rule), and the statements that read a batch's state before
  changing it lock its row (`FOR UPDATE`), so a fence and a takeover never pass
  each other.

The statements use `?` placeholders (sqlite3's style); other drivers translate.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from cablestream.tasks.ledger.protocol import (
    BatchLost,
    Candidate,
    ClaimedFile,
    FileOutcome,
    OlderVersion,
    StaleBatch,
)

DEFAULT_LEASE_SECONDS = 600.0
# A live process renews the leases of the batches it works on this many times per lease:
# a batch that runs longer than its lease is not taken over while its process lives.
RENEWALS_PER_LEASE = 3
# A file that could not be read (permissions, a symlink) is tried again this much later:
# `chmod` moves no mtime, so its fingerprint alone would skip it forever.
READ_RETRY_SECONDS = 30.0

_log = logging.getLogger(__name__)

# Batches this process is working on right now (claimed or begun, not yet settled).
# Its other batches in the ledger were left by an error it could not undo: stale.
_RUNNING: set[str] = set()


def forget_running(batch_id: str) -> None:
    """This process stopped working on the batch (whatever state it was left in)."""
    _RUNNING.discard(batch_id)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """The process exists (one owned by another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# The tables, for any database: `{file_id}` is its auto-numbered key. The type names
# are PostgreSQL's; SQLite gives them the same meaning (REAL and INTEGER affinity).
SCHEMA_TEMPLATE = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id     TEXT PRIMARY KEY,
    state        TEXT NOT NULL,          -- claimed | publishing | committed | failed | aborted
    owner        TEXT NOT NULL,          -- host:pid of the claiming process
    lease_until  DOUBLE PRECISION NOT NULL,  -- unix time: a claimed batch past it is stale
    started_at   DOUBLE PRECISION NOT NULL,
    finished_at  DOUBLE PRECISION,
    note         TEXT
);
CREATE TABLE IF NOT EXISTS files (
    file_id      {file_id},
    path         TEXT NOT NULL,          -- relative to the inbox
    sha256       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    mtime_ns     BIGINT NOT NULL,
    batch_id     TEXT NOT NULL REFERENCES batches(batch_id),
    state        TEXT NOT NULL,          -- claimed | committed | duplicate | quarantined | held
                                         -- | superseded
    duplicate_of TEXT,
    reason       TEXT,
    UNIQUE (path, sha256)
);
CREATE INDEX IF NOT EXISTS files_sha ON files (sha256, state);
CREATE INDEX IF NOT EXISTS files_batch ON files (batch_id);
CREATE TABLE IF NOT EXISTS outputs (
    batch_id     TEXT NOT NULL,
    path         TEXT NOT NULL,          -- relative to the lake
    PRIMARY KEY (batch_id, path)
);
CREATE TABLE IF NOT EXISTS replaced (
    batch_id     TEXT NOT NULL,          -- a compaction batch
    path         TEXT NOT NULL,          -- relative to the lake: a file its outputs replace
    PRIMARY KEY (batch_id, path)
);
CREATE TABLE IF NOT EXISTS retries (
    path         TEXT PRIMARY KEY,       -- a file that could not be read ...
    not_before   DOUBLE PRECISION NOT NULL  -- ... is read again from this unix time on
);
CREATE TABLE IF NOT EXISTS failures (
    path         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    count        INTEGER NOT NULL,
    last_reason  TEXT,
    PRIMARY KEY (path, sha256)
);
"""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the ledger uses of a database connection (sqlite3's shape)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Any: ...


class SqlLedger:
    """The Ledger protocol over a SQL database; see the module docstring for the hooks."""

    # Appended to a SELECT of a batch's row that is followed by a change of its state.
    LOCK_ROW = ""
    # Appended to a SELECT of rows to change that another writer may be changing: skip those.
    SKIP_LOCKED = ""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        # Batches claimed (or begun) through this ledger whose leases its heartbeat renews.
        self._leased: set[str] = set()
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_lock = threading.Lock()

    # -- what a database provides -------------------------------------------------

    def _connect(self) -> AbstractContextManager[Connection]:
        """A connection that commits every statement (for reads)."""
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        """A connection in a write transaction, committed on exit, rolled back on error."""
        raise NotImplementedError

    def _now(self, db: Connection) -> float:
        """The ledger's clock (unix seconds): leases and retry times are read against it."""
        raise NotImplementedError

    def _may_claim(self, db: Connection, item: Candidate) -> bool:
        """Inside a claim: no other claim is deciding about this path or content now."""
        return True

    # -- the Ledger protocol ------------------------------------------------------

    def fingerprints(self) -> set[tuple[str, int, int]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT f.path, f.size, f.mtime_ns FROM files f LEFT JOIN retries r USING (path)"
                " WHERE f.state != 'superseded'"
                " AND (r.not_before IS NULL OR r.not_before > ? OR f.state != 'quarantined')",
                (self._now(db),),
            ).fetchall()
        return {(str(path), int(size), int(mtime)) for path, size, mtime in rows}

    def claim(self, batch_id: str, candidates: list[Candidate]) -> list[ClaimedFile]:
        claimed: list[ClaimedFile] = []
        with self._transaction() as db:
            now = self._now(db)
            db.execute(
                "INSERT INTO batches (batch_id, state, owner, lease_until, started_at)"
                " VALUES (?, 'claimed', ?, ?, ?)",
                (batch_id, _owner(), now + self.lease_seconds, now),
            )
            for item in candidates:
                if not self._may_claim(db, item):
                    continue  # another process is claiming this path or content: look again later
                claim = self._claim_one(db, batch_id, item, now)
                if claim is not None:
                    claimed.append(claim)
            if not claimed:
                db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
        if claimed:
            self._working_on(batch_id)
        return claimed

    def _claim_one(
        self, db: Connection, batch_id: str, item: Candidate, now: float
    ) -> ClaimedFile | None:
        if item.unreadable:
            db.execute(
                "INSERT INTO retries (path, not_before) VALUES (?, ?) ON CONFLICT (path)"
                " DO UPDATE SET not_before = excluded.not_before",
                (item.path, now + READ_RETRY_SECONDS),
            )
        else:
            db.execute("DELETE FROM retries WHERE path = ?", (item.path,))
        # Every version of the path at once (one lookup; mostly none): this one's content
        # and another live batch's claim of another content.
        versions = db.execute(
            "SELECT file_id, state, sha256, batch_id FROM files WHERE path = ?", (item.path,)
        ).fetchall()
        known = next((row[:2] for row in versions if row[2] == item.sha256), None)
        if known is not None and known[1] != "superseded":
            # Same path, same content: done (or in progress); remember the new mtime
            # unless a batch is settling that row right now (it is only a discovery hint).
            db.execute(
                "UPDATE files SET size = ?, mtime_ns = ? WHERE file_id IN (SELECT file_id"
                f" FROM files WHERE file_id = ?{self.SKIP_LOCKED})",
                (item.size, item.mtime_ns, known[0]),
            )
            return None
        if any(state == "claimed" and batch != batch_id for _, state, _, batch in versions):
            return None  # another live batch has another version of it: look again later
        twin = db.execute(
            "SELECT f.path, f.state, f.batch_id FROM files f"
            " WHERE f.sha256 = ? AND f.state IN ('committed', 'claimed')"
            " ORDER BY f.state = 'committed' DESC LIMIT 1",
            (item.sha256,),
        ).fetchone()
        if twin is not None and twin[1] == "claimed" and twin[2] != batch_id:
            return None  # another live batch is ingesting this content: look again later
        duplicate_of = str(twin[0]) if twin is not None else None
        if known is not None:  # content it held before a newer version replaced it
            file_id = known[0]
            db.execute(
                "UPDATE files SET size = ?, mtime_ns = ?, batch_id = ?, state = 'claimed',"
                " duplicate_of = ?, reason = NULL WHERE file_id = ?",
                (item.size, item.mtime_ns, batch_id, duplicate_of, file_id),
            )
        else:
            (file_id,) = db.execute(
                "INSERT INTO files (path, sha256, size, mtime_ns, batch_id, state,"
                " duplicate_of) VALUES (?, ?, ?, ?, ?, 'claimed', ?) RETURNING file_id",
                (item.path, item.sha256, item.size, item.mtime_ns, batch_id, duplicate_of),
            ).fetchone()
        return ClaimedFile(
            int(file_id), item.path, item.sha256, item.size, item.mtime_ns, duplicate_of
        )

    def begin(self, batch_id: str, note: str = "") -> None:
        with self._transaction() as db:
            now = self._now(db)
            db.execute(
                "INSERT INTO batches (batch_id, state, owner, lease_until, started_at, note)"
                " VALUES (?, 'claimed', ?, ?, ?, ?)",
                (batch_id, _owner(), now + self.lease_seconds, now, note),
            )
        self._working_on(batch_id)

    # -- leases: renewed while this process works on a batch ----------------------

    def _working_on(self, batch_id: str) -> None:
        """This process works on the batch from now on: keep its lease (`renew_leases`)."""
        with self._heartbeat_lock:
            _RUNNING.add(batch_id)
            self._leased.add(batch_id)
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(
                    target=self._keep_leases, name="cablestream-lease", daemon=True
                )
                self._heartbeat.start()

    def _keep_leases(self) -> None:
        """The heartbeat: every lease / RENEWALS_PER_LEASE, renew the leases of the batches
        this process still works on; ends when there are none (the next claim starts it).

        A failed renewal (the database away for a moment) is tried again at the next beat;
        should the lease run out meanwhile, the fence (`prepare_commit`) stops the batch.
        """
        while True:
            time.sleep(self.lease_seconds / RENEWALS_PER_LEASE)
            with self._heartbeat_lock:
                self._leased &= _RUNNING  # settled batches (and those forgotten) need none
                batches = sorted(self._leased)
                if not batches:
                    self._heartbeat = None
                    return
            try:
                self.renew_leases(batches)
            except Exception as error:  # the next beat tries again
                _log.warning("could not renew the leases of %d batches: %r", len(batches), error)

    def renew_leases(self, batch_ids: list[str]) -> int:
        """Extend by a lease the batches of this process among `batch_ids` that are still
        unsettled; returns how many. A batch taken over meanwhile (aborted) stays lost."""
        with self._transaction() as db:
            until = self._now(db) + self.lease_seconds
            return sum(
                db.execute(
                    "UPDATE batches SET lease_until = ? WHERE batch_id = ? AND owner = ?"
                    " AND state IN ('claimed', 'publishing')",
                    (until, batch_id, _owner()),
                ).rowcount
                for batch_id in batch_ids
            )

    def _state(self, db: Connection, batch_id: str) -> tuple[str, str] | None:
        """Inside a write transaction: the batch's (state, owner), its row locked."""
        row = db.execute(
            f"SELECT state, owner FROM batches WHERE batch_id = ?{self.LOCK_ROW}", (batch_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def _fence(self, db: Connection, batch_id: str) -> None:
        """Inside a write transaction: the batch is still claimed, and by this process."""
        found = self._state(db, batch_id)
        if found is None or found != ("claimed", _owner()):
            state = "unknown" if found is None else " by ".join(found)
            raise BatchLost(f"batch {batch_id} is no longer this process's claim ({state})")

    def prepare_commit(
        self,
        batch_id: str,
        outputs: list[str],
        outcomes: dict[int, FileOutcome],
        note: str = "",
        replaced: list[str] | None = None,
        superseded: list[int] | None = None,
    ) -> None:
        with self._transaction() as db:
            self._fence(db, batch_id)
            db.executemany(
                "UPDATE files SET state = 'superseded', reason = ? WHERE file_id = ?"
                " AND state = 'committed'",
                [(f"replaced by a newer version (batch {batch_id})", f) for f in superseded or []],
            )
            db.executemany(
                "UPDATE files SET state = ?, reason = ? WHERE file_id = ? AND batch_id = ?",
                [(o.state, o.reason, fid, batch_id) for fid, o in outcomes.items()],
            )
            left = db.execute(
                "SELECT COUNT(*) FROM files WHERE batch_id = ? AND state = 'claimed'", (batch_id,)
            ).fetchone()[0]
            if left:
                raise RuntimeError(f"batch {batch_id}: {left} files have no outcome")
            db.executemany(
                "INSERT INTO outputs (batch_id, path) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(batch_id, path) for path in outputs],
            )
            db.executemany(
                "INSERT INTO replaced (batch_id, path) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(batch_id, path) for path in replaced or []],
            )
            db.execute(
                "UPDATE batches SET state = 'publishing', note = ? WHERE batch_id = ?",
                (note, batch_id),
            )

    def commit(self, batch_id: str) -> None:
        with self._transaction() as db:
            found = self._state(db, batch_id)
            if found is None or found[0] not in ("publishing", "committed"):
                raise RuntimeError(f"batch {batch_id} is not publishing (state {found})")
            db.execute(
                "UPDATE batches SET state = 'committed', finished_at = ?"
                " WHERE batch_id = ? AND state = 'publishing'",
                (self._now(db), batch_id),
            )
        _RUNNING.discard(batch_id)

    def record_failure(self, batch_id: str, reason: str) -> int:
        with self._transaction() as db:
            files = db.execute(
                "SELECT path, sha256 FROM files WHERE batch_id = ?", (batch_id,)
            ).fetchall()
            counts = [
                db.execute(
                    "INSERT INTO failures (path, sha256, count, last_reason) VALUES (?, ?, 1, ?)"
                    " ON CONFLICT (path, sha256) DO UPDATE SET count = failures.count + 1,"
                    " last_reason = excluded.last_reason RETURNING count",
                    (path, sha, reason),
                ).fetchone()[0]
                for path, sha in files
            ]
        return int(max(counts, default=0))

    def release(self, batch_id: str, note: str = "") -> None:
        with self._transaction() as db:
            self._fence(db, batch_id)
            self._drop_claims(db, batch_id, "failed", note)
        _RUNNING.discard(batch_id)

    def abort(self, batch_id: str, note: str = "") -> bool:
        with self._transaction() as db:
            found = self._state(db, batch_id)
            aborted = found is not None and found[0] == "claimed"
            if aborted:
                self._drop_claims(db, batch_id, "aborted", note)
        _RUNNING.discard(batch_id)
        return aborted

    def _drop_claims(self, db: Connection, batch_id: str, state: str, note: str) -> None:
        db.execute("DELETE FROM files WHERE batch_id = ? AND state = 'claimed'", (batch_id,))
        db.execute("DELETE FROM outputs WHERE batch_id = ?", (batch_id,))
        db.execute(
            "UPDATE batches SET state = ?, finished_at = ?, note = ? WHERE batch_id = ?",
            (state, self._now(db), note, batch_id),
        )

    def older_versions(self, batch_id: str) -> list[OlderVersion]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT o.file_id, o.path, o.sha256, n.file_id, EXISTS ("
                "   SELECT 1 FROM files s WHERE s.sha256 = o.sha256 AND s.path != o.path"
                "   AND s.state IN ('committed', 'duplicate'))"
                " FROM files n JOIN files o ON o.path = n.path AND o.sha256 != n.sha256"
                " WHERE n.batch_id = ? AND n.state = 'claimed' AND o.state = 'committed'",
                (batch_id,),
            ).fetchall()
        return [
            OlderVersion(int(fid), str(path), str(sha), int(newer), bool(shared))
            for fid, path, sha, newer, shared in rows
        ]

    def source_paths(self, sha256: str) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT path FROM files WHERE sha256 = ? ORDER BY state != 'committed', file_id",
                (sha256,),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def batch_state(self, batch_id: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT state FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _describe(db: Connection, batch_id: str, state: str) -> StaleBatch:
        outputs = [
            str(row[0])
            for row in db.execute(
                "SELECT path FROM outputs WHERE batch_id = ? ORDER BY path", (batch_id,)
            ).fetchall()
        ]
        files = db.execute("SELECT COUNT(*) FROM files WHERE batch_id = ?", (batch_id,)).fetchone()
        replaced = tuple(
            str(row[0])
            for row in db.execute(
                "SELECT path FROM replaced WHERE batch_id = ? ORDER BY path", (batch_id,)
            ).fetchall()
        )
        return StaleBatch(batch_id, state, outputs, int(files[0]), replaced)

    def publishing_batch(self, batch_id: str) -> StaleBatch | None:
        with self._connect() as db:
            row = db.execute("SELECT state FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
            if row is None or row[0] != "publishing":
                return None
            return self._describe(db, batch_id, "publishing")

    def stale_batches(self) -> list[StaleBatch]:
        host = socket.gethostname()
        stale: list[StaleBatch] = []
        with self._connect() as db:
            now = self._now(db)
            rows = db.execute(
                "SELECT batch_id, state, owner, lease_until FROM batches"
                " WHERE state IN ('claimed', 'publishing') ORDER BY started_at"
            ).fetchall()
            for batch_id, state, owner, lease_until in rows:
                owner_host, _, pid = str(owner).rpartition(":")
                local = owner_host == host
                if local and int(pid) == os.getpid():
                    gone = batch_id not in _RUNNING  # left behind by an error in this process
                else:
                    # Another host's process cannot be seen from here: only its lease tells.
                    gone = (local and not pid_alive(int(pid))) or float(lease_until) < now
                if gone:
                    stale.append(self._describe(db, str(batch_id), str(state)))
        return stale

    def unsettled_batches(self) -> list[str]:
        """Batches claimed or publishing (none once every run has ended and recovered)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT batch_id FROM batches WHERE state IN ('claimed', 'publishing')"
            ).fetchall()
        return sorted(str(row[0]) for row in rows)

    def live_outputs(self) -> set[str]:
        """Outputs of committed batches that no committed batch (a compaction, a
        replacement) replaced: the lake."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT o.path FROM outputs o JOIN batches b USING (batch_id)"
                " WHERE b.state = 'committed' AND o.path NOT IN ("
                "   SELECT r.path FROM replaced r JOIN batches c USING (batch_id)"
                "   WHERE c.state = 'committed')"
            ).fetchall()
        return {str(row[0]) for row in rows}

    def counts(self) -> dict[str, int]:
        """Files per state: for summaries and tests."""
        with self._connect() as db:
            rows = db.execute("SELECT state, COUNT(*) FROM files GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}

    def forget_quarantined(self, path: str, sha256: str) -> bool:
        """Forget that a file was quarantined whole (and its failed attempts): the next
        pass takes it again (`cablestream quarantine requeue`). False when it was not."""
        with self._transaction() as db:
            gone = db.execute(
                "DELETE FROM files WHERE path = ? AND sha256 = ? AND state = 'quarantined'",
                (path, sha256),
            ).rowcount
            db.execute("DELETE FROM failures WHERE path = ? AND sha256 = ?", (path, sha256))
        return bool(gone)


def schema_statements(file_id: str) -> Iterator[str]:
    """The statements of SCHEMA_TEMPLATE one by one, with the database's `file_id` column."""
    for statement in SCHEMA_TEMPLATE.format(file_id=file_id).split(";"):
        if statement.strip():
            yield statement
