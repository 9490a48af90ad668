"""Quality outputs outside the tables: the Prefect artifact and the batch summary."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import records_to_table
from cablestream.schemas.record import CableRecord
from cablestream.tasks.quality.datadocs import forget_loaded_runs
from cablestream.tasks.quality.tables import (
    publish_artifact,
    record_batch_quality,
    summary_markdown,
)
from cablestream.tasks.quality.validate import validate_batch

BATCH = "20261125T110000Z-0000abcd"


def _records(n: int, **changes: object) -> list[CableRecord]:
    records = []
    for i in range(n):
        fields: dict[str, object] = {
            "reference_id": f"08ASTANA{i + 1}",
            "subject": f"S{i}",
            "body": "text",
            "record_id": hashlib.sha256(str(i).encode()).hexdigest(),
            "source_path": "a.txt",
            "source_sha256": hashlib.sha256(b"a").hexdigest(),
        }
        fields.update(changes)
        records.append(CableRecord(**fields))  # type: ignore[arg-type]
    return records


def test_summary_names_the_failed_expectation_and_drop_reasons(tmp_path: Path) -> None:
    failed = validate_batch(records_to_table(_records(12, subject=None)), BATCH, tmp_path)
    text = summary_markdown(failed, BATCH)
    assert "**FAILED** (batch_subject_share)" in text
    assert "| batch_subject_share | fail | 12 |" in text

    small = validate_batch(records_to_table(_records(3, subject=None)), BATCH, tmp_path)
    text = summary_markdown(small, BATCH)
    assert "- verdict: passed" in text
    assert "| batch_subject_share | warn | 3 |" in text  # the policy in force, not the suite's
    assert "in force as `warn` (batch under its minimum rows): batch_subject_share" in text

    records = _records(12)
    records[0].body = ""
    passed = validate_batch(records_to_table(records), BATCH, tmp_path)
    text = summary_markdown(passed, BATCH)
    assert "- verdict: passed" in text
    assert "- rows dropped to quarantine: 1" in text
    assert "| body_has_text | 1 |" in text


def test_no_artifact_outside_a_prefect_run(tmp_path: Path) -> None:
    outcome = validate_batch(records_to_table(_records(1)), BATCH, tmp_path)
    assert publish_artifact(outcome, BATCH) is False


def test_artifact_per_batch_inside_a_flow_under_one_key(
    prefect_harness: str, tmp_path: Path
) -> None:
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    batches = ["20261125T120000Z-0000aaa1", "20261125T120100Z-0000aaa2"]

    @flow
    def validate_two() -> None:
        for batch_id in batches:
            outcome = validate_batch(records_to_table(_records(3)), batch_id, tmp_path)
            record_batch_quality(outcome, batch_id, tmp_path)

    validate_two()

    async def read() -> list[tuple[str, str]]:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["cable-batch-quality"]))
            )
            return [(str(a.description), str(a.data)) for a in artifacts]

    versions = asyncio.run(read())
    # One key, one version per batch: the Prefect UI shows the history under it.
    for batch_id in batches:
        (description, data), *_ = [v for v in versions if f"`{batch_id}`" in v[0]]
        assert "- verdict: passed" in description
        assert "policy in force" in data and "batch_subject_share" in data


def test_data_docs_index_lists_earlier_processes_runs_and_only_this_lakes(tmp_path: Path) -> None:
    from cablestream.tasks.quality.engine import get_engine

    first, second, other = (
        "20261125T090000Z-00000001",
        "20261125T100000Z-00000002",
        "20261125T110000Z-00000003",
    )
    lake, other_lake = tmp_path / "lake", tmp_path / "other"
    table = records_to_table(_records(3))
    record_batch_quality(validate_batch(table, first, lake), first, lake)
    # A new process: nothing of the first run is left in memory.
    engine = get_engine()
    forget_loaded_runs()
    store = engine.context.validation_results_store
    for key in list(store.list_keys()):
        store.remove_key(key)
    record_batch_quality(validate_batch(table, second, lake), second, lake)
    record_batch_quality(validate_batch(table, other, other_lake), other, other_lake)

    index = (layout.quality_dir(lake) / "data_docs" / "index.html").read_text(encoding="utf-8")
    assert first in index and second in index
    assert other not in index
    other_index = (layout.quality_dir(other_lake) / "data_docs" / "index.html").read_text(
        encoding="utf-8"
    )
    assert other in other_index and first not in other_index
