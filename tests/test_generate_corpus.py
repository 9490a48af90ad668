"""The generated corpus (bench/generate_corpus.py) is deterministic and its truth is right."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CABLES = 120


@pytest.fixture(scope="module")
def generator(bench_script: Callable[[str], ModuleType]) -> ModuleType:
    module = bench_script("generate_corpus")
    if not (module.DEFAULT_CORPUS / "manifest.jsonl").is_file():
        pytest.skip(f"shared corpus not found at {module.DEFAULT_CORPUS}")
    return module


def _generate(generator: ModuleType, out: Path, seed: int) -> list[dict[str, Any]]:
    generator.main(["--cables", str(CABLES), "--out", str(out), "--seed", str(seed)])
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


def test_same_seed_same_corpus(generator: ModuleType, tmp_path: Path) -> None:
    first, second = _generate(generator, tmp_path / "a", 7), _generate(generator, tmp_path / "b", 7)
    assert first == second
    for entry in first:
        assert (tmp_path / "a" / entry["file"]).read_bytes() == (
            tmp_path / "b" / entry["file"]
        ).read_bytes()


def test_every_cable_has_a_distinct_id_written_in_its_text(
    generator: ModuleType, tmp_path: Path
) -> None:
    entries = _generate(generator, tmp_path, 3)
    assert len(entries) == CABLES
    ids = [entry["truth"]["reference_id"] for entry in entries]
    assert len(set(ids)) == len(ids)
    for entry in entries:
        parts = re.fullmatch(r"\d{2}(\D+)(\d+)", entry["truth"]["reference_id"])
        assert parts is not None
        station, serial = parts.groups()
        letters = r"\s*".join(station)
        text = _text(tmp_path / entry["file"])
        assert re.search(rf"{letters}\s+0*{serial}(?!\d)", text, re.IGNORECASE), entry["file"]
        assert "\x00" not in text


def test_multi_files_close_every_cable_with_nnnn(generator: ModuleType, tmp_path: Path) -> None:
    entries = _generate(generator, tmp_path, 5)
    per_file: dict[str, int] = {}
    for entry in entries:
        if entry["rendering"] == "multi":
            per_file[entry["file"]] = per_file.get(entry["file"], 0) + 1
    assert per_file, "seed 5 should make at least one multi file"
    for name, count in per_file.items():
        text = _text(tmp_path / name)
        assert len(re.findall(r"(?m)^NNNN$", text)) == count
