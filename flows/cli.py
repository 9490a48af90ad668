"""The `cablestream` command line.

Heavy imports (prefect, great_expectations, pyarrow) stay inside the commands
that need them, so `cablestream parse` starts fast. Every error ends as one
line on stderr and a non-zero exit (`main`); `-v` shows the traceback.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

import cablestream.flows.defaults as defaults
from cablestream.schemas.record import NoCable

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Set by `-v` while the command line is parsed: `main` then lets tracebacks through.
_verbose = {"on": False}


def _remember_verbose(value: bool) -> bool:
    _verbose["on"] = _verbose["on"] or value
    return value


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cablestream {version('cablestream')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
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
    from cablestream.tasks.inbox.read import read_source
    from cablestream.tasks.parse import parse_source
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


# --- options shared by ingest, watch, report, compact, status, quarantine -------------------
# Defaults and ranges live in flows/settings.py; typer reads the env var (and shows it
# in --help); only values typed on the command line are passed on as explicit.

_Inbox = Annotated[
    Path,
    typer.Option(help="Inbox folder (must exist)", envvar="CABLESTREAM_INBOX"),
]
_Lake = Annotated[
    Path,
    typer.Option(
        help="Lake folder (cable rows only; ledger etc. in LAKE.cablestream beside it)",
        envvar="CABLESTREAM_LAKE",
    ),
]
_Settle = Annotated[
    float,
    typer.Option(help="Seconds a file must stay unchanged", envvar="CABLESTREAM_SETTLE_SECONDS"),
]
_MaxFiles = Annotated[
    int, typer.Option(help="Files per micro-batch", envvar="CABLESTREAM_MAX_FILES_PER_BATCH")
]
_MaxBatchBytes = Annotated[
    int, typer.Option(help="Bytes per micro-batch", envvar="CABLESTREAM_MAX_BATCH_BYTES")
]
_MaxFileBytes = Annotated[
    int, typer.Option(help="Bigger files are quarantined", envvar="CABLESTREAM_MAX_FILE_BYTES")
]
_MaxAttempts = Annotated[
    int,
    typer.Option(
        help="Validation failures before a batch is quarantined whole",
        envvar="CABLESTREAM_MAX_ATTEMPTS",
    ),
]
_Archive = Annotated[
    Path | None,
    typer.Option(help="Move settled source files here", envvar="CABLESTREAM_ARCHIVE"),
]
_Ledger = Annotated[
    str | None,
    typer.Option(
        help="PostgreSQL ledger shared by several ingesting processes, postgresql://user@host/db"
        " (password: PGPASSWORD or ~/.pgpass) [default: the lake's own SQLite ledger]",
        envvar="CABLESTREAM_LEDGER",
        show_default=False,
    ),
]
_Dask = Annotated[
    str | None,
    typer.Option(
        help="Parse and write each file group on Dask workers: `local` (a LocalCluster, one"
        " worker process per core) or a scheduler's address, tcp://host:8786 (its workers"
        " need this run's PREFECT_API_URL) [default: threads of this process]",
        envvar="CABLESTREAM_DASK",
        show_default=False,
    ),
]
_Json = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout")]
_Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="Show Prefect's logs and tracebacks", callback=_remember_verbose
    ),
]


def _given(ctx: typer.Context) -> dict[str, Any]:
    """The command's settings (flows/settings.py) typed on the command line, by name (env
    vars and defaults are the settings' job): one list of options, the command's own."""
    from cablestream.flows.settings import IngestSettings

    given = {}
    for name, value in ctx.params.items():
        source = ctx.get_parameter_source(name)
        typed = source is not None and source.name == "COMMANDLINE"
        if typed and name in IngestSettings.model_fields:
            given[name] = str(value) if isinstance(value, Path) else value
    return given


def _pass_options(
    inbox: _Inbox = defaults.INBOX,
    lake: _Lake = defaults.LAKE,
    settle_seconds: _Settle = defaults.SETTLE_SECONDS,
    max_files_per_batch: _MaxFiles = defaults.MAX_FILES_PER_BATCH,
    max_batch_bytes: _MaxBatchBytes = defaults.MAX_BATCH_BYTES,
    max_file_bytes: _MaxFileBytes = defaults.MAX_FILE_BYTES,
    max_attempts: _MaxAttempts = defaults.MAX_ATTEMPTS,
    archive: _Archive = None,
    ledger: _Ledger = None,
    dask: _Dask = None,
) -> None:
    """The options of a pass, `ingest`'s and `watch`'s: only this parameter list is used."""


_Command = TypeVar("_Command", bound=Callable[..., None])


def _with_pass_options(command: _Command) -> _Command:
    """`command` taking `_pass_options`' options too, right after its `ctx`.

    typer builds a command's options from its signature and type hints: both are set
    here. The command takes the values with `**options` and reads the ones typed with
    `_given(ctx)`, as every command does.
    """
    ctx, *own = inspect.signature(command, eval_str=True).parameters.values()
    named = [parameter for parameter in own if parameter.kind is not parameter.VAR_KEYWORD]
    shared = inspect.signature(_pass_options, eval_str=True).parameters.values()
    parameters = [ctx, *shared, *named]
    # inspect.signature reads `__signature__` first (PEP 362); Callable does not declare it.
    command.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    command.__annotations__ = {item.name: item.annotation for item in parameters}
    return command


@app.command()
@_with_pass_options
def ingest(
    ctx: typer.Context, as_json: _Json = False, verbose: _Verbose = False, **options: Any
) -> None:
    """One pass over the inbox: new, complete files into the lake; exits with a summary."""
    from cablestream.flows.commands import run_ingest

    _exit_on_attention(run_ingest(_given(ctx), verbose, as_json=as_json))


@app.command()
@_with_pass_options
def watch(
    ctx: typer.Context,
    max_wait_seconds: Annotated[
        float,
        typer.Option(
            help="Longest wait to gather events into a micro-batch",
            envvar="CABLESTREAM_MAX_WAIT_SECONDS",
        ),
    ] = defaults.MAX_WAIT_SECONDS,
    rescan_seconds: Annotated[
        float,
        typer.Option(
            help="Full rescan interval (events can be missed)", envvar="CABLESTREAM_RESCAN_SECONDS"
        ),
    ] = defaults.RESCAN_SECONDS,
    verbose: _Verbose = False,
    **options: Any,
) -> None:
    """Ingest continuously as files land, until Ctrl-C or SIGTERM."""
    from cablestream.flows.commands import run_watch

    _exit_on_attention(run_watch(_given(ctx), verbose))


def _exit_on_attention(result: dict[str, object]) -> None:
    """Exit 3 when a batch was held back or failed a `fail` rule (the summary says which)."""
    from cablestream.flows.ingest import needs_attention

    if needs_attention(result):
        typer.echo(
            "cablestream: some batches were held back or failed `fail` rules (see above)",
            err=True,
        )
        raise typer.Exit(code=3)


@app.command()
def report(
    ctx: typer.Context,
    lake: _Lake = defaults.LAKE,
    out: Annotated[
        Path | None,
        typer.Option(help="Page to write [default: LAKE.cablestream/quality/report.html]"),
    ] = None,
    inbox: _Inbox = defaults.INBOX,
    serve: Annotated[bool, typer.Option("--serve", help="Serve it on 127.0.0.1")] = False,
    port: Annotated[int, typer.Option(help="Port for --serve")] = 8765,
    ledger: _Ledger = None,
    verbose: _Verbose = False,
) -> None:
    """Write the offline data-quality dashboard (small page + shared plotly.js), or serve it."""
    from cablestream.flows.commands import checked_settings, existing_lake, writable_page
    from cablestream.flows.dashboard import serve as serve_report
    from cablestream.tasks.quality.dashboard import write_report

    given = _given(ctx)
    lake_dir = existing_lake(given)
    settings = checked_settings(given, needs_inbox=False)
    inbox_dir = settings.inbox_location()
    if serve:
        serve_report(lake_dir, inbox_dir, settings.ledger, port)
        return
    page = writable_page(out, lake_dir)
    typer.echo(str(write_report(lake_dir, page, inbox_dir, ledger_url=settings.ledger)))


@app.command()
def compact(
    ctx: typer.Context,
    lake: _Lake = defaults.LAKE,
    min_files: Annotated[
        int, typer.Option(help="Merge a partition once it holds this many files", min=2)
    ] = 2,
    ledger: _Ledger = None,
    as_json: _Json = False,
    verbose: _Verbose = False,
) -> None:
    """Merge each partition's small Parquet files into one, without changing results."""
    from cablestream.flows.commands import run_compact

    run_compact(_given(ctx), min_files, as_json=as_json)


