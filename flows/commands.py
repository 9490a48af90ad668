"""What the CLI commands do (the typer signatures live in cli.py).

Prefect is configured here before it is imported: analytics off (offline),
the logging config with the shutdown-noise filter, console logs at WARNING
unless `--verbose` (progress and the summary come from rich instead).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from cablestream.flows.settings import InputError, refuse_url, writable_folder
from cablestream.schemas import lake as layout

if TYPE_CHECKING:  # pragma: no cover
    from prefect.futures import PrefectDistributedFuture

    from cablestream.flows.server import ServerStatus
    from cablestream.flows.settings import IngestSettings

console = Console(stderr=True)


def prepare_prefect(verbose: bool = False) -> None:
    """Env for Prefect, set before its first import (a server it starts inherits it)."""
    from cablestream.flows.logfilter import settings_path
    from cablestream.flows.memory import tune_allocators

    tune_allocators()  # before the pass's threads and processes start, and before pyarrow

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", settings_path())
    # Only for a temporary server (flows run from Python without PREFECT_API_URL): a new
    # database's migrations overrun Prefect's 20 s default on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def connect_prefect(verbose: bool = False) -> str:
    """The local server (started once, then reused) or PREFECT_API_URL; returns the UI address."""
    from cablestream.flows.server import ensure_api, status

    prepare_prefect(verbose)
    if not status().healthy and "PREFECT_API_URL" not in os.environ:
        console.print(
            "starting the local Prefect server (once; a new database takes ~20 s to migrate)"
        )
    url, explicit = ensure_api()
    ui = url.removesuffix("/api")
    if not explicit:
        console.print(f"Prefect UI: {ui}  (cablestream server stop stops the server)")
    return ui


def print_server(current: ServerStatus, as_json: bool = False) -> None:
    worker = current.worker
    facts = {
        "running": current.healthy,
        "api_url": current.url,
        "ui": current.ui,
        "pid": current.pid,
        "log": str(current.log),
        "worker_pid": worker.pid,
        "worker_ready": worker.ready,
        "worker_log": str(worker.log),
    }
    if as_json:
        print(json.dumps(facts))
        return
    if not current.healthy:
        print(f"no Prefect server answers at {current.url} (cablestream server start starts one)")
        return
    owner = f"pid {current.pid}" if current.pid else "not started by cablestream"
    print(f"Prefect server at {current.url} ({owner}); UI {current.ui}; log {current.log}")
    if worker.pid is None:
        print("no warm worker (one-shot ingest runs its pass in its own process)")
    else:
        state = "ready" if worker.ready else "warming up"
        print(f"warm worker pid {worker.pid} ({state}); log {worker.log}")


def checked_settings(
    options: dict[str, Any], *, needs_inbox: bool = True, local_only: str | None = None
) -> IngestSettings:
    """Settings from the options, env vars and defaults, with every path checked.

    `local_only` names a command that needs a local inbox and lake (not object stores).
    """
    from cablestream.flows.settings import IngestSettings

    settings = IngestSettings.resolve(**options)
    if local_only is not None:
        settings.local_only(local_only)
    settings.check_paths(needs_inbox=needs_inbox)
    return settings


SUMMARY_ROWS = [
    ("files", "files"),
    ("cables", "cables"),
    ("rows written", "rows_written"),
    ("duplicates", "duplicates"),
    ("files quarantined", "files_quarantined"),
    ("rows of older versions replaced", "rows_replaced"),
    ("rows quarantined", "rows_quarantined"),
    ("expectations failed", "expectations_failed"),
    ("batches", "batches"),
    ("batches to retry", "batches_retry"),
    ("batches held back", "batches_held"),
    ("batches failing rules", "batches_flagged"),
]


def summary_table(title: str, result: dict[str, Any], extra: dict[str, str]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, key in SUMMARY_ROWS:
        table.add_row(label, str(result.get(key, 0)))
    for label, value in extra.items():
        table.add_row(label, value)
    for line in result.get("not_written") or []:
        table.add_row("[red]batch held back[/]", line)
    for line in result.get("flagged") or []:
        table.add_row("[red]written, rules failed[/]", line)
    reasons = result.get("reasons") or {}
    if reasons:
        table.add_row(
            "quarantine reasons",
            ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items())),
        )
    return table


def _print_json(summary: dict[str, Any]) -> None:
    print(json.dumps(summary, default=str, sort_keys=True))


def run_ingest(
    options: dict[str, Any], verbose: bool = False, as_json: bool = False
) -> dict[str, Any]:
    """One pass, in the warm worker when one is ready, else here with a progress bar.

    Prints the closing summary and returns it.
    """
    from cablestream.tasks.batch.claim import has_work

    started = time.perf_counter()
    settings = checked_settings(options)
    if not has_work(
        settings.inbox_location(), settings.lake_root(), settings.ledger, settings.settle_seconds
    ):
        idle: dict[str, Any] = {"files": 0, "cables": 0, "rows_written": 0, "seconds": 0.0}
        if as_json:
            _print_json(idle)
        else:
            console.print(
                "nothing to ingest: no new ready files and no batch to recover "
                "(Prefect was not started)"
            )
        return idle
    ui = connect_prefect(verbose)
    on_worker = _pass_on_worker(settings, options)
    if on_worker is not None:
        result, flow_run_id = on_worker
        ran_in = "warm worker"
    else:
        result, flow_run_id = _pass_here(options, settings.dask)
        ran_in = "this process" if settings.dask is None else f"this process + Dask {settings.dask}"
    run_url = f"{ui}/runs/flow-run/{flow_run_id}"
    total = time.perf_counter() - started
    result = {**result, "flow_run_url": run_url, "wall_seconds": round(total, 3), "ran_in": ran_in}
    if as_json:
        _print_json(result)
        return result
    work = float(result.get("seconds", 0.0))
    megabytes = result.get("bytes", 0) / 1e6
    extra = {
        "inbox → lake": f"{settings.inbox_location()} → {settings.lake_url or settings.lake}",
        "flow time": f"{work:.1f} s ({result.get('cables', 0) / max(work, 1e-9):.0f} cables/s, "
        f"{megabytes / max(work, 1e-9):.2f} MB/s)",
        "total incl. Prefect start": f"{total:.1f} s",
        "ran in": ran_in,
    }
    if result.get("recovered_batches"):
        extra["recovered batches"] = str(len(result["recovered_batches"]))
    console.print(summary_table("cablestream ingest", result, extra))
    console.print(f"flow run: {run_url}", overflow="ignore", crop=False)
    return result


def _pass_here(options: dict[str, Any], dask: str | None) -> tuple[dict[str, Any], str]:
    """The pass in this process (no warm worker), its file groups on Dask when `dask`
    names a cluster: its summary and flow run id."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cablestream.flows.cluster import on_dask

    # No Great Expectations warm-up here: the pass imports it only if it validates in
    # this process (not when its groups run in worker processes, which import their own).
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        bar = progress.add_task("starting Prefect", total=None)
        from cablestream.flows.ingest import add_progress_listener, ingest_flow

        def listen(event: str, details: dict[str, Any]) -> None:
            if event == "discovered":
                progress.update(bar, description="ingesting files", total=details["files"])
            elif event == "batch":
                progress.advance(bar, details["files"])

        unsubscribe = add_progress_listener(listen)
        flow_options = {key: value for key, value in options.items() if key != "dask"}
        try:
            with on_dask(ingest_flow, dask) as pass_flow:
                state = pass_flow(**flow_options, return_state=True)
        finally:
            unsubscribe()
    result: dict[str, Any] = state.result()  # the flow's own error, if it failed
    return result, str(state.state_details.flow_run_id)


