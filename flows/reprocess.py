"""The reprocess flow: rows an older parser wrote are parsed again and replaced, exactly once.

    recover   batches a crash left (a reprocess batch is undone or finished like any other)
    find      sources with rows below the parser version, and their bytes (inbox, archive)
    per batch of sources:
      parse     the same bytes with the current parser
      validate  one GE run, as ingest does
      replace   new rows written, the sources' old rows and quarantine entries removed:
                one ledger batch (tasks/batch/replace.py)

Sources found nowhere (or only with other bytes) are listed in the summary, and the
CLI exits 3 then: the lake is not all up to date.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from cablestream.flows.ingest import recover_task, report_task
from cablestream.flows.settings import IngestSettings
from cablestream.schemas.record import PARSER_VERSION
from cablestream.tasks.batch import claim, commit, reprocess, route
from cablestream.tasks.ledger.protocol import Ledger
from cablestream.tasks.ledger.sqlite import open_ledger
from cablestream.tasks.quality import tables, validate


@dataclass(slots=True)
class ReprocessSummary:
    parser_version_below: str
    sources_stale: int = 0
    rows_stale: int = 0
    sources_reprocessed: int = 0
    batches: int = 0
    rows_replaced: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    files_quarantined: int = 0
    batches_held: int = 0
    batches_flagged: int = 0
    # Sources no root holds with the same bytes: {source_path, sha256, rows}.
    unavailable: list[dict[str, Any]] = field(default_factory=list)
    recovered_batches: list[str] = field(default_factory=list)
    seconds: float = 0.0


@task(name="validate", cache_policy=NONE, persist_result=False)
def validate_task(
    table: pa.Table, batch_id: str, lake: Path, replacing: frozenset[str]
) -> validate.ValidationOutcome:
    return validate.validate_batch(table, batch_id, lake, replacing)


@task(name="record-quality", cache_policy=NONE, persist_result=False)
def quality_task(outcome: validate.ValidationOutcome, batch_id: str, lake: Path) -> None:
    tables.record_batch_quality(outcome, batch_id, lake)


@task(name="find-stale-sources", cache_policy=NONE, persist_result=False)
def find_task(
    lake: Path, ledger: Ledger, roots: dict[str, Path], below: str, max_file_bytes: int
) -> tuple[list[reprocess.FoundSource], list[reprocess.StaleSource]]:
    return reprocess.find_stale(lake, ledger, roots, below, max_file_bytes)


@task(name="parse-again", cache_policy=NONE, persist_result=False)
def parse_task(batch_id: str, found: list[reprocess.FoundSource]) -> route.ParsedBatch:
    return reprocess.parse_found(batch_id, found)


@task(name="replace", cache_policy=NONE, persist_result=False)
def replace_task(
    lake: Path,
    ledger: Ledger,
    parsed: route.ParsedBatch,
    outcome: validate.ValidationOutcome,
    sources: frozenset[str],
) -> commit.BatchSummary:
    rejections = [(r.record_id, r.reason, r.detail) for r in outcome.rejections]
    return commit.write_and_commit(
        lake,
        ledger,
        claim.ClaimedBatch(parsed.batch_id, []),
        parsed,
        outcome.accepted,
        rejections,
        outcome.failed_expectations,
        reprocessed=sources,
    )


@flow(name="cablestream-reprocess", persist_result=False, log_prints=False)
def reprocess_flow(
    lake: str | None = None,
    inbox: str | None = None,
    archive: str | None = None,
    parser_version_below: str | None = None,
    max_files_per_batch: int | None = None,
    max_batch_bytes: int | None = None,
    max_file_bytes: int | None = None,
    ledger: str | None = None,
) -> dict[str, Any]:
    """Re-parse the sources of rows below `parser_version_below` (default: the current
    parser's version) and replace their rows; unset parameters as for ingest."""
    started = time.perf_counter()
    settings = IngestSettings.resolve(
        lake=lake,
        inbox=inbox,
        archive=archive,
        max_files_per_batch=max_files_per_batch,
        max_batch_bytes=max_batch_bytes,
        max_file_bytes=max_file_bytes,
        ledger=ledger,
    )
    settings.local_only("reprocess")
    logger = get_run_logger()
    below = parser_version_below or PARSER_VERSION
    summary = ReprocessSummary(below)
    lake_root = settings.lake.resolve()
    pass_ledger = open_ledger(lake_root, settings.ledger)
    summary.recovered_batches = recover_task(lake_root, pass_ledger)
    roots = {"inbox": settings.inbox.resolve()}
    if settings.archive is not None:
        roots["archive"] = settings.archive.resolve()
    found, missing = find_task(lake_root, pass_ledger, roots, below, settings.max_file_bytes)
    summary.sources_stale = len(found) + len(missing)
    summary.rows_stale = sum(item.source.rows for item in found) + sum(s.rows for s in missing)
    summary.unavailable = [
        {"source_path": s.source_path, "sha256": s.sha256, "rows": s.rows} for s in missing
    ]
    for source in missing:
        logger.warning(
            "source %s (sha256 %s, %d rows) is in neither %s: its rows stay as they are",
            source.source_path,
            source.sha256[:12],
            source.rows,
            " nor ".join(str(root) for root in roots.values()),
        )
    for chunk in claim.plan_batches(found, settings.max_files_per_batch, settings.max_batch_bytes):
        batch_id = claim.new_batch_id()
        pass_ledger.begin(batch_id, note=f"reprocess below parser {below}")
        try:
            parsed = parse_task(batch_id, chunk)
            sources = frozenset(item.source.sha256 for item in chunk)
            outcome = validate_task(parsed.table, batch_id, lake_root, sources)
            if outcome.held_back:  # nothing is known about the new rows: keep the old ones
                commit.abandon(
                    lake_root, pass_ledger, batch_id, "reprocess: validation did not run"
                )
                summary.batches_held += 1
                logger.error(
                    "reprocess batch %s held back (%s): its sources keep their rows",
                    batch_id,
                    ", ".join(outcome.failed_expectations),
                )
                continue
            result = replace_task(lake_root, pass_ledger, parsed, outcome, sources)
        except BaseException:
            # Undone before its point of no return, finished after it (as recovery would).
            commit.abandon(lake_root, pass_ledger, batch_id, "reprocess failed")
            raise
        quality_task(outcome, batch_id, lake_root)
        summary.batches += 1
        summary.sources_reprocessed += len(chunk)
        summary.rows_replaced += result.rows_replaced
        summary.rows_written += result.rows_written
        summary.rows_quarantined += result.rows_quarantined
        summary.files_quarantined += result.files_quarantined
        summary.batches_flagged += bool(result.expectations_failed)
        logger.info(
            "reprocess batch %s: %d sources, %d old rows replaced by %d rows",
            batch_id,
            len(chunk),
            result.rows_replaced,
            result.rows_written,
        )
    report_task(lake_root, settings.inbox.resolve(), settings.ledger)
    summary.seconds = time.perf_counter() - started
    return asdict(summary)
