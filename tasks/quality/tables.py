"""Quality outputs of a validated batch: Parquet tables, Data Docs, a Prefect artifact.

LAKE.cablestream/quality/ (the lake's control folder, `schemas/lake.py`)
  validations/part-<batch_id>-<ranat>.parquet  one row per expectation per validation run
  batches/part-<batch_id>-<ranat>.parquet      one row per validation run (counts, verdict)
  data_docs/                                    GE Data Docs (index.html, one page per run)
  ge_results/<ranat>-<batch_id>.json           capped GE results the Data Docs index is built from

Files are written under a dot-name and renamed, so readers never see half a
file (readers skip `.`/`_` names). A retried batch adds another run, with
its own `ran_at`, instead of replacing the earlier one.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from cablestream.schemas import lake as layout
from cablestream.tasks.lake.atomic import write_atomic

if TYPE_CHECKING:  # pragma: no cover
    from cablestream.tasks.quality.datadocs import DocsPlace
    from cablestream.tasks.quality.validate import ValidationOutcome

VALIDATIONS_DIR = "validations"
BATCHES_DIR = "batches"
DATA_DOCS_DIR = "data_docs"
GE_RESULTS_DIR = "ge_results"
PROFILES_DIR = "profiles"

VALIDATIONS_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("expectation", pa.string()),
        ("expectation_type", pa.string()),
        ("column", pa.string()),
        # The policy in force for this run (a batch-level `fail` below its min_rows is a `warn`)
        # and the suite's own policy.
        ("policy", pa.string()),
        ("suite_policy", pa.string()),
        ("success", pa.bool_()),
        ("element_count", pa.int64()),
        ("unexpected_count", pa.int64()),
        ("missing_count", pa.int64()),
        ("observed_value", pa.string()),
        ("sample_record_ids", pa.list_(pa.string())),
        ("exception", pa.string()),
        ("ran_at", pa.timestamp("ms", tz="UTC")),
    ]
)

BATCHES_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("ran_at", pa.timestamp("ms", tz="UTC")),
        ("rows_in", pa.int64()),
        ("rows_accepted", pa.int64()),
        ("rows_dropped", pa.int64()),
        ("batch_failed", pa.bool_()),
        # Nothing of the batch was written (an expectation could not be evaluated): retried.
        ("held_back", pa.bool_()),
        # `passed` or `failed`: the verdict GE's run, the Data Docs and the artifact carry.
        ("verdict", pa.string()),
        ("failed_expectations", pa.list_(pa.string())),
        # Expectations of the run not met (any policy) and those in force weaker than the suite.
        ("unmet_expectations", pa.list_(pa.string())),
        ("downgraded_expectations", pa.list_(pa.string())),
        ("drop_reasons", pa.list_(pa.string())),
        ("validation_seconds", pa.float64()),
        ("data_docs_page", pa.string()),
        # The Prefect flow run that validated the batch (and its UI page when the API has one).
        ("flow_run_id", pa.string()),
        ("flow_run_url", pa.string()),
    ]
)

# Per run, over its accepted rows: rows with a value per field (`kind` field) and rows
# carrying each parse-warning code (`kind` warning). The dashboard draws them over time
# from here, without reading the lake.
PROFILES_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("ran_at", pa.timestamp("ms", tz="UTC")),
        ("kind", pa.string()),
        ("name", pa.string()),
        ("count", pa.int64()),
        ("rows", pa.int64()),
    ]
)


def quality_dir(lake_root: Path) -> Path:
    return layout.quality_dir(lake_root)


def docs_place(lake_root: Path) -> DocsPlace:
    """The lake's Data Docs site and the GE runs kept for its index."""
    from cablestream.tasks.quality.datadocs import DocsPlace

    quality = quality_dir(lake_root.resolve())
    return DocsPlace(docs_dir=quality / DATA_DOCS_DIR, results_dir=quality / GE_RESULTS_DIR)


