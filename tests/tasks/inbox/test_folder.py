from __future__ import annotations

import os
import time
from pathlib import Path

from cablestream.tasks.inbox.folder import is_candidate_name, scan_inbox
from cablestream.tasks.inbox.settle import Settler, ready_files


def _write(path: Path, data: bytes = b"x", age: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def test_hidden_temp_and_marker_names_are_skipped(tmp_path: Path) -> None:
    for name in [".hidden.txt", "a.tmp", "b.part", "c.txt.done", ".dir/d.txt", "ok.txt", "s/e.md"]:
        _write(tmp_path / name, age=100)
    assert sorted(f.path for f in scan_inbox(tmp_path)) == ["ok.txt", "s/e.md"]
    assert not is_candidate_name("x.TMP")


def test_a_growing_file_waits_until_it_settles(tmp_path: Path) -> None:
    path = _write(tmp_path / "growing.txt", b"VZCZC")
    settler = Settler(settle_seconds=2.0)
    assert settler.ready(list(scan_inbox(tmp_path))) == []
    with path.open("ab") as handle:  # still being written
        handle.write(b" more")
    assert settler.ready(list(scan_inbox(tmp_path))) == []
    # Nothing changes for the settle interval (clock moved on): ready.
    later = time.time() + 2.5
    assert [f.path for f in settler.ready(list(scan_inbox(tmp_path)), now=later)] == ["growing.txt"]


def test_a_size_change_with_an_old_mtime_is_not_ready_until_seen_twice(tmp_path: Path) -> None:
    path = _write(tmp_path / "copy.txt", b"a", age=100)
    settler = Settler(settle_seconds=1.0)
    assert len(settler.ready(list(scan_inbox(tmp_path)))) == 1
    _write(path, b"abc", age=100)  # a producer that keeps the old mtime while writing
    assert settler.ready(list(scan_inbox(tmp_path))) == []
    assert len(settler.ready(list(scan_inbox(tmp_path)))) == 1


def test_a_done_marker_makes_a_file_ready_at_once(tmp_path: Path) -> None:
    _write(tmp_path / "fresh.txt")
    _write(tmp_path / "fresh.txt.done", b"")
    _write(tmp_path / "other.txt")
    assert [f.path for f in ready_files(tmp_path, settle_seconds=3600)] == ["fresh.txt"]


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    secret = _write(tmp_path / "outside" / "secret.txt", age=100)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "link.txt").symlink_to(secret)
    (inbox / "dir").symlink_to(secret.parent, target_is_directory=True)
    assert list(scan_inbox(inbox)) == []
