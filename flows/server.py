"""The local Prefect server the CLI starts once in the background and then reuses.

A one-shot `cablestream ingest` against Prefect's temporary server pays its
start (11-20 s here, more on a new database) on every run; a long-running
server is paid once. `ensure_api()` is what `ingest`, `watch` and `demo` call
before Prefect is imported: an explicit `PREFECT_API_URL` wins; otherwise the
server recorded under `CABLESTREAM_HOME/server/` (default `~/.cablestream`) is
reused, or started (`prefect server start` on 127.0.0.1 only, in its own
process group, its pid and log beside each other there).

The server applies Prefect's database migrations when it starts; its start is
awaited here with `CABLESTREAM_SERVER_START_TIMEOUT` (120 s by default) rather
than Prefect's 20 s temporary-server limit, which a new database on a busy
machine overruns.

Next to a server it started, `start()` also starts the warm worker
(`flows/worker.py`: a Prefect task worker with Great Expectations imported, which
runs the CLI's one-shot passes), unless `CABLESTREAM_WORKER=off`; `stop()` stops
both, and the worker stops by itself when its server is gone.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from cablestream.tasks.ledger.sql import pid_alive

HOME_ENV = "CABLESTREAM_HOME"
PORT_ENV = "CABLESTREAM_SERVER_PORT"
START_TIMEOUT_ENV = "CABLESTREAM_SERVER_START_TIMEOUT"
WORKER_ENV = "CABLESTREAM_WORKER"
HOST = "127.0.0.1"
DEFAULT_PORT = 4200
DEFAULT_START_TIMEOUT = 120.0
STOP_GRACE_SECONDS = 10.0
# How long a CLI waits for a worker that is still warming up (GE import) before it
# runs its pass itself.
WORKER_READY_TIMEOUT = 60.0


class ServerError(RuntimeError):
    """The local server could not be started or reached (the message is one line for the user)."""


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    pid: int | None  # None: no warm worker runs
    ready: bool  # warmed up and serving; False while it imports GE
    log: Path


@dataclass(frozen=True, slots=True)
class ServerStatus:
    url: str  # the API, as PREFECT_API_URL wants it
    pid: int | None  # None: not a server this module started (or none at all)
    healthy: bool
    log: Path
    worker: WorkerStatus

    @property
    def ui(self) -> str:
        return self.url.removesuffix("/api")


def server_dir() -> Path:
    home = os.environ.get(HOME_ENV) or str(Path.home() / ".cablestream")
    return Path(home) / "server"


def _env_number(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ServerError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ServerError(f"{name}={raw} is out of range ({low:g}..{high:g})")
    return value


def server_port() -> int:
    value = _env_number(PORT_ENV, DEFAULT_PORT, 1, 65535)
    if value != int(value):
        raise ServerError(f"{PORT_ENV}={os.environ[PORT_ENV]} is not a whole number")
    return int(value)


def api_url(port: int) -> str:
    return f"http://{HOST}:{port}/api"


def _pid_file() -> Path:
    return server_dir() / "server.pid"


def _log_file() -> Path:
    return server_dir() / "server.log"


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((HOST, port)) == 0


def _worker_pid_file() -> Path:
    return server_dir() / "worker.pid"


def _worker_ready_file() -> Path:
    return server_dir() / "worker.ready"


def _worker_log_file() -> Path:
    return server_dir() / "worker.log"


def task_storage() -> Path:
    """Prefect's result storage shared by the worker and the CLIs (parameters, summaries)."""
    return server_dir() / "task-storage"


# What the command line of each process names (a recycled pid is not taken for ours).
SERVER_MARK = b"prefect"
WORKER_MARK = b"cablestream.flows.worker"


def _alive(pid: int, mark: bytes = SERVER_MARK) -> bool:
    """The process lives and is the one we started (its command line names `mark`)."""
    if not pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or mark in cmdline.read_bytes()


