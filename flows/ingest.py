"""The ingest flow: DESIGN.md section 6, step by step, one task chain per micro-batch.

    6. recover   batches a crash left claimed: remove their outputs, release their files
    1. discover  ready files (settled, or with a NAME.done marker) the ledger does not know
    2. claim     read + hash a micro-batch, claim it in one ledger transaction
    3. process   split and parse; validate the batch (one GE run)
    4. write     Parquet to staging, renamed into year=Y/month=M/; rejects to the control folder's quarantine/
    5. commit    the batch and its output files, in one ledger transaction

Tasks never return results to be kept (`cache_policy=NONE`, no persistence):
batches carry Arrow tables and file bytes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from cablestream.flows.settings import IngestSettings
from cablestream.tasks.batch import claim, commit, route
from cablestream.tasks.inbox.folder import InboxFile, archive_settled
from cablestream.tasks.inbox.settle import Settler
from cablestream.tasks.lake.writer import move_legacy_control
from cablestream.tasks.ledger.protocol import BatchLost, Ledger
from cablestream.tasks.ledger.sqlite import SqliteLedger, open_ledger
from cablestream.tasks.quality import tables, validate

# Test hook: seconds to sleep between publishing a batch's files and committing it,
# so a test can kill the process in the middle of a batch. Never set in normal runs.
PAUSE_BEFORE_COMMIT_ENV = "CABLESTREAM_TEST_PAUSE_BEFORE_COMMIT"


# --- progress: the CLI listens, the flow reports ------------------------------------------

ProgressListener = Callable[[str, dict[str, Any]], None]
_listeners: list[ProgressListener] = []


def add_progress_listener(listener: ProgressListener) -> Callable[[], None]:
    """Receive ("discovered" | "batch", details) events; returns a function that unsubscribes."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def _emit(event: str, **details: Any) -> None:
    for listener in list(_listeners):
        listener(event, details)


# --- tasks: thin wrappers around tasks/ -----------------------------------------------------


@task(name="recover", cache_policy=NONE, persist_result=False)
def recover_task(lake: Path, ledger: Ledger) -> list[str]:
    return commit.recover(lake, ledger)


@task(name="discover", cache_policy=NONE, persist_result=False)
def discover_task(
    inbox: Path, ledger: Ledger, settle_seconds: float, only: list[str] | None
) -> list[InboxFile]:
    return Settler(settle_seconds).ready(claim.fresh_files(inbox, ledger, only))


@task(name="claim", cache_policy=NONE, persist_result=False)
def claim_task(
    inbox: Path, ledger: Ledger, files: list[InboxFile], batch_id: str, max_file_bytes: int
) -> claim.ClaimedBatch:
    return claim.read_and_claim(inbox, files, ledger, batch_id, max_file_bytes)


@task(name="parse", cache_policy=NONE, persist_result=False)
def parse_task(claimed: claim.ClaimedBatch, drop_subjects: bool) -> route.ParsedBatch:
    parsed = route.parse_batch(claimed)
    if drop_subjects:  # fault injection for tests: every subject blank, as a broken parser would
        table = parsed.table
        index = table.schema.get_field_index("subject")
        nulls = pa.nulls(table.num_rows, pa.string())
        parsed.table = table.set_column(index, table.schema.field(index), nulls)
    return parsed


@task(name="validate", cache_policy=NONE, persist_result=False)
def validate_task(
    table: pa.Table, batch_id: str, lake: Path, replacing: frozenset[str] = frozenset()
) -> validate.ValidationOutcome:
    return validate.validate_batch(table, batch_id, lake, replacing)


@task(name="write-and-commit", cache_policy=NONE, persist_result=False)
def write_commit_task(
    lake: Path,
    ledger: Ledger,
    claimed: claim.ClaimedBatch,
    parsed: route.ParsedBatch,
    outcome: validate.ValidationOutcome,
) -> commit.BatchSummary:
    rejections = [(r.record_id, r.reason, r.detail) for r in outcome.rejections]
    return commit.write_and_commit(
        lake, ledger, claimed, parsed, outcome.accepted, rejections, outcome.failed_expectations
    )


@task(name="hold-batch", cache_policy=NONE, persist_result=False)
def hold_task(
    lake: Path,
    ledger: Ledger,
    claimed: claim.ClaimedBatch,
    parsed: route.ParsedBatch,
    unevaluated: list[str],
    max_attempts: int,
) -> commit.BatchSummary:
    return commit.hold_batch(lake, ledger, claimed, parsed, unevaluated, max_attempts)


@task(name="record-quality", cache_policy=NONE, persist_result=False)
def quality_task(outcome: validate.ValidationOutcome, batch_id: str, lake: Path) -> None:
    tables.record_batch_quality(outcome, batch_id, lake)