def safe_name(batch_id: str) -> str:
    """A file-name-safe form of a batch id (ids are generated, but never trust a name)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in batch_id)
    if cleaned != batch_id or not cleaned:
        cleaned = f"{cleaned[:40]}-{hashlib.sha256(batch_id.encode()).hexdigest()[:8]}"
    return cleaned


def _stamp(outcome: ValidationOutcome) -> str:
    return outcome.ran_at.strftime("%Y%m%dT%H%M%S%fZ") if outcome.ran_at else "norun"


def _write_table(table: pa.Table, directory: Path, name: str) -> Path:
    return write_atomic(directory / name, lambda temporary: pq.write_table(table, temporary))


def validations_table(outcome: ValidationOutcome) -> pa.Table:
    rows = [{key: row.get(key) for key in VALIDATIONS_SCHEMA.names} for row in outcome.results]
    return pa.Table.from_pylist(rows, schema=VALIDATIONS_SCHEMA)


def _flow_run() -> tuple[str | None, str | None]:
    """Id and UI address of the Prefect flow run this code runs in, if any."""
    import sys

    if "prefect" not in sys.modules:  # not running under Prefect: never import it here
        return None, None
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return (str(run_id), flow_run.ui_url) if run_id else (None, None)


def filled_count(column: pa.ChunkedArray) -> int:
    """Rows where a field has a value: not null, and not an empty list or string."""
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        lengths = pc.fill_null(pc.list_value_length(column), 0)
        return int(pc.sum(pc.greater(lengths, 0)).as_py() or 0)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        lengths = pc.fill_null(pc.utf8_length(column), 0)
        return int(pc.sum(pc.greater(lengths, 0)).as_py() or 0)
    return int(len(column) - column.null_count)


def profile_table(outcome: ValidationOutcome, batch_id: str) -> pa.Table:
    """Field completeness and parse-warning codes of the run's accepted rows."""
    import pyarrow.compute as pc

    accepted = outcome.accepted
    rows = accepted.num_rows
    entries = [
        ("field", name, filled_count(accepted.column(name)))
        for name in accepted.column_names
        if name not in ("batch_id", "ingested_at")
    ]
    if "parse_warnings" in accepted.column_names and rows:
        codes = pc.list_flatten(accepted.column("parse_warnings"))
        for item in pc.value_counts(codes).to_pylist():
            if item["values"] is not None:
                entries.append(("warning", str(item["values"]), int(item["counts"])))
    return pa.Table.from_pylist(
        [
            {
                "batch_id": batch_id,
                "ran_at": outcome.ran_at,
                "kind": kind,
                "name": name,
                "count": count,
                "rows": rows,
            }
            for kind, name, count in entries
        ],
        schema=PROFILES_SCHEMA,
    )


def batch_row(outcome: ValidationOutcome, batch_id: str) -> dict[str, Any]:
    flow_run_id, flow_run_url = _flow_run()
    return {
        "batch_id": batch_id,
        "ran_at": outcome.ran_at,
        "rows_in": outcome.rows_in,
        "rows_accepted": 0 if outcome.held_back else outcome.accepted.num_rows,
        "rows_dropped": len(outcome.rejections),
        "batch_failed": outcome.failed,
        "held_back": outcome.held_back,
        "verdict": outcome.verdict,
        "failed_expectations": list(outcome.failed_expectations),
        "unmet_expectations": [row["expectation"] for row in outcome.results if not row["success"]],
        "downgraded_expectations": outcome.downgraded,
        "drop_reasons": [rejection.reason for rejection in outcome.rejections],
        "validation_seconds": outcome.seconds,
        "data_docs_page": outcome.data_docs_page,
        "flow_run_id": flow_run_id,
        "flow_run_url": flow_run_url,
    }


# Stable Prefect artifact key: every batch adds a version, so the UI shows the history.
ARTIFACT_KEY = "cable-batch-quality"


