"""The `cablestream` command line.

Heavy imports (prefect, great_expectations, pyarrow) stay inside the commands
that need them, so `cablestream parse` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from cablestream.schemas.record import NoCable

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """cablestream: ingest diplomatic cables into a partitioned Parquet lake."""


def _files_under(paths: list[Path]) -> Iterator[Path]:
    """The given files, and the files below given folders (hidden names skipped), in order."""
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        for found in sorted(path.rglob("*")):
            hidden = any(part.startswith(".") for part in found.relative_to(path).parts)
            if found.is_file() and not hidden:
                yield found


@app.command()
def parse(
    paths: Annotated[
        list[Path], typer.Argument(help="Cable files (.txt, .html, .csv, .gz …) or folders")
    ],
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per line")] = False,
) -> None:
    """Parse files and print one JSON object per cable (no Prefect, no lake)."""
    from cablestream.tasks.parse import parse_source
    from cablestream.tasks.read import read_source
    from cablestream.tasks.serialize import record_to_json_dict

    parsed_any = False
    for path in _files_under(paths):
        source = read_source(path)
        if source.data is None:
            typer.echo(f"cablestream: cannot read {path}: {source.detail}", err=True)
            continue
        for result in parse_source(source.data, str(path)):
            if isinstance(result, NoCable):
                typer.echo(f"cablestream: {path}: {result.reason}: {result.detail}", err=True)
                continue
            parsed_any = True
            indent = None if jsonl else 2
            sys.stdout.write(json.dumps(record_to_json_dict(result), indent=indent) + "\n")
    if not parsed_any:
        raise typer.Exit(code=1)


# --- ingest, watch, demo (implementations in flows/commands.py) ---------------------------

_Inbox = Annotated[
    Path | None, typer.Option(help="Inbox folder [env CABLESTREAM_INBOX; default data/inbox]")
]
_Lake = Annotated[
    Path | None, typer.Option(help="Lake folder [env CABLESTREAM_LAKE; default data/lake]")
]
_Settle = Annotated[
    float | None,
    typer.Option(help="Seconds a file must stay unchanged [env CABLESTREAM_SETTLE_SECONDS]"),
]
_MaxFiles = Annotated[
    int | None, typer.Option(help="Files per micro-batch [env CABLESTREAM_MAX_FILES_PER_BATCH]")
]
_MaxFileBytes = Annotated[
    int | None,
    typer.Option(help="Bigger files are quarantined [env CABLESTREAM_MAX_FILE_BYTES]"),
]
_MaxAttempts = Annotated[
    int | None,
    typer.Option(help="Validation failures before a batch is quarantined whole"),
]
_Archive = Annotated[
    Path | None, typer.Option(help="Move settled source files here [env CABLESTREAM_ARCHIVE]")
]
_Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's logs")]


def _options(**values: object) -> dict[str, object]:
    return {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in values.items()
        if value is not None
    }


@app.command()
def ingest(
    inbox: _Inbox = None,
    lake: _Lake = None,
    settle_seconds: _Settle = None,
    max_files_per_batch: _MaxFiles = None,
    max_file_bytes: _MaxFileBytes = None,
    max_attempts: _MaxAttempts = None,
    archive: _Archive = None,
    verbose: _Verbose = False,
    drop_subjects: Annotated[bool, typer.Option("--drop-subjects", hidden=True)] = False,
) -> None:
    """One pass over the inbox: new, complete files into the lake; exits with a summary."""
    from cablestream.flows.commands import run_ingest

    options = _options(
        inbox=inbox,
        lake=lake,
        settle_seconds=settle_seconds,
        max_files_per_batch=max_files_per_batch,
        max_file_bytes=max_file_bytes,
        max_attempts=max_attempts,
        archive=archive,
    )
    if drop_subjects:
        options["drop_subjects"] = True
    _exit_on_attention(run_ingest(options, verbose))


@app.command()
def watch(
    inbox: _Inbox = None,
    lake: _Lake = None,
    settle_seconds: _Settle = None,
    max_files_per_batch: _MaxFiles = None,
    max_file_bytes: _MaxFileBytes = None,
    max_wait_seconds: Annotated[
        float | None, typer.Option(help="Longest wait to gather events into a micro-batch")
    ] = None,
    rescan_seconds: Annotated[
        float | None, typer.Option(help="Full rescan interval (events can be missed)")
    ] = None,
    archive: _Archive = None,
    verbose: _Verbose = False,
) -> None:
    """Ingest continuously as files land, until Ctrl-C or SIGTERM."""
    from cablestream.flows.commands import run_watch

    totals = run_watch(
        _options(
            inbox=inbox,
            lake=lake,
            settle_seconds=settle_seconds,
            max_files_per_batch=max_files_per_batch,
            max_file_bytes=max_file_bytes,
            max_wait_seconds=max_wait_seconds,
            rescan_seconds=rescan_seconds,
            archive=archive,
        ),
        verbose,
    )
    _exit_on_attention(totals)


def _exit_on_attention(result: dict[str, object]) -> None:
    """Exit 2 when a batch was held back or failed a `fail` rule (the summary says which)."""
    from cablestream.flows.ingest import needs_attention

    if needs_attention(result):
        typer.echo(
            "cablestream: some batches were held back or failed `fail` rules (see above)",
            err=True,
        )
        raise typer.Exit(code=2)


def _existing_lake(lake: Path | None) -> Path:
    """The lake a command reads (flag, env var or default); exit 1 when there is none."""
    from cablestream.flows.settings import IngestSettings
    from cablestream.tasks.lake import move_legacy_control

    lake_dir = IngestSettings.resolve(lake=lake).lake
    if not lake_dir.is_dir():
        typer.echo(f"cablestream: no lake at {lake_dir}", err=True)
        raise typer.Exit(code=1)
    move_legacy_control(lake_dir)
    return lake_dir


@app.command()
def report(
    lake: _Lake = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Page to write [default LAKE.cablestream/quality/report.html]"),
    ] = None,
) -> None:
    """Write the offline data-quality dashboard (one self-contained HTML page)."""
    from cablestream.flows.report import write_report

    lake_dir = _existing_lake(lake)
    typer.echo(str(write_report(lake_dir, out)))


@app.command()
def compact(
    lake: _Lake = None,
    min_files: Annotated[
        int, typer.Option(help="Merge a partition once it holds this many files")
    ] = 2,
) -> None:
    """Merge each partition's small Parquet files into one, without changing results."""
    from cablestream.tasks.batch import new_batch_id, recover
    from cablestream.tasks.compact import compact_lake
    from cablestream.tasks.ledger import open_ledger

    lake_dir = _existing_lake(lake)
    ledger = open_ledger(lake_dir)
    recover(lake_dir, ledger)
    summary = compact_lake(lake_dir, ledger, new_batch_id(), min_files=min_files)
    typer.echo(
        f"compacted {summary.partitions} partitions: {summary.files_before} files -> "
        f"{summary.files_after}, {summary.rows} rows unchanged"
        + (
            f"; {summary.skipped_in_flight} files of running batches left alone"
            if summary.skipped_in_flight
            else ""
        )
    )


@app.command()
def demo(
    inbox: Annotated[Path, typer.Option(help="Inbox; filled with the samples if empty")] = Path(
        "data/inbox"
    ),
    lake: Annotated[Path, typer.Option(help="Lake to write")] = Path("data/lake"),
    verbose: _Verbose = False,
) -> None:
    """Ingest the sample cables into a local lake and print a DuckDB query over it."""
    from cablestream.flows.commands import run_demo

    run_demo(inbox, lake, verbose)


if __name__ == "__main__":
    app()
