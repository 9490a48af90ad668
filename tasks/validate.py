"""Validation of one micro-batch with Great Expectations, and row routing by policy.

The ingest flow calls `validate_batch` once per batch (never per row) and
`record_quality` after the batch is settled (see `cablestream.tasks.quality`).

How a batch is validated:

1. The Arrow table is reduced to the scalar columns the suite reads, plus
   helper columns derived here (list columns joined by `|`, lengths, the
   year of `created`, whether the reference id is already in the lake),
   then converted once with `to_pandas()`. Body text is never copied into
   pandas: only its length is.
2. One GE run over the whole dataframe, `result_format` COMPLETE with
   `unexpected_index_column_names=["record_id"]`.
3. Each result is looked up by the rule name in its meta (GE returns results
   grouped by column, not in suite order) and routed by the rule's policy:
   `drop` rows become `RowRejection`s, a failed `fail` rule keeps the batch out.

great_expectations is imported only inside functions here (about 6 s and
300 MB), and its context is built once per process and reused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from cablestream.schemas.expectations import (
    JOIN_SEPARATOR,
    RULES,
    RULES_BY_NAME,
    SUITE_NAME,
    Rule,
    build_suite,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# Ids and values kept per expectation in `results` (the full lists are only used for routing).
SAMPLE_SIZE = 20


@dataclass(slots=True)
class RowRejection:
    """A row the `drop` policy sends to the quarantine, with the expectation as reason."""

    record_id: str
    reason: str
    detail: str


@dataclass(slots=True)
class ValidationOutcome:
    accepted: pa.Table
    rejections: list[RowRejection] = field(default_factory=list)
    # Names of `fail`-policy expectations that did not pass: non-empty keeps the batch out.
    failed_expectations: list[str] = field(default_factory=list)
    # One dict per expectation for lake/_quality/validations.
    results: list[dict[str, Any]] = field(default_factory=list)
    # Rows validated (the batch's table), time of the run and its cost.
    rows_in: int = 0
    ran_at: datetime | None = None
    seconds: float = 0.0
    # The GE suite result with unexpected lists capped (for Data Docs); None if GE did not run.
    ge_result: Any = None

    @property
    def failed(self) -> bool:
        return bool(self.failed_expectations)


# --- the GE engine: built once per process ------------------------------------------------


@dataclass(slots=True)
class _Engine:
    context: Any
    batch_definition: Any
    suite: Any
    lock: threading.Lock
    docs_sites: dict[str, str] = field(default_factory=dict)
    # Per Data Docs site: result file name -> (GE key, capped GE result), see tasks.quality.
    docs_results: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Engine:
    """The ephemeral GE context with the pandas datasource and the suite (created once)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            datasource = context.data_sources.add_pandas("cablestream")
            asset = datasource.add_dataframe_asset("cable_batch")
            batch_definition = asset.add_batch_definition_whole_dataframe("whole_batch")
            suite = context.suites.add(build_suite())
            _ENGINE = _Engine(context, batch_definition, suite, threading.Lock())
        return _ENGINE


def warm_up_in_background() -> threading.Thread:
    """Import great_expectations and build the context in a daemon thread.

    The import costs seconds of mostly CPU; started before something the
    process only waits for (the Prefect temporary server start, about 11-15 s
    here), it is hidden. `validate_batch` waits for it through the engine lock.
    """
    thread = threading.Thread(target=_engine, name="cablestream-ge-warm-up", daemon=True)
    thread.start()
    return thread


RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["record_id"],
    "partial_unexpected_count": SAMPLE_SIZE,
    "return_unexpected_index_query": False,
}


# --- the dataframe GE sees ----------------------------------------------------------------

_PLAIN_COLUMNS = (
    "record_id",
    "reference_id",
    "precedence",
    "transmission_id",
    "origin",
    "station",
    "classification",
    "subject",
    "rendering",
    "source_path",
    "source_sha256",
    "parser_version",
)


def _joined(column: pa.ChunkedArray, struct_field: str | None = None) -> list[str]:
    """Per row, the non-null elements of a list column joined by `|` ("" for none)."""
    out = [""] * len(column)
    row_offset = 0
    for chunk in column.chunks:
        values = chunk.flatten()
        parents = pc.list_parent_indices(chunk)
        if struct_field is not None:
            values = pc.struct_field(values, struct_field)
        parts: dict[int, list[str]] = {}
        for parent, value in zip(parents.to_pylist(), values.to_pylist(), strict=True):
            if value is not None:
                parts.setdefault(parent, []).append(value)
        for parent, items in parts.items():
            out[row_offset + parent] = JOIN_SEPARATOR.join(items)
        row_offset += len(chunk)
    return out


