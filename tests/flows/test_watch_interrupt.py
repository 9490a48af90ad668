"""Ctrl-C in `cablestream watch`: the first says it finishes the pass, the second cancels it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from uuid import UUID

from cablestream.flows.ingest import ingest_flow

from .conftest import faulty, faulty_cli, lake_ids, parsed_ids, quarantined_ids

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inbox"


def test_a_second_ctrl_c_stops_at_once_and_marks_the_flow_run_cancelled(
    prefect_harness: str, tmp_path: Path
) -> None:
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    shutil.copytree(EXAMPLES, inbox)
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    # The pass holds between publishing a batch and committing it.
    mark = tmp_path / "paused"
    env.update({faulty.PAUSE_AT_ENV: "commit:before", faulty.PAUSE_MARK_ENV: str(mark)})
    command = faulty_cli("watch", "--inbox", str(inbox), "--lake", str(lake))
    command += ["--settle-seconds", "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        faulty.wait_for_mark(mark, process, timeout=120)
        process.send_signal(signal.SIGINT)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, err_bytes = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    err = err_bytes.decode()
    assert process.returncode == 130, err[-2000:]
    assert "stopping: finishing the current pass (Ctrl-C again stops at once)" in err
    assert "Traceback" not in err
    found = re.search(r"flow run ([0-9a-f-]{36}) marked cancelled", err)
    assert found, err[-2000:]

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(found.group(1)))
    assert run.state is not None and run.state.is_cancelled()

    # The next run's recovery undoes the interrupted batch: every cable once.
    ingest_flow(inbox=str(inbox), lake=str(lake), settle_seconds=0)
    rows = lake_ids(lake)
    assert len(rows) == len(set(rows))
    assert set(rows) | set(quarantined_ids(lake)) == parsed_ids(inbox)
