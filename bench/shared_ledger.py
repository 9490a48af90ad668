"""Several `cablestream watch` processes on one inbox and one lake, sharing a PostgreSQL ledger.

    .venv/bin/python bench/shared_ledger.py    # 2,000 files over 60 s, 2 watchers, 6 kills
    .venv/bin/python bench/shared_ledger.py --files 200 --seconds 20 --kills 2   # a short look

Starts its own PostgreSQL server (bench/postgres_server.py) and Prefect server.
Files of ../shared/corpus-bulk land in the inbox at an even pace over
`--seconds`; at `--kills` random moments of that time a random watcher is killed
with SIGKILL (its whole process group, at whatever point it is) and started
again at once. Once every file has landed the watchers get until every cable is
in the lake (at most `--drain` seconds), then SIGTERM. Then `audit_lake` with the
PostgreSQL ledger (every cable exactly once, nothing unsettled, every data file
committed), rows, distinct ids, lost and duplicated cables, and batches per
watcher process. Prints a table; bench/out/shared_ledger.json keeps the figures.
The CI-sized form is tests/flows/test_watch_shared_ledger.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path
from types import ModuleType

from cablestream.tasks.batch.audit import audit_lake
from cablestream.tasks.lake.quarantine import read_reasons
from cablestream.tasks.lake.reader import lake_record_ids

BENCH = Path(__file__).resolve().parent
BULK = BENCH.parent / ".." / "shared" / "corpus-bulk" / "files"
OUT = BENCH / "out" / "shared_ledger.json"
CLI = [sys.executable, "-m", "cablestream.flows.cli"]


def _load(name: str) -> ModuleType:
    """A sibling bench script, imported by path: bench/ is not a package on purpose."""
    spec = importlib.util.spec_from_file_location(f"cablestream_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


faults = _load("faults")
postgres = _load("postgres_server")


class Watchers:
    """The watch processes, each in its own process group, logging to a file each."""

    def __init__(self, args: list[str], env: dict[str, str], logs: Path, count: int) -> None:
        self.args, self.env, self.logs = args, env, logs
        self.started = 0
        self.processes = [self._start() for _ in range(count)]

    def _start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        with (self.logs / f"watch-{self.started}.log").open("wb") as log:
            return subprocess.Popen(
                [*CLI, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_and_restart(self, index: int) -> None:
        process = self.processes[index]
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.processes[index] = self._start()

    def stop(self) -> list[int]:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        return [process.wait(timeout=300) for process in self.processes]

    def ready(self) -> bool:
        return all(b"watching" in log.read_bytes() for log in self.logs.glob("watch-*.log"))


def _accounted(lake: Path) -> set[str]:
    """Cables in the lake or in the quarantine."""
    if not lake.is_dir():
        return set()
    quarantined = {str(r["record_id"]) for r in read_reasons(lake).to_pylist() if r["record_id"]}
    return set(lake_record_ids(lake)) | quarantined


def _ledger_figures(url: str) -> dict[str, object]:
    import psycopg

    with psycopg.connect(url) as db:
        files = dict(db.execute("SELECT state, COUNT(*) FROM files GROUP BY state").fetchall())
        owners = db.execute(
            "SELECT owner, state, COUNT(*) FROM batches GROUP BY owner, state ORDER BY owner"
        ).fetchall()
    return {"files": files, "batches": [list(row) for row in owners]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="files of corpus-bulk to land")
    parser.add_argument("--seconds", type=float, default=60.0, help="time they land over")
    parser.add_argument("--watchers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs of a random watcher")
    parser.add_argument("--batch-files", type=int, default=20, help="files per micro-batch")
    parser.add_argument("--drain", type=float, default=600.0, help="longest wait after landing")
    parser.add_argument("--seed", type=int, default=16)
    options = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    rng = random.Random(options.seed)
    root = Path(tempfile.mkdtemp(prefix="cablestream-shared-ledger-"))
    inbox, lake, source, logs = (root / name for name in ("inbox", "lake", "source", "logs"))
    for folder in (inbox, source, logs):
        folder.mkdir()
    for path in sorted(BULK.iterdir())[: options.files]:
        shutil.copy(path, source / path.name)
    expected = faults.expected_ids(source)
    sources = sorted(source.iterdir())
    kills = sorted(rng.uniform(0, options.seconds) for _ in range(options.kills))

    with postgres.running_server() as server, prefect_test_harness(server_startup_timeout=120):
        url = server.new_database()
        env = {
            **os.environ,
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PGPASSWORD": server.password,
        }
        args = ["watch", "--inbox", str(inbox), "--lake", str(lake), "--settle-seconds", "0.5"]
        args += ["--max-files-per-batch", str(options.batch_files)]
        args += ["--ledger", url.replace(f":{server.password}@", "@")]
        watchers = Watchers(args, env, logs, options.watchers)
        while not watchers.ready():
            time.sleep(0.5)
        started = time.monotonic()
        for number, path in enumerate(sources):
            time.sleep(
                max(0.0, started + number * options.seconds / len(sources) - time.monotonic())
            )
            shutil.copy(path, inbox / path.name)  # a plain copy: taken once it has settled
            while kills and time.monotonic() - started >= kills[0]:
                kills.pop(0)
                watchers.kill_and_restart(rng.randrange(options.watchers))
        landed = time.monotonic() - started
        while not expected <= _accounted(lake) and time.monotonic() - started < options.drain:
            time.sleep(2)
        done = time.monotonic() - started
        exits = watchers.stop()
        problems = audit_lake(lake, expected, url)
        ledger = _ledger_figures(url)

    rows = lake_record_ids(lake)
    figures = {
        "files": len(sources),
        "cables_expected": len(expected),
        "rows": len(rows),
        "distinct_record_ids": len(set(rows)),
        "duplicated_rows": sum(count - 1 for count in Counter(rows).values()),
        "lost_cables": len(expected - _accounted(lake)),
        "watchers": options.watchers,
        "kills": options.kills,
        "processes_started": watchers.started,
        "landing_seconds": round(landed, 1),
        "all_in_seconds": round(done, 1),
        "cables_per_second_while_landing_and_draining": round(len(expected) / done, 1),
        "exit_codes": exits,
        "audit_problems": problems,
        "ledger": ledger,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2, default=str))
    print("| figure | value |\n|---|---|")
    for name, value in figures.items():
        print(f"| {name} | {value} |")
    shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if problems or figures["lost_cables"] or figures["duplicated_rows"] else 0)


if __name__ == "__main__":
    main()