def existing_reference_ids(lake_root: Path, candidates: pa.Array) -> set[str]:
    """Reference ids among `candidates` that accepted rows in the lake already carry."""
    import pyarrow.dataset as ds

    if not lake_root.is_dir() or len(candidates) == 0:
        return set()
    # Readers skip `_`/`.` names, so only the partition folders are read.
    dataset = ds.dataset(str(lake_root), format="parquet", partitioning="hive")
    if not dataset.files or "reference_id" not in dataset.schema.names:
        return set()
    found = dataset.to_table(
        columns=["reference_id"], filter=ds.field("reference_id").isin(candidates)
    )
    return {value for value in found.column("reference_id").to_pylist() if value is not None}


def build_frame(table: pa.Table, lake_root: Path) -> pd.DataFrame:
    """The scalar columns and helper columns of `table` that the suite reads, as pandas."""
    columns: dict[str, Any] = {name: table.column(name) for name in _PLAIN_COLUMNS}

    created = pc.cast(table.column("created"), pa.timestamp("ns", tz="UTC"))
    columns["created"] = created
    columns["created_year"] = pc.cast(pc.year(created), pa.float64())
    deadline = pc.cast(
        pc.cast(table.column("nondisclosure_deadline"), pa.timestamp("s")),
        pa.timestamp("ns", tz="UTC"),
    )
    columns["nondisclosure_at"] = deadline

    routes = _joined(table.column("recipients"), "route")
    info_routes = _joined(table.column("info_recipients"), "route")
    columns["routes_joined"] = pa.array(
        [
            JOIN_SEPARATOR.join(p for p in pair if p)
            for pair in zip(routes, info_routes, strict=True)
        ],
        pa.string(),
    )
    columns["caveats_joined"] = pa.array(_joined(table.column("caveats")), pa.string())
    columns["tags_joined"] = pa.array(_joined(table.column("tags")), pa.string())
    columns["reasons_joined"] = pa.array(
        _joined(table.column("classification_reasons")), pa.string()
    )
    columns["body_length"] = pc.cast(pc.utf8_length(table.column("body")), pa.float64())
    warnings = pc.fill_null(pc.list_value_length(table.column("parse_warnings")), 0)
    columns["has_parse_warnings"] = pc.cast(pc.greater(warnings, 0), pa.float64())

    reference_ids = table.column("reference_id")
    candidates = pc.unique(pc.drop_null(reference_ids.combine_chunks())) if len(table) else None
    known = existing_reference_ids(lake_root, candidates) if candidates is not None else set()
    columns["reference_id_in_lake"] = pa.array(
        [value if value in known else None for value in reference_ids.to_pylist()], pa.string()
    )
    frame: pd.DataFrame = pa.table(columns).to_pandas()
    return frame


# --- running and routing ------------------------------------------------------------------


def _cap(result: dict[str, Any]) -> None:
    """Cap the unbounded COMPLETE lists of one expectation result in place."""
    for key in ("unexpected_list", "unexpected_index_list", "partial_unexpected_counts"):
        value = result.get(key)
        if isinstance(value, list) and len(value) > SAMPLE_SIZE:
            result[key] = value[:SAMPLE_SIZE]


def _observed(result: dict[str, Any]) -> str | None:
    if "observed_value" in result:
        return str(result["observed_value"])
    if "unexpected_percent" in result and result["unexpected_percent"] is not None:
        return f"{result['unexpected_percent']:.2f}% unexpected"
    return None