@task(name="quality-report", cache_policy=NONE, persist_result=False)
def report_task(lake: Path, inbox: Path) -> str:
    """The dashboard rewritten and alerts raised after every pass (flows/dashboard.py)."""
    from cablestream.flows.dashboard import refresh

    return refresh(lake, inbox, get_run_logger())


class _PausingLedger(SqliteLedger):
    """Test hook: sleeps before commit, after the batch's files are in the lake."""

    def __init__(self, path: Path, pause: float) -> None:
        super().__init__(path)
        self._pause = pause

    def commit(self, batch_id: str) -> None:
        time.sleep(self._pause)
        super().commit(batch_id)


# --- the flow --------------------------------------------------------------------------------


# Counts a pass adds up from its batches' summaries.
_BATCH_COUNTS = (
    "files",
    "bytes",
    "cables",
    "rows_written",
    "duplicates",
    "rows_quarantined",
    "files_quarantined",
    "rows_replaced",
)


@dataclass(slots=True)
class IngestSummary:
    files_seen: int = 0
    batches: int = 0
    files: int = 0
    bytes: int = 0
    cables: int = 0
    rows_written: int = 0
    duplicates: int = 0
    rows_quarantined: int = 0
    files_quarantined: int = 0
    rows_replaced: int = 0  # rows of older versions of files changed in place
    expectations_failed: int = 0
    batches_retry: int = 0
    batches_held: int = 0
    batches_flagged: int = 0
    batches_lost: int = 0  # taken over by another process after our lease ran out
    recovered_batches: list[str] = field(default_factory=list)
    # Batches held back: "<batch_id> <status>: <expectation>, ..." per batch.
    not_written: list[str] = field(default_factory=list)
    # Batches written although `fail` rules failed: "<batch_id>: <expectation>, ...".
    flagged: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, batch: commit.BatchSummary) -> None:
        self.batches += 1
        for name in _BATCH_COUNTS:
            setattr(self, name, getattr(self, name) + getattr(batch, name))
        self.expectations_failed += len(batch.expectations_failed)
        names = ", ".join(batch.expectations_failed)
        if batch.status in ("retry", "held"):
            self.not_written.append(f"{batch.batch_id} {batch.status}: {names}")
        elif batch.expectations_failed:
            self.flagged.append(f"{batch.batch_id}: {names}")
        self.batches_retry += batch.status == "retry"
        self.batches_held += batch.status in ("retry", "held")
        self.batches_flagged += batch.status == "committed" and bool(batch.expectations_failed)
        for reason, count in batch.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def needs_attention(result: dict[str, Any]) -> bool:
    """Whether a pass (or the totals of a watch, or a reprocess) held a batch back, failed
    a `fail` rule, or left sources unavailable (reprocess).

    The CLI exits non-zero then: a scheduler must see it, not only the log.
    """
    return bool(
        result.get("batches_held") or result.get("batches_flagged") or result.get("unavailable")
    )


def _one_batch(
    settings: IngestSettings,
    inbox_root: Path,
    lake_root: Path,
    ledger: Ledger,
    files: list[InboxFile],
    batch_id: str,
    drop_subjects: bool,
) -> commit.BatchSummary | None:
    """Steps 2-5 for one micro-batch; None when nothing in it could be claimed."""
    # 2. Claim (read + hash, one ledger transaction).
    claimed = claim_task(inbox_root, ledger, files, batch_id, settings.max_file_bytes)
    if not claimed.files:
        return None
    # 3. Process: split, parse, validate (one GE run per batch).
    parsed = parse_task(claimed, drop_subjects)
    # Files changed in place: their older versions' rows are replaced (at write), so
    # they are not "another rendering already in the lake" for validation.
    older = frozenset(v.sha256 for v in ledger.older_versions(batch_id))
    outcome = validate_task(parsed.table, batch_id, lake_root, older)
    # 4-5. Write and commit (failed `fail` rules flag the batch, their rows are quarantined),
    # or hold the batch back when validation could not run at all.
    if outcome.held_back:
        result = hold_task(
            lake_root, ledger, claimed, parsed, outcome.failed_expectations, settings.max_attempts
        )
    else:
        result = write_commit_task(lake_root, ledger, claimed, parsed, outcome)
    quality_task(outcome, batch_id, lake_root)
    if settings.archive is not None and result.status == "committed":
        archive_settled(inbox_root, settings.archive.resolve(), [f.found for f in claimed.files])
    create_markdown_artifact(
        markdown=result.markdown(),
        key="ingest-batch",  # one key: each batch adds a version, the UI shows the history
        description=f"cablestream ingest batch {batch_id}: {result.status}",
    )
    return result


