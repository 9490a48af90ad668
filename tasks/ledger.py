"""The ingest ledger: which source file (path + content hash) went into which batch.

`Ledger` is the interface the flow uses; `SqliteLedger` is the embedded
default in the control folder's `state/ledger.sqlite` (WAL, `schemas/lake.py`). A server database can replace
it by implementing the same Protocol.

A batch moves `claimed` -> `publishing` -> `committed` (roll-forward commit):

1. `claim` (or `begin` for a compaction): the batch is this process's, under a lease.
2. `prepare_commit`: in ONE transaction, check that the batch is still `claimed` by
   this owner (the fence: a batch whose lease was taken over is `aborted` and
   raises `BatchLost`), record its output files, the files it replaces and every
   file's outcome, and set it `publishing`. This is the point of no return.
3. rename the staged outputs into place (readers see them from here on);
4. `commit`: `publishing` -> `committed` (idempotent).

Nothing is visible before 2, so a `claimed` batch is undone by forgetting its
claims and its staging folder; a `publishing` batch is finished, never undone
(renaming the staged files that are left and deleting what it replaces are both
idempotent), so a reader never sees a row that recovery later removes. A batch is
*stale* when its process is gone, its lease ran out, or it belongs to this process
but no code of it is running it any more (`running`).

States of a file row: `claimed` (a batch is working on it), then from step 2
`committed` (its cables are in the lake), `duplicate` (same content as a
committed file under another name, not ingested again), `quarantined` (rejected
whole) or `held` (validation could not run on it: kept out, not quarantined).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cablestream.schemas import lake as layout

if TYPE_CHECKING:
    from cablestream.tasks.ledger_postgres import PostgresLedger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id     TEXT PRIMARY KEY,
    state        TEXT NOT NULL,          -- claimed | publishing | committed | failed | aborted
    owner        TEXT NOT NULL,          -- host:pid of the claiming process
    lease_until  REAL NOT NULL,          -- unix time; a claimed batch past it is stale
    started_at   REAL NOT NULL,
    finished_at  REAL,
    note         TEXT
);
CREATE TABLE IF NOT EXISTS files (
    file_id      INTEGER PRIMARY KEY,
    path         TEXT NOT NULL,          -- relative to the inbox
    sha256       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    batch_id     TEXT NOT NULL REFERENCES batches(batch_id),
    state        TEXT NOT NULL,          -- claimed | committed | duplicate | quarantined | held
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
    not_before   REAL NOT NULL           -- ... is read again from this unix time on
);
CREATE TABLE IF NOT EXISTS failures (
    path         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    count        INTEGER NOT NULL,
    last_reason  TEXT,
    PRIMARY KEY (path, sha256)
);
"""

DEFAULT_LEASE_SECONDS = 600.0
# A file that could not be read (permissions, a symlink) is tried again this much later:
# `chmod` moves no mtime, so its fingerprint alone would skip it forever.
READ_RETRY_SECONDS = 30.0

# Batches this process is working on right now (claimed or begun, not yet settled).
# Its other batches in the ledger were left by an error it could not undo: stale.
_RUNNING: set[str] = set()


class BatchLost(RuntimeError):
    """The batch is no longer this process's: its lease was taken over and it was undone."""


class LedgerUnavailable(RuntimeError):
    """The ledger's database cannot be reached; the message is one line for the user."""


def forget_running(batch_id: str) -> None:
    """This process stopped working on the batch (whatever state it was left in)."""
    _RUNNING.discard(batch_id)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A ready file with its content hash, offered for claiming."""

    path: str
    sha256: str
    size: int
    mtime_ns: int
    unreadable: bool = False  # `sha256` is a stand-in: read it again after READ_RETRY_SECONDS


@dataclass(frozen=True, slots=True)
class ClaimedFile:
    file_id: int
    path: str
    sha256: str
    size: int
    mtime_ns: int
    duplicate_of: str | None = None  # set: same content is (being) ingested under that path


@dataclass(frozen=True, slots=True)
class StaleBatch:
    batch_id: str
    state: str  # claimed (undo it) | publishing (finish it)
    outputs: list[str]
    files: int
    # Files a compaction's outputs replace (deleted when it is finished).
    replaced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileOutcome:
    state: str  # committed | duplicate | quarantined | held
    reason: str | None = None


class Ledger(Protocol):
    def fingerprints(self) -> set[tuple[str, int, int]]:
        """(path, size, mtime_ns) of every file the ledger holds: those need no hashing."""
        ...

    def claim(self, batch_id: str, candidates: list[Candidate]) -> list[ClaimedFile]:
        """Claim the candidates not yet known, in one transaction; returns what was claimed."""
        ...

    def begin(self, batch_id: str, note: str = "") -> None:
        """Open a batch that claims no inbox files (a compaction of the lake)."""
        ...

    def prepare_commit(
        self,
        batch_id: str,
        outputs: list[str],
        outcomes: dict[int, FileOutcome],
        note: str = "",
        replaced: list[str] | None = None,
    ) -> None:
        """Fence, then record outputs, replaced files and outcomes: the point of no return.

        Raises BatchLost when the batch is no longer claimed by this process.
        """
        ...

    def commit(self, batch_id: str) -> None:
        """Settle a `publishing` batch once its outputs are in place (idempotent)."""
        ...

    def record_failure(self, batch_id: str, reason: str) -> int:
        """Count one failed attempt for every file of the batch; returns the highest count."""
        ...

    def release(self, batch_id: str, note: str = "") -> None:
        """Give the batch's files back (they will be claimed again) and mark it failed."""
        ...

    def abort(self, batch_id: str, note: str = "") -> bool:
        """Forget a `claimed` batch's claims; False when it is not claimed (any more)."""
        ...

    def batch_state(self, batch_id: str) -> str | None:
        """The batch's state, None when the ledger has no such batch."""
        ...

    def stale_batches(self) -> list[StaleBatch]:
        """Unsettled batches nobody works on: owner gone, lease run out, or left by this process."""
        ...

    def publishing_batch(self, batch_id: str) -> StaleBatch | None:
        """The outputs and replaced files of a `publishing` batch (to finish it)."""
        ...

    def in_flight_outputs(self) -> set[str]:
        """Outputs of every batch still publishing: files compaction must leave alone."""
        ...


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


