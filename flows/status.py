"""What `cablestream status` and `cablestream quarantine` report, read from the lake's ledger.

The ledger (the lake's SQLite file, or the PostgreSQL one at `ledger_url`) is
opened read-only here (these commands never change it, and never need Prefect).
Requeueing a quarantined file goes through `Ledger.forget_quarantined`, the one
write these commands make.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cablestream.flows.settings import InputError
from cablestream.schemas import lake as layout
from cablestream.tasks.ledger.sqlite import read_only_ledger

RECENT_BATCHES = 10


def _when(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(float(seconds), UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class BatchLine:
    batch_id: str
    state: str
    started_at: str | None
    finished_at: str | None
    files: int
    owner: str
    note: str | None


@dataclass(frozen=True, slots=True)
class RetryLine:
    path: str
    sha256: str
    failures: int
    last_reason: str | None


@dataclass(slots=True)
class LakeStatus:
    lake: str
    control: str
    files: dict[str, int] = field(default_factory=dict)  # files per ledger state
    recent_batches: list[BatchLine] = field(default_factory=list)
    in_flight: list[BatchLine] = field(default_factory=list)  # claimed or publishing
    retries: list[RetryLine] = field(default_factory=list)  # failed validation, to be retried
    quarantined_files: dict[str, int] = field(default_factory=dict)  # by reason
    quarantine_rows: dict[str, int] = field(default_factory=dict)  # reasons table, by reason

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_BATCH_COLUMNS = (
    "SELECT b.batch_id, b.state, b.started_at, b.finished_at,"
    " (SELECT COUNT(*) FROM files f WHERE f.batch_id = b.batch_id), b.owner, b.note"
    " FROM batches b"
)


def _batch(row: tuple[Any, ...]) -> BatchLine:
    batch_id, state, started, finished, files, owner, note = row
    return BatchLine(
        str(batch_id), str(state), _when(started), _when(finished), int(files), str(owner), note
    )


def lake_status(lake: Path, ledger_url: str | None = None) -> LakeStatus:
    from cablestream.tasks.lake.quarantine import read_reasons

    status = LakeStatus(str(lake.resolve()), str(layout.control_root(lake)))
    with read_only_ledger(lake, ledger_url) as db:
        status.files = {
            str(state): int(count)
            for state, count in db.execute(
                "SELECT state, COUNT(*) FROM files GROUP BY state"
            ).fetchall()
        }
        status.recent_batches = [
            _batch(row)
            for row in db.execute(
                f"{_BATCH_COLUMNS} ORDER BY b.started_at DESC LIMIT ?", (RECENT_BATCHES,)
            ).fetchall()
        ]
        status.in_flight = [
            _batch(row)
            for row in db.execute(
                f"{_BATCH_COLUMNS} WHERE b.state IN ('claimed', 'publishing') ORDER BY b.started_at"
            ).fetchall()
        ]
        # A failure count is kept until the file is settled one way or the other.
        status.retries = [
            RetryLine(str(path), str(sha), int(count), reason)
            for path, sha, count, reason in db.execute(
                "SELECT r.path, r.sha256, r.count, r.last_reason FROM failures r"
                " WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.path = r.path"
                " AND f.sha256 = r.sha256 AND f.state IN ('committed', 'quarantined', 'duplicate'))"
                " ORDER BY r.count DESC, r.path"
            ).fetchall()
        ]
        status.quarantined_files = {
            str(reason or "unknown"): int(count)
            for reason, count in db.execute(
                "SELECT reason, COUNT(*) FROM files WHERE state = 'quarantined' GROUP BY reason"
            ).fetchall()
        }
    reasons = read_reasons(lake).column("reason").to_pylist()
    for reason in reasons:
        status.quarantine_rows[str(reason)] = status.quarantine_rows.get(str(reason), 0) + 1
    return status


@dataclass(frozen=True, slots=True)
class QuarantinedFile:
    path: str  # relative to the inbox
    sha256: str
    reason: str | None
    batch_id: str
    at: str | None
    copy: str | None  # the kept copy, relative to the control folder (if one was kept)


def quarantined_files(lake: Path, ledger_url: str | None = None) -> list[QuarantinedFile]:
    """Source files the ledger holds as quarantined whole, newest first."""
    with read_only_ledger(lake, ledger_url) as db:
        rows = db.execute(
            "SELECT f.path, f.sha256, f.reason, f.batch_id, b.finished_at FROM files f"
            " JOIN batches b ON b.batch_id = f.batch_id WHERE f.state = 'quarantined'"
            " ORDER BY b.finished_at DESC, f.path"
        ).fetchall()
    listed = []
    for path, sha, reason, batch_id, finished in rows:
        relative = layout.quarantine_copy_relative(str(sha))
        kept = relative if layout.output_path(lake, relative).is_file() else None
        listed.append(
            QuarantinedFile(str(path), str(sha), reason, str(batch_id), _when(finished), kept)
        )
    return listed


def requeue(lake: Path, inbox: Path, path: str, ledger_url: str | None = None) -> str:
    """Let the next pass take a quarantined file again (once its cause is fixed).

    The ledger forgets the file's quarantine (and its failed attempts); when
    the inbox no longer holds the path (archived, removed), the quarantine's
    copy is put back there first (written under a temporary name, renamed).
    Returns what was done, for the user.
    """
    from cablestream.tasks.lake.atomic import write_atomic
    from cablestream.tasks.ledger.sqlite import open_ledger

    matches = [item for item in quarantined_files(lake, ledger_url) if item.path == path]
    if not matches:
        raise InputError(f"{path} is not a quarantined file of {lake} (see quarantine ls)")
    item = matches[0]
    target = layout.inside(inbox, inbox / item.path)
    restored = ""
    if not target.exists():
        if item.copy is None:
            raise InputError(
                f"{path}: the inbox no longer holds it and no copy was kept; put it back first"
            )
        data = layout.output_path(lake, item.copy).read_bytes()
        write_atomic(target, lambda temporary: temporary.write_bytes(data))
        restored = " (restored from the quarantine's copy)"
    open_ledger(lake, ledger_url).forget_quarantined(item.path, item.sha256)
    return f"requeued {item.path}{restored}: the next ingest or watch pass takes it again"
