"""The steps of one ingest micro-batch as plain functions (the flow wraps them in tasks).

claim -> parse -> (validate, elsewhere) -> write + commit, or fail. Each step
takes and returns plain values so it can be tested without Prefect.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import CABLE_SCHEMA, records_to_table
from cablestream.schemas.record import CableRecord, NoCable
from cablestream.tasks import lake as lake_io
from cablestream.tasks import quarantine, read
from cablestream.tasks.discover import InboxFile, Settler, scan_inbox
from cablestream.tasks.ledger import Candidate, ClaimedFile, FileOutcome, Ledger, forget_running
from cablestream.tasks.parse import parse_source
from cablestream.tasks.quarantine import QuarantineEntry
from cablestream.tasks.read import read_inbox_file


def new_batch_id() -> str:
    """`20261125T100450Z-3f9a1c2b`: sortable by start time, unique by its random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def plan_batches(files: list[InboxFile], max_files: int, max_bytes: int) -> list[list[InboxFile]]:
    """Group ready files into micro-batches of at most `max_files` files / `max_bytes` bytes."""
    batches: list[list[InboxFile]] = []
    current: list[InboxFile] = []
    size = 0
    for item in files:
        if current and (len(current) >= max_files or size + item.size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item.size
    if current:
        batches.append(current)
    return batches


def fresh_files(inbox: Path, ledger: Ledger, only: list[str] | None = None) -> list[InboxFile]:
    """Inbox files the ledger does not hold with the same path, size and mtime.

    `only` limits the result to those inbox-relative paths.
    """
    files = list(scan_inbox(inbox))
    if only is not None:
        wanted = set(only)
        files = [item for item in files if item.path in wanted]
    known = ledger.fingerprints()
    return [item for item in files if (item.path, item.size, item.mtime_ns) not in known]


def has_work(inbox: Path, lake: Path, ledger_url: str | None, settle_seconds: float) -> bool:
    """Whether a pass would do anything: a batch to recover or a new ready file."""
    from cablestream.tasks.ledger import open_ledger

    if ledger_url is None and not layout.ledger_path(lake).exists():
        return any(Settler(settle_seconds).ready(list(scan_inbox(inbox))))
    ledger = open_ledger(lake, ledger_url)
    return bool(ledger.stale_batches()) or bool(
        Settler(settle_seconds).ready(fresh_files(inbox, ledger))
    )


def recover(lake: Path, ledger: Ledger) -> list[str]:
    """Settle the batches nobody works on any more (see `Ledger.stale_batches`).

    A batch past its point of no return (`publishing`) is finished; one before it
    published nothing, so its claims are forgotten (the files are taken again) and its
    staging folder removed. Undoing is conditional in the ledger: a batch its owner
    moved to `publishing` meanwhile is left to be finished.
    """
    recovered = []
    for stale in ledger.stale_batches():
        if stale.state == "publishing":
            lake_io.finish(lake, ledger, stale)
        elif ledger.abort(stale.batch_id, note="recovered: claimed but never committed"):
            lake_io.clear_staging(lake, stale.batch_id)
        else:
            continue
        recovered.append(stale.batch_id)
    return recovered


def abandon(lake: Path, ledger: Ledger, batch_id: str, note: str) -> bool:
    """Settle a batch this process could not finish (an error, a stop), as recovery would.

    Past its point of no return it is finished; before it, undone. Returns False when
    there was nothing to do (committed, released, or taken over by another process).
    Whatever happens, the batch is no longer this process's running batch: if this
    fails too (disk full), the next recovery of any process settles it.
    """
    try:
        state = ledger.batch_state(batch_id)
        publishing = ledger.publishing_batch(batch_id) if state == "publishing" else None
        if publishing is not None:
            lake_io.finish(lake, ledger, publishing)
            return True
        undone = state == "claimed" and ledger.abort(batch_id, note=note)
        lake_io.clear_staging(lake, batch_id)
        return undone
    finally:
        forget_running(batch_id)


@dataclass(slots=True)
class LoadedFile:
    claim: ClaimedFile
    data: bytes | None
    failure: str | None
    detail: str
    location: Path  # the file on disk (its name need not be the ledger's text path)


@dataclass(slots=True)
class ClaimedBatch:
    batch_id: str
    files: list[LoadedFile]

    @property
    def bytes(self) -> int:
        return sum(item.claim.size for item in self.files)


def read_and_claim(
    inbox: Path, files: list[InboxFile], ledger: Ledger, batch_id: str, max_file_bytes: int
) -> ClaimedBatch:
    """Read and hash each file (bytes kept for parsing), then claim them in one transaction.

    A file that went away, or whose size or mtime (of the opened file) moved since it
    was found, is left for a later scan. One that cannot be read is claimed under a
    stand-in hash (it goes to the quarantine) and read again after a back-off.
    """
    loaded: dict[str, tuple[Candidate, bytes | None, str | None, str, Path]] = {}
    for item in files:
        location = item.location(inbox)
        source = read_inbox_file(inbox, item.raw_path or item.path, max_file_bytes)
        if source.failure in (read.VANISHED, read.CHANGING):
            continue
        unreadable = source.failure in (read.UNREADABLE, read.NOT_REGULAR)
        if not unreadable and (source.size, source.mtime_ns) != (item.size, item.mtime_ns):
            continue
        candidate = Candidate(item.path, source.sha256, item.size, item.mtime_ns, unreadable)
        loaded[item.path] = (candidate, source.data, source.failure, source.detail, location)
    claimed = ledger.claim(batch_id, [entry[0] for entry in loaded.values()])
    batch = ClaimedBatch(batch_id, [])
    for claim in claimed:
        _, data, failure, detail, location = loaded[claim.path]
        batch.files.append(LoadedFile(claim, data, failure, detail, location))
    return batch


@dataclass(slots=True)
class ParsedBatch:
    batch_id: str
    table: pa.Table
    entries: list[QuarantineEntry]
    outcomes: dict[int, FileOutcome]
    source_copies: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes
    cables: int = 0
    duplicates: int = 0


def parse_batch(batch: ClaimedBatch, drop_subjects: bool = False) -> ParsedBatch:
    """Split and parse every claimed file; NoCable results and read failures become entries.

    `drop_subjects` is fault injection for validation tests: it blanks the
    subject of every record, as a broken parser would.
    """
    records: list[CableRecord] = []
    entries: list[QuarantineEntry] = []
    outcomes: dict[int, FileOutcome] = {}
    copies: dict[str, bytes] = {}
    duplicates = 0
    for item in batch.files:
        claim = item.claim
        if claim.duplicate_of is not None:
            outcomes[claim.file_id] = FileOutcome(
                "duplicate", f"same content as {claim.duplicate_of}"
            )
            duplicates += 1
            continue
        if item.data is None:
            entries.append(
                QuarantineEntry(claim.path, claim.sha256, item.failure or "unreadable", item.detail)
            )
            outcomes[claim.file_id] = FileOutcome("quarantined", item.failure)
            continue
        results = parse_source(item.data, claim.path)
        cables = [result for result in results if isinstance(result, CableRecord)]
        for result in results:
            if isinstance(result, NoCable):
                entries.append(
                    QuarantineEntry(
                        claim.path,
                        claim.sha256,
                        result.reason,
                        result.detail,
                        source_offset=result.source_offset,
                    )
                )
        if cables:
            records.extend(cables)
            outcomes[claim.file_id] = FileOutcome("committed")
        else:
            copies[claim.sha256] = item.data
            reason = next(
                (e.reason for e in reversed(entries) if e.source_path == claim.path), None
            )
            outcomes[claim.file_id] = FileOutcome("quarantined", reason)
    if drop_subjects:
        for record in records:
            record.subject = None
    table = records_to_table(records) if records else CABLE_SCHEMA.empty_table()
    return ParsedBatch(
        batch.batch_id, table, entries, outcomes, copies, cables=len(records), duplicates=duplicates
    )


@dataclass(slots=True)
class BatchSummary:
    """What one batch did; also the body of its Prefect artifact."""

    batch_id: str
    # committed (written; `expectations_failed` non-empty flags it) | retry (held back,
    # files released) | held (held back too often: files recorded held)
    status: str
    files: int = 0
    bytes: int = 0
    duplicates: int = 0
    cables: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    files_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    expectations_failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    def markdown(self) -> str:
        lines = [
            f"# Ingest batch `{self.batch_id}`: {self.status}",
            "",
            "| files | bytes | duplicates | cables | rows written | rows quarantined "
            "| files quarantined | seconds |",
            "|---|---|---|---|---|---|---|---|",
            f"| {self.files} | {self.bytes} | {self.duplicates} | {self.cables} "
            f"| {self.rows_written} | {self.rows_quarantined} | {self.files_quarantined} "
            f"| {self.seconds:.2f} |",
        ]
        if self.reasons:
            lines += ["", "Quarantine reasons:", ""]
            lines += [f"- `{reason}`: {count}" for reason, count in sorted(self.reasons.items())]
        if self.expectations_failed:
            written = "rows written" if self.status == "committed" else "batch held back"
            lines += ["", f"Failed expectations ({written}):", ""]
            lines += [f"- `{name}`" for name in self.expectations_failed]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"


def _stamp(table: pa.Table, batch_id: str) -> pa.Table:
    """Set batch_id and ingested_at on every row."""
    now = pa.scalar(datetime.now(UTC), pa.timestamp("ms", tz="UTC"))
    table = table.set_column(
        table.schema.get_field_index("batch_id"),
        CABLE_SCHEMA.field("batch_id"),
        pa.array([batch_id] * table.num_rows, pa.string()),
    )
    return table.set_column(
        table.schema.get_field_index("ingested_at"),
        CABLE_SCHEMA.field("ingested_at"),
        pa.repeat(now, table.num_rows),
    )


def write_and_commit(
    lake: Path,
    ledger: Ledger,
    batch: ClaimedBatch,
    parsed: ParsedBatch,
    accepted: pa.Table,
    rejections: list[tuple[str, str, str]],
    failed_rules: list[str] | None = None,
) -> BatchSummary:
    """Stage rows and quarantine files, record them, publish them, commit the batch.

    `rejections` are (record_id, reason, detail) of rows validation dropped.
    `failed_rules` are `fail` rules the batch did not pass: its rows are written all
    the same, and the ledger's batch note and the summary say which rules failed.
    """
    started = time.perf_counter()
    batch_id = batch.batch_id
    entries = list(parsed.entries)
    rejected_rows = CABLE_SCHEMA.empty_table()
    if rejections:
        by_id = {record_id: (reason, detail) for record_id, reason, detail in rejections}
        mask = pc.is_in(parsed.table.column("record_id"), pa.array(list(by_id), pa.string()))
        rejected_rows = parsed.table.filter(mask)
        rejected_rows = rejected_rows.append_column(
            "quarantine_reason",
            pa.array(
                [by_id[r][0] for r in rejected_rows.column("record_id").to_pylist()], pa.string()
            ),
        )
        for row in rejected_rows.select(
            ["record_id", "source_path", "source_sha256", "source_offset"]
        ).to_pylist():
            reason, detail = by_id[row["record_id"]]
            entries.append(
                QuarantineEntry(
                    row["source_path"],
                    row["source_sha256"],
                    reason,
                    detail,
                    source_offset=row["source_offset"],
                    record_id=row["record_id"],
                )
            )
    # Whole-file rejections keep a copy of the source (not for oversized/unreadable: no bytes).
    copy_paths = {
        sha: quarantine.keep_source_copy(lake, sha, data)
        for sha, data in parsed.source_copies.items()
    }
    for entry in entries:
        if entry.record_id is None:
            entry.copy_path = copy_paths.get(entry.source_sha256)

    lake_io.clear_staging(lake, batch_id)
    written = lake_io.stage_rows(_stamp(accepted, batch_id), lake, batch_id)
    quarantine.stage_reasons(lake, batch_id, entries)
    quarantine.stage_rejected_rows(lake, batch_id, _stamp(rejected_rows, batch_id))
    staged = lake_io.staged_tree(lake, batch_id)
    note = f"{accepted.num_rows} rows"
    if failed_rules:
        note += "; failed rules: " + ", ".join(failed_rules)
    # The point of no return (fenced: raises BatchLost when the claim was taken over).
    ledger.prepare_commit(batch_id, [item.relative for item in staged], parsed.outcomes, note)
    lake_io.publish(lake, staged)
    ledger.commit(batch_id)
    lake_io.clear_staging(lake, batch_id)

    reasons = Counter(entry.reason for entry in entries)
    return BatchSummary(
        batch_id=batch_id,
        status="committed",
        files=len(batch.files),
        bytes=batch.bytes,
        duplicates=parsed.duplicates,
        cables=parsed.cables,
        rows_written=accepted.num_rows,
        rows_quarantined=rejected_rows.num_rows,
        files_quarantined=sum(1 for o in parsed.outcomes.values() if o.state == "quarantined"),
        reasons=dict(reasons),
        expectations_failed=list(failed_rules or []),
        seconds=time.perf_counter() - started,
        note=f"{len(written)} Parquet files written",
    )


def hold_batch(
    lake: Path,
    ledger: Ledger,
    batch: ClaimedBatch,
    parsed: ParsedBatch,
    unevaluated: list[str],
    max_attempts: int,
) -> BatchSummary:
    """Validation could not run: release the files for a retry; at the limit record them held.

    A held file is not quarantined (nothing is known against its cables) and no copy
    is made: the ledger keeps it as `held` with the reason, so later passes skip it
    until its content changes or it is requeued. Files the parser rejected whole are
    quarantined as usual.
    """
    detail = "validation could not evaluate: " + ", ".join(unevaluated)
    attempts = ledger.record_failure(batch.batch_id, detail)
    if attempts < max_attempts:
        ledger.release(batch.batch_id, note=f"attempt {attempts}: {detail}")
        lake_io.clear_staging(lake, batch.batch_id)
        return BatchSummary(
            batch_id=batch.batch_id,
            status="retry",
            files=len(batch.files),
            bytes=batch.bytes,
            cables=parsed.cables,
            expectations_failed=unevaluated,
            note=f"Held back: attempt {attempts} of {max_attempts}; files released for retry.",
        )
    held = ParsedBatch(batch.batch_id, CABLE_SCHEMA.empty_table(), [], {}, parsed.source_copies)
    quarantined: set[int] = set()
    for file_id, outcome in parsed.outcomes.items():
        keep = outcome.state != "committed"
        held.outcomes[file_id] = outcome if keep else FileOutcome("held", detail)
        if outcome.state == "quarantined":
            quarantined.add(file_id)
    paths = {item.claim.path for item in batch.files if item.claim.file_id in quarantined}
    held.entries = [entry for entry in parsed.entries if entry.source_path in paths]
    summary = write_and_commit(lake, ledger, batch, held, held.table, [])
    summary.status = "held"
    summary.cables = parsed.cables
    summary.expectations_failed = unevaluated
    summary.note = f"Held back after {attempts} attempts: {detail}. Files recorded as held."
    return summary


def archive_settled(inbox: Path, archive: Path, batch: ClaimedBatch) -> int:
    """Move the batch's source files (still unchanged) to `archive`, keeping relative paths."""
    moved = 0
    for item in batch.files:
        source = item.location
        try:
            stat = source.stat()
        except OSError:
            continue
        if (stat.st_size, stat.st_mtime_ns) != (item.claim.size, item.claim.mtime_ns):
            continue
        target = layout.inside(archive, archive / source.relative_to(inbox))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        marker = source.with_name(source.name + ".done")
        if marker.exists():
            os.replace(marker, target.with_name(target.name + ".done"))
        moved += 1
    return moved