def _pass_on_worker(
    settings: IngestSettings, options: dict[str, Any]
) -> tuple[dict[str, Any], str] | None:
    """The pass submitted to the warm worker (flows/worker.py) and awaited.

    None when no worker is ready for this API and this code, or when it stopped
    before the pass ended (the pass is then run here; recovery settles whatever
    batch it left), with a PostgreSQL ledger: its password (PGPASSWORD, a
    ~/.pgpass) is this process's, never handed to the worker through result storage,
    and with Dask (this process starts or joins the cluster for its pass).
    """
    from cablestream.flows import server

    if settings.ledger is not None or settings.dask is not None or settings.uses_object_store:
        return None  # the worker was started without this command's ledger, Dask or store
    storage = server.warm_worker(
        os.environ["PREFECT_API_URL"],
        lambda: console.print("waiting for the warm worker to start (once per server start)"),
    )
    if storage is None:
        return None
    # Set before Prefect is imported: the worker reads the parameters and writes the
    # summary there.
    os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(storage)
    from cablestream.flows.worker import run_pass

    flow_options = {
        name: str(value.resolve()) if isinstance(value, Path) else value
        for name in _FLOW_OPTIONS
        if name in type(settings).model_fields and (value := getattr(settings, name)) is not None
    }
    environment = {
        key: value for key, value in os.environ.items() if key.startswith("CABLESTREAM_")
    }
    if layout.CONTROL_ENV in environment:  # the worker runs in another folder
        environment[layout.CONTROL_ENV] = str(Path(environment[layout.CONTROL_ENV]).resolve())
    with console.status("ingesting in the warm worker"):
        future = run_pass.delay(flow_options, environment)
        try:
            while not _finished(future):
                if server.status().worker.pid is None:
                    console.print("the warm worker stopped; running the pass here")
                    return None
        except KeyboardInterrupt:
            console.print(
                "stopped waiting: the pass goes on in the warm worker "
                f"(task run {future.task_run_id})"
            )
            raise
    outcome: dict[str, Any] = future.result()  # the pass's own error, if it failed
    return outcome["summary"], outcome["flow_run_id"]


