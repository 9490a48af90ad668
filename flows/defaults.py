"""Default values of the ingest settings, importable without pydantic.

`flows/settings.py` builds the settings from these; the CLI shows them in
`--help` without importing pydantic-settings, so `cablestream parse` starts fast.
"""

from __future__ import annotations

from pathlib import Path

MIB = 1024 * 1024

INBOX = Path("data/inbox")
LAKE = Path("data/lake")
SETTLE_SECONDS = 1.0
MAX_FILES_PER_BATCH = 2000
MAX_BATCH_BYTES = 64 * MIB
MAX_FILE_BYTES = 64 * MIB
MAX_ATTEMPTS = 3
MAX_WAIT_SECONDS = 0.5
RESCAN_SECONDS = 30.0
