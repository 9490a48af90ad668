"""The ingest ledger: which source file (path + content hash) went into which batch.

`Ledger` is the interface the flow uses; `SqliteLedger` is the embedded
default in the control folder's `state/ledger.sqlite` (WAL, `schemas/lake.py`). A server database can replace
it by implementing the same Protocol.

States of a file row: `claimed` (a batch is working on it), then at commit
`committed` (its cables are in the lake), `duplicate` (same content as a
committed file under another name, not ingested again) or `quarantined`
(rejected whole). A batch left `claimed` by a dead process is *stale*:
recovery removes its outputs and deletes its claims so the files are taken
again.
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
from typing import Protocol

from cablestream.schemas import lake as layout

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id     TEXT PRIMARY KEY,
    state        TEXT NOT NULL,          -- claimed | committed | failed | aborted
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
    state        TEXT NOT NULL,          -- claimed | committed | duplicate | quarantined
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
CREATE TABLE IF NOT EXISTS failures (
    path         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    count        INTEGER NOT NULL,
    last_reason  TEXT,
    PRIMARY KEY (path, sha256)
);
"""

DEFAULT_LEASE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A ready file with its content hash, offered for claiming."""

    path: str
    sha256: str
    size: int
    mtime_ns: int


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
    outputs: list[str]
    files: int
    # Set for a compaction that had published its outputs: finish it, don't undo it.
    replaced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileOutcome:
    state: str  # committed | duplicate | quarantined
    reason: str | None = None


class Ledger(Protocol):
    def fingerprints(self) -> set[tuple[str, int, int]]:
        """(path, size, mtime_ns) of every file the ledger holds: those need no hashing."""
        ...

    def claim(self, batch_id: str, candidates: list[Candidate]) -> list[ClaimedFile]:
        """Claim the candidates not yet known, in one transaction; returns what was claimed."""
        ...

    def record_outputs(self, batch_id: str, paths: list[str]) -> None:
        """Remember output files (relative to the lake) before they are moved into place."""
        ...

    def commit(self, batch_id: str, outcomes: dict[int, FileOutcome], note: str = "") -> None:
        """Settle the batch and each of its files, in one transaction."""
        ...

    def record_failure(self, batch_id: str, reason: str) -> int:
        """Count one failed attempt for every file of the batch; returns the highest count."""
        ...

    def release(self, batch_id: str, note: str = "") -> None:
        """Give the batch's files back (they will be claimed again) and mark it failed."""
        ...

    def stale_batches(self) -> list[StaleBatch]:
        """Claimed batches whose owner is gone (crash) or whose lease ran out."""
        ...

    def pending_outputs(self, batch_id: str) -> list[str] | None:
        """Recorded outputs of a batch still claimed; None once it is settled."""
        ...

    def abort(self, batch_id: str, note: str = "") -> None:
        """Forget a stale batch's claims and outputs (after its output files are removed)."""
        ...

    def begin(self, batch_id: str, note: str = "") -> None:
        """Open a batch that claims no inbox files (a compaction of the lake)."""
        ...

    def record_replaced(self, batch_id: str, paths: list[str]) -> None:
        """The files a published compaction replaces: from here on recovery finishes it."""
        ...

    def in_flight_outputs(self) -> set[str]:
        """Recorded outputs of every batch still claimed: files compaction must leave alone."""
        ...


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
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
            rows = db.execute("SELECT path, size, mtime_ns FROM files").fetchall()
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
        return claimed

    def record_outputs(self, batch_id: str, paths: list[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO outputs (batch_id, path) VALUES (?, ?)",
                [(batch_id, path) for path in paths],
            )
            db.execute(
                "UPDATE batches SET lease_until = ? WHERE batch_id = ?",
                (time.time() + self.lease_seconds, batch_id),
            )

    def commit(self, batch_id: str, outcomes: dict[int, FileOutcome], note: str = "") -> None:
        with self._transaction() as db:
            state = db.execute(
                "SELECT state FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            if state is None or state[0] != "claimed":
                raise RuntimeError(f"batch {batch_id} is not claimed (state {state})")
            db.executemany(
                "UPDATE files SET state = ?, reason = ? WHERE file_id = ? AND batch_id = ?",
                [(o.state, o.reason, fid, batch_id) for fid, o in outcomes.items()],
            )
            left = db.execute(
                "SELECT COUNT(*) FROM files WHERE batch_id = ? AND state = 'claimed'", (batch_id,)
            ).fetchone()[0]
            if left:
                raise RuntimeError(f"batch {batch_id}: {left} files have no outcome")
            db.execute(
                "UPDATE batches SET state = 'committed', finished_at = ?, note = ?"
                " WHERE batch_id = ?",
                (time.time(), note, batch_id),
            )

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
        self._drop_claims(batch_id, "failed", note)

    def abort(self, batch_id: str, note: str = "") -> None:
        self._drop_claims(batch_id, "aborted", note)

    def begin(self, batch_id: str, note: str = "") -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO batches (batch_id, state, owner, lease_until, started_at, note)"
                " VALUES (?, 'claimed', ?, ?, ?, ?)",
                (batch_id, _owner(), now + self.lease_seconds, now, note),
            )

    def record_replaced(self, batch_id: str, paths: list[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO replaced (batch_id, path) VALUES (?, ?)",
                [(batch_id, path) for path in paths],
            )

    def in_flight_outputs(self) -> set[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT o.path FROM outputs o JOIN batches b USING (batch_id)"
                " WHERE b.state = 'claimed'"
            ).fetchall()
        return {str(row[0]) for row in rows}

    def _drop_claims(self, batch_id: str, state: str, note: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM files WHERE batch_id = ? AND state = 'claimed'", (batch_id,))
            db.execute("DELETE FROM outputs WHERE batch_id = ?", (batch_id,))
            db.execute(
                "UPDATE batches SET state = ?, finished_at = ?, note = ? WHERE batch_id = ?",
                (state, time.time(), note, batch_id),
            )

    def pending_outputs(self, batch_id: str) -> list[str] | None:
        with self._connect() as db:
            state = db.execute(
                "SELECT state FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            if state is None or state[0] != "claimed":
                return None
            rows = db.execute("SELECT path FROM outputs WHERE batch_id = ?", (batch_id,))
            return [str(row[0]) for row in rows]

    def stale_batches(self) -> list[StaleBatch]:
        host = socket.gethostname()
        now = time.time()
        stale: list[StaleBatch] = []
        with self._connect() as db:
            rows = db.execute(
                "SELECT batch_id, owner, lease_until FROM batches WHERE state = 'claimed'"
            ).fetchall()
            for batch_id, owner, lease_until in rows:
                owner_host, _, pid = str(owner).rpartition(":")
                local = owner_host == host
                if local and int(pid) == os.getpid():
                    continue  # this process's own batch, in progress
                if (local and not _pid_alive(int(pid))) or float(lease_until) < now:
                    outputs = [
                        str(row[0])
                        for row in db.execute(
                            "SELECT path FROM outputs WHERE batch_id = ?", (batch_id,)
                        )
                    ]
                    files = db.execute(
                        "SELECT COUNT(*) FROM files WHERE batch_id = ?", (batch_id,)
                    ).fetchone()[0]
                    replaced = tuple(
                        str(row[0])
                        for row in db.execute(
                            "SELECT path FROM replaced WHERE batch_id = ?", (batch_id,)
                        )
                    )
                    stale.append(StaleBatch(str(batch_id), outputs, int(files), replaced))
        return stale

    def counts(self) -> dict[str, int]:
        """Files per state: for summaries and tests."""
        with self._connect() as db:
            rows = db.execute("SELECT state, COUNT(*) FROM files GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}


def open_ledger(lake: Path) -> SqliteLedger:
    """The lake's own embedded ledger (`state/ledger.sqlite` in its control folder)."""
    return SqliteLedger(layout.ledger_path(lake))
