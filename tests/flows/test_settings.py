from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cablestream.flows.cli import app
from cablestream.flows.logfilter import ShutdownNoiseFilter, settings_path
from cablestream.flows.settings import IngestSettings, InputError

from ..conftest import S3Server


def test_explicit_values_beat_env_vars_which_beat_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert IngestSettings.resolve().inbox == Path("data/inbox")
    monkeypatch.setenv("CABLESTREAM_INBOX", "/srv/inbox")
    monkeypatch.setenv("CABLESTREAM_SETTLE_SECONDS", "2.5")
    monkeypatch.setenv("CABLESTREAM_MAX_FILES_PER_BATCH", "7")
    settings = IngestSettings.resolve(lake="/srv/lake", settle_seconds=None)
    assert settings.inbox == Path("/srv/inbox") and settings.lake == Path("/srv/lake")
    assert settings.settle_seconds == 2.5 and settings.max_files_per_batch == 7
    assert IngestSettings.resolve(inbox="/x").inbox == Path("/x")
    with pytest.raises(TypeError):
        IngestSettings.resolve(inbx="/typo")


def test_ingest_with_nothing_to_do_does_not_start_prefect(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    result = CliRunner().invoke(
        app, ["ingest", "--inbox", str(tmp_path / "inbox"), "--lake", str(tmp_path / "lake")]
    )
    assert result.exit_code == 0, result.output
    assert "nothing to ingest" in result.output


def _record(name: str, message: str, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, info)


def test_the_logging_filter_drops_only_the_shutdown_noise() -> None:
    import asyncio

    keep = ShutdownNoiseFilter().filter
    assert not keep(
        _record("prefect.server.services.task_run_recorder", "Error flushing task run events")
    )
    assert not keep(
        _record(
            "sqlalchemy.pool.impl.AsyncAdaptedQueuePool",
            "Exception terminating connection",
            asyncio.CancelledError(),
        )
    )
    assert keep(_record("prefect.flow_runs", "Task run failed: OSError('disk full')"))
    assert keep(_record("sqlalchemy.pool.impl.AsyncAdaptedQueuePool", "pool exhausted"))
    assert Path(settings_path()).read_text().count("shutdown_noise") >= 2


def test_object_store_places_are_checked_before_any_work(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against moto's S3 server: each refusal is one line naming what to change."""
    bucket = s3_server.bucket()
    monkeypatch.setenv("CABLESTREAM_CONTROL", str(tmp_path / "control"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    lake = f"s3://{bucket}/lake"

    def refusal(**given: str) -> str:
        with pytest.raises(InputError) as raised:
            IngestSettings.resolve(**given).check_paths()
        return str(raised.value)

    assert "there is no bucket 'no-such-bucket'" in refusal(inbox="s3://no-such-bucket/in")
    assert "name a prefix inside the bucket" in refusal(inbox=str(inbox), lake=f"s3://{bucket}")
    assert "must be a local folder" in refusal(inbox=str(inbox), archive="s3://x/done")
    assert "not for an object-store inbox" in refusal(
        inbox=f"s3://{bucket}/in", lake=str(tmp_path / "lake"), archive=str(tmp_path / "done")
    )
    # A shared ledger: the batches are staged on the store, any host can finish them.
    IngestSettings.resolve(inbox=str(inbox), lake=lake, ledger="postgresql://h/db").check_paths()
    IngestSettings.resolve(inbox=str(inbox), lake=lake).lake_root()  # binds the folder
    assert "holds the control data of the lake" in refusal(
        inbox=str(inbox), lake=f"s3://{bucket}/other"
    )
    # A local lake given the bound folder as its control folder would write into the store.
    assert "belongs to the object-store lake" in refusal(
        inbox=str(inbox), lake=str(tmp_path / "lake")
    )
    assert s3_server.keys(bucket) == []