def _finished(future: PrefectDistributedFuture[Any]) -> bool:
    """Wait up to a second for the worker's task run to end; whether it has."""
    try:
        future.wait(timeout=1.0)
    except RuntimeError:
        # Read before the server recorded the run's first state (it records states
        # from events): not an error of the pass, which `result()` would raise.
        time.sleep(0.1)
        return False
    return future.state.is_final()


def _warm_up_validation() -> None:
    """Import Great Expectations in a thread while Prefect starts its flow run."""
    from cablestream.tasks.quality.engine import warm_up_in_background

    warm_up_in_background()


def run_watch(options: dict[str, Any], verbose: bool = False) -> dict[str, Any]:
    """Watch until SIGINT/SIGTERM; one line per pass, totals at the end.

    The service is one `cablestream-watch` flow run tagged like the watch-service
    deployment (`WATCH_TAGS`), and every pass is a child run of it (with the same
    tags): the Prefect UI's filters find the passes of a CLI watch as well.
    """
    settings = checked_settings(options)
    if settings.ledger is not None:
        from cablestream.tasks.ledger.sqlite import open_ledger

        open_ledger(settings.lake, settings.ledger)  # unreachable: one line now, not each pass
    ui = connect_prefect(verbose)
    # Prefect and GE are started before "watching" is said, so the first file waits for neither.
    from prefect import flow, tags
    from prefect.runtime import flow_run

    from cablestream.flows.cluster import on_dask
    from cablestream.flows.ingest import ingest_flow
    from cablestream.flows.watch import (
        WATCH_TAGS,
        WatchSummary,
        in_worker_thread,
        install_stop_handlers,
        watch_inbox,
    )
    from cablestream.tasks.quality.engine import warm_up_in_background

    warm_up_in_background().join()
    stop = install_stop_handlers()
    running: dict[str, Any] = {}
    flow_options = {key: value for key, value in options.items() if key in _FLOW_OPTIONS}

    def remember_run(flow: Any, flow_run: Any, state: Any) -> None:
        running["id"] = flow_run.id

    # One Dask cluster (when asked for) for every pass of the service, closed when it stops.
    cluster = contextlib.ExitStack()
    tracked_flow = cluster.enter_context(
        on_dask(ingest_flow.with_options(on_running=[remember_run]), settings.dask)
    )

    def run_pass(paths: list[str] | None) -> dict[str, Any]:
        summary: dict[str, Any] = tracked_flow(**{**flow_options, "paths": paths})
        running.pop("id", None)
        return summary

    def on_pass(result: dict[str, Any]) -> None:
        if result.get("files"):
            console.print(
                f"[green]{time.strftime('%H:%M:%S')}[/] {result['files']} files, "
                f"{result['cables']} cables, {result['rows_written']} rows written, "
                f"{result['duplicates']} duplicates, "
                f"{result['files_quarantined'] + result['rows_quarantined']} quarantined"
            )

    def serve() -> WatchSummary:
        running["service"] = flow_run.id
        return watch_inbox(settings, stop, run_pass, on_pass)

    service = flow(name="cablestream-watch", persist_result=False)(serve)

    def announce_stop() -> None:
        stop.wait()
        console.print("stopping: finishing the current pass (Ctrl-C again stops at once)")

    threading.Thread(target=announce_stop, name="cablestream-stop-notice", daemon=True).start()
    console.print(
        f"watching [bold]{settings.inbox_location()}[/] → [bold]{settings.lake_url or settings.lake}[/] "
        f"(settle {settings.settle_seconds} s; Ctrl-C stops; Prefect UI {ui})"
    )
    try:
        # Off the main thread, so that SIGINT/SIGTERM stay ours (see `in_worker_thread`).
        with tags(*WATCH_TAGS):
            summary: WatchSummary = in_worker_thread(service)
    except KeyboardInterrupt:
        _cancel_flow_runs(running.get("id"), running.get("service"))
        raise
    finally:
        cluster.close()
    totals: dict[str, Any] = {**summary.totals, "passes": summary.passes}
    console.print(summary_table("cablestream watch (stopped)", totals, {}))
    return totals


