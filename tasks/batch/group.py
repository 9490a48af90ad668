"""One claimed group of files, processed where it runs: read, parse, validate, stage.

The ingest flow claims a group (`claim.read_and_claim` with `keep_bytes=False`:
hashes only) and hands a `GroupJob` to a task that may run in a thread, another
process or another machine. The job and its result (`commit.StagedBatch`) are
small and picklable: names, content hashes and counts, never bytes or tables.
The task reads the files again (each must still have the content hash it was
claimed with), parses them, validates the rows (one GE run), records the run's
quality tables and writes every output of the batch to its staging folder. The
flow then only commits what was staged (`commit.commit_staged`).

The lake (and its control folder) must be the same folder wherever the task runs; an
object-store lake's staging is on the store, so for it the control folder need only be
a folder bound to the same lake (`tasks/lake/store.py`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from cablestream.tasks.batch import claim, commit, route
from cablestream.tasks.lake import writer
from cablestream.tasks.lake.store import bind_store
from cablestream.tasks.quality import tables, validate


@dataclass(frozen=True, slots=True)
class GroupJob:
    """A claimed group of files to process; no bytes (`LoadedFile.data` is None)."""

    inbox: str  # a folder, or an object store's URL (`claim.open_inbox`)
    lake: str
    batch: claim.ClaimedBatch
    max_file_bytes: int
    # Content hashes of the older versions of the group's changed files: their rows are
    # replaced at commit, so validation does not count them as "already in the lake".
    replacing: frozenset[str] = frozenset()
    # An object-store lake's URL: `lake` is then its control folder, bound to it here too
    # (on a worker of another machine, a folder of that name is made and bound).
    lake_url: str | None = None
    # Threads parsing the group's files: every core for a group on a thread of the flow,
    # the process's share of them in a worker process (one: no thread pool at all).
    parse_workers: int = route.PARSE_WORKERS


def warm_up_process() -> None:
    """Once in a worker process, before its first group: import pyarrow's Parquet writer
    and Great Expectations and build the GE context (seconds of CPU), not once per group."""
    import pyarrow.parquet  # noqa: F401

    from cablestream.tasks.quality.engine import get_engine

    get_engine()


def process(job: GroupJob) -> commit.StagedBatch:
    """Read, parse, validate and stage one group; what the flow needs to commit it."""
    lake = Path(job.lake)
    if job.lake_url is not None:
        bind_store(lake, job.lake_url)
    inbox = claim.open_inbox(job.inbox)
    if isinstance(inbox, Path) and not inbox.is_dir():
        # Else each file would be quarantined as gone: a worker on another machine.
        raise FileNotFoundError(
            f"no inbox folder {inbox} on {socket.gethostname()}: Dask workers on other"
            " machines need the inbox at the same path (a shared filesystem), or an"
            " object-store inbox"
        )
    batch = claim.load_claimed(inbox, job.batch, job.max_file_bytes)
    parsed = route.parse_batch(batch, job.parse_workers)
    # The Data Docs index is built once, at the pass's end (`engine.build_docs_index`).
    outcome = validate.validate_batch(
        parsed.table, batch.batch_id, lake, job.replacing, docs_index=False
    )
    if outcome.held_back:
        staged = commit.stage_held(lake, batch, parsed, outcome.failed_expectations)
    else:
        rejections = [(r.record_id, r.reason, r.detail) for r in outcome.rejections]
        staged = commit.stage_batch(
            lake, batch, parsed, outcome.accepted, rejections, outcome.failed_expectations
        )
    tables.record_batch_quality(outcome, batch.batch_id, lake)
    # An object-store lake: staged on the store, so the flow's host can commit it.
    writer.push_staging(lake, batch.batch_id)
    return staged