def _plain(value: Any) -> Any:
    """numpy scalars (GE returns them in index lists) as Python values; whole floats as int."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _value_of(entry: dict[str, Any], rule: Rule) -> str:
    shown = {k: _plain(v) for k, v in entry.items() if k != "record_id"}
    if not shown:  # uniqueness: the only column is record_id itself
        return f"duplicate {rule.column}"
    text = ", ".join(f"{k}={v!r}" for k, v in shown.items())
    return text if len(text) <= 300 else text[:297] + "..."


# Above this many dropped rows a filtered copy beats a table of many small slices.
MAX_SLICES = 10_000


def without_rows(table: pa.Table, record_ids: set[str]) -> pa.Table:
    """`table` without the rows whose record_id is in `record_ids`.

    Dropped rows are few, so the kept runs between them are returned as
    zero-copy slices; `Table.filter` would copy every kept row's text
    (the whole batch) only to leave a few rows out.
    """
    dropped = pc.is_in(table.column("record_id"), pa.array(sorted(record_ids), pa.string()))
    positions = pc.indices_nonzero(dropped).to_pylist()
    if len(positions) > MAX_SLICES:
        return table.filter(pc.invert(dropped))
    pieces = []
    start = 0
    for position in [*positions, table.num_rows]:
        if position > start:
            pieces.append(table.slice(start, position - start))
        start = position + 1
    return pa.concat_tables(pieces) if pieces else table.schema.empty_table()


def validate_batch(table: pa.Table, batch_id: str, lake_root: Path) -> ValidationOutcome:
    """Validate the batch in one GE run and route rows by each expectation's policy."""
    import time

    ran_at = datetime.now(UTC)
    if table.num_rows == 0:
        return ValidationOutcome(accepted=table, rows_in=0, ran_at=ran_at)

    started = time.perf_counter()
    frame = build_frame(table, lake_root)
    engine = _engine()
    with engine.lock:
        batch = engine.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        suite_result = batch.validate(engine.suite, result_format=RESULT_FORMAT)

    rejected: dict[str, list[str]] = {}
    failed: list[str] = []
    results: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, Any]] = {}
    for expectation_result in suite_result.results:
        as_json = expectation_result.to_json_dict()
        name = as_json["expectation_config"]["meta"]["name"]
        by_name[name] = as_json
        # Cap what is kept for Data Docs (the routing lists are read from `as_json`).
        if isinstance(expectation_result.result, dict):
            _cap(expectation_result.result)

    for rule in RULES:  # suite order
        as_json = by_name[rule.name]
        result: dict[str, Any] = as_json.get("result") or {}
        raised = bool((as_json.get("exception_info") or {}).get("raised_exception"))
        success = bool(as_json["success"]) and not raised
        element_count = int(result.get("element_count", table.num_rows))
        policy = rule.effective_policy(element_count)
        unexpected = result.get("unexpected_index_list") or []
        if raised:
            # An expectation that could not be evaluated says nothing: keep the batch out.
            policy = "fail"
        if not success and policy == "fail":
            failed.append(rule.name)
        if not success and policy == "drop":
            for entry in unexpected:
                record_id = str(entry["record_id"])
                detail = f"{rule.name}: {_value_of(entry, rule)}"
                details = rejected.setdefault(record_id, [])
                if detail not in details:
                    details.append(detail)
        sample_ids = [str(entry.get("record_id")) for entry in unexpected[:SAMPLE_SIZE]]
        results.append(
            {
                "batch_id": batch_id,
                "expectation": rule.name,
                "expectation_type": rule.expectation,
                "column": rule.column,
                "policy": policy,
                "success": success,
                "element_count": element_count,
                "unexpected_count": int(result.get("unexpected_count") or 0),
                "missing_count": int(result.get("missing_count") or 0),
                "observed_value": _observed(result),
                "sample_record_ids": sample_ids,
                "exception": (as_json.get("exception_info") or {}).get("exception_message")
                if raised
                else None,
                "ran_at": ran_at,
            }
        )

    rejections = [
        RowRejection(
            record_id=record_id, reason=details[0].split(":", 1)[0], detail="; ".join(details)
        )
        for record_id, details in rejected.items()
    ]
    accepted = without_rows(table, set(rejected)) if rejected else table
    return ValidationOutcome(
        accepted=accepted,
        rejections=rejections,
        failed_expectations=failed,
        results=results,
        rows_in=table.num_rows,
        ran_at=ran_at,
        seconds=time.perf_counter() - started,
        ge_result=suite_result,
    )


def rule_for(name: str) -> Rule:
    return RULES_BY_NAME[name]


def record_quality(outcome: ValidationOutcome, batch_id: str, lake_root: Path) -> None:
    """Write the batch's quality rows, Data Docs and Prefect artifact (see tasks.quality)."""
    from cablestream.tasks.quality import record_batch_quality

    # GE's Data Docs site needs an absolute directory.
    record_batch_quality(outcome, batch_id, lake_root.resolve())


__all__ = [
    "SUITE_NAME",
    "RowRejection",
    "ValidationOutcome",
    "build_frame",
    "record_quality",
    "validate_batch",
]