class SqliteLedger:
    """The Ledger in one SQLite file (WAL, full sync); one connection per operation."""

    def __init__(self, path: Path, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.path = path
        self.lease_seconds = lease_seconds
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

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

    def fingerprints(self) -> set[tuple[str, int, int]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT f.path, f.size, f.mtime_ns FROM files f LEFT JOIN retries r USING (path)"
                " WHERE r.not_before IS NULL OR r.not_before > ? OR f.state != 'quarantined'",
                (time.time(),),
            ).fetchall()
        return {(str(path), int(size), int(mtime)) for path, size, mtime in rows}

    def claim(self, batch_id: str, candidates: list[Candidate]) -> list[ClaimedFile]:
        now = time.time()
        claimed: list[ClaimedFile] = []
        with self._transaction() as db:
            db.execute(
                "INSERT INTO batches (batch_id, state, owner, lease_until, started_at)"
                " VALUES (?, 'claimed', ?, ?, ?)",
                (batch_id, _owner(), now + self.lease_seconds, now),
            )
            for item in candidates:
                if item.unreadable:
                    db.execute(
                        "INSERT INTO retries (path, not_before) VALUES (?, ?) ON CONFLICT (path)"
                        " DO UPDATE SET not_before = excluded.not_before",
                        (item.path, now + READ_RETRY_SECONDS),
                    )
                else:
                    db.execute("DELETE FROM retries WHERE path = ?", (item.path,))
                known = db.execute(
                    "SELECT file_id FROM files WHERE path = ? AND sha256 = ?",
                    (item.path, item.sha256),
                ).fetchone()
                if known is not None:
                    # Same path, same content: done (or in progress); remember the new mtime.
                    db.execute(
                        "UPDATE files SET size = ?, mtime_ns = ? WHERE file_id = ?",
                        (item.size, item.mtime_ns, known[0]),
                    )
                    continue
                twin = db.execute(
                    "SELECT f.path, f.state, f.batch_id FROM files f"
                    " WHERE f.sha256 = ? AND f.state IN ('committed', 'claimed')"
                    " ORDER BY f.state = 'committed' DESC LIMIT 1",
                    (item.sha256,),
                ).fetchone()
                if twin is not None and twin[1] == "claimed" and twin[2] != batch_id:
                    continue  # another live batch is ingesting this content: look again later
                duplicate_of = str(twin[0]) if twin is not None else None
                cursor = db.execute(
                    "INSERT INTO files (path, sha256, size, mtime_ns, batch_id, state,"
                    " duplicate_of) VALUES (?, ?, ?, ?, ?, 'claimed', ?)",
                    (item.path, item.sha256, item.size, item.mtime_ns, batch_id, duplicate_of),
                )
                file_id = cursor.lastrowid
                assert file_id is not None
                claimed.append(
                    ClaimedFile(
                        file_id, item.path, item.sha256, item.size, item.mtime_ns, duplicate_of
                    )
                )
            if not claimed:
                db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
        if claimed:
            _RUNNING.add(batch_id)
        return claimed

    def begin(self, batch_id: str, note: str = "") -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO batches (batch_id, state, owner, lease_until, started_at, note)"
                " VALUES (?, 'claimed', ?, ?, ?, ?)",
                (batch_id, _owner(), now + self.lease_seconds, now, note),
            )
        _RUNNING.add(batch_id)

    def _fence(self, db: sqlite3.Connection, batch_id: str) -> None:
        """Inside a write transaction: the batch is still claimed, and by this process."""
        row = db.execute(
            "SELECT state, owner FROM batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        if row is None or row[0] != "claimed" or row[1] != _owner():
            state = "unknown" if row is None else f"{row[0]} by {row[1]}"
            raise BatchLost(f"batch {batch_id} is no longer this process's claim ({state})")

    def prepare_commit(
        self,
        batch_id: str,
        outputs: list[str],
        outcomes: dict[int, FileOutcome],
        note: str = "",
        replaced: list[str] | None = None,
    ) -> None:
        with self._transaction() as db:
            self._fence(db, batch_id)
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
                "INSERT OR IGNORE INTO outputs (batch_id, path) VALUES (?, ?)",
                [(batch_id, path) for path in outputs],
            )
            db.executemany(
                "INSERT OR IGNORE INTO replaced (batch_id, path) VALUES (?, ?)",
                [(batch_id, path) for path in replaced or []],
            )
            db.execute(
                "UPDATE batches SET state = 'publishing', note = ? WHERE batch_id = ?",
                (note, batch_id),
            )

    def commit(self, batch_id: str) -> None:
        with self._transaction() as db:
            row = db.execute("SELECT state FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
            if row is None or row[0] not in ("publishing", "committed"):
                raise RuntimeError(f"batch {batch_id} is not publishing (state {row})")
            db.execute(
                "UPDATE batches SET state = 'committed', finished_at = ?"
                " WHERE batch_id = ? AND state = 'publishing'",
                (time.time(), batch_id),
            )
        _RUNNING.discard(batch_id)

    def record_failure(self, batch_id: str, reason: str) -> int:
        with self._transaction() as db:
            files = db.execute(
                "SELECT path, sha256 FROM files WHERE batch_id = ?", (batch_id,)
            ).fetchall()
            db.executemany(
                "INSERT INTO failures (path, sha256, count, last_reason) VALUES (?, ?, 1, ?)"
                " ON CONFLICT (path, sha256) DO UPDATE SET count = count + 1,"
                " last_reason = excluded.last_reason",
                [(path, sha, reason) for path, sha in files],
            )
            counts = [
                db.execute(
                    "SELECT count FROM failures WHERE path = ? AND sha256 = ?", (path, sha)
                ).fetchone()[0]
                for path, sha in files
            ]
        return max(counts, default=0)

    def release(self, batch_id: str, note: str = "") -> None:
        with self._transaction() as db:
            self._fence(db, batch_id)
            self._drop_claims(db, batch_id, "failed", note)
        _RUNNING.discard(batch_id)

    def abort(self, batch_id: str, note: str = "") -> bool:
        with self._transaction() as db:
            row = db.execute("SELECT state FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
            aborted = row is not None and row[0] == "claimed"
            if aborted:
                self._drop_claims(db, batch_id, "aborted", note)
        _RUNNING.discard(batch_id)
        return aborted

    @staticmethod
    def _drop_claims(db: sqlite3.Connection, batch_id: str, state: str, note: str) -> None:
        db.execute("DELETE FROM files WHERE batch_id = ? AND state = 'claimed'", (batch_id,))
        db.execute("DELETE FROM outputs WHERE batch_id = ?", (batch_id,))
        db.execute(
            "UPDATE batches SET state = ?, finished_at = ?, note = ? WHERE batch_id = ?",
            (state, time.time(), note, batch_id),
        )

    def batch_state(self, batch_id: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT state FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return None if row is None else str(row[0])

    def in_flight_outputs(self) -> set[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT o.path FROM outputs o JOIN batches b USING (batch_id)"
                " WHERE b.state = 'publishing'"
            ).fetchall()
        return {str(row[0]) for row in rows}

    @staticmethod
    def _describe(db: sqlite3.Connection, batch_id: str, state: str) -> StaleBatch:
        outputs = [
            str(row[0])
            for row in db.execute("SELECT path FROM outputs WHERE batch_id = ?", (batch_id,))
        ]
        files = db.execute("SELECT COUNT(*) FROM files WHERE batch_id = ?", (batch_id,)).fetchone()
        replaced = tuple(
            str(row[0])
            for row in db.execute("SELECT path FROM replaced WHERE batch_id = ?", (batch_id,))
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
        now = time.time()
        stale: list[StaleBatch] = []
        with self._connect() as db:
            rows = db.execute(
                "SELECT batch_id, state, owner, lease_until FROM batches"
                " WHERE state IN ('claimed', 'publishing')"
            ).fetchall()
            for batch_id, state, owner, lease_until in rows:
                owner_host, _, pid = str(owner).rpartition(":")
                local = owner_host == host
                if local and int(pid) == os.getpid():
                    gone = batch_id not in _RUNNING  # left behind by an error in this process
                else:
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
        """Outputs of committed batches that no committed compaction replaced: the lake."""
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


def open_ledger(lake: Path, url: str | None = None) -> SqliteLedger | PostgresLedger:
    """The ledger at `url` (PostgreSQL), else the lake's own embedded one
    (`state/ledger.sqlite` in its control folder)."""
    if url is not None:
        from cablestream.tasks.ledger_postgres import PostgresLedger

        return PostgresLedger(url)
    return SqliteLedger(layout.ledger_path(lake))
