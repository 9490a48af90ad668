"""The `cablestream` command line.

Heavy imports (prefect, great_expectations, pyarrow) stay inside the commands
that need them, so `cablestream parse` starts fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cablestream.schemas.record import NoCable

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """cablestream: ingest diplomatic cables into a partitioned Parquet lake."""


@app.command()
def parse(
    paths: Annotated[list[Path], typer.Argument(help="Cable files (.txt, .html, .csv, .gz …)")],
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per line")] = False,
) -> None:
    """Parse files and print one JSON object per cable (no Prefect, no lake)."""
    from cablestream.tasks.parse import parse_source
    from cablestream.tasks.serialize import record_to_json_dict

    parsed_any = False
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as error:
            typer.echo(f"cablestream: cannot read {path}: {error.strerror}", err=True)
            continue
        for result in parse_source(data, str(path)):
            if isinstance(result, NoCable):
                typer.echo(f"cablestream: {path}: {result.reason}: {result.detail}", err=True)
                continue
            parsed_any = True
            indent = None if jsonl else 2
            sys.stdout.write(json.dumps(record_to_json_dict(result), indent=indent) + "\n")
    if not parsed_any:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