def summary_markdown(outcome: ValidationOutcome, batch_id: str) -> str:
    """The batch summary: the verdict the run recorded, counts, drops, unmet expectations."""
    verdict = (
        f"**FAILED** ({', '.join(outcome.failed_expectations)}): "
        + ("batch held back" if outcome.held_back else "rows written, batch flagged")
        if outcome.failed
        else "passed"
    )
    lines = [
        f"# Validation of batch `{batch_id}`",
        "",
        f"- verdict: {verdict}",
        f"- rows in: {outcome.rows_in}",
        f"- rows accepted: {0 if outcome.held_back else outcome.accepted.num_rows}",
        f"- rows dropped to quarantine: {len(outcome.rejections)}",
        f"- validation time: {outcome.seconds:.3f} s",
    ]
    if outcome.downgraded:
        lines.append(
            f"- in force as `warn` (batch under its minimum rows): {', '.join(outcome.downgraded)}"
        )
    if outcome.data_docs_page:
        lines.append(f"- Data Docs page: `{outcome.data_docs_page}`")
    lines.append("")
    reasons = Counter(rejection.reason for rejection in outcome.rejections)
    if reasons:
        lines += ["| drop reason | rows |", "|---|---|"]
        lines += [f"| {reason} | {count} |" for reason, count in reasons.most_common()]
        lines.append("")
    unsuccessful = [row for row in outcome.results if not row["success"]]
    if unsuccessful:
        lines += [
            "| expectation | policy in force | unexpected | observed |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {row['expectation']} | {row['policy']} | {row['unexpected_count']} "
            f"| {row['observed_value'] or ''} |"
            for row in unsuccessful
        ]
    return "\n".join(lines) + "\n"


def artifact_rows(outcome: ValidationOutcome) -> list[dict[str, Any]]:
    """One row per expectation of the run, as the Prefect table artifact shows it."""
    return [
        {
            "expectation": row["expectation"],
            "policy in force": row["policy"],
            "suite policy": row["suite_policy"],
            "met": row["success"],
            "unexpected": row["unexpected_count"],
            "checked": row["element_count"],
            "observed": row["observed_value"] or "",
        }
        for row in outcome.results
    ]


def publish_artifact(outcome: ValidationOutcome, batch_id: str) -> bool:
    """A Prefect table artifact (stable key), when called inside a Prefect flow or task run."""
    import sys

    if "prefect" not in sys.modules:  # not running under Prefect: never import it here
        return False
    from prefect.artifacts import create_table_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return False
    create_table_artifact(
        table=artifact_rows(outcome),
        key=ARTIFACT_KEY,
        description=summary_markdown(outcome, batch_id),
    )
    return True


def record_batch_quality(outcome: ValidationOutcome, batch_id: str, lake_root: Path) -> None:
    """Write every quality output of one validated batch."""
    if outcome.ran_at is None:
        return
    quality = quality_dir(lake_root)
    name = f"part-{safe_name(batch_id)}-{_stamp(outcome)}.parquet"
    if outcome.results:
        _write_table(validations_table(outcome), quality / VALIDATIONS_DIR, name)
    if not outcome.held_back and outcome.accepted.num_rows:
        _write_table(profile_table(outcome, batch_id), quality / PROFILES_DIR, name)
    batches = pa.Table.from_pylist([batch_row(outcome, batch_id)], schema=BATCHES_SCHEMA)
    _write_table(batches, quality / BATCHES_DIR, name)
    publish_artifact(outcome, batch_id)


def read_quality_table(lake_root: Path, which: str) -> pa.Table | None:
    """All runs of `validations`, `batches` or `profiles`; None when nothing was recorded yet."""
    directory = quality_dir(lake_root) / which
    files = sorted(p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        return None
    import pyarrow.dataset as ds

    schema = {
        VALIDATIONS_DIR: VALIDATIONS_SCHEMA,
        BATCHES_DIR: BATCHES_SCHEMA,
        PROFILES_DIR: PROFILES_SCHEMA,
    }[which]
    # Files of an older schema read with the columns added since as nulls.
    table: pa.Table = ds.dataset(
        [str(p) for p in files], schema=schema, format="parquet"
    ).to_table()
    return table
