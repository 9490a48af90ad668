"""`reprocess` brings a lake written by an older parser up to the current one, exactly once.

The lake is one the earlier release left: the same rows, stamped by parser 0.1.0 and
without the `station` column (schema version 1). Its sources are in the archive or the
inbox, one in neither.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.dataset as ds

from cablestream.flows.ingest import ingest_flow
from cablestream.flows.reprocess import reprocess_flow
from cablestream.schemas import versions
from cablestream.schemas.record import PARSER_VERSION, CableRecord
from cablestream.tasks.batch.audit import audit_lake
from cablestream.tasks.lake.partition import data_files
from cablestream.tasks.parse import parse_source

from .conftest import faulty, faulty_cli, rewrite_as_old_version

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inbox"


def _old_lake(root: Path) -> tuple[Path, Path, Path, str]:
    """An old lake from the samples: half its sources archived, half in the inbox, and one
    of them gone from both; returns inbox, archive, lake and the gone source's path."""
    inbox, archive, lake = root / "inbox", root / "archive", root / "lake"
    samples = sorted(EXAMPLES.iterdir())
    inbox.mkdir()
    for sample in samples[::2]:
        shutil.copy(sample, inbox / sample.name)
    ingest_flow(inbox=str(inbox), lake=str(lake), settle_seconds=0, archive=str(archive))
    for sample in samples[1::2]:
        shutil.copy(sample, inbox / sample.name)
    ingest_flow(inbox=str(inbox), lake=str(lake), settle_seconds=0)
    for data_file in data_files(lake):
        rewrite_as_old_version(data_file, parser_version="0.1.0")
    gone = samples[0].name
    (archive / gone).unlink()
    return inbox, archive, lake, gone


def _rows(lake: Path) -> list[dict[str, object]]:
    dataset = ds.dataset(lake, format="parquet", schema=versions.read_schema(), partitioning="hive")
    columns = ["record_id", "station", "parser_version", "source_path"]
    return dataset.to_table(columns=columns).to_pylist()


def _fresh_stations() -> dict[str, str | None]:
    """record_id -> station as the current parser reads each sample."""
    stations: dict[str, str | None] = {}
    for sample in EXAMPLES.iterdir():
        for result in parse_source(sample.read_bytes(), sample.name):
            if isinstance(result, CableRecord):
                stations[result.record_id] = result.station
    return stations


def test_reprocess_brings_every_row_to_the_current_parser(
    prefect_harness: str, tmp_path: Path
) -> None:
    inbox, archive, lake, gone = _old_lake(tmp_path)
    before = _rows(lake)
    assert {row["parser_version"] for row in before} == {"0.1.0"}
    assert {row["station"] for row in before} == {None}

    result = reprocess_flow(lake=str(lake), inbox=str(inbox), archive=str(archive))

    after = _rows(lake)
    assert len(after) == len(before) == len({row["record_id"] for row in after})
    assert {row["record_id"] for row in after} == {row["record_id"] for row in before}
    kept_old = [row for row in after if row["source_path"] == gone]
    assert kept_old and {row["parser_version"] for row in kept_old} == {"0.1.0"}
    stations = _fresh_stations()
    for row in after:
        if row["source_path"] != gone:
            assert row["parser_version"] == PARSER_VERSION
            assert row["station"] == stations[str(row["record_id"])]
    assert any(row["station"] for row in after)
    assert [item["source_path"] for item in result["unavailable"]] == [gone]
    assert result["rows_replaced"] == len(before) - len(kept_old) == result["rows_written"]
    assert audit_lake(lake) == []
    # Nothing left to do but the source that is gone; the lake is unchanged by a second run.
    again = reprocess_flow(lake=str(lake), inbox=str(inbox), archive=str(archive))
    assert again["sources_reprocessed"] == 0 and len(again["unavailable"]) == 1
    assert _rows(lake) == after


def test_kill_9_during_reprocess_loses_and_duplicates_nothing(
    prefect_harness: str, tmp_path: Path
) -> None:
    inbox, archive, lake, gone = _old_lake(tmp_path)
    expected = sorted(str(row["record_id"]) for row in _rows(lake))
    command = faulty_cli("reprocess", "--lake", str(lake))
    command += ["--inbox", str(inbox), "--archive", str(archive), "--max-files-per-batch", "3"]
    env = {**os.environ, "PREFECT_API_URL": prefect_harness}
    # Recorded, nothing renamed / staged, not recorded (undone by the next run) / renamed
    # and deleted, not committed (the recorded ones finished by the next run's recovery).
    for moment in ("prepare_commit:after", "prepare_commit:before", "commit:before"):
        mark = tmp_path / f"mark-{moment.replace(':', '-')}"
        run_env = {**env, faulty.PAUSE_AT_ENV: moment, faulty.PAUSE_MARK_ENV: str(mark)}
        process = subprocess.Popen(
            command, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            faulty.wait_for_mark(mark, process)
        finally:
            process.kill()
            _, err = process.communicate()
        assert mark.exists(), err.decode()[-2000:]
        rows = sorted(str(row["record_id"]) for row in _rows(lake))
        assert rows == expected, f"a reader saw a wrong lake after a kill at {moment}"
    finished = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, timeout=600, check=False
    )
    assert finished.returncode == 3, finished.stderr.decode()[-2000:]  # one source is gone
    summary = json.loads(finished.stdout)
    assert [item["source_path"] for item in summary["unavailable"]] == [gone]
    rows = _rows(lake)
    assert sorted(str(row["record_id"]) for row in rows) == expected
    assert {row["parser_version"] for row in rows if row["source_path"] != gone} == {PARSER_VERSION}
    assert audit_lake(lake) == []
