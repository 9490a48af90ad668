"""How the CLI ends on an error: one line on stderr and a non-zero exit, never a traceback.

Exit 2: the command line or a setting is wrong (a bad flag or env var value, a
missing inbox, an `s3://` lake ...). Exit 1: the work failed (the message
names the error; `-v` shows its traceback). Exit 130: interrupted.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import typer

USAGE_EXIT = 2
FAILURE_EXIT = 1
INTERRUPTED_EXIT = 130


def _user_errors() -> dict[type[BaseException], int]:
    """Errors whose message is meant for the user as it is (no type name), with their exit."""
    from cablestream.flows.cluster import DaskUnavailable
    from cablestream.flows.server import ServerError
    from cablestream.flows.settings import InputError
    from cablestream.schemas.lake import UnsafePathError
    from cablestream.tasks.ledger.protocol import LedgerUnavailable

    return {
        InputError: USAGE_EXIT,
        UnsafePathError: USAGE_EXIT,
        ServerError: FAILURE_EXIT,
        LedgerUnavailable: FAILURE_EXIT,
        DaskUnavailable: FAILURE_EXIT,
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def click_message(error: Any) -> str:
    """A click usage error as one line; a bad env var value names the variable."""
    param, ctx = getattr(error, "param", None), getattr(error, "ctx", None)
    message = _one_line(error.format_message())
    if param is not None and ctx is not None and param.name is not None:
        source = ctx.get_parameter_source(param.name)
        envvar = param.envvar if isinstance(param.envvar, str) else None
        if source is not None and source.name == "ENVIRONMENT" and envvar:
            return f"{envvar}={os.environ.get(envvar, '')!r}: {_one_line(str(error.message))}"
    command = ctx.command_path if ctx is not None else "cablestream"
    return f"{message} (see {command} -h)"


def run_cli(app: typer.Typer, verbose: dict[str, bool]) -> None:
    try:
        _run_cli(app, verbose)
    finally:
        # The process ends now: spare it the collector's last passes over everything
        # Prefect, pandas and pyarrow created (0.5-1.5 s at exit here); memory is freed
        # by reference counting and the OS as before.
        gc.freeze()


def _run_cli(app: typer.Typer, verbose: dict[str, bool]) -> None:
    args = sys.argv[1:] or ["--help"]
    try:
        code = app(args=args, prog_name="cablestream", standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("cablestream: interrupted", err=True)
        sys.exit(INTERRUPTED_EXIT)
    except typer.Abort:
        typer.echo("cablestream: aborted", err=True)
        sys.exit(FAILURE_EXIT)
    except Exception as error:
        if hasattr(error, "format_message") and hasattr(error, "exit_code"):
            # click's usage errors (typer re-exports only some of their classes)
            typer.echo(f"cablestream: {click_message(error)}", err=True)
            sys.exit(int(error.exit_code))
        if verbose["on"]:
            raise
        for kind, exit_code in _user_errors().items():
            if isinstance(error, kind):
                typer.echo(f"cablestream: {_one_line(str(error))}", err=True)
                sys.exit(exit_code)
        from cablestream.tasks.causes import one_line_cause

        typer.echo(f"cablestream: {one_line_cause(error)} (-v shows the traceback)", err=True)
        sys.exit(FAILURE_EXIT)
    sys.exit(code if isinstance(code, int) else 0)