@app.command()
def reprocess(
    ctx: typer.Context,
    lake: _Lake = defaults.LAKE,
    inbox: _Inbox = defaults.INBOX,
    archive: _Archive = None,
    parser_version_below: Annotated[
        str | None,
        typer.Option(
            help="Re-parse sources of rows written by a parser below this version "
            "[default: the current parser's version]"
        ),
    ] = None,
    max_files_per_batch: _MaxFiles = defaults.MAX_FILES_PER_BATCH,
    max_batch_bytes: _MaxBatchBytes = defaults.MAX_BATCH_BYTES,
    max_file_bytes: _MaxFileBytes = defaults.MAX_FILE_BYTES,
    ledger: _Ledger = None,
    as_json: _Json = False,
    verbose: _Verbose = False,
) -> None:
    """Parse again the sources of rows an older parser wrote (from the inbox or the archive)
    and replace their rows, exactly once; sources found nowhere are listed (exit 3)."""
    from cablestream.flows.commands import run_reprocess

    result = run_reprocess(_given(ctx), parser_version_below, verbose, as_json=as_json)
    _exit_on_attention(result)


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


# --- operations: the local Prefect server, the ledger's status, the quarantine -------------

server_app = typer.Typer(
    no_args_is_help=True, help="The local Prefect server the CLI starts once and reuses."
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start(verbose: _Verbose = False) -> None:
    """Start the local Prefect server in the background (127.0.0.1), or find it running."""
    from cablestream.flows.commands import print_server
    from cablestream.flows.server import start

    print_server(start())


@server_app.command("stop")
def server_stop(verbose: _Verbose = False) -> None:
    """Stop the local Prefect server this CLI started."""
    from cablestream.flows.server import stop

    typer.echo("stopped the local Prefect server" if stop() else "no local Prefect server running")


@server_app.command("status")
def server_status(as_json: _Json = False, verbose: _Verbose = False) -> None:
    """Say whether the local Prefect server runs, and where (exit 1 when it does not)."""
    from cablestream.flows.commands import print_server
    from cablestream.flows.server import status

    current = status()
    print_server(current, as_json=as_json)
    if not current.healthy:
        raise typer.Exit(code=1)


def _ledger_view(printer: str, summary: str) -> Callable[..., None]:
    """A command printing one view of the lake's ledger: `printer` of flows/commands.py."""

    def show(
        ctx: typer.Context,
        lake: _Lake = defaults.LAKE,
        ledger: _Ledger = None,
        as_json: _Json = False,
        verbose: _Verbose = False,
    ) -> None:
        from cablestream.flows import commands

        options = _given(ctx)
        ledger_url = commands.checked_settings(options, needs_inbox=False).ledger
        getattr(commands, printer)(commands.existing_lake(options), ledger_url, as_json=as_json)

    show.__doc__ = summary
    return show


app.command("status")(
    _ledger_view(
        "print_status",
        "The lake's ledger: files per state, last batches, batches in flight, retries, quarantine.",
    )
)

quarantine_app = typer.Typer(
    no_args_is_help=True, help="Files the ingest quarantined whole, and taking one again."
)
app.add_typer(quarantine_app, name="quarantine")


quarantine_app.command("ls")(
    _ledger_view(
        "print_quarantined", "List quarantined source files: inbox path, reason, batch, kept copy."
    )
)


@quarantine_app.command("requeue")
def quarantine_requeue(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="The file's inbox path, as `quarantine ls` shows it")],
    inbox: _Inbox = defaults.INBOX,
    lake: _Lake = defaults.LAKE,
    ledger: _Ledger = None,
    verbose: _Verbose = False,
) -> None:
    """Take a quarantined file again on the next pass, once its cause is fixed."""
    from cablestream.flows.commands import checked_settings, existing_lake
    from cablestream.flows.status import requeue

    options = _given(ctx)
    settings = checked_settings(options, local_only="quarantine requeue")
    typer.echo(requeue(existing_lake(options), settings.inbox, path, settings.ledger))


def main() -> None:
    """The console script: every error is one line on stderr (`-v`: the traceback)."""
    from cablestream.flows.errors import run_cli

    run_cli(app, _verbose)


if __name__ == "__main__":
    main()
