"""Bad input is refused before any work: one line on stderr, a non-zero exit, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "cablestream.flows.cli"]


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    environment.update(env)
    return subprocess.run(
        [*CLI, *args], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "cable.txt").write_text("SECRET ASTANA 000988\n\nSUBJECT: X\n")
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "empty").mkdir()
    return tmp_path


BAD_INPUTS = {
    "mistyped inbox": (
        ["ingest", "--inbox", "inbx", "--lake", "lake"],
        "inbox inbx does not exist",
    ),
    "watch never creates a mistyped inbox": (
        ["watch", "--inbox", "inbx", "--lake", "lake"],
        "inbox inbx does not exist",
    ),
    "inbox is a file": (["ingest", "--inbox", "a-file", "--lake", "lake"], "is not a folder"),
    "lake is a file": (["ingest", "--inbox", "inbox", "--lake", "a-file"], "is not a folder"),
    "s3 lake without a local control folder": (
        ["ingest", "--inbox", "inbox", "--lake", "s3://bucket/x"],
        "--lake s3://bucket/x: an object-store lake keeps its ledger, staging and quarantine"
        " in a local folder: name one with CABLESTREAM_CONTROL=PATH",
    ),
    "s3 inbox to reprocess": (
        ["reprocess", "--inbox", "s3://bucket/in"],
        "reprocess needs a local inbox and lake, not s3://bucket/in",
    ),
    "s3 archive": (
        ["ingest", "--inbox", "inbox", "--lake", "lake", "--archive", "s3://bucket/done"],
        "--archive s3://bucket/done: must be a local folder",
    ),
    "lake inside the inbox": (
        ["ingest", "--inbox", "inbox", "--lake", "inbox/lake"],
        "is inside the inbox",
    ),
    "inbox inside the lake": (
        ["ingest", "--inbox", "inbox", "--lake", "."],
        "is inside the lake",
    ),
    "archive inside the inbox": (
        ["ingest", "--inbox", "inbox", "--lake", "lake", "--archive", "inbox/done"],
        "is inside the inbox",
    ),
    "no files per batch": (
        ["ingest", "--inbox", "inbox", "--lake", "lake", "--max-files-per-batch", "0"],
        "--max-files-per-batch 0: Input should be greater than or equal to 1",
    ),
    "negative settle time": (
        ["watch", "--inbox", "inbox", "--lake", "lake", "--settle-seconds", "-1"],
        "--settle-seconds -1.0: Input should be greater than or equal to 0",
    ),
    "no attempts": (
        ["ingest", "--inbox", "inbox", "--lake", "lake", "--max-attempts", "0"],
        "--max-attempts 0: Input should be greater than or equal to 1",
    ),
    "no batch bytes": (
        ["ingest", "--inbox", "inbox", "--lake", "lake", "--max-batch-bytes", "0"],
        "--max-batch-bytes 0",
    ),
    "not a number": (
        ["ingest", "--inbox", "inbox", "--lake", "lake", "--max-attempts", "many"],
        "'--max-attempts'",
    ),
    "compact of one file": (["compact", "--lake", "empty", "--min-files", "0"], "--min-files"),
    "compact of a folder that is no lake": (["compact", "--lake", "empty"], "no lake at empty"),
    "report of a folder that is no lake": (["report", "--lake", "empty"], "no lake at empty"),
    "unknown option": (["ingest", "--inbx", "inbox"], "No such option: --inbx"),
    "ledger that is no PostgreSQL URL": (
        ["ingest", "--inbox", "inbox", "--lake", "lake", "--ledger", "ledger.sqlite"],
        "--ledger ledger.sqlite: give a postgresql://",
    ),
    "password in the ledger URL": (
        ["watch", "--inbox", "inbox", "--ledger", "postgresql://me:secret@db/lake"],
        "keep the password out of the URL",
    ),
    "dask that is neither local nor an address": (
        ["ingest", "--inbox", "inbox", "--lake", "lake", "--dask", "my-cluster"],
        "--dask my-cluster: give `local` or a Dask scheduler's address",
    ),
}


@pytest.mark.parametrize("args, message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_line_and_writes_nothing(
    workdir: Path, args: list[str], message: str
) -> None:
    before = _tree(workdir)
    result = _run(workdir, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert _tree(workdir) == before


BAD_ENV = {
    "CABLESTREAM_MAX_ATTEMPTS": ("abc", "CABLESTREAM_MAX_ATTEMPTS='abc': Input should be a valid"),
    "CABLESTREAM_MAX_FILES_PER_BATCH": ("0", "CABLESTREAM_MAX_FILES_PER_BATCH='0': Input should"),
    "CABLESTREAM_LAKE": ("s3://bucket/lake", "CABLESTREAM_LAKE=s3://bucket/lake: an object-store"),
    "CABLESTREAM_SETTLE_SECONDS": ("soon", "CABLESTREAM_SETTLE_SECONDS='soon'"),
    "CABLESTREAM_LEDGER": ("mysql://db/x", "CABLESTREAM_LEDGER='mysql://db/x': give a postgresql"),
}


@pytest.mark.parametrize("name, value, message", [(k, *v) for k, v in BAD_ENV.items()])
def test_a_bad_env_var_is_named_in_the_error(
    workdir: Path, name: str, value: str, message: str
) -> None:
    before = _tree(workdir)
    result = _run(workdir, "ingest", "--inbox", "inbox", **{name: value})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert _tree(workdir) == before


@pytest.mark.parametrize("command", ["ingest", "watch"])
def test_an_unreachable_ledger_is_one_line_before_any_work(workdir: Path, command: str) -> None:
    closed_port = "postgresql://cablestream@127.0.0.1:9/lake"  # the discard port: nobody listens
    result = _run(workdir, command, "--inbox", "inbox", "--lake", "lake", "--ledger", closed_port)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "ledger postgresql://cablestream@127.0.0.1:9/lake: connection failed" in result.stderr
    assert not (workdir / "lake").exists()


def test_verbose_shows_the_traceback(workdir: Path) -> None:
    result = _run(workdir, "ingest", "--inbox", "inbx", "-v")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "InputError: inbox inbx does not exist" in result.stderr


def test_help_shows_defaults_and_env_vars_and_version_works(workdir: Path) -> None:
    helped = _run(workdir, "ingest", "-h", COLUMNS="200")
    assert helped.returncode == 0
    for shown in (
        "[env var: CABLESTREAM_INBOX]",
        "[default: data/inbox]",
        "--max-batch-bytes",
        "[env var: CABLESTREAM_MAX_BATCH_BYTES]",
        "[default: 67108864]",
        "[env var: CABLESTREAM_MAX_ATTEMPTS]",
    ):
        assert shown in helped.stdout
    assert _run(workdir, "--version").stdout.startswith("cablestream ")