def _ended(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent (or init) to collect it.

    Not `_alive`: an exiting process has an empty command line while it still tears
    down its memory (seconds for a warm worker under load), so a stop that went by
    the command line returned before the process had ended.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return "State:\tZ" in status


def _recorded() -> tuple[int, int] | None:
    """(pid, port) of the server this module started, if it still runs."""
    try:
        pid_text, port_text = _pid_file().read_text(encoding="ascii").split()
        pid, port = int(pid_text), int(port_text)
    except (OSError, ValueError):
        return None
    return (pid, port) if _alive(pid) else None


def _worker_recorded() -> tuple[int, str] | None:
    """(pid, API URL) of the warm worker this module started, if it still runs."""
    try:
        pid_text, url = _worker_pid_file().read_text(encoding="ascii").split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return (pid, url) if _alive(pid, WORKER_MARK) else None


def worker_enabled() -> bool:
    raw = os.environ.get(WORKER_ENV, "on").strip().lower()
    if raw not in ("on", "off"):
        raise ServerError(f"{WORKER_ENV}={raw!r}: give on or off")
    return raw == "on"


def code_fingerprint() -> str:
    """Which code is installed: a worker started before the code changed is stale.

    (Prefect's task key hashes only the task function, not the flow it calls.)
    Not resolved: in the editable install the package's files are links to the sources.
    """
    stamps = [path.stat().st_mtime_ns for path in Path(__file__).parent.parent.rglob("*.py")]
    return f"{len(stamps)}-{max(stamps, default=0)}"


def _worker_status() -> WorkerStatus:
    recorded = _worker_recorded()
    ready = recorded is not None and _worker_ready_file().is_file()
    return WorkerStatus(recorded[0] if recorded else None, ready, _worker_log_file())


def status() -> ServerStatus:
    recorded = _recorded()
    port = recorded[1] if recorded else server_port()
    url = api_url(port)
    return ServerStatus(
        url, recorded[0] if recorded else None, _healthy(url), _log_file(), _worker_status()
    )


@contextmanager
def _start_lock() -> Iterator[None]:
    """One process starts the server; others wait for it and then reuse it."""
    server_dir().mkdir(parents=True, exist_ok=True)
    with open(server_dir() / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _server_env(port: int) -> dict[str, str]:
    from cablestream.flows.logfilter import settings_path

    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_API_HOST=HOST,
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_LOGGING_SETTINGS_PATH=env.get("PREFECT_LOGGING_SETTINGS_PATH", settings_path()),
    )
    return env


def _worker_env(url: str) -> dict[str, str]:
    env = _server_env(server_port())
    env.update(PREFECT_API_URL=url, PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(task_storage()))
    env.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    # The background task run has no flow run of its own (its pass's flow run has).
    env.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    return env


def _last_log_line(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    return next((line for line in reversed(lines) if line), "")


def start() -> ServerStatus:
    """The running local server, started first if there is none (idempotent)."""
    timeout = _env_number(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT, 1, 3600)
    with _start_lock():
        current = status()
        pid = current.pid
        healthy = current.healthy
        if not healthy and pid is not None:
            # Ours and still starting, when the command that started it was stopped (a
            # Ctrl-C, a kill -9 in its migrations): wait for it rather than start over.
            healthy = _answers(current.url, lambda: _alive(pid), time.monotonic() + timeout)
            current = status()
        if healthy:
            if pid is not None and current.worker.pid is None:
                _start_worker(current.url, pid)  # e.g. it stopped, or was off
                return status()
            return current  # ours, or a Prefect server someone runs on that port
        if pid is not None:
            stop_worker()
            _stop_pid(pid)  # ours but not answering: start it again
        port = server_port()
        if _port_taken(port):
            raise ServerError(
                f"port {port} on {HOST} is taken by a program that is not a Prefect server; "
                f"set {PORT_ENV} to a free port"
            )
        log = _log_file()
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start"],
                env=_server_env(port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: Ctrl-C here does not stop it
            )
        _pid_file().write_text(f"{process.pid} {port}\n", encoding="ascii")
        url = api_url(port)
        if not _answers(url, lambda: process.poll() is None, time.monotonic() + timeout):
            if process.poll() is not None:
                _pid_file().unlink(missing_ok=True)
                raise ServerError(
                    f"the Prefect server stopped while starting ({_last_log_line(log)}); log: {log}"
                )
            _stop_pid(process.pid)
            raise ServerError(
                f"the Prefect server did not answer within {timeout:g} s "
                f"(raise {START_TIMEOUT_ENV}); log: {log}"
            )
        _start_worker(url, process.pid)
        return status()


def _answers(url: str, running: Callable[[], bool], deadline: float) -> bool:
    """Wait until the server at `url` answers (True), or stops running, or the deadline passes."""
    while not _healthy(url, timeout=1.0):
        if not running() or time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _start_worker(url: str, server_pid: int) -> None:
    """Start the warm worker (it warms up in the background; see `warm_worker`)."""
    if not worker_enabled():
        return
    _worker_ready_file().unlink(missing_ok=True)
    with open(_worker_log_file(), "ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from cablestream.flows.worker import main; main()",
                str(server_pid),
                str(_worker_ready_file()),
            ],
            env=_worker_env(url),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _worker_pid_file().write_text(f"{process.pid} {url}\n", encoding="ascii")


def warm_worker(url: str, on_wait: Callable[[], None]) -> Path | None:
    """The result storage to share with a warm worker serving `url` with this code.

    None when there is none (the caller runs the pass itself). A worker still
    warming up is waited for (`on_wait` is called once first); a stale one (the
    code changed since it started) is restarted for the next run.
    """
    if not worker_enabled():
        return None
    fingerprint = code_fingerprint()
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    waited = False
    while True:
        recorded = _worker_recorded()
        if recorded is None or recorded[1] != url:
            return None
        try:
            ready = _worker_ready_file().read_text(encoding="ascii").strip()
        except OSError:
            ready = None
        if ready == fingerprint:
            return task_storage()
        if ready is not None:
            _restart_stale_worker(url)
            return None
        if time.monotonic() > deadline:
            return None
        if not waited:
            on_wait()
            waited = True
        time.sleep(0.1)


def _restart_stale_worker(url: str) -> None:
    with _start_lock():
        server = _recorded()
        stop_worker()
        if server is not None:
            _start_worker(url, server[0])


def _stop_pid(pid: int, pid_file: Path | None = None) -> None:
    """SIGTERM the process group, SIGKILL after a grace period."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not _ended(pid):
            _reap(pid)
            time.sleep(0.1)
        if _ended(pid):
            break
    _reap(pid)
    (pid_file or _pid_file()).unlink(missing_ok=True)


def _reap(pid: int) -> None:
    """Collect the exit status when this process started the server (else it stays a zombie)."""
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_worker() -> bool:
    """Stop the warm worker; False when none was running."""
    recorded = _worker_recorded()
    _worker_ready_file().unlink(missing_ok=True)
    if recorded is None:
        _worker_pid_file().unlink(missing_ok=True)
        return False
    _stop_pid(recorded[0], _worker_pid_file())
    return True


def stop() -> bool:
    """Stop the server this module started and its warm worker; False when none was running."""
    stop_worker()
    recorded = _recorded()
    if recorded is None:
        _pid_file().unlink(missing_ok=True)
        return False
    _stop_pid(recorded[0])
    return True


def ensure_api() -> tuple[str, bool]:
    """The API URL Prefect should use, set in PREFECT_API_URL; True when it was given explicitly."""
    explicit = os.environ.get("PREFECT_API_URL")
    if explicit:
        return explicit, True
    url = start().url
    os.environ["PREFECT_API_URL"] = url
    return url, False
