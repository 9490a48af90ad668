"""What the `ingest`, `watch` and `demo` commands do (the typer signatures live in cli.py).

Prefect is configured here before it is imported: analytics off (offline),
the logging config with the shutdown-noise filter, console logs at WARNING
unless `--verbose` (progress and the summary come from rich instead).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cablestream.schemas import lake as layout

console = Console(stderr=True)


def prepare_prefect(verbose: bool = False) -> None:
    """Env for Prefect, set before its first import (the temporary server inherits it)."""
    from cablestream.flows.logfilter import settings_path

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", settings_path())
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


SUMMARY_ROWS = [
    ("files", "files"),
    ("cables", "cables"),
    ("rows written", "rows_written"),
    ("duplicates", "duplicates"),
    ("files quarantined", "files_quarantined"),
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


def run_ingest(options: dict[str, Any], verbose: bool = False) -> dict[str, Any]:
    """One pass with a progress bar; prints the closing summary and returns it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.perf_counter()
    if not _has_work(options):
        console.print(
            "nothing to ingest: no new ready files and no batch to recover "
            "(Prefect was not started)"
        )
        return {"files": 0, "cables": 0, "rows_written": 0, "seconds": 0.0}
    prepare_prefect(verbose)
    _warm_up_validation()
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

        first_event: list[float] = []

        def listen(event: str, details: dict[str, Any]) -> None:
            if event == "discovered":
                first_event.append(time.perf_counter())
                progress.update(bar, description="ingesting files", total=details["files"])
            elif event == "batch":
                progress.advance(bar, details["files"])

        unsubscribe = add_progress_listener(listen)
        try:
            result: dict[str, Any] = ingest_flow(**options)
        finally:
            unsubscribe()
    total = time.perf_counter() - started
    work = float(result.get("seconds", 0.0))
    megabytes = result.get("bytes", 0) / 1e6
    extra = {
        "inbox → lake": f"{options.get('inbox') or '(default)'} → {options.get('lake') or '(default)'}",
        "flow time": f"{work:.1f} s ({result.get('cables', 0) / max(work, 1e-9):.0f} cables/s, "
        f"{megabytes / max(work, 1e-9):.2f} MB/s)",
        "total incl. Prefect start": f"{total:.1f} s",
    }
    if result.get("recovered_batches"):
        extra["recovered batches"] = str(len(result["recovered_batches"]))
    console.print(summary_table("cablestream ingest", result, extra))
    return result


def _warm_up_validation() -> None:
    """Import Great Expectations in a thread while Prefect's temporary server starts."""
    from cablestream.tasks.validate import warm_up_in_background

    warm_up_in_background()


def _has_work(options: dict[str, Any]) -> bool:
    """A cheap look (no Prefect) at whether a pass would do anything."""
    from cablestream.flows.settings import IngestSettings
    from cablestream.tasks.batch import has_work

    settings = IngestSettings.resolve(
        **{key: value for key, value in options.items() if key != "drop_subjects"}
    )
    return has_work(settings.inbox.resolve(), settings.lake.resolve(), settings.settle_seconds)


def run_watch(options: dict[str, Any], verbose: bool = False) -> dict[str, Any]:
    """Watch until SIGINT/SIGTERM; one line per pass, totals at the end."""
    prepare_prefect(verbose)
    from cablestream.flows.ingest import ingest_flow
    from cablestream.flows.settings import IngestSettings
    from cablestream.flows.watch import install_stop_handlers, watch_inbox

    settings = IngestSettings.resolve(**options)
    _warm_up_validation()
    stop = install_stop_handlers()
    flow_options = {key: value for key, value in options.items() if key in _FLOW_OPTIONS}

    def run_pass(paths: list[str] | None) -> dict[str, Any]:
        summary: dict[str, Any] = ingest_flow(**{**flow_options, "paths": paths})
        return summary

    def on_pass(result: dict[str, Any]) -> None:
        if result.get("files"):
            console.print(
                f"[green]{time.strftime('%H:%M:%S')}[/] {result['files']} files, "
                f"{result['cables']} cables, {result['rows_written']} rows written, "
                f"{result['duplicates']} duplicates, "
                f"{result['files_quarantined'] + result['rows_quarantined']} quarantined"
            )

    console.print(
        f"watching [bold]{settings.inbox}[/] → [bold]{settings.lake}[/] "
        f"(settle {settings.settle_seconds} s; Ctrl-C stops)"
    )
    summary = watch_inbox(settings, stop, run_pass, on_pass)
    totals: dict[str, Any] = {**summary.totals, "passes": summary.passes}
    console.print(summary_table("cablestream watch (stopped)", totals, {}))
    return totals


_FLOW_OPTIONS = {
    "inbox",
    "lake",
    "settle_seconds",
    "max_files_per_batch",
    "max_batch_bytes",
    "max_file_bytes",
    "max_attempts",
    "archive",
    "drop_subjects",
}


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
