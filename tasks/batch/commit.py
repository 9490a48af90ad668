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


def finish(lake: Path, ledger: Ledger, batch: StaleBatch) -> None:
    """Roll a `publishing` batch forward: rename its staged files left, delete the files
    it replaces (a compaction's, a replacement's), commit it, make the next snapshot.
    Idempotent: its owner and recovery may both run it, one after the other or at once."""
    writer.publish(lake, writer.staged_tree(lake, batch.batch_id))
    for relative in batch.replaced:
        layout.output_path(lake, relative).unlink(missing_ok=True)
    ledger.commit(batch.batch_id)
    refresh_snapshot(lake, ledger.live_outputs)
    writer.clear_staging(lake, batch.batch_id)


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
    """Stage rows and quarantine files, record them, publish them, commit the batch.

    `rejections` are (record_id, reason, detail) of rows validation dropped.
    `failed_rules` are `fail` rules the batch did not pass: its rows are written all
    the same, and the ledger's batch note and the summary say which rules failed.
    The batch replaces (`tasks/batch/replace.py`) the rows of the older versions of its
    changed files, and of the `reprocessed` sources (content hashes parsed again).
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

    writer.clear_staging(lake, batch_id)
    replacing = replace.superseding(ledger.older_versions(batch_id), parsed.outcomes, reprocessed)
    rows, rejected = _stamp(accepted, batch_id), _stamp(rejected_rows, batch_id)
    with replace.lake_lock(lake, held=bool(replacing.sources)):
        settled = replace.rewritable(lake, ledger) if replacing.sources else set()
        kept = replace.keep_other_sources(lake, replacing.sources, settled)
        # A reprocessed source whose rows went meanwhile (a newer version of its file
        # replaced them) is not brought back.
        gone = reprocessed - kept.found
        if gone:
            rows, rejected = replace.without(rows, gone), replace.without(rejected, gone)
            entries = [entry for entry in entries if entry.source_sha256 not in gone]
        written = writer.stage_rows(replace.merged(rows, kept.rows), lake, batch_id)
        quarantine.stage_reasons(lake, batch_id, entries, kept.reasons)
        quarantine.stage_rejected_rows(lake, batch_id, replace.merged(rejected, kept.rejected))
        staged = writer.staged_tree(lake, batch_id)
        note = f"{rows.num_rows} rows"
        if kept.found:
            note += (
                f"; replaced {kept.rows_removed} rows and {kept.entries_removed} quarantine"
                f" entries of {len(kept.found)} older sources"
            )
        if failed_rules:
            note += "; failed rules: " + ", ".join(failed_rules)
        # The point of no return (fenced: raises BatchLost when the claim was taken over).
        ledger.prepare_commit(
            batch_id,
            [item.relative for item in staged],
            parsed.outcomes,
            note,
            replaced=kept.replaced,
            superseded=list(replacing.superseded_files),
        )
        publishing = ledger.publishing_batch(batch_id)
        assert publishing is not None
        finish(lake, ledger, publishing)

    reasons = Counter(entry.reason for entry in entries)
    return BatchSummary(
        batch_id=batch_id,
        status="committed",
        files=len(batch.files),
        bytes=batch.bytes,
        duplicates=parsed.duplicates,
        cables=parsed.cables,
        rows_written=rows.num_rows,
        rows_quarantined=rejected.num_rows,
        rows_replaced=kept.rows_removed,
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
        writer.clear_staging(lake, batch.batch_id)
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
