"""Shared fixtures: one Prefect test server for the whole session, the shared corpus."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT / ".." / "shared"
CORPUS_FILES = SHARED / "corpus" / "files"
SEEDS = SHARED / "seeds"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """A real Prefect API (temporary server, temporary database) for the session.

    Entering it costs ~17 s, so every test that runs flows shares this one.
    Yields the API URL, so subprocesses can use the same server.
    """
    from cablestream.flows.logfilter import settings_path

    os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", settings_path())
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def corpus_files() -> Path:
    """`../shared/corpus/files` beside the repository (skips when it is absent)."""
    if not CORPUS_FILES.is_dir():
        pytest.skip("../shared/corpus is not beside the repository")
    return CORPUS_FILES.resolve()
