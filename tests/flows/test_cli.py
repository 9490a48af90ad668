"""`cablestream parse`: the parser's public face, checked through the installed console script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
CLI = [sys.executable, "-m", "cablestream.flows.cli"]


def test_parse_jsonl_prints_one_object_per_cable() -> None:
    if not SEEDS.exists():
        pytest.skip("shared seeds not present")
    result = subprocess.run(
        [*CLI, "parse", "--jsonl", *sorted(map(str, SEEDS.glob("*.txt")))],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["reference_id"] for row in rows] == ["08ASTANA988", "05ALMATY2231"]
    assert rows[0]["created"] == "2008-05-27T07:10:00Z"
    assert rows[0]["nondisclosure_deadline"] == "2023-05-27"


def test_unreadable_file_is_reported_and_only_fails_when_nothing_parsed(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("O 270710Z MAY 08\nFM AMEMBASSY ASTANA\n\nSECRET ASTANA 000988\n\nSUBJECT: X\n")
    missing = tmp_path / "missing.txt"
    result = subprocess.run(
        [*CLI, "parse", "--jsonl", str(missing), str(good)], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "cannot read" in result.stderr and "missing.txt" in result.stderr
    assert json.loads(result.stdout)["reference_id"] == "08ASTANA988"
    alone = subprocess.run([*CLI, "parse", str(missing)], capture_output=True, text=True)
    assert alone.returncode == 1


def test_parse_imports_neither_prefect_nor_great_expectations(tmp_path: Path) -> None:
    sample = tmp_path / "c.txt"
    sample.write_text("SECRET ASTANA 000988\n\nSUBJECT: X\n")
    probe = (
        "import sys\nfrom typer.testing import CliRunner\nfrom cablestream.flows.cli import app\n"
        f"result = CliRunner().invoke(app, ['parse', {str(sample)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'great_expectations')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_folders_are_walked_and_hidden_files_skipped(tmp_path: Path) -> None:
    nested = tmp_path / "inbox" / "2008"
    nested.mkdir(parents=True)
    (nested / "a.txt").write_text(
        "O 270710Z MAY 08\nFM AMEMBASSY ASTANA\n\nSECRET ASTANA 000988\n\nSUBJECT: X\n"
    )
    (nested / ".partial.txt").write_text("SECRET ASTANA 000999\n\nSUBJECT: HIDDEN\n")
    result = subprocess.run(
        [*CLI, "parse", "--jsonl", str(tmp_path / "inbox")], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert [json.loads(line)["reference_id"] for line in result.stdout.splitlines()] == [
        "08ASTANA988"
    ]


def test_compact_needs_a_lake_and_leaves_an_empty_one_alone(tmp_path: Path) -> None:
    from cablestream.schemas import lake as layout
    from cablestream.tasks.ledger.sqlite import open_ledger

    missing = subprocess.run(
        [*CLI, "compact", "--lake", str(tmp_path / "none")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no lake" in missing.stderr
    lake = tmp_path / "lake"
    lake.mkdir()
    open_ledger(lake)  # a lake ingest made, with nothing written yet
    empty = subprocess.run(
        [*CLI, "compact", "--lake", str(lake), "--json"], capture_output=True, text=True
    )
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout)["partitions"] == 0
    assert layout.ledger_path(lake).is_file() and not any(lake.iterdir())
