"""The dashboard reads the ledger the pass used (the lake's own, or a shared PostgreSQL one):
the files still waiting in the inbox and the newest file seen, after every pass and in
`cablestream report --ledger`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from cablestream.flows.ingest import ingest_flow
from cablestream.schemas import lake as layout
from cablestream.tasks.quality.dashboard import collect

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inbox"


def _waiting(page: Path) -> str:
    """The page's "files waiting in the inbox" cell."""
    (body,) = re.findall(r'<table id="freshness">.*?<tbody>(.*?)</tbody>', page.read_text())
    return str(re.findall(r"<td>(.*?)</td>", body)[3])


def test_files_waiting_in_the_inbox_are_the_ones_the_pass_ledger_has_not_taken(
    prefect_harness: str, tmp_path: Path, ledger: str | None
) -> None:
    url = ledger
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    samples = sorted(EXAMPLES.glob("*.txt"))
    for sample in samples[:3]:
        shutil.copy(sample, inbox)
    ingest_flow(inbox=str(inbox), lake=str(lake), settle_seconds=0, ledger=url)
    assert layout.ledger_path(lake).exists() == (url is None)  # the shared one was used

    # The page the pass rewrote: every inbox file is in its ledger, none waits.
    assert _waiting(layout.report_path(lake)) == "0"
    newest = max(path.stat().st_mtime_ns for path in inbox.iterdir())
    taken = collect(lake, None, ledger_url=url).freshness.newest_file_at  # the ledger's alone
    assert taken == datetime.fromtimestamp(newest / 1e9, UTC)

    # Two files land after the pass: they, and only they, wait.
    for sample in samples[3:5]:
        shutil.copy(sample, inbox)
    assert collect(lake, inbox, ledger_url=url).freshness.backlog_files == 2
    command = [sys.executable, "-m", "cablestream.flows.cli", "report", "--lake", str(lake)]
    command += ["--inbox", str(inbox), *(["--ledger", url] if url else [])]
    report = subprocess.run(
        command,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert _waiting(Path(report.stdout.strip())) == "2"
