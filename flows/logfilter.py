"""Logging filter for Prefect's shutdown noise, used from `flows/logging.yaml`.

The noise (`task_run_recorder - Error flushing ...`, SQLAlchemy's
`AsyncAdaptedQueuePool ... CancelledError`) is logged by the temporary
server's subprocess while it stops, so only a logging config file (set by
`PREFECT_LOGGING_SETTINGS_PATH`, which the subprocess inherits) can filter
it; this module must therefore stay importable without side effects.
"""

from __future__ import annotations

import asyncio
import logging


def _is_cancelled(record: logging.LogRecord) -> bool:
    if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
        return True
    return "CancelledError" in record.getMessage()


class ShutdownNoiseFilter(logging.Filter):
    """Drops the server's shutdown tracebacks; everything else passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if "task_run_recorder" in name and record.getMessage().startswith("Error flushing"):
            return False
        if name.startswith("sqlalchemy.pool") and _is_cancelled(record):
            return False
        return not ("AsyncAdaptedQueuePool" in record.getMessage() and _is_cancelled(record))


def settings_path() -> str:
    """Absolute path of the logging config that installs this filter."""
    from pathlib import Path

    return str(Path(__file__).with_name("logging.yaml"))