@flow(name="cablestream-ingest", persist_result=False, log_prints=False)
def ingest_flow(
    inbox: str | None = None,
    lake: str | None = None,
    settle_seconds: float | None = None,
    max_files_per_batch: int | None = None,
    max_batch_bytes: int | None = None,
    max_file_bytes: int | None = None,
    max_attempts: int | None = None,
    archive: str | None = None,
    ledger: str | None = None,
    paths: list[str] | None = None,
    drop_subjects: bool = False,
) -> dict[str, Any]:
    """One pass over the inbox: every ready, new file ends in the lake or the quarantine.

    Unset parameters come from `CABLESTREAM_*` env vars, then the defaults
    (`data/inbox`, `data/lake`). `paths` limits the pass to those inbox-relative
    paths (the watcher uses it). `drop_subjects` is fault injection for tests.
    """
    started = time.perf_counter()
    settings = IngestSettings.resolve(
        inbox=inbox,
        lake=lake,
        settle_seconds=settle_seconds,
        max_files_per_batch=max_files_per_batch,
        max_batch_bytes=max_batch_bytes,
        max_file_bytes=max_file_bytes,
        max_attempts=max_attempts,
        archive=archive,
        ledger=ledger,
    )
    logger = get_run_logger()
    summary = IngestSummary()
    settings.check_paths()  # InputError: a missing inbox, nested folders, an unwritable lake
    lake_root = settings.lake.resolve()
    lake_root.mkdir(parents=True, exist_ok=True)
    for moved in move_legacy_control(lake_root):
        logger.warning("moved %s out of the lake into its control folder", moved)
    inbox_root = settings.inbox.resolve()
    # The ledger is opened once per pass and handed to the steps.
    pause = float(os.environ.get(PAUSE_BEFORE_COMMIT_ENV, "0") or 0)
    pass_ledger: Ledger = open_ledger(lake_root, settings.ledger)
    if pause and isinstance(pass_ledger, SqliteLedger):
        pass_ledger = _PausingLedger(pass_ledger.path, pause)

    # 6. Recover first: a batch a crash left claimed is removed and its files are taken again.
    summary.recovered_batches = recover_task(lake_root, pass_ledger)
    if summary.recovered_batches:
        logger.warning("recovered %d unfinished batches", len(summary.recovered_batches))

    # 1. Discover ready files the ledger does not hold.
    ready = discover_task(inbox_root, pass_ledger, settings.settle_seconds, paths)
    summary.files_seen = len(ready)
    expanded = claim.expanded_sizes(inbox_root, ready, settings.max_file_bytes)
    plan = claim.plan_batches(
        ready, settings.max_files_per_batch, settings.max_batch_bytes, expanded
    )
    _emit("discovered", files=len(ready), bytes=sum(f.size for f in ready), batches=len(plan))

    for files in plan:
        batch_id = claim.new_batch_id()
        try:
            result = _one_batch(
                settings, inbox_root, lake_root, pass_ledger, files, batch_id, drop_subjects
            )
        except BatchLost as error:
            # Our lease ran out and another process undid the batch: its files are taken
            # again by whoever comes next; nothing of ours was published.
            commit.abandon(lake_root, pass_ledger, batch_id, "lost")
            summary.batches_lost += 1
            logger.error("batch %s given up: %s", batch_id, error)
            continue
        except BaseException as error:
            # Settle the batch (undo it, or finish it past its point of no return) as
            # recovery would, before the error goes on; if that fails too, recovery will.
            try:
                if commit.abandon(lake_root, pass_ledger, batch_id, f"{error!r}"):
                    logger.error("batch %s settled after an error: %r", batch_id, error)
            except Exception as cleanup:
                logger.error("batch %s left for recovery: %r", batch_id, cleanup)
            raise
        if result is not None:
            summary.add(result)
            if result.expectations_failed:
                logger.error(
                    "batch %s %s: FAILED rules %s (%s)",
                    batch_id,
                    "written but flagged" if result.status == "committed" else result.status,
                    ", ".join(result.expectations_failed),
                    result.note,
                )
            logger.info(
                "batch %s %s: %d files, %d cables, %d rows written, %d duplicates, %d quarantined",
                batch_id,
                result.status,
                result.files,
                result.cables,
                result.rows_written,
                result.duplicates,
                result.files_quarantined + result.rows_quarantined,
            )
        _emit("batch", files=len(files), bytes=sum(f.size for f in files))

    report_task(lake_root, inbox_root)
    summary.seconds = time.perf_counter() - started
    return summary.as_dict()
