"""Validation of one micro-batch with Great Expectations, and row routing by policy.

The ingest flow calls `validate_batch` once per batch (never per row) and
records its outcome after the batch is settled (`tasks/quality/tables.py`).

How a batch is validated:

1. The Arrow table is reduced to the lake columns the suite reads and
   converted once with `to_pandas()` (list columns as their elements joined
   by `|`; `body` as an Arrow-backed column, so its text is not copied).
2. One GE checkpoint run over the whole dataframe, `result_format` COMPLETE
   with `unexpected_index_column_names=["record_id"]`. Its action
   (`datadocs.LakeBatchAction`) judges the run with `verdict.judge` (the
   policy in force of each expectation and the batch verdict, stored in the
   run's meta) and builds the Data Docs.
3. Rows are routed by the policies in force the run recorded: `drop` rows
   become `RowRejection`s. A broken `fail` fails the batch's verdict loudly
   and never keeps its good cables out: a row rule takes out its own rows (as
   `drop` does), a batch rule (`is_batch_rule`) only flags the batch. Only an
   expectation that could not be evaluated holds the whole batch back
   (`held_back`): nothing is known about its rows.

The GE context is built once per process (`engine.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cablestream.schemas.expectations import LAKE_REFERENCE_IDS, RULES, Rule
from cablestream.tasks.lake.reader import existing_reference_ids
from cablestream.tasks.quality.engine import SAMPLE_SIZE, get_engine, run_checkpoint
from cablestream.tasks.quality.frame import build_frame
from cablestream.tasks.quality.verdict import Judgement, is_batch_rule


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
    # Names of expectations in force as `fail` that did not pass: the verdict is failed.
    # Their rows go to the quarantine (row rules) or the batch is flagged (batch rules).
    failed_expectations: list[str] = field(default_factory=list)
    # An expectation could not be evaluated: the batch is held back (its files retried).
    held_back: bool = False
    # One dict per expectation for the quality folder's validations table (with its policy in force).
    results: list[dict[str, Any]] = field(default_factory=list)
    # Rows validated (the batch's table), time of the run and its cost.
    rows_in: int = 0
    ran_at: datetime | None = None
    seconds: float = 0.0
    # The run's page in the lake's Data Docs (relative to the site); None if GE did not run.
    data_docs_page: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.failed_expectations)

    @property
    def verdict(self) -> str:
        """`failed` (a `fail` rule broke: loud, see `held_back`) or `passed`."""
        return "failed" if self.failed else "passed"

    @property
    def downgraded(self) -> list[str]:
        """Expectations whose policy in force this run was weaker than the suite's."""
        return [row["expectation"] for row in self.results if row["policy"] != row["suite_policy"]]


# --- running and routing ------------------------------------------------------------------


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


def with_flags(table: pa.Table, flags: dict[str, list[str]]) -> pa.Table:
    """`table` with `quality_flags` set: per row, the `warn` row rules it broke (none: empty).

    A flagged row is a cable kept in the lake; the flag says which check it did not
    meet (a parser weakness such as a swallowed subject), so readers can filter on it.
    """
    ids = table.column("record_id").to_pylist()
    values = pa.array([flags.get(record_id, []) for record_id in ids], pa.list_(pa.string()))
    index = table.schema.get_field_index("quality_flags")
    return table.set_column(index, table.schema.field(index), values)


def validate_batch(
    table: pa.Table,
    batch_id: str,
    lake_root: Path,
    replacing: frozenset[str] = frozenset(),
    docs_index: bool = True,
) -> ValidationOutcome:
    """Validate the batch in one GE checkpoint run and route rows by the policies in force.

    `replacing`: content hashes of sources whose rows the batch replaces. `docs_index`
    False: the run renders only its own Data Docs page, and the caller builds the index
    later (`engine.build_docs_index`: an ingest pass, at its end).
    """
    import time

    # Wait for a warm-up import first: two threads importing great_expectations at
    # once fail on its circular imports (`partially initialized module`).
    get_engine()
    from cablestream.tasks.quality.datadocs import VERDICT_META

    ran_at = datetime.now(UTC)
    if table.num_rows == 0:
        return ValidationOutcome(accepted=table, rows_in=0, ran_at=ran_at)

    started = time.perf_counter()
    frame = build_frame(table)
    reference_ids = table.column("reference_id").combine_chunks()
    # Rows the batch replaces (an older version of a changed file, an older parse) are
    # not "another rendering already in the lake".
    in_lake = existing_reference_ids(lake_root, pc.unique(pc.drop_null(reference_ids)), replacing)
    suite_result, docs_page = run_checkpoint(
        frame,
        batch_id,
        ran_at,
        lake_root.resolve(),
        {LAKE_REFERENCE_IDS: sorted(in_lake)},
        docs_index,
    )
    judgement = Judgement.from_meta(suite_result.meta[VERDICT_META])

    rejected: dict[str, list[str]] = {}
    flags: dict[str, list[str]] = {}  # record_id -> `warn` row rules it broke
    held_back = False
    results: list[dict[str, Any]] = []
    by_name = {
        item.expectation_config.meta["name"]: item.to_json_dict() for item in suite_result.results
    }
    for rule in RULES:  # suite order
        as_json = by_name[rule.name]
        result: dict[str, Any] = as_json.get("result") or {}
        raised = bool((as_json.get("exception_info") or {}).get("raised_exception"))
        success = bool(as_json["success"]) and not raised
        policy = judgement.policies[rule.name]
        unexpected = result.get("unexpected_index_list") or []
        row_fail = policy == "fail" and not is_batch_rule(rule)
        if not success and policy == "fail" and (raised or (row_fail and not unexpected)):
            held_back = True  # a broken `fail` that names no row: nothing is known
        if not success and (policy == "drop" or row_fail):
            for entry in unexpected:
                record_id = str(entry["record_id"])
                detail = f"{rule.name}: {_value_of(entry, rule)}"
                details = rejected.setdefault(record_id, [])
                if detail not in details:
                    details.append(detail)
        elif not success and policy == "warn" and not is_batch_rule(rule):
            for entry in unexpected:
                flags.setdefault(str(entry["record_id"]), []).append(rule.name)
        sample_ids = [str(entry.get("record_id")) for entry in unexpected[:SAMPLE_SIZE]]
        results.append(
            {
                "batch_id": batch_id,
                "expectation": rule.name,
                "expectation_type": rule.expectation,
                "column": rule.column,
                "policy": policy,
                "suite_policy": rule.policy,
                "success": success,
                "element_count": int(result.get("element_count", table.num_rows)),
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
    accepted = with_flags(without_rows(table, set(rejected)) if rejected else table, flags)
    return ValidationOutcome(
        accepted=accepted,
        rejections=rejections,
        failed_expectations=list(judgement.failed),
        held_back=held_back,
        results=results,
        rows_in=table.num_rows,
        ran_at=ran_at,
        seconds=time.perf_counter() - started,
        data_docs_page=docs_page,
    )
