"""Validation of one micro-batch with Great Expectations, and row routing by policy.

The ingest flow calls `validate_batch` once per batch (never per row) and
`record_quality` after the batch is settled (see `cablestream.tasks.quality`).

How a batch is validated:

1. The Arrow table is reduced to the lake columns the suite reads and
   converted once with `to_pandas()` (list columns as their elements joined
   by `|`; `body` as an Arrow-backed column, so its text is not copied).
2. One GE checkpoint run over the whole dataframe, `result_format` COMPLETE
   with `unexpected_index_column_names=["record_id"]`. Its action
   (`tasks.datadocs.LakeBatchAction`) judges the run with `judge` (the
   policy in force of each expectation and the batch verdict, stored in the
   run's meta) and builds the Data Docs.
3. Rows are routed by the policies in force the run recorded: `drop` rows
   become `RowRejection`s. A broken `fail` fails the batch's verdict loudly
   and never keeps its good cables out: a row rule takes out its own rows (as
   `drop` does), a batch rule (`is_batch_rule`) only flags the batch. Only an
   expectation that could not be evaluated holds the whole batch back
   (`held_back`): nothing is known about its rows.

great_expectations is imported only inside functions here (about 6 s and
300 MB), and its context is built once per process and reused.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from cablestream.schemas.expectations import (
    JOIN_SEPARATOR,
    LAKE_REFERENCE_IDS,
    RULES,
    RULES_BY_NAME,
    SUITE_NAME,
    Policy,
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


@dataclass(frozen=True, slots=True)
class Judgement:
    """The policies in force of one run and what they decide: the one verdict of a batch."""

    policies: dict[str, Policy]
    failed: list[str]

    @property
    def verdict(self) -> str:
        return "failed" if self.failed else "passed"

    def policies_text(self) -> str:
        return "; ".join(
            f"{policy}: {', '.join(n for n, p in self.policies.items() if p == policy)}"
            for policy in ("fail", "drop", "warn")
            if policy in self.policies.values()
        )

    def as_meta(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "failed_expectations": list(self.failed),
            "policy_in_force": dict(self.policies),
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Judgement:
        return cls(policies=dict(meta["policy_in_force"]), failed=list(meta["failed_expectations"]))


def is_batch_rule(rule: Rule) -> bool:
    """A rule about the batch as a whole (a share or a mean), not about any one row.

    Such a rule names no row to take out, and a batch of real cables trips it as
    soon as arrival groups similar files (a share belongs to the batch, not to a
    cable): it flags the batch, and the rows are still written.
    """
    per_row = rule.expectation.startswith(
        ("ExpectColumnValues", "ExpectColumnValueLengths", "ExpectColumnPairValues")
    )
    return not per_row or "mostly" in rule.kwargs


def _raised(result: Any) -> bool:
    return bool((result.exception_info or {}).get("raised_exception"))


def judge(suite_result: Any, rows: int) -> Judgement:
    """The policy in force of every expectation of a GE run and the `fail`s that broke."""
    policies: dict[str, Policy] = {}
    broken: set[str] = set()
    for item in suite_result.results:
        name = item.expectation_config.meta["name"]
        raised = _raised(item)
        policies[name] = RULES_BY_NAME[name].policy_in_force(rows, raised)
        if raised or not item.success:
            broken.add(name)
    ordered = {rule.name: policies[rule.name] for rule in RULES if rule.name in policies}
    failed = [name for name, policy in ordered.items() if policy == "fail" and name in broken]
    return Judgement(policies=ordered, failed=failed)


# --- the GE engine: built once per process ------------------------------------------------


@dataclass(slots=True)
class _Engine:
    context: Any
    validation_definition: Any
    lock: threading.Lock
    docs_sites: dict[str, str] = field(default_factory=dict)


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
            # Key-safe name; each run's batch spec names the real lake and batch.
            asset = datasource.add_dataframe_asset("lake")
            batch_definition = asset.add_batch_definition_whole_dataframe("batch")
            suite = context.suites.add(build_suite())
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=SUITE_NAME, data=batch_definition, suite=suite)
            )
            _ENGINE = _Engine(context, definition, threading.Lock())
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


def run_checkpoint(
    frame: pd.DataFrame,
    batch_id: str,
    ran_at: datetime,
    lake_root: Path,
    parameters: dict[str, Any],
) -> tuple[Any, str | None]:
    """One GE checkpoint run of the suite over `frame`; the run and its Data Docs page."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    from cablestream.tasks import datadocs
    from cablestream.tasks.quality import docs_place, safe_name

    engine = _engine()
    place = docs_place(lake_root)
    run_name = safe_name(batch_id)
    with engine.lock:
        site = datadocs.ensure_site(engine.context, engine.docs_sites, place)
        action = datadocs.LakeBatchAction(
            name="judge-and-update-data-docs",
            site_names=[site],
            lake=str(lake_root),
            batch_id=batch_id,
            rows=len(frame),
            docs_dir=str(place.docs_dir),
            results_dir=str(place.results_dir),
        )
        # A checkpoint per run: its action carries this run's lake and batch.
        name = f"{SUITE_NAME}-{uuid.uuid4().hex}"
        checkpoint = engine.context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[engine.validation_definition],
                actions=[action],
                result_format=RESULT_FORMAT,
            )
        )
        try:
            result = checkpoint.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=parameters,
                run_id=RunIdentifier(run_name=run_name, run_time=ran_at),
            )
        finally:
            engine.context.checkpoints.delete(name)
    ((key, suite_result),) = result.run_results.items()
    page = datadocs.run_page(place.docs_dir, key)
    return suite_result, (page.relative_to(place.docs_dir).as_posix() if page.is_file() else None)


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


