"""Shared fixtures: one Prefect test server for the whole session, the shared corpus."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cablestream.tasks.ledger.sqlite import SqliteLedger

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT / ".." / "shared"
CORPUS_FILES = SHARED / "corpus" / "files"
SEEDS = SHARED / "seeds"


def batch_owner_dies(ledger_path: Path) -> None:
    """Every batch the SQLite ledger has in flight (claimed or publishing) is left by a
    process that has ended (a real one, on this host), as after a SIGKILL."""
    import sqlite3
    import subprocess

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with sqlite3.connect(ledger_path) as db:
        in_flight = db.execute(
            "SELECT batch_id, owner FROM batches WHERE state IN ('claimed', 'publishing')"
        ).fetchall()
        assert in_flight, "no batch in flight to leave behind"
        for batch_id, owner in in_flight:
            host = owner.rpartition(":")[0]
            db.execute(
                "UPDATE batches SET owner = ? WHERE batch_id = ?", (f"{host}:{dead}", batch_id)
            )


class DiesBeforeThePointOfNoReturn(SqliteLedger):
    """A ledger whose process dies after staging, before the point of no return."""

    def prepare_commit(self, batch_id: str, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed after staging, before the point of no return")


class DiesAfterThePointOfNoReturn(SqliteLedger):
    """A ledger whose process dies right after the point of no return."""

    def prepare_commit(self, batch_id: str, *args: Any, **kwargs: Any) -> None:
        super().prepare_commit(batch_id, *args, **kwargs)
        raise RuntimeError("killed right after the point of no return")


class DiesBeforeTheCommit(SqliteLedger):
    """A ledger whose process dies after the renames and deletes, before the commit."""

    def commit(self, batch_id: str) -> None:
        raise RuntimeError("killed after the renames and deletes, before the commit")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The session's Prefect server (started by the `prefect_harness` fixture) is chosen
# before Prefect is first imported, so every flow run in this process and in the
# CLI processes tests start uses it; the CLI finds it through CABLESTREAM_HOME.
# No warm worker: CLI tests run (and kill) their pass in the CLI's own process;
# tests/flows/test_worker.py turns it on for its own tests. File groups on the flow's
# threads: worker processes cost seconds to start each (tests/flows/test_cluster.py
# runs passes in them).
_HOME = Path(tempfile.mkdtemp(prefix="cablestream-test-home-"))
atexit.register(shutil.rmtree, _HOME, True)
_PORT = _free_port()
os.environ.update(
    CABLESTREAM_HOME=str(_HOME),
    CABLESTREAM_SERVER_PORT=str(_PORT),
    CABLESTREAM_WORKER="off",
    CABLESTREAM_GROUP_RUNNER="threads",
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


BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def _load_bench_script(name: str) -> ModuleType:
    """`bench/<name>.py` imported by path (bench/ is not a package on purpose), once."""
    module_name = f"cablestream_bench_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCH_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses look their module up while the class is built, and
    # results sent back by worker processes unpickle by module name.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bench_script() -> Callable[[str], ModuleType]:
    """Import a bench script by name (`bench_script("fuzz_parser")`): the tests that run
    the CI-sized form of a bench script share its code this way."""
    return _load_bench_script


@pytest.fixture(scope="session")
def corpus_files() -> Path:
    """`../shared/corpus/files` beside the repository (skips when it is absent)."""
    if not CORPUS_FILES.is_dir():
        pytest.skip("../shared/corpus is not beside the repository")
    return CORPUS_FILES.resolve()


@dataclass(frozen=True)
class S3Server:
    """moto's S3 server on 127.0.0.1 (a real HTTP server): its endpoint and credentials."""

    endpoint: str
    key: str = "testing"
    secret: str = "testing"
    region: str = "us-east-1"

    def bucket(self) -> str:
        """A new, empty bucket (one per test: tests never see each other's objects)."""
        import boto3

        name = f"cables-{uuid.uuid4().hex[:12]}"
        boto3.client("s3").create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under the prefix (markers included: nothing is filtered)."""
        import boto3

        pages = (
            boto3.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def put(self, bucket: str, key: str, data: bytes) -> None:
        import boto3

        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer on a free port of 127.0.0.1 for the session.

    The usual AWS variables point every client (pyarrow, s3fs, boto3, DuckDB through
    s3fs) at it, as a user's environment would point them at their store. Stopped at
    the end of the session; it runs in this process, so it leaves no process behind.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    found = S3Server(f"http://127.0.0.1:{port}")
    names = {
        "AWS_ACCESS_KEY_ID": found.key,
        "AWS_SECRET_ACCESS_KEY": found.secret,
        "AWS_DEFAULT_REGION": found.region,
        "AWS_REGION": found.region,
        "AWS_ENDPOINT_URL": found.endpoint,
    }
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield found
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


def _load_postgres_server() -> ModuleType:
    """bench/postgres_server.py, imported by path: bench/ is not a package on purpose."""
    path = REPO_ROOT / "bench" / "postgres_server.py"
    spec = importlib.util.spec_from_file_location("cablestream_bench_postgres_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


_postgres = _load_postgres_server()
PostgresServer = _postgres.PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (bench/postgres_server.py says how).

    Skipped with the reason where none can start; in CI (CI set), whose .ci/run
    installs the server, that fails instead.
    """
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(_postgres.running_server())
        except _postgres.CannotStart as error:
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL test server: {error}", pytrace=False)
            pytest.skip(f"PostgreSQL test server: {error}")
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new empty database on the session's PostgreSQL server."""
    return postgres_server.new_database()
