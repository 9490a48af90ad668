"""`cablestream` run with a fault injected at a real seam, for tests that need the CLI
in a process of its own (to kill it, or to see its exit code).

    python tests/flows/faulty_cli.py ingest --inbox ... (the CLI's own arguments)

The faults, chosen by environment variables (none set: the plain CLI):

- `TEST_PAUSE_AT=METHOD:before|after`: the SQLite ledger's METHOD (e.g. `commit`,
  `prepare_commit`) writes its batch id to the file `TEST_PAUSE_MARK` and sleeps,
  before or after doing its work, so that the test can kill the process at exactly
  that moment of a batch (it waits for the mark file: `wait_for_mark`).
- `TEST_BLANK_SUBJECTS=1`: every parsed subject is blank before validation, as a
  broken parser would leave it (`blank_subjects`).

This file is not a test module: tests run it, and `tests/flows/conftest.py` loads its
helpers for the tests that inject the same faults into a flow in their own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from cablestream.tasks.batch import route

PAUSE_AT_ENV = "TEST_PAUSE_AT"
PAUSE_MARK_ENV = "TEST_PAUSE_MARK"
BLANK_SUBJECTS_ENV = "TEST_BLANK_SUBJECTS"
PAUSE_SECONDS = 600  # longer than any test waits: the test kills the process first

ParseBatch = Callable[..., route.ParsedBatch]


def blank_subjects(parse_batch: ParseBatch) -> ParseBatch:
    """`route.parse_batch` whose every record comes out with a blank subject."""

    def parse_with_blank_subjects(batch: Any, *args: Any) -> route.ParsedBatch:
        parsed = parse_batch(batch, *args)
        table = parsed.table
        index = table.schema.get_field_index("subject")
        nulls = pa.nulls(table.num_rows, pa.string())
        parsed.table = table.set_column(index, table.schema.field(index), nulls)
        return parsed

    return parse_with_blank_subjects


def _pause_ledger_at(method: str, moment: str, mark: Path) -> None:
    from cablestream.tasks.ledger.sqlite import SqliteLedger

    original = getattr(SqliteLedger, method)

    def pause(batch_id: str) -> None:
        written = mark.with_name(mark.name + ".tmp")
        written.write_text(batch_id)
        written.replace(mark)  # the test never reads a half-written mark
        time.sleep(PAUSE_SECONDS)

    def paused(self: SqliteLedger, batch_id: str, *args: Any, **kwargs: Any) -> Any:
        if moment == "before":
            pause(batch_id)
        result = original(self, batch_id, *args, **kwargs)
        if moment == "after":
            pause(batch_id)
        return result

    setattr(SqliteLedger, method, paused)


def wait_for_mark(mark: Path, process: subprocess.Popen[bytes], timeout: float = 300) -> str:
    """The batch id the paused process wrote, once it is at the moment to be killed."""
    deadline = time.monotonic() + timeout
    while not mark.exists():
        assert process.poll() is None, "the CLI ended before the moment to kill it"
        assert time.monotonic() < deadline, "the CLI never reached the moment to kill it"
        time.sleep(0.05)
    return mark.read_text()


def main() -> None:
    if pause_at := os.environ.get(PAUSE_AT_ENV):
        method, _, moment = pause_at.partition(":")
        _pause_ledger_at(method, moment, Path(os.environ[PAUSE_MARK_ENV]))
    if os.environ.get(BLANK_SUBJECTS_ENV):
        route.parse_batch = blank_subjects(route.parse_batch)
    from cablestream.flows.cli import main as cli

    sys.argv = ["cablestream", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
