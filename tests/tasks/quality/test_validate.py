"""Validation of micro-batches with known defects: which rows are kept, dropped, or fail the batch."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import records_to_table
from cablestream.schemas.expectations import CREATED_MAX_YEAR, CREATED_MIN_YEAR, RULES
from cablestream.schemas.record import CableRecord, Recipient
from cablestream.tasks.quality.tables import read_quality_table, record_batch_quality
from cablestream.tasks.quality.validate import ValidationOutcome, validate_batch

BATCH = "20261125T100450Z-3f9a1c2b"


def rid(n: int) -> str:
    return hashlib.sha256(f"record {n}".encode()).hexdigest()


def cable(n: int, **changes: Any) -> CableRecord:
    """A clean cable; `changes` plant one defect."""
    fields: dict[str, Any] = {
        "reference_id": f"08ASTANA{n + 1}",
        "created": datetime(2008, 5, 27, 7, 10, tzinfo=UTC),
        "precedence": "IMMEDIATE",
        "transmission_id": "VZCZCXYZ0002",
        "origin": "AMEMBASSY ASTANA",
        "station": "ASTANA",
        "recipients": [Recipient("RUEHC", "SECSTATE WASHDC", "IMMEDIATE", "2481")],
        "info_recipients": [Recipient("RUEHMO", "AMEMBASSY MOSCOW", "PRIORITY", "0017")],
        "classification": "SECRET",
        "caveats": ["SIPDIS"],
        "nondisclosure_deadline": date(2018, 5, 27),
        "tags": ["PREL", "KZ"],
        "subject": f"KAZAKHSTAN: MEETING NUMBER {n}",
        "classification_reasons": ["1.4(b)", "1.4(d)"],
        "body": "1. (S) Text of the cable.",
        "record_id": rid(n),
        "source_path": f"inbox/{n}.txt",
        "source_sha256": hashlib.sha256(b"file").hexdigest(),
    }
    fields.update(changes)
    return CableRecord(**fields)


def run(records: list[CableRecord], lake: Path) -> ValidationOutcome:
    return validate_batch(records_to_table(records), BATCH, lake)


def result(outcome: ValidationOutcome, name: str) -> dict[str, Any]:
    (row,) = [row for row in outcome.results if row["expectation"] == name]
    return row


def kept_ids(outcome: ValidationOutcome) -> set[str]:
    return set(outcome.accepted.column("record_id").to_pylist())


def test_clean_batch_passes_every_expectation(tmp_path: Path) -> None:
    outcome = run([cable(n) for n in range(12)], tmp_path)
    assert not outcome.failed
    assert outcome.rejections == []
    assert outcome.accepted.num_rows == 12
    assert [row["expectation"] for row in outcome.results] == [rule.name for rule in RULES]
    failing = [row["expectation"] for row in outcome.results if not row["success"]]
    assert failing == []


def test_rows_that_are_not_cables_are_dropped_with_the_expectation_as_reason(
    tmp_path: Path,
) -> None:
    records = [cable(n) for n in range(12)]
    records[5] = cable(5, record_id=rid(6))  # duplicate record id, with row 6
    records[8] = cable(8, body="")  # no text at all
    records[9] = cable(9, body=" \n\n  ")  # blank: no text either
    outcome = run(records, tmp_path)

    assert not outcome.failed
    reasons = {r.record_id: r.reason for r in outcome.rejections}
    assert reasons == {
        rid(6): "record_id_unique",  # both rows sharing the id go (ambiguous)
        rid(8): "body_has_text",
        rid(9): "body_has_text",
    }
    assert kept_ids(outcome) == {rid(n) for n in (0, 1, 2, 3, 4, 7, 10, 11)}
    assert result(outcome, "record_id_unique")["unexpected_count"] == 2
    assert result(outcome, "body_has_text")["policy"] == "drop"
    assert set(result(outcome, "body_has_text")["sample_record_ids"]) == {rid(8), rid(9)}
    detail = {r.record_id: r.detail for r in outcome.rejections}
    assert detail[rid(8)] == "body_has_text: body=''"


def test_real_cables_the_parser_read_badly_are_kept_and_flagged(tmp_path: Path) -> None:
    records = [cable(n) for n in range(12)]
    records[1] = cable(1, reference_id="ASTANA 988")  # id in an odd form
    records[2] = cable(2, created=datetime(1950, 1, 1, tzinfo=UTC))  # misread date
    records[3] = cable(3, created=datetime(2031, 6, 1, tzinfo=UTC))  # misread date
    records[4] = cable(4, subject="")  # empty subject (missing must be null)
    records[7] = cable(7, reference_id=None)  # undated partial extract: kept, counted
    outcome = run(records, tmp_path)

    assert not outcome.failed
    assert outcome.rejections == []
    assert kept_ids(outcome) == {rid(n) for n in range(12)}
    flags = dict(
        zip(
            outcome.accepted.column("record_id").to_pylist(),
            outcome.accepted.column("quality_flags").to_pylist(),
            strict=True,
        )
    )
    assert flags[rid(1)] == ["reference_id_format"]
    assert flags[rid(2)] == ["created_year_in_range"]
    # Written "after" its declassification date too: every broken check is named.
    assert flags[rid(3)] == ["created_year_in_range", "nondisclosure_after_created"]
    assert flags[rid(4)] == ["subject_length"]
    assert flags[rid(7)] == ["reference_id_not_null"]
    assert all(flags[rid(n)] == [] for n in (0, 5, 6, 8, 9, 10, 11))
    for name in ("reference_id_format", "created_year_in_range", "reference_id_not_null"):
        assert result(outcome, name)["policy"] == "warn"
    assert result(outcome, "created_year_in_range")["unexpected_count"] == 2
    assert set(result(outcome, "created_year_in_range")["sample_record_ids"]) == {rid(2), rid(3)}


def test_warn_rows_are_kept_and_counted(tmp_path: Path) -> None:
    records = [cable(n) for n in range(12)]
    records[0] = cable(0, tags=["PREL", "<a>KZ</a>"])
    records[1] = cable(1, nondisclosure_deadline=date(2001, 1, 1))  # before created
    records[2] = cable(2, caveats=["SIPDIS", "BANANA"])
    records[3] = cable(3, classification="SEKRET", precedence="SOONISH")
    records[4] = cable(4, recipients=[Recipient("XYZ", "SECSTATE", None, None)])
    records[5] = cable(5, classification_reasons=["1.4 (b)"])
    records[6] = cable(6, created=None)
    outcome = run(records, tmp_path)

    assert not outcome.failed
    assert outcome.rejections == []
    assert outcome.accepted.num_rows == 12
    expected = {
        "tags_format": rid(0),
        "nondisclosure_after_created": rid(1),
        "caveats_in_set": rid(2),
        "classification_in_set": rid(3),
        "precedence_in_set": rid(3),
        "routing_indicators_format": rid(4),
        "classification_reasons_format": rid(5),
        "created_not_null": rid(6),
    }
    for name, record_id in expected.items():
        row = result(outcome, name)
        assert row["policy"] == "warn"
        assert not row["success"], name
        assert row["unexpected_count"] == 1, name
        assert row["sample_record_ids"] == [record_id], name


def test_batch_where_most_rows_lack_a_subject_fails(tmp_path: Path) -> None:
    records = [cable(n, subject=None) if n % 4 else cable(n) for n in range(20)]
    outcome = run(records, tmp_path)
    assert outcome.failed
    assert outcome.failed_expectations == ["batch_subject_share"]
    row = result(outcome, "batch_subject_share")
    assert row["policy"] == "fail"
    assert row["unexpected_count"] == 15
    assert row["element_count"] == 20
    # A batch rule names no row: nothing is dropped, nothing is held back; the verdict fails.
    assert outcome.rejections == []
    assert not outcome.held_back
    assert outcome.accepted.num_rows == 20


def test_a_failed_row_rule_takes_out_its_rows_only(tmp_path: Path) -> None:
    records = [cable(n) for n in range(12)]
    records[5] = cable(5, source_path=None, parser_version=None)
    outcome = run(records, tmp_path)
    assert outcome.failed_expectations == ["source_path_not_null", "parser_version_not_null"]
    assert not outcome.held_back
    assert [(r.record_id, r.reason) for r in outcome.rejections] == [
        (rid(5), "source_path_not_null")
    ]
    assert kept_ids(outcome) == {rid(n) for n in range(12)} - {rid(5)}


@pytest.mark.parametrize(
    ("created", "deadline"),
    [
        (datetime(9999, 5, 27, 7, 10, tzinfo=UTC), date(2018, 5, 27)),  # a DTG of year 9999
        (datetime(2008, 5, 27, 7, 10, tzinfo=UTC), date(2308, 6, 3)),  # DECL: 06/03/2308
        (datetime(1005, 1, 1, tzinfo=UTC), None),  # a csv date of 1/1/1005
    ],
)
def test_dates_of_any_year_are_validated_not_crashed_on(
    tmp_path: Path, created: datetime, deadline: date | None
) -> None:
    records = [cable(n) for n in range(11)]
    records.append(cable(11, created=created, nondisclosure_deadline=deadline))
    outcome = run(records, tmp_path)
    assert not outcome.failed
    assert kept_ids(outcome) == {rid(n) for n in range(12)}  # a misread date is flagged
    in_range = CREATED_MIN_YEAR <= created.year <= CREATED_MAX_YEAR
    flags = outcome.accepted.column("quality_flags").to_pylist()[11]
    assert ("created_year_in_range" in flags) == (not in_range)


def test_batch_with_few_missing_subjects_passes(tmp_path: Path) -> None:
    records = [cable(n, subject=None) if n < 3 else cable(n) for n in range(20)]
    outcome = run(records, tmp_path)
    assert not outcome.failed
    assert outcome.accepted.num_rows == 20  # null subject is allowed per row
    assert result(outcome, "batch_subject_share")["unexpected_count"] == 3


def test_small_batch_cannot_fail_on_a_share(tmp_path: Path) -> None:
    outcome = run([cable(n, subject=None) for n in range(3)], tmp_path)
    assert not outcome.failed
    row = result(outcome, "batch_subject_share")
    assert not row["success"]
    assert row["policy"] == "warn"  # below min_rows a batch-level fail is only reported


def test_parse_warning_share_fails_the_batch(tmp_path: Path) -> None:
    records = [cable(n, parse_warnings=["paragraph_number_repaired"]) for n in range(15)]
    records += [cable(n) for n in range(15, 20)]
    outcome = run(records, tmp_path)
    assert outcome.failed_expectations == ["batch_parse_warning_share"]
    assert result(outcome, "batch_parse_warning_share")["observed_value"] == "75.00% unexpected"


def test_reference_id_already_in_lake_is_reported_not_dropped(tmp_path: Path) -> None:
    old = records_to_table([cable(100, reference_id="08ASTANA3")])
    part = tmp_path / "year=2008" / "month=5"
    part.mkdir(parents=True)
    pq.write_table(old, part / "part-old-0.parquet")
    # The quarantine (in the control folder) is not part of the data.
    quarantined = layout.quarantine_dir(tmp_path, layout.QUARANTINE_ROWS_DIR)
    quarantined.mkdir(parents=True)
    pq.write_table(
        records_to_table([cable(101, reference_id="08ASTANA1")]), quarantined / "x.parquet"
    )

    records = [cable(n) for n in range(12)]
    records[11] = cable(11, reference_id="08ASTANA1")  # also twice within the batch
    outcome = run(records, tmp_path)
    assert not outcome.failed
    assert outcome.accepted.num_rows == 12
    lake_dup = result(outcome, "reference_id_new_to_lake")
    assert lake_dup["policy"] == "warn"
    assert lake_dup["sample_record_ids"] == [rid(2)]  # 08ASTANA3
    batch_dup = result(outcome, "reference_id_unique_in_batch")
    assert sorted(batch_dup["sample_record_ids"]) == sorted([rid(0), rid(11)])


def test_empty_batch_is_accepted_without_running(tmp_path: Path) -> None:
    outcome = run([], tmp_path)
    assert outcome.accepted.num_rows == 0
    assert not outcome.failed
    assert outcome.results == []


def test_quality_tables_record_every_expectation(tmp_path: Path) -> None:
    records = [cable(n) for n in range(12)]
    records[1] = cable(1, body="")
    records[2] = cable(2, tags=["lower"])
    outcome = run(records, tmp_path)
    record_batch_quality(outcome, BATCH, tmp_path)

    validations = read_quality_table(tmp_path, "validations")
    assert validations is not None
    rows = {row["expectation"]: row for row in validations.to_pylist()}
    assert set(rows) == {rule.name for rule in RULES}
    assert rows["body_has_text"]["success"] is False
    assert rows["body_has_text"]["policy"] == "drop"
    assert rows["body_has_text"]["unexpected_count"] == 1
    assert rows["body_has_text"]["element_count"] == 12
    assert rows["tags_format"]["unexpected_count"] == 1
    assert rows["body_length"]["success"] is True
    assert all(row["batch_id"] == BATCH for row in rows.values())
    assert validations.schema.field("ran_at").type == pa.timestamp("ms", tz="UTC")

    batches = read_quality_table(tmp_path, "batches")
    assert batches is not None
    (batch,) = batches.to_pylist()
    assert (batch["rows_in"], batch["rows_accepted"], batch["rows_dropped"]) == (12, 11, 1)
    assert batch["drop_reasons"] == ["body_has_text"]
    assert batch["batch_failed"] is False

    docs = layout.quality_dir(tmp_path) / "data_docs"
    assert (docs / "index.html").is_file()
    page = docs / batch["data_docs_page"]
    assert page.is_file()
    assert "reference_id" in page.read_text(encoding="utf-8")


def test_failed_batch_is_recorded_too(tmp_path: Path) -> None:
    outcome = run([cable(n, subject=None) for n in range(12)], tmp_path)
    record_batch_quality(outcome, BATCH, tmp_path)
    batches = read_quality_table(tmp_path, "batches")
    assert batches is not None
    (batch,) = batches.to_pylist()
    assert batch["batch_failed"] is True
    assert batch["rows_accepted"] == 12  # a batch rule flags the batch; its rows are written
    assert batch["failed_expectations"] == ["batch_subject_share"]


@pytest.mark.parametrize("rows", [1, 2])
def test_retried_batch_adds_a_run(tmp_path: Path, rows: int) -> None:
    for _ in range(rows):
        record_batch_quality(run([cable(0)], tmp_path), BATCH, tmp_path)
    batches = read_quality_table(tmp_path, "batches")
    assert batches is not None and batches.num_rows == rows


@pytest.mark.parametrize(
    "dropped",
    [set(), {0}, {9}, {0, 9}, {3, 4, 5}, set(range(10)), {2, 7}],
)
def test_without_rows_keeps_order_and_every_other_row(dropped: set[int]) -> None:
    from cablestream.tasks.quality.validate import without_rows

    table = records_to_table([cable(n) for n in range(10)])
    chunked = pa.concat_tables([table.slice(0, 4), table.slice(4, 3), table.slice(7)])
    kept = without_rows(chunked, {rid(n) for n in dropped})
    assert kept.column("record_id").to_pylist() == [rid(n) for n in range(10) if n not in dropped]
    assert kept.schema == table.schema


def test_one_ge_run_per_batch_and_one_context_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from great_expectations.core.validation_definition import ValidationDefinition

    from cablestream.tasks.quality.engine import get_engine

    runs: list[int] = []
    original = ValidationDefinition.run

    def counting(self: ValidationDefinition, *args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ValidationDefinition, "run", counting)
    engine = get_engine()
    run([cable(n) for n in range(30)], tmp_path)
    run([cable(n) for n in range(5)], tmp_path)
    assert len(runs) == 2  # one per batch, whatever its size
    assert get_engine() is engine


def _page(lake: Path, outcome: ValidationOutcome) -> str:
    assert outcome.data_docs_page is not None
    page = layout.quality_dir(lake) / "data_docs" / outcome.data_docs_page
    return page.read_text(encoding="utf-8")


def test_policy_in_force_and_verdict_are_recorded_with_the_run(tmp_path: Path) -> None:
    """A small batch breaking a batch-level `fail` rule: in force as `warn`, the batch passes,
    and the quality tables and GE's own run (its Data Docs page) say the same."""
    outcome = run([cable(n, subject=None) for n in range(3)], tmp_path)
    record_batch_quality(outcome, BATCH, tmp_path)
    assert outcome.verdict == "passed"
    assert outcome.downgraded == ["batch_subject_share", "batch_parse_warning_share"]

    validations = read_quality_table(tmp_path, "validations")
    assert validations is not None
    rows = {row["expectation"]: row for row in validations.to_pylist()}
    share = rows["batch_subject_share"]
    assert (share["policy"], share["suite_policy"], share["success"]) == ("warn", "fail", False)
    batches = read_quality_table(tmp_path, "batches")
    assert batches is not None
    (batch,) = batches.to_pylist()
    assert batch["verdict"] == "passed" and batch["batch_failed"] is False
    assert "batch_subject_share" in batch["unmet_expectations"]
    assert batch["downgraded_expectations"] == outcome.downgraded

    page = _page(tmp_path, outcome)
    assert "Succeeded" in page and "Failed" not in page.split("Status:")[1][:200]
    assert "warn: " in page and "batch_subject_share" in page  # the policies in force

    failed = run([cable(n, subject=None) for n in range(12)], tmp_path)
    assert failed.verdict == "failed"
    assert "Failed" in _page(tmp_path, failed).split("Status:")[1][:200]


