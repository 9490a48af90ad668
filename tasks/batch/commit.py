"""The commit protocol of one batch: write + commit, hold back, and settle what was left.

A batch moves `claimed` -> `publishing` -> `committed` (`tasks/ledger/protocol.py`):
rows and quarantine files are staged, the ledger records them (the point of no
return), they are renamed into place, the batch is committed. `recover` and
`abandon` settle a batch nobody finishes: undone before the point of no return,
finished (`finish`) after it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import CABLE_SCHEMA
from cablestream.tasks.batch import replace
from cablestream.tasks.batch.claim import ClaimedBatch
from cablestream.tasks.batch.route import ParsedBatch
from cablestream.tasks.lake import quarantine, writer
from cablestream.tasks.lake.quarantine import QuarantineEntry
from cablestream.tasks.lake.snapshot import refresh_snapshot
from cablestream.tasks.ledger.protocol import FileOutcome, Ledger, StaleBatch
from cablestream.tasks.ledger.sql import forget_running


def finish(lake: Path, ledger: Ledger, batch: StaleBatch, snapshot: bool = True) -> None:
    """Roll a `publishing` batch forward: rename its staged files left, delete the files
    it replaces (a compaction's, a replacement's), commit it, make the next snapshot
    (unless `snapshot` is False: an ingest pass paces its snapshots itself).
    Idempotent: its owner and recovery may both run it, one after the other or at once."""
    writer.publish_staged(lake, batch.batch_id)
    for relative in batch.replaced:
        writer.remove_output(lake, relative)
    ledger.commit(batch.batch_id)
    if snapshot:
        refresh_snapshot(lake, ledger.live_outputs)
    writer.clear_staging(lake, batch.batch_id)


# Batch states nobody works on any more (see tasks/ledger/protocol.py).
_SETTLED = ("committed", "aborted", "failed")


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
            finish(lake, ledger, stale)
        elif ledger.abort(stale.batch_id, note="recovered: claimed but never committed"):
            writer.clear_staging(lake, stale.batch_id)
        else:
            continue
        recovered.append(stale.batch_id)
    # A crash between a commit and its snapshot left the snapshot behind: catch it up.
    refresh_snapshot(lake, ledger.live_outputs)
    writer.sweep_staging(lake, lambda batch_id: ledger.batch_state(batch_id) in _SETTLED)
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
            finish(lake, ledger, publishing)
            return True
        undone = state == "claimed" and ledger.abort(batch_id, note=note)
        writer.clear_staging(lake, batch_id)
        return undone
    finally:
        forget_running(batch_id)


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
    rows_replaced: int = 0  # rows of older versions (or an older parse) this batch replaced
    reasons: dict[str, int] = field(default_factory=dict)
    expectations_failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    def markdown(self) -> str:
        lines = [
            f"# Ingest batch `{self.batch_id}`: {self.status}",
            "",
            "| files | bytes | duplicates | cables | rows written | rows quarantined "
            "| files quarantined | rows replaced | seconds |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {self.files} | {self.bytes} | {self.duplicates} | {self.cables} "
            f"| {self.rows_written} | {self.rows_quarantined} | {self.files_quarantined} "
            f"| {self.rows_replaced} | {self.seconds:.2f} |",
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


@dataclass(slots=True)
class StagedBatch:
    """A batch's outputs written to its staging folder, told in counts: what the commit needs.

    Small and picklable (no rows, no bytes): the group task (`tasks/batch/group.py`)
    returns it from whatever process or machine it ran on, and the flow commits it.
    """

    batch_id: str
    outcomes: dict[int, FileOutcome]
    files: int = 0
    bytes: int = 0
    cables: int = 0
    duplicates: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    files_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    failed_rules: list[str] = field(default_factory=list)
    # Validation could not run: only whole-file rejections are staged (see `stage_held`).
    unevaluated: list[str] = field(default_factory=list)


def _rejected(
    table: pa.Table, rejections: list[tuple[str, str, str]]
) -> tuple[pa.Table, list[QuarantineEntry]]:
    """The rows validation dropped (with `quarantine_reason`) and their quarantine entries."""
    by_id = {record_id: (reason, detail) for record_id, reason, detail in rejections}
    mask = pc.is_in(table.column("record_id"), pa.array(list(by_id), pa.string()))
    rows = table.filter(mask)
    rows = rows.append_column(
        replace.REJECTED_REASON,
        pa.array([by_id[r][0] for r in rows.column("record_id").to_pylist()], pa.string()),
    )
    entries = []
    for row in rows.select(
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
    return rows, entries


def stage_batch(
    lake: Path,
    batch: ClaimedBatch,
    parsed: ParsedBatch,
    accepted: pa.Table,
    rejections: list[tuple[str, str, str]],
    failed_rules: list[str] | None = None,
) -> StagedBatch:
    """Write a batch's rows, dropped rows and quarantine entries into its staging folder.

    `rejections` are (record_id, reason, detail) of rows validation dropped.
    `failed_rules` are `fail` rules the batch did not pass: its rows are written all
    the same, and the ledger's batch note and the summary say which rules failed.
    Whole-file rejections keep a copy of the source (content-addressed, outside staging).
    """
    batch_id = batch.batch_id
    entries = list(parsed.entries)
    rejected_rows = CABLE_SCHEMA.empty_table()
    if rejections:
        rejected_rows, dropped = _rejected(parsed.table, rejections)
        entries += dropped
    # Not for oversized/unreadable files: no bytes.
    copy_paths = {
        sha: quarantine.keep_source_copy(lake, sha, data)
        for sha, data in parsed.source_copies.items()
    }
    for entry in entries:
        if entry.record_id is None:
            entry.copy_path = copy_paths.get(entry.source_sha256)
    writer.clear_staging(lake, batch_id)
    writer.stage_rows(_stamp(accepted, batch_id), lake, batch_id)
    quarantine.stage_reasons(lake, batch_id, entries)
    quarantine.stage_rejected_rows(lake, batch_id, _stamp(rejected_rows, batch_id))
    return StagedBatch(
        batch_id=batch_id,
        outcomes=parsed.outcomes,
        files=len(batch.files),
        bytes=batch.bytes,
        cables=parsed.cables,
        duplicates=parsed.duplicates,
        rows_written=accepted.num_rows,
        rows_quarantined=rejected_rows.num_rows,
        files_quarantined=sum(1 for o in parsed.outcomes.values() if o.state == "quarantined"),
        reasons=dict(Counter(entry.reason for entry in entries)),
        failed_rules=list(failed_rules or []),
    )


def stage_held(
    lake: Path, batch: ClaimedBatch, parsed: ParsedBatch, unevaluated: list[str]
) -> StagedBatch:
    """Validation could not run: stage only the files the parser rejected whole.

    Nothing is known against the batch's cables, so none is written; the commit
    (`commit_held`) releases the files for a retry, or records them `held`.
    """
    quarantined = {
        file_id for file_id, outcome in parsed.outcomes.items() if outcome.state == "quarantined"
    }
    paths = {item.claim.path for item in batch.files if item.claim.file_id in quarantined}
    held = ParsedBatch(batch.batch_id, CABLE_SCHEMA.empty_table(), [], {}, parsed.source_copies)
    held.entries = [entry for entry in parsed.entries if entry.source_path in paths]
    held.outcomes = parsed.outcomes
    staged = stage_batch(lake, batch, held, held.table, [])
    staged.cables = parsed.cables
    staged.unevaluated = list(unevaluated)
    return staged


def _restage(
    lake: Path, batch_id: str, kept: replace.Kept, gone: frozenset[str]
) -> tuple[int, int]:
    """Add what stays of the replaced files to the batch's staged outputs, leaving out the
    rows and entries of `gone` sources; returns the batch's own rows and dropped rows left.

    Only a replacement calls it (files changed in place, reprocessing): the staged
    quarantine tables are read back (they are small) and written again with the kept
    rows; the kept data rows become staged files of their own.
    """
    own_rows = 0
    for item in writer.staged_tree(lake, batch_id):
        if not item.relative.startswith("year="):
            continue
        rows = pq.read_table(item.staged)
        if gone:
            rows = replace.without(rows, gone)
            if rows.num_rows:
                writer.write_parquet(rows, item.staged)
            else:
                item.staged.unlink()
        own_rows += rows.num_rows
    if kept.rows is not None and kept.rows.num_rows:
        writer.stage_rows(kept.rows, lake, batch_id, part="kept")
    own_rejected = 0
    for folder, more in (
        (layout.QUARANTINE_REASONS_DIR, kept.reasons),
        (layout.QUARANTINE_ROWS_DIR, kept.rejected),
    ):
        path = quarantine.staged_table_path(lake, batch_id, folder)
        own = pq.read_table(path) if path.exists() else None
        if own is not None and gone:
            own = replace.without(own, gone)
        if folder == layout.QUARANTINE_ROWS_DIR:
            own_rejected = own.num_rows if own is not None else 0
        tables = [table for table in (own, more) if table is not None and table.num_rows]
        path.unlink(missing_ok=True)
        if tables:
            rest = tables[1] if len(tables) > 1 else None
            quarantine.stage_table(lake, batch_id, folder, replace.merged(tables[0], rest))
    return own_rows, own_rejected


def commit_staged(
    lake: Path,
    ledger: Ledger,
    staged: StagedBatch,
    reprocessed: frozenset[str] = frozenset(),
    snapshot: bool = True,
) -> BatchSummary:
    """Record a staged batch in the ledger, publish it, commit it.

    The batch replaces (`tasks/batch/replace.py`) the rows of the older versions of its
    changed files, and of the `reprocessed` sources (content hashes parsed again).
    `snapshot` False: the caller makes the lake's next snapshot (`finish`).
    """
    started = time.perf_counter()
    batch_id = staged.batch_id
    rows_written, rows_quarantined = staged.rows_written, staged.rows_quarantined
    replacing = replace.superseding(ledger.older_versions(batch_id), staged.outcomes, reprocessed)
    with replace.lake_lock(lake, held=bool(replacing.sources)):
        kept = replace.Kept()
        if replacing.sources:
            settled = replace.rewritable(lake, ledger)
            kept = replace.keep_other_sources(lake, replacing.sources, settled)
            # A reprocessed source whose rows went meanwhile (a newer version of its file
            # replaced them) is not brought back.
            gone = reprocessed - kept.found
            writer.pull_staging(lake, batch_id)  # an object-store lake: rewritten here
            rows_written, rows_quarantined = _restage(lake, batch_id, kept, gone)
        # An object-store lake: every staged file on the store before the point of no return.
        writer.push_staging(lake, batch_id)
        outputs = writer.staged_outputs(lake, batch_id)
        if rows_written and not any(relative.startswith("year=") for relative in outputs):
            raise RuntimeError(
                f"batch {batch_id}: its {rows_written} rows were staged where this process"
                f" cannot see them ({layout.staging_dir(lake, batch_id)}): Dask workers on"
                " other machines need the lake at the same path and the same"
                f" {layout.CONTROL_ENV} (a shared filesystem), or an object-store lake"
            )
        note = f"{rows_written} rows"
        if kept.found:
            note += (
                f"; replaced {kept.rows_removed} rows and {kept.entries_removed} quarantine"
                f" entries of {len(kept.found)} older sources"
            )
        if staged.failed_rules:
            note += "; failed rules: " + ", ".join(staged.failed_rules)
        # The point of no return (fenced: raises BatchLost when the claim was taken over).
        ledger.prepare_commit(
            batch_id,
            outputs,
            staged.outcomes,
            note,
            replaced=kept.replaced,
            superseded=list(replacing.superseded_files),
        )
        publishing = ledger.publishing_batch(batch_id)
        assert publishing is not None
        finish(lake, ledger, publishing, snapshot)
    data_files = sum(1 for relative in outputs if relative.startswith("year="))
    return BatchSummary(
        batch_id=batch_id,
        status="committed",
        files=staged.files,
        bytes=staged.bytes,
        duplicates=staged.duplicates,
        cables=staged.cables,
        rows_written=rows_written,
        rows_quarantined=rows_quarantined,
        rows_replaced=kept.rows_removed,
        files_quarantined=staged.files_quarantined,
        reasons=dict(staged.reasons),
        expectations_failed=list(staged.failed_rules),
        seconds=time.perf_counter() - started,
        note=f"{data_files} Parquet files written",
    )


def write_and_commit(
    lake: Path,
    ledger: Ledger,
    batch: ClaimedBatch,
    parsed: ParsedBatch,
    accepted: pa.Table,
    rejections: list[tuple[str, str, str]],
    failed_rules: list[str] | None = None,
    reprocessed: frozenset[str] = frozenset(),
) -> BatchSummary:
    """Stage a batch (`stage_batch`) and commit it (`commit_staged`), in this process."""
    staged = stage_batch(lake, batch, parsed, accepted, rejections, failed_rules)
    return commit_staged(lake, ledger, staged, reprocessed)


def commit_held(
    lake: Path, ledger: Ledger, staged: StagedBatch, max_attempts: int, snapshot: bool = True
) -> BatchSummary:
    """A batch validation could not run on (`stage_held`): release its files for a retry;
    at the limit record them held.

    A held file is not quarantined (nothing is known against its cables) and no copy
    is made: the ledger keeps it as `held` with the reason, so later passes skip it
    until its content changes or it is requeued. Files the parser rejected whole are
    quarantined as usual.
    """
    unevaluated = staged.unevaluated
    detail = "validation could not evaluate: " + ", ".join(unevaluated)
    attempts = ledger.record_failure(staged.batch_id, detail)
    if attempts < max_attempts:
        ledger.release(staged.batch_id, note=f"attempt {attempts}: {detail}")
        writer.clear_staging(lake, staged.batch_id)
        return BatchSummary(
            batch_id=staged.batch_id,
            status="retry",
            files=staged.files,
            bytes=staged.bytes,
            cables=staged.cables,
            expectations_failed=unevaluated,
            note=f"Held back: attempt {attempts} of {max_attempts}; files released for retry.",
        )
    staged.outcomes = {
        file_id: outcome if outcome.state != "committed" else FileOutcome("held", detail)
        for file_id, outcome in staged.outcomes.items()
    }
    summary = commit_staged(lake, ledger, staged, snapshot=snapshot)
    summary.status = "held"
    summary.expectations_failed = unevaluated
    summary.note = f"Held back after {attempts} attempts: {detail}. Files recorded as held."
    return summary


def hold_batch(
    lake: Path,
    ledger: Ledger,
    batch: ClaimedBatch,
    parsed: ParsedBatch,
    unevaluated: list[str],
    max_attempts: int,
) -> BatchSummary:
    """`stage_held` and `commit_held`, in this process."""
    return commit_held(lake, ledger, stage_held(lake, batch, parsed, unevaluated), max_attempts)
