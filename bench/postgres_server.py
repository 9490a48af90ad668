"""A throwaway PostgreSQL server: initdb + pg_ctl in a temporary folder, 127.0.0.1 only.

Used by the tests' `postgres_server` fixture (tests/conftest.py loads this file)
and by bench/shared_ledger.py. Debian's `postgresql` package provides the
binaries (.ci/run installs it). The server listens on a free port of 127.0.0.1
only, with no Unix socket, a random password and fsync off (nothing in it must
outlive a crash). As root it runs as the `postgres` user, which PostgreSQL
requires; that user must be able to reach TMPDIR.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class CannotStart(RuntimeError):
    """No server could be started here; the message says why."""


@dataclass(frozen=True, slots=True)
class PostgresServer:
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


def _binaries() -> Path:
    """The folder of `initdb` and `pg_ctl`: on PATH, else Debian's newest version."""
    on_path = shutil.which("pg_ctl")
    if on_path is not None and shutil.which("initdb") is not None:
        return Path(on_path).parent
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    if not debian:
        raise CannotStart("initdb/pg_ctl not found (Debian: apt-get install postgresql)")
    return debian[-1].parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A new server for the block; stopped and deleted after it. CannotStart says why not."""
    binaries = _binaries()
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="cablestream-postgres-"))
    try:
        server = PostgresServer("127.0.0.1", _free_port(), "cablestream", uuid.uuid4().hex)
        (folder / "password").write_text(server.password)
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise CannotStart("running as root and there is no `postgres` user") from None
            for path in (folder, folder / "password"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        data = folder / "data"
        initdb = [str(binaries / "initdb"), "-D", str(data), "-U", server.user, "-E", "UTF8"]
        pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-w"]
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
                raise CannotStart(f"{Path(step[0]).name} failed: {' '.join(detail.split())}")
        try:
            yield server
        finally:
            subprocess.run(
                [*as_user, *pg_ctl, "-m", "fast", "stop"], capture_output=True, check=True
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
