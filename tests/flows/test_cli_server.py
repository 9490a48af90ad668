"""The CLI and the local Prefect server: found running and reused, or refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from uuid import UUID

CLI = [sys.executable, "-m", "cablestream.flows.cli"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inbox"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: no PREFECT_API_URL, the server found through CABLESTREAM_HOME."""
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    environment.update(env)
    return subprocess.run(
        [*CLI, *args], env=environment, capture_output=True, text=True, timeout=300
    )


def test_ingest_uses_the_running_server_and_links_its_flow_run(
    prefect_harness: str, tmp_path: Path
) -> None:
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    shutil.copy(sorted(EXAMPLES.glob("*.txt"))[0], inbox)
    result = _run(
        "ingest", "--inbox", str(inbox), "--lake", str(lake), "--settle-seconds", "0", "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["files"] == 1 and summary["rows_written"] >= 1
    ui = prefect_harness.removesuffix("/api")
    assert summary["flow_run_url"].startswith(f"{ui}/runs/flow-run/")
    assert f"Prefect UI: {ui}" in result.stderr
    assert "starting the local Prefect server" not in result.stderr

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(summary["flow_run_url"].rsplit("/", 1)[1]))
    assert run.state is not None and run.state.is_completed()


def test_status_and_a_second_start_find_the_same_server(prefect_harness: str) -> None:
    status = _run("server", "status", "--json")
    assert status.returncode == 0, status.stderr
    facts = json.loads(status.stdout)
    assert facts["running"] and facts["api_url"] == prefect_harness and facts["pid"]
    again = _run("server", "start")
    assert again.returncode == 0 and f"pid {facts['pid']}" in again.stdout


def test_an_explicit_api_url_wins_and_nothing_is_started(
    prefect_harness: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(sorted(EXAMPLES.glob("*.txt"))[1], inbox)
    home = tmp_path / "home"
    result = _run(
        "ingest",
        "--inbox",
        str(inbox),
        "--lake",
        str(tmp_path / "lake"),
        "--settle-seconds",
        "0",
        "--json",
        PREFECT_API_URL=prefect_harness,
        CABLESTREAM_HOME=str(home),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows_written"] >= 1
    assert not (home / "server").exists()


def test_a_port_taken_by_another_program_is_refused_in_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = _run(
            "server",
            "start",
            CABLESTREAM_HOME=str(tmp_path),
            CABLESTREAM_SERVER_PORT=str(port),
            CABLESTREAM_SERVER_START_TIMEOUT="5",
        )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr
    assert "CABLESTREAM_SERVER_PORT" in result.stderr
    assert not (tmp_path / "server" / "server.pid").exists()
    stopped = _run("server", "stop", CABLESTREAM_HOME=str(tmp_path))
    assert stopped.returncode == 0 and "no local Prefect server running" in stopped.stdout


# Stands in for a Prefect server still migrating (the outside edge): answers after 3 s.
_SLOW_SERVER = """
import http.server, sys, time  # a prefect server stand-in
time.sleep(3)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def test_a_server_still_starting_when_its_starter_was_killed_is_waited_for(
    tmp_path: Path,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    starting = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SERVER, str(port)], start_new_session=True
    )
    # What a `cablestream ingest` SIGKILLed during the server's migrations leaves behind.
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "server.pid").write_text(f"{starting.pid} {port}\n")
    try:
        env = dict(CABLESTREAM_HOME=str(tmp_path), CABLESTREAM_SERVER_PORT=str(port))
        started = _run("server", "start", CABLESTREAM_WORKER="off", **env)
        assert started.returncode == 0, started.stderr
        assert starting.poll() is None  # not stopped and started over
        assert (tmp_path / "server" / "server.pid").read_text().split()[0] == str(starting.pid)
        assert _run("server", "stop", **env).returncode == 0
        assert starting.wait(timeout=30) is not None
    finally:
        if starting.poll() is None:
            os.killpg(starting.pid, 9)
            starting.wait()