def build_frame(table: pa.Table) -> pd.DataFrame:
    """The lake columns the suite reads, as GE sees them (pandas, one conversion).

    List columns become their elements joined by `|` (routing indicators for
    `recipients`), `nondisclosure_deadline` a UTC timestamp comparable with
    `created`; `body` stays Arrow-backed (no copy of the text).
    """
    import pandas as pd

    columns: dict[str, Any] = {name: table.column(name) for name in _PLAIN_COLUMNS}
    # Seconds, never nanoseconds: a nanosecond timestamp ends in 2262, and a cable may
    # carry any year (a DTG of 9999, a DECL of 2308). pandas 2 keeps the unit.
    columns["created"] = table.column("created")
    columns["nondisclosure_deadline"] = pc.cast(
        table.column("nondisclosure_deadline"), pa.timestamp("s", tz="UTC")
    )
    columns["recipients"] = pa.array(_joined(table.column("recipients"), "route"), pa.string())
    columns["info_recipients"] = pa.array(
        _joined(table.column("info_recipients"), "route"), pa.string()
    )
    for name in ("caveats", "tags", "classification_reasons", "parse_warnings"):
        columns[name] = pa.array(_joined(table.column(name)), pa.string())
    frame: pd.DataFrame = pa.table(columns).to_pandas()
    frame["body"] = pd.Series(
        pd.arrays.ArrowExtensionArray(table.column("body")), index=frame.index
    )
    return frame


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


def validate_batch(table: pa.Table, batch_id: str, lake_root: Path) -> ValidationOutcome:
    """Validate the batch in one GE checkpoint run and route rows by the policies in force."""
    import time

    # Wait for a warm-up import first: two threads importing great_expectations at
    # once fail on its circular imports (`partially initialized module`).
    _engine()
    from cablestream.tasks.datadocs import VERDICT_META

    ran_at = datetime.now(UTC)
    if table.num_rows == 0:
        return ValidationOutcome(accepted=table, rows_in=0, ran_at=ran_at)

    started = time.perf_counter()
    frame = build_frame(table)
    reference_ids = table.column("reference_id").combine_chunks()
    in_lake = existing_reference_ids(lake_root, pc.unique(pc.drop_null(reference_ids)))
    suite_result, docs_page = run_checkpoint(
        frame, batch_id, ran_at, lake_root.resolve(), {LAKE_REFERENCE_IDS: sorted(in_lake)}
    )
    judgement = Judgement.from_meta(suite_result.meta[VERDICT_META])

    rejected: dict[str, list[str]] = {}
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
    accepted = without_rows(table, set(rejected)) if rejected else table
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


def record_quality(outcome: ValidationOutcome, batch_id: str, lake_root: Path) -> None:
    """Write the batch's quality rows and Prefect artifact (see tasks.quality)."""
    from cablestream.tasks.quality import record_batch_quality

    record_batch_quality(outcome, batch_id, lake_root.resolve())


__all__ = [
    "SUITE_NAME",
    "RowRejection",
    "ValidationOutcome",
    "build_frame",
    "record_quality",
    "validate_batch",
]