def _cancel_flow_runs(pass_run_id: Any, service_run_id: Any) -> None:
    """Mark the interrupted pass and the service cancelled (else they show Running forever)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    with get_client(sync_client=True) as client:
        for run_id in (pass_run_id, service_run_id):
            if run_id is not None:
                client.set_flow_run_state(
                    run_id, Cancelled(message="stopped by a second Ctrl-C"), force=True
                )
    if pass_run_id is None:
        console.print("stopped at once")
        return
    console.print(
        f"stopped at once: flow run {pass_run_id} marked cancelled; "
        "its batch is undone by the next run's recovery"
    )


_FLOW_OPTIONS = {
    "inbox",
    "lake",
    "settle_seconds",
    "max_files_per_batch",
    "max_batch_bytes",
    "max_file_bytes",
    "max_attempts",
    "archive",
    "ledger",
}


def existing_lake(options: dict[str, Any]) -> Path:
    """The lake a command reads (flag, env var or default); InputError when there is none."""
    from cablestream.tasks.lake.writer import move_legacy_control

    settings = checked_settings(options, needs_inbox=False)
    lake = settings.lake
    if lake.is_dir():
        move_legacy_control(lake)
    ledger = layout.ledger_path(lake)
    if not lake.is_dir() or (settings.ledger is None and not ledger.is_file()):
        raise InputError(f"no lake at {lake} (no ledger at {ledger}; ingest creates one)")
    return lake


def writable_page(out: Path | None, lake: Path) -> Path:
    """Where `report` writes: never inside the lake, which holds only cable rows."""
    if out is None:
        return layout.report_path(lake)
    refuse_url("--out", out)
    if out.resolve().is_relative_to(lake.resolve()):
        raise InputError(f"--out {out} is inside the lake (it holds only cable rows)")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name")
    writable_folder("--out's folder", out.resolve().parent)
    return out


def print_status(lake: Path, ledger_url: str | None, as_json: bool = False) -> None:
    from cablestream.flows.status import lake_status

    facts = lake_status(lake, ledger_url)
    if as_json:
        _print_json(facts.as_dict())
        return
    out = Console()
    out.print(f"lake [bold]{facts.lake}[/]; control folder {facts.control}")
    states = ", ".join(f"{state} {count}" for state, count in sorted(facts.files.items()))
    out.print(f"files: {states or 'none yet'}")
    for title, batches in (
        ("batches in flight", facts.in_flight),
        ("last batches", facts.recent_batches),
    ):
        table = Table(title=title, title_justify="left")
        for column in ("batch", "state", "started", "finished", "files", "note"):
            table.add_column(column, overflow="fold")
        for batch in batches:
            table.add_row(
                batch.batch_id,
                batch.state,
                batch.started_at or "",
                batch.finished_at or "",
                str(batch.files),
                batch.note or "",
            )
        out.print(table if batches else f"{title}: none")
    if facts.retries:
        out.print(
            "to be retried (failed validation): "
            + ", ".join(
                f"{retry.path} ({retry.failures}x {retry.last_reason or ''})"
                for retry in facts.retries
            )
        )
    quarantined = ", ".join(f"{r} {n}" for r, n in sorted(facts.quarantined_files.items()))
    rows = ", ".join(f"{r} {n}" for r, n in sorted(facts.quarantine_rows.items()))
    out.print(f"quarantined files by reason: {quarantined or 'none'}")
    out.print(f"quarantine reasons table: {rows or 'empty'}")


def print_quarantined(lake: Path, ledger_url: str | None, as_json: bool = False) -> None:
    from cablestream.flows.status import quarantined_files

    listed = quarantined_files(lake, ledger_url)
    if as_json:
        print(json.dumps([asdict(item) for item in listed]))
        return
    table = Table(title=f"quarantined files of {lake}", title_justify="left")
    for column in ("inbox path", "reason", "batch", "at", "copy"):
        table.add_column(column, overflow="fold")
    for item in listed:
        table.add_row(item.path, item.reason or "", item.batch_id, item.at or "", item.copy or "")
    Console().print(table)


def run_compact(options: dict[str, Any], min_files: int, as_json: bool = False) -> None:
    from cablestream.tasks.batch.claim import new_batch_id
    from cablestream.tasks.batch.commit import recover
    from cablestream.tasks.batch.compact import compact_lake
    from cablestream.tasks.ledger.sqlite import open_ledger

    settings = checked_settings(options, needs_inbox=False, local_only="compact")
    lake = existing_lake(options)
    ledger = open_ledger(lake, settings.ledger)
    recover(lake, ledger)
    summary = compact_lake(lake, ledger, new_batch_id(), min_files=min_files)
    if as_json:
        facts = asdict(summary)
        facts.pop("replaced")
        _print_json(facts)
        return
    print(
        f"compacted {summary.partitions} partitions: {summary.files_before} files -> "
        f"{summary.files_after}, {summary.rows} rows unchanged"
        + (
            f"; {summary.skipped_in_flight} files of running batches left alone"
            if summary.skipped_in_flight
            else ""
        )
    )


def run_reprocess(
    options: dict[str, Any],
    parser_version_below: str | None,
    verbose: bool = False,
    as_json: bool = False,
) -> dict[str, Any]:
    """Bring the lake's rows up to the current parser; prints the summary and returns it."""
    checked_settings(options, needs_inbox=False, local_only="reprocess")
    lake = existing_lake(options)
    connect_prefect(verbose)
    _warm_up_validation()
    from cablestream.flows.reprocess import reprocess_flow

    # The options typed go to the flow as they are; it resolves the rest as we did.
    result: dict[str, Any] = reprocess_flow(
        **{**options, "lake": str(lake)}, parser_version_below=parser_version_below
    )
    if as_json:
        _print_json(result)
        return result
    table = Table(title="cablestream reprocess", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, key in (
        ("parser version below", "parser_version_below"),
        ("sources with older rows", "sources_stale"),
        ("their rows", "rows_stale"),
        ("sources parsed again", "sources_reprocessed"),
        ("old rows replaced", "rows_replaced"),
        ("rows written", "rows_written"),
        ("rows quarantined", "rows_quarantined"),
        ("batches", "batches"),
        ("batches held back", "batches_held"),
        ("batches failing rules", "batches_flagged"),
    ):
        table.add_row(label, str(result.get(key, 0)))
    for item in result["unavailable"]:
        table.add_row(
            "[red]source not found[/]",
            f"{item['source_path']} (sha256 {item['sha256'][:12]}, {item['rows']} rows kept as they are)",
        )
    console.print(table)
    return result


def examples_inbox() -> Path:
    """The sample cables shipped in the repository (`examples/inbox`)."""
    here = Path(__file__).resolve().parent
    for root in (Path.cwd(), here.parent):
        candidate = root / "examples" / "inbox"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("examples/inbox not found beside the project")


DEMO_QUERY = """
SELECT year, month, classification, count(*) AS cables
FROM read_parquet('{glob}', hive_partitioning = true)
GROUP BY ALL ORDER BY year, month, classification
"""
DEMO_ROWS = """
SELECT reference_id, created, classification, left(subject, 60) AS subject
FROM read_parquet('{glob}', hive_partitioning = true)
ORDER BY created NULLS LAST LIMIT 5
"""


def run_demo(inbox: Path, lake: Path, verbose: bool = False) -> None:
    """Ingest the sample cables into a local lake and show a DuckDB query over it."""
    import duckdb

    inbox.mkdir(parents=True, exist_ok=True)
    if not any(inbox.iterdir()):
        for sample in sorted(examples_inbox().iterdir()):
            shutil.copy2(sample, inbox / sample.name)
            (inbox / sample.name).chmod(0o644)
        console.print(f"copied the sample cables into {inbox}")
    run_ingest({"inbox": str(inbox), "lake": str(lake), "settle_seconds": 0.0}, verbose)
    glob = f"{lake.resolve()}/**/*.parquet"
    out = Console()
    with duckdb.connect() as db:
        for title, query in (
            ("cables per year/month/classification", DEMO_QUERY),
            ("a few rows", DEMO_ROWS),
        ):
            sql = query.format(glob=glob)
            relation = db.sql(sql)
            table = Table(title=title, title_justify="left")
            for column in relation.columns:
                table.add_column(column)
            for row in relation.fetchall():
                table.add_row(*("" if value is None else str(value) for value in row))
            out.print(table)
        out.print(f"DuckDB query:[dim]{DEMO_QUERY.format(glob=glob)}[/]")
    out.print(
        f"lake: [bold]{lake.resolve()}[/] (cable rows only); ledger, quarantine and quality "
        f"in [bold]{layout.control_root(lake)}[/]"
    )
