"""Ingest and watch settings: defaults, then `CABLESTREAM_*` env vars, then explicit values.

Every option can come from a CLI flag, a flow/deployment parameter or an env
var; an explicit value (not None) wins over the env var, which wins over the
default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "CABLESTREAM_"


@dataclass(frozen=True, slots=True)
class IngestSettings:
    inbox: Path = Path("data/inbox")
    lake: Path = Path("data/lake")
    # A file is ready once untouched this long (or at once with a NAME.done marker).
    settle_seconds: float = 1.0
    # A micro-batch closes at this many files or bytes (one Prefect task chain per batch).
    max_files_per_batch: int = 1000
    max_batch_bytes: int = 64 * 1024 * 1024
    # Bigger files go to the quarantine as `oversized`.
    max_file_bytes: int = 64 * 1024 * 1024
    # A batch that fails validation is retried; after this many tries it is quarantined whole.
    max_attempts: int = 3
    # Move settled source files here (relative layout kept); None leaves them in the inbox.
    archive: Path | None = None
    # Watch mode: close a micro-batch this long after its first event, rescan this often.
    max_wait_seconds: float = 0.5
    rescan_seconds: float = 30.0

    @property
    def env_names(self) -> dict[str, str]:
        return {f.name: ENV_PREFIX + f.name.upper() for f in fields(self)}

    @classmethod
    def resolve(cls, **explicit: Any) -> IngestSettings:
        """Defaults, overridden by env vars, overridden by the explicit values that are not None."""
        settings = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            value = explicit.get(f.name)
            if value is None and raw not in (None, ""):
                value = raw
            if value is None:
                continue
            default = getattr(settings, f.name)
            if f.name in ("inbox", "lake", "archive"):
                values[f.name] = Path(value)
            elif isinstance(default, bool):
                values[f.name] = str(value).lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = type(default)(value)
        unknown = set(explicit) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        return replace(settings, **values)
