"""The generated corpus (bench/generate_corpus.py) is deterministic and its truth is right."""

from __future__ import annotations

import csv
import gzip
import io
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


def _generate(generator: ModuleType, out: Path, seed: int, *corpora: Path) -> list[dict[str, Any]]:
    """CABLES cables from the given corpora (the small shared corpus alone: quick to load)."""
    bases = [str(corpus) for corpus in corpora or (generator.DEFAULT_CORPUS,)]
    generator.main(
        ["--cables", str(CABLES), "--out", str(out), "--seed", str(seed), "--corpus", *bases]
    )
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
    entries = _generate(generator, tmp_path, 2)
    per_file: dict[str, int] = {}
    for entry in entries:
        if entry["rendering"] == "multi":
            per_file[entry["file"]] = per_file.get(entry["file"], 0) + 1
    assert per_file, "seed 2 should make at least one multi file"
    for name, count in per_file.items():
        text = _text(tmp_path / name)
        assert len(re.findall(r"(?m)^NNNN$", text)) == count


def test_csv_files_hold_release_rows_with_their_truth(
    generator: ModuleType, tmp_path: Path
) -> None:
    corpus = str(generator.DEFAULT_CORPUS)
    generator.main(["--cables", "400", "--out", str(tmp_path), "--seed", "0", "--corpus", corpus])
    lines = (tmp_path / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    per_file: dict[str, list[dict[str, Any]]] = {}
    for entry in map(json.loads, lines):
        if entry["rendering"] == "csv_row":
            per_file.setdefault(entry["file"], []).append(entry)
    assert per_file, "seed 0 should make at least one csv file"
    for name, entries in per_file.items():
        text = (tmp_path / name).read_text(encoding="utf-8")
        # Read as the release's cables.csv is read: backslash escapes, no doubled quotes.
        rows = list(csv.reader(io.StringIO(text, newline=""), escapechar="\\", doublequote=False))
        assert [row[2] for row in rows] == [e["truth"]["reference_id"] for e in entries]
        for row, entry in zip(rows, entries, strict=True):
            assert len(row) == 8 and row[3] == entry["truth"]["origin"]
            assert row[4] == entry["truth"]["classification"]


def test_both_real_corpora_are_bases_and_most_cables_are_plain_release_text(
    generator: ModuleType, tmp_path: Path
) -> None:
    if not (generator.DEFAULT_BULK / "manifest.jsonl").is_file():
        pytest.skip("corpus-bulk not beside the repository")
    entries = _generate(generator, tmp_path, 11, generator.DEFAULT_CORPUS, generator.DEFAULT_BULK)
    sources = {entry["base_file"].split("/", 1)[0] for entry in entries}
    assert sources == {"corpus", "corpus-bulk"}
    plain = sum(entry["rendering"] == "release_text" for entry in entries)
    assert plain > len(entries) / 2
