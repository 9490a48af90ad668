"""`cablestream status` and `cablestream quarantine`: the ledger's view, and taking a file again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cablestream.flows.ingest import ingest_flow
from cablestream.schemas import lake as layout
from cablestream.tasks.lake.quarantine import read_reasons

CLI = [sys.executable, "-m", "cablestream.flows.cli"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inbox"


def test_status_counts_the_ledger_and_a_requeued_file_is_taken_again(
    prefect_harness: str, tmp_path: Path, ledger: str | None
) -> None:
    url = ledger
    flag = ["--ledger", url] if url else []

    def _cli(*args: str) -> subprocess.CompletedProcess[str]:
        environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
        return subprocess.run(
            [*CLI, *args, *flag], env=environment, capture_output=True, text=True, timeout=120
        )

    inbox, lake, archive = tmp_path / "inbox", tmp_path / "lake", tmp_path / "archive"
    inbox.mkdir()
    shutil.copy(sorted(EXAMPLES.glob("*.txt"))[0], inbox)
    (inbox / "notes.txt").write_text("minutes of a meeting, no telegram\n", encoding="utf-8")
    ingest_flow(
        inbox=str(inbox), lake=str(lake), settle_seconds=0, archive=str(archive), ledger=url
    )
    assert layout.ledger_path(lake).exists() == (url is None)  # the shared one was used

    status = _cli("status", "--lake", str(lake), "--json")
    assert status.returncode == 0, status.stderr
    facts = json.loads(status.stdout)
    assert facts["files"] == {"committed": 1, "quarantined": 1}
    assert facts["quarantined_files"] == {"no_cable": 1}
    assert facts["quarantine_rows"] == {"no_cable": 1}
    assert facts["in_flight"] == [] and facts["retries"] == []
    (batch,) = facts["recent_batches"]
    assert batch["state"] == "committed" and batch["files"] == 2

    listed = _cli("quarantine", "ls", "--lake", str(lake), "--json")
    (item,) = json.loads(listed.stdout)
    assert item["path"] == "notes.txt" and item["reason"] == "no_cable"
    assert layout.output_path(lake, item["copy"]).read_bytes().startswith(b"minutes")

    # The file went to the archive: requeue puts the quarantine's copy back in the inbox.
    assert not (inbox / "notes.txt").exists()
    requeued = _cli(
        "quarantine", "requeue", "notes.txt", "--inbox", str(inbox), "--lake", str(lake)
    )
    assert requeued.returncode == 0, requeued.stderr
    assert "restored from the quarantine's copy" in requeued.stdout
    assert (inbox / "notes.txt").read_bytes().startswith(b"minutes")

    again = ingest_flow(inbox=str(inbox), lake=str(lake), settle_seconds=0, ledger=url)
    assert again["files"] == 1 and again["files_quarantined"] == 1  # taken again (still no cable)
    assert read_reasons(lake).column("reason").to_pylist() == ["no_cable", "no_cable"]

    unknown = _cli("quarantine", "requeue", "other.txt", "--inbox", str(inbox), "--lake", str(lake))
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "other.txt is not a quarantined file" in unknown.stderr

    # Compaction reads (and recovers through) the same ledger: nothing to merge in one file.
    compacted = _cli("compact", "--lake", str(lake), "--json")
    assert compacted.returncode == 0, compacted.stderr
    assert json.loads(compacted.stdout)["partitions"] == 0
    assert layout.ledger_path(lake).exists() == (url is None)
