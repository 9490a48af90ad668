"""Reading inbox files: opened once, never through a symlink, only regular files, any depth."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from cablestream.schemas import lake as layout
from cablestream.tasks.batch import claim, commit, route
from cablestream.tasks.inbox import read
from cablestream.tasks.inbox.folder import scan_inbox
from cablestream.tasks.inbox.settle import ready_files
from cablestream.tasks.lake.quarantine import read_reasons
from cablestream.tasks.ledger.sql import READ_RETRY_SECONDS
from cablestream.tasks.ledger.sqlite import SqliteLedger

SEED = Path(__file__).resolve().parents[3] / ".." / "shared" / "seeds"


def _seed() -> bytes:
    return sorted(SEED.glob("*.txt"))[0].read_bytes()


def test_a_file_swapped_for_a_symlink_after_discovery_is_not_read(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    (inbox / "a.txt").write_bytes(_seed())
    (found,) = list(scan_inbox(inbox))
    (inbox / "a.txt").unlink()
    (inbox / "a.txt").symlink_to(secret)  # the swap, between discovery and read
    source = read.read_inbox_file(inbox, found.path)
    assert (source.failure, source.data) == (read.NOT_REGULAR, None)
    # A folder on the way swapped for a symlink is refused the same way.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.txt").write_bytes(_seed())
    (inbox / "sub").symlink_to(tmp_path / "elsewhere")
    assert read.read_inbox_file(inbox, "sub/b.txt").failure == read.NOT_REGULAR
    assert list(scan_inbox(inbox)) == []  # and discovery never offers either


def test_a_name_that_leaves_the_inbox_is_not_opened(tmp_path: Path) -> None:
    # `//x` is an absolute name too (a `//` root for PurePosixPath), as are `/x` and `a/../..`.
    inbox = tmp_path / "inbox"
    (inbox / "a").mkdir(parents=True)
    (tmp_path / "secret.txt").write_bytes(_seed())
    for name in (f"/{tmp_path}/secret.txt", f"{tmp_path}/secret.txt", "a/../../secret.txt"):
        source = read.read_inbox_file(inbox, name)
        assert (source.failure, source.data) == (read.UNREADABLE, None), name
        assert "not a path inside the inbox" in source.detail


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    assert read.read_inbox_file(tmp_path, "pipe.txt").failure == read.NOT_REGULAR
    assert list(scan_inbox(tmp_path)) == []


def test_a_path_longer_than_path_max_is_found_and_read(tmp_path: Path) -> None:
    folder = os.open(tmp_path, os.O_RDONLY)
    parts = [f"{n:03d}-" + "d" * 200 for n in range(22)]  # ~4,600 characters
    try:
        for part in parts:
            os.mkdir(part, dir_fd=folder)
            inner = os.open(part, os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = inner
        with os.fdopen(os.open("deep.txt", os.O_WRONLY | os.O_CREAT, dir_fd=folder), "wb") as f:
            f.write(_seed())
    finally:
        os.close(folder)
    (found,) = list(scan_inbox(tmp_path))
    assert len(found.path) > os.pathconf("/", "PC_PATH_MAX")
    source = read.read_inbox_file(tmp_path, found.path)
    assert source.failure is None and source.data == _seed()


def test_a_read_failure_is_quarantined_once_and_retried_until_the_file_reads(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target = inbox / "a.txt"
    target.write_bytes(_seed())
    stamp = os.stat(target).st_mtime_ns
    found = ready_files(inbox, 0)
    target.unlink()
    target.symlink_to(tmp_path / "nowhere")  # unreadable at read time
    lake = tmp_path / "lake"
    ledger = SqliteLedger(layout.ledger_path(lake))
    for attempt in range(2):
        batch = claim.read_and_claim(inbox, found, ledger, claim.new_batch_id(), 10**7)
        if attempt == 0:
            parsed = route.parse_batch(batch)
            commit.write_and_commit(lake, ledger, batch, parsed, parsed.table, [])
        else:
            assert batch.files == []  # the same failure again: no second quarantine row
    assert [r["reason"] for r in read_reasons(lake).to_pylist()] == [read.NOT_REGULAR]
    # Fixed, with the very same size and mtime: the fingerprint alone would skip it.
    target.unlink()
    target.write_bytes(_seed())
    os.utime(target, ns=(stamp, stamp))
    assert claim.fresh_files(inbox, ledger) == []  # waits for its back-off ...
    with sqlite3.connect(ledger.path) as db:  # ... which runs out
        db.execute("UPDATE retries SET not_before = not_before - ?", (READ_RETRY_SECONDS,))
    (fresh,) = claim.fresh_files(inbox, ledger)  # then it is read again
    batch = claim.read_and_claim(inbox, [fresh], ledger, claim.new_batch_id(), 10**7)
    parsed = route.parse_batch(batch)
    assert commit.write_and_commit(lake, ledger, batch, parsed, parsed.table, []).rows_written > 0
