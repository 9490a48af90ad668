"""Several `cablestream watch` processes (or Dask-backed `ingest` passes) on one inbox and
one lake, sharing a PostgreSQL ledger.

    .venv/bin/python bench/shared_ledger.py    # 2,000 files over 60 s, 2 watchers, 6 kills
    .venv/bin/python bench/shared_ledger.py --files 200 --seconds 20 --kills 2   # a short look
    .venv/bin/python bench/shared_ledger.py --dask   # 2 ingest loops on Dask, 6 kills
    .venv/bin/python bench/shared_ledger.py --s3     # S3 inbox and lake, 2 "hosts"

Starts its own PostgreSQL server (bench/postgres_server.py) and Prefect server.
Files of ../shared/corpus-bulk land in the inbox at an even pace over
`--seconds`; at `--kills` random moments of that time a random watcher is killed
with SIGKILL (its whole process group, at whatever point it is) and started
again at once. With `--dask` each of the `--watchers` slots runs `cablestream
ingest --dask local` passes back to back instead (each pass with its own
LocalCluster of worker processes, in the pass's process group: a kill takes the
pass and its workers, as soon as the pass holds a batch; the slot's next pass
starts at once and recovers it). With `--s3` the inbox and the lake are on
moto's S3 server (on 127.0.0.1, in this process; files are put as objects) and
each slot is a host of its own, with its own `CABLESTREAM_CONTROL`: a batch one
host left is finished or undone by another.

Once every file has landed the watchers get until the ledger holds every file
settled (at most `--drain` seconds), then SIGTERM. Then `audit_lake` with the
PostgreSQL ledger (every cable exactly once, nothing unsettled, every data file
committed; with `--s3` the same checks across the hosts' control folders and the
store, and no key left in the staging prefix), rows, distinct ids, lost and
duplicated cables, batches per process, and the processes left behind (any that
still carries the run's marker variable: a watcher, a pass, a Dask worker, a
Prefect server). Prints a table; bench/out/shared_ledger.json keeps the figures.
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
import socket
import subprocess
import sys
import tempfile
import threading
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
MARKER = "CABLESTREAM_SHARED_LEDGER_RUN"


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
    """The watch processes, each in its own process group, logging to a file each;
    `envs` holds each one's environment (one per watcher)."""

    def __init__(self, args: list[str], envs: list[dict[str, str]], logs: Path) -> None:
        self.args, self.envs, self.logs = args, envs, logs
        self.started = 0
        self.processes = [self._start(index) for index in range(len(envs))]

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        self.started += 1
        with (self.logs / f"watch-{self.started}.log").open("wb") as log:
            return subprocess.Popen(
                [*CLI, *self.args],
                env=self.envs[index],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_and_restart(self, index: int) -> None:
        process = self.processes[index]
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.processes[index] = self._start(index)

    def stop(self) -> list[int]:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        return [process.wait(timeout=300) for process in self.processes]

    def ready(self) -> bool:
        return all(b"watching" in log.read_bytes() for log in self.logs.glob("watch-*.log"))


class IngestLoops:
    """Slots (one per environment in `envs`), each running `ingest` passes (the `args`)
    back to back, each pass in its own process group, until `stop`; a kill ends a slot's
    running pass (and the Dask workers it started) while it holds a batch in the ledger at
    `ledger_url`, and the slot's next pass starts at once."""

    def __init__(
        self, args: list[str], envs: list[dict[str, str]], logs: Path, ledger_url: str
    ) -> None:
        self.args, self.envs, self.logs, self.ledger_url = args, envs, logs, ledger_url
        count = len(envs)
        self.started = 0
        self.killed: set[int] = set()  # pids of passes killed while they held a batch
        self.killers: list[threading.Thread] = []
        self.exits: list[list[int]] = [[] for _ in range(count)]
        self.running: list[subprocess.Popen[bytes] | None] = [None] * count
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(n,)) for n in range(count)]
        for thread in self.threads:
            thread.start()

    def _loop(self, index: int) -> None:
        while not self.stopping.is_set():
            with self.lock:
                self.started += 1
                log = (self.logs / f"ingest-{self.started}.log").open("wb")
                process = subprocess.Popen(
                    [*CLI, *self.args],
                    env=self.envs[index],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                self.running[index] = process
            self.exits[index].append(process.wait())
            log.close()

    def kill_and_restart(self, index: int) -> None:
        """Kill the slot's pass as soon as it holds a batch (a pass spends its first
        seconds starting Prefect and its LocalCluster: a kill then would test nothing)."""
        killer = threading.Thread(target=self._kill_mid_batch, args=(index,))
        killer.start()
        self.killers.append(killer)

    def _kill_mid_batch(self, index: int) -> None:
        import psycopg

        while not self.stopping.is_set():
            with self.lock:
                process = self.running[index]
            # A pass another kill took is left alone: this kill waits for the next one.
            if process is not None and process.poll() is None and process.pid not in self.killed:
                with psycopg.connect(self.ledger_url) as db:
                    held = db.execute(
                        "SELECT COUNT(*) FROM batches WHERE owner LIKE %s"
                        " AND state IN ('claimed', 'publishing')",
                        (f"%:{process.pid}",),
                    ).fetchone()
                if held and held[0]:
                    with suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    self.killed.add(process.pid)
                    return
            time.sleep(0.2)

    def stop(self) -> list[int]:
        """The exit codes of each slot's last pass (0, or 3 when one held a batch back)."""
        self.stopping.set()
        for thread in [*self.killers, *self.threads]:
            thread.join()
        return [exits[-1] for exits in self.exits]

    def ready(self) -> bool:
        return True

    def passes(self) -> list[int]:
        return [len(exits) for exits in self.exits]

    def exit_codes(self) -> dict[int, int]:
        return dict(Counter(code for exits in self.exits for code in exits))


def left_behind(run: str) -> list[str]:
    """Processes that inherited the run's marker (what the run started, and theirs)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        with suppress(psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            if process.environ().get(MARKER) == run:
                found.append(" ".join(process.info["cmdline"] or [])[:200])
    return found


class Folders:
    """The inbox and the lake in local folders (one host)."""

    def __init__(self, root: Path) -> None:
        self.inbox, self.lake = root / "inbox", root / "lake"
        self.inbox.mkdir()

    def args(self) -> list[str]:
        return ["--inbox", str(self.inbox), "--lake", str(self.lake)]

    def env(self, index: int) -> dict[str, str]:
        return {}

    def land(self, path: Path) -> None:
        shutil.copy(path, self.inbox / path.name)  # a plain copy: taken once it has settled

    def rows(self) -> list[str]:
        return lake_record_ids(self.lake) if self.lake.is_dir() else []

    def accounted(self) -> set[str]:
        """Cables in the lake or in the quarantine."""
        if not self.lake.is_dir():
            return set()
        reasons = read_reasons(self.lake).to_pylist()
        return set(self.rows()) | {str(r["record_id"]) for r in reasons if r["record_id"]}

    def audit(self, expected: set[str], url: str) -> list[str]:
        return audit_lake(self.lake, expected, url)

    def close(self) -> None:
        pass


class ObjectStore:
    """The inbox and the lake on an S3 server (moto's, on 127.0.0.1, in this process);
    each slot is a host of its own: its own control folder (`CABLESTREAM_CONTROL`)."""

    BUCKET = "cables"

    def __init__(self, root: Path, slots: int) -> None:
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        )
        self.client = boto3.client("s3")
        self.client.create_bucket(Bucket=self.BUCKET)
        self.inbox, self.lake = f"s3://{self.BUCKET}/inbox", f"s3://{self.BUCKET}/lake"
        self.controls = [root / f"host-{index}" for index in range(slots)]

    def args(self) -> list[str]:
        return ["--inbox", self.inbox, "--lake", self.lake]

    def env(self, index: int) -> dict[str, str]:
        return {"CABLESTREAM_CONTROL": str(self.controls[index])}

    def land(self, path: Path) -> None:
        self.client.put_object(Bucket=self.BUCKET, Key=f"inbox/{path.name}", Body=path.read_bytes())

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.BUCKET, Prefix=prefix
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def rows(self) -> list[str]:
        import pyarrow.dataset as ds

        if not self.keys("lake/"):
            return []
        table = ds.dataset(self.lake, format="parquet", partitioning="hive").to_table(
            columns=["record_id"]
        )
        return [str(value) for value in table.column("record_id").to_pylist()]

    def quarantined(self) -> list[str]:
        """Rows quarantined, in the control folders of every host (each keeps the
        quarantine of the batches it committed or finished)."""
        return [
            str(row["record_id"])
            for control in self.controls
            if control.is_dir()
            for row in read_reasons(control).to_pylist()
            if row["record_id"]
        ]

    def accounted(self) -> set[str]:
        return set(self.rows()) | set(self.quarantined())

    def audit(self, expected: set[str], url: str) -> list[str]:
        """What `audit_lake` checks, across the hosts' control folders and the store."""
        from cablestream.tasks.lake.store import is_data_name
        from cablestream.tasks.ledger.postgres import PostgresLedger

        problems = []
        rows, quarantined = self.rows(), self.quarantined()
        if len(rows) != len(set(rows)):
            problems.append(f"{len(rows) - len(set(rows))} rows are in the lake more than once")
        if len(quarantined) != len(set(quarantined)):
            problems.append("quarantine rows more than once")
        if set(rows) & set(quarantined):
            problems.append("cables both in the lake and in the quarantine")
        if expected - set(rows) - set(quarantined):
            problems.append("cables missing (neither written nor quarantined)")
        data = {key.removeprefix("lake/") for key in self.keys("lake/")}
        strays = sorted(name for name in data if not is_data_name(name))
        if strays:
            problems.append(f"not data files under the lake's prefix: {strays[:3]}")
        staged = self.keys("lake.cablestream/")
        if staged:
            problems.append(f"{len(staged)} keys left in the staging prefix")
        ledger = PostgresLedger(url)
        if ledger.unsettled_batches():
            problems.append(f"unsettled batches: {ledger.unsettled_batches()}")
        live = {name for name in ledger.live_outputs() if is_data_name(name)}
        if data - live:
            problems.append(f"{len(data - live)} data files are no committed batch's output")
        if live - data:
            problems.append(f"{len(live - data)} committed data files are not in the store")
        return problems

    def close(self) -> None:
        self.server.stop()


def _settled_files(url: str) -> int:
    """Files the ledger holds in a final state (not claimed by a running batch)."""
    import psycopg

    with psycopg.connect(url) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM files WHERE state != 'claimed'").fetchone()
    return int(count)


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
    parser.add_argument(
        "--s3",
        action="store_true",
        help="inbox and lake on moto's S3 server; each watcher (slot) a host of its own",
    )
    parser.add_argument(
        "--dask",
        action="store_true",
        help="`ingest --dask local` passes back to back in each of --watchers slots",
    )
    options = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    rng = random.Random(options.seed)
    root = Path(tempfile.mkdtemp(prefix="cablestream-shared-ledger-"))
    source, logs = root / "source", root / "logs"
    for folder in (source, logs):
        folder.mkdir()
    places = ObjectStore(root, options.watchers) if options.s3 else Folders(root)
    for path in sorted(BULK.iterdir())[: options.files]:
        shutil.copy(path, source / path.name)
    expected = faults.expected_ids(source)
    sources = sorted(source.iterdir())
    kills = sorted(rng.uniform(0, options.seconds) for _ in range(options.kills))

    with postgres.running_server() as server, prefect_test_harness(server_startup_timeout=120):
        url = server.new_database()
        run = f"{root.name}-{os.getpid()}"
        env = {
            **os.environ,
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PGPASSWORD": server.password,
            MARKER: run,
        }
        envs = [{**env, **places.env(index)} for index in range(options.watchers)]
        args = ["ingest" if options.dask else "watch", *places.args(), "--settle-seconds", "0.5"]
        args += ["--max-files-per-batch", str(options.batch_files)]
        args += ["--ledger", url.replace(f":{server.password}@", "@")]
        watchers: Watchers | IngestLoops
        if options.dask:
            watchers = IngestLoops([*args, "--dask", "local"], envs, logs, url)
        else:
            watchers = Watchers(args, envs, logs)
        while not watchers.ready():
            time.sleep(0.5)
        started = time.monotonic()
        for number, path in enumerate(sources):
            time.sleep(
                max(0.0, started + number * options.seconds / len(sources) - time.monotonic())
            )
            places.land(path)
            while kills and time.monotonic() - started >= kills[0]:
                kills.pop(0)
                watchers.kill_and_restart(rng.randrange(options.watchers))
        landed = time.monotonic() - started
        # The ledger says when every landed file is settled (cheaper than reading the lake
        # every time: on moto, that read competes with the watchers); the audit checks after.
        while _settled_files(url) < len(sources) and time.monotonic() - started < options.drain:
            time.sleep(2)
        done = time.monotonic() - started
        exits = watchers.stop()
        problems = places.audit(expected, url)
        ledger = _ledger_figures(url)
        leftovers = left_behind(run)
        rows = places.rows()
        lost = len(expected - places.accounted())
    places.close()

    figures = {
        "files": len(sources),
        "cables_expected": len(expected),
        "rows": len(rows),
        "distinct_record_ids": len(set(rows)),
        "duplicated_rows": sum(count - 1 for count in Counter(rows).values()),
        "lost_cables": lost,
        "mode": "ingest --dask local, back to back" if options.dask else "watch",
        "inbox_and_lake": "S3 (moto), one control folder per slot" if options.s3 else "folders",
        "watchers": options.watchers,
        "kills": options.kills,
        "processes_started": watchers.started,
        "landing_seconds": round(landed, 1),
        "all_in_seconds": round(done, 1),
        "cables_per_second_while_landing_and_draining": round(len(expected) / done, 1),
        "exit_codes": exits,
        "audit_problems": problems,
        "ledger": ledger,
        "left_behind": leftovers,
    }
    if isinstance(watchers, IngestLoops):
        figures["passes_per_slot"] = watchers.passes()
        figures["pass_exit_codes"] = watchers.exit_codes()  # -9: killed
        figures["kills_while_a_batch_was_held"] = len(watchers.killed)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2, default=str))
    print("| figure | value |\n|---|---|")
    for name, value in figures.items():
        print(f"| {name} | {value} |")
    shutil.rmtree(root, ignore_errors=True)
    failed = problems or figures["lost_cables"] or figures["duplicated_rows"] or leftovers
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
