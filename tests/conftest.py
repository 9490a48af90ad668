"""Shared fixtures: one Prefect test server for the whole session, the shared corpus."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT / ".." / "shared"
CORPUS_FILES = SHARED / "corpus" / "files"
SEEDS = SHARED / "seeds"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The session's Prefect server (started by the `prefect_harness` fixture) is chosen
# before Prefect is first imported, so every flow run in this process and in the
# CLI processes tests start uses it; the CLI finds it through CABLESTREAM_HOME.
_HOME = Path(tempfile.mkdtemp(prefix="cablestream-test-home-"))
atexit.register(shutil.rmtree, _HOME, True)
_PORT = _free_port()
os.environ.update(
    CABLESTREAM_HOME=str(_HOME),
    CABLESTREAM_SERVER_PORT=str(_PORT),
    PREFECT_HOME=str(_HOME / "prefect"),
    PREFECT_API_URL=f"http://127.0.0.1:{_PORT}/api",
)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """A real Prefect API for the session: the local server the CLI starts (flows/server.py).

    On a free port, with its pid, log and a new database in a temporary home.
    Starting it migrates that database (~15-20 s), so every test that runs
    flows shares this one. It is stopped at the end and leaves no process.
    Yields the API URL.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    from cablestream.flows import server
    from cablestream.flows.commands import prepare_prefect

    prepare_prefect()
    started = server.start()
    try:
        assert started.url == os.environ["PREFECT_API_URL"]
        yield started.url
    finally:
        # Send what is queued before the server goes (else the workers retry at exit).
        with contextlib.suppress(RuntimeError):
            APILogWorker.instance().drain()
        EventsWorker.drain_all()
        assert server.stop(), "the session's Prefect server was gone before the end"
        assert not server.status().healthy


@pytest.fixture(scope="session")
def corpus_files() -> Path:
    """`../shared/corpus/files` beside the repository (skips when it is absent)."""
    if not CORPUS_FILES.is_dir():
        pytest.skip("../shared/corpus is not beside the repository")
    return CORPUS_FILES.resolve()


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A PostgreSQL server of this test session (127.0.0.1, a free port, a password)."""

    host: str
    port: int
    user: str
    password: str

    def url(self, database: str, *, with_password: bool = True) -> str:
        """Without the password, a client takes it from PGPASSWORD (as the CLI asks)."""
        secret = f":{self.password}" if with_password else ""
        return f"postgresql://{self.user}{secret}@{self.host}:{self.port}/{database}"

    def new_database(self, *, with_password: bool = True) -> str:
        """A new empty database on the server; returns its URL."""
        import psycopg

        name = f"t{uuid.uuid4().hex}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name, with_password=with_password)


def _postgres_bin() -> Path | None:
    """The folder of `initdb` and `pg_ctl`: on PATH, else Debian's newest version."""
    on_path = shutil.which("pg_ctl")
    if on_path is not None and shutil.which("initdb") is not None:
        return Path(on_path).parent
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    return debian[-1].parent if debian else None


def _cannot_start(reason: str) -> NoReturn:
    """Skip the PostgreSQL tests, except in CI, whose .ci/run installs the server."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL test server: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL test server: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session, in a temporary folder (initdb + pg_ctl).

    Listens on 127.0.0.1 only (no Unix socket), with a random password; fsync is off
    (a test server: nothing in it must outlive a crash). As root it runs as the
    `postgres` user, which PostgreSQL requires. Stopped and deleted at the end.
    Skipped with the reason where no server can start (failed in CI instead).
    """
    bin_dir = _postgres_bin()
    if bin_dir is None:
        _cannot_start("initdb/pg_ctl not found (Debian: apt-get install postgresql)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="cablestream-postgres-"))
    try:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                _cannot_start("running as root and there is no `postgres` user to run it as")
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        server = PostgresServer("127.0.0.1", _free_port(), "cablestream", uuid.uuid4().hex)
        (folder / "password").write_text(server.password)
        if as_user:
            os.chown(folder / "password", owner.pw_uid, owner.pw_gid)
        data = folder / "data"
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", server.user, "-E", "UTF8"]
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-w"]
        settings = f"-p {server.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        steps = [
            [*initdb, "-A", "scram-sha-256", "--pwfile", str(folder / "password"), "--no-sync"],
            [*pg_ctl, "-l", str(folder / "log"), "-o", f"{settings} -c fsync=off", "start"],
        ]
        for step in steps:
            done = subprocess.run([*as_user, *step], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                log = folder / "log"
                detail = log.read_text()[-500:] if log.is_file() else done.stderr[-500:]
                _cannot_start(f"{Path(step[0]).name} failed: {detail.strip()}")
        try:
            yield server
        finally:
            subprocess.run(
                [*as_user, *pg_ctl, "-m", "fast", "stop"], capture_output=True, check=True
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new empty database on the session's PostgreSQL server."""
    return postgres_server.new_database()