def test_data_docs_name_the_lake_batch_and_only_lake_columns(tmp_path: Path) -> None:
    records = [cable(n) for n in range(12)]
    records[0] = cable(0, caveats=["SIPDIS", "BANANA"], tags=["lower"])
    outcome = run(records, tmp_path)
    page = _page(tmp_path, outcome)
    assert f"Data asset: {tmp_path.resolve()} batch {BATCH}" in page
    for helper in ("_joined", "reference_id_in_lake", "nondisclosure_at", "has_parse_warnings"):
        assert helper not in page, helper
    assert ">created_year<" not in page and ">body_length<" not in page  # as column headings
    assert "BANANA" in page  # the unexpected caveat, shown in the real column


def test_each_run_is_stored_once_capped_and_routing_saw_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GE would store each run in full (every unexpected row, as JSON) before the action
    keeps its capped copy: the engine's store takes only the copy, which the Data Docs
    render; routing still sees every row."""
    from cablestream.tasks.quality.engine import SAMPLE_SIZE, get_engine

    store = get_engine().context.validation_results_store
    serialized: list[Any] = []
    real_serialize = store.serialize

    def counted(value: Any) -> Any:
        serialized.append(value)
        return real_serialize(value)

    monkeypatch.setattr(store, "serialize", counted)
    flagged = SAMPLE_SIZE + 5
    records = [cable(n, subject="") for n in range(flagged)] + [cable(n) for n in range(40, 45)]
    outcome = run(records, tmp_path)
    flags = outcome.accepted.column("quality_flags").to_pylist()
    assert flags.count(["subject_length"]) == flagged
    (stored,) = serialized  # once, the capped copy
    by_name = {item.expectation_config.meta["name"]: item.result for item in stored.results}
    assert by_name["subject_length"]["unexpected_count"] == flagged
    assert len(by_name["subject_length"]["unexpected_index_list"]) == SAMPLE_SIZE
    assert "subject_length" in _page(tmp_path, outcome)
