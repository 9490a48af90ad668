from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cablestream.flows.cli import app
from cablestream.flows.logfilter import ShutdownNoiseFilter, settings_path
from cablestream.flows.settings import IngestSettings


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
