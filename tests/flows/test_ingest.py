"""The ingest flow end to end: real Prefect (one session server), real SQLite, real Parquet."""

from __future__ import annotations

import errno
import gzip
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from cablestream.flows.ingest import ingest_flow
from cablestream.schemas import lake as layout
from cablestream.tasks.lake.quarantine import read_reasons
from cablestream.tasks.lake.snapshot import current_snapshot, snapshot_files, snapshots_root
from cablestream.tasks.quality.tables import VALIDATIONS_DIR

from .conftest import docs_index_lists_every_kept_run, lake_ids, parsed_ids, quarantined_ids

SEEDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "seeds"


def _ingest(inbox: Path, lake: Path, **options: Any) -> dict[str, Any]:
    options.setdefault("settle_seconds", 0)
    return ingest_flow(inbox=str(inbox), lake=str(lake), **options)


def _assert_exactly_once(lake: Path, expected: set[str]) -> None:
    rows, quarantined = lake_ids(lake), quarantined_ids(lake)
    assert len(rows) == len(set(rows)), "a cable was written twice"
    assert not set(rows) & set(quarantined), "a cable is both in the lake and quarantined"
    assert set(rows) | set(quarantined) == expected


@pytest.fixture(scope="module")
def corpus_lake(
    prefect_harness: str, corpus_files: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("corpus")
    inbox = root / "inbox"
    shutil.copytree(corpus_files, inbox)
    lake = root / "lake"
    # 100 files per batch: the corpus' files 400-500 trip the batch-level parse-warning
    # share, which must flag that batch and still write its real cables.
    first = _ingest(inbox, lake, max_files_per_batch=100)
    yield inbox, lake, first


def test_corpus_lands_once_and_again_only_what_is_new(
    corpus_lake: tuple[Path, Path, dict[str, Any]],
) -> None:
    inbox, lake, first = corpus_lake
    expected = parsed_ids(inbox)
    assert first["cables"] == len(expected)
    assert first["rows_written"] + first["rows_quarantined"] == len(expected)
    assert first["batches_held"] == 0
    assert "validation_failed" not in first["reasons"]
    _assert_exactly_once(lake, expected)
    rows = len(lake_ids(lake))
    # Snapshots are paced during the pass (at most one per batch), and the pass's last
    # one holds every committed data file.
    folder = current_snapshot(lake)
    assert folder is not None
    data = {path.relative_to(lake).as_posix() for path in lake.glob("year=*/month=*/*.parquet")}
    assert snapshot_files(folder) == data
    made = [path for path in snapshots_root(lake).iterdir() if path.name.isdigit()]
    assert 1 <= len(made) <= first["batches"]

    # A second run writes nothing.
    second = _ingest(inbox, lake)
    assert second["files"] == 0 and second["rows_written"] == 0
    assert len(lake_ids(lake)) == rows

    # Renaming a file writes nothing: same content, recorded as a duplicate.
    victim = sorted(inbox.glob("*.txt"))[0]
    victim.rename(inbox / "renamed-copy.txt")
    third = _ingest(inbox, lake)
    assert (third["files"], third["duplicates"], third["rows_written"]) == (1, 1, 0)
    assert len(lake_ids(lake)) == rows

    # A new file writes only its own cables.
    new = inbox / "new" / "fresh.txt"
    new.parent.mkdir()
    new.write_bytes(sorted(SEEDS.glob("*.txt"))[0].read_bytes() + b"\nnew rendering\n")
    new_ids = parsed_ids(new.parent)
    fourth = _ingest(inbox, lake)
    assert fourth["files"] == 1 and fourth["cables"] == len(new_ids) > 0
    _assert_exactly_once(lake, expected | new_ids)


def test_lake_reads_the_same_through_pyarrow_duckdb_and_polars(
    corpus_lake: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, lake, _ = corpus_lake
    arrow = ds.dataset(lake, format="parquet", partitioning="hive").to_table()
    assert pa.types.is_integer(arrow.schema.field("year").type)
    assert pa.types.is_integer(arrow.schema.field("month").type)

    glob = f"{lake}/year=*/month=*/*.parquet"
    with duckdb.connect() as db:
        relation = db.sql(
            f"SELECT count(*), typeof(any_value(year)), typeof(any_value(month)) "
            f"FROM read_parquet('{glob}', hive_partitioning = true)"
        )
        ((count, year_type, month_type),) = relation.fetchall()
    assert count == arrow.num_rows
    assert year_type in ("BIGINT", "INTEGER") and month_type in ("BIGINT", "INTEGER")

    frame = pl.scan_parquet(glob, hive_partitioning=True)
    schema = frame.collect_schema()
    assert schema["year"].is_integer() and schema["month"].is_integer()
    assert frame.select(pl.len()).collect().item() == arrow.num_rows

    by_partition = Counter(zip(arrow["year"].to_pylist(), arrow["month"].to_pylist(), strict=True))
    assert all(year == 0 or 1900 < year < 2100 for year, _ in by_partition)
    assert not any(p.name.startswith("year=__HIVE") for p in lake.iterdir())


def test_every_bad_file_is_quarantined_with_its_reason(
    prefect_harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    good = sorted(SEEDS.glob("*.txt"))
    for seed in good:
        shutil.copy(seed, inbox / seed.name)
    (inbox / "empty.txt").write_bytes(b"")
    (inbox / "big.txt").write_bytes(b"VZCZC " + b"x" * 300_000)
    (inbox / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (inbox / "nocable.txt").write_bytes(b"Minutes of the garden club.\nNothing here.\n")
    # gzip magic and header, then bytes that are not deflate data
    (inbox / "bad.txt.gz").write_bytes(gzip.compress(b"")[:10] + b"\xff" * 64)
    unreadable = inbox / "unreadable.txt"
    unreadable.write_bytes(good[0].read_bytes())
    if os.geteuid() == 0:  # root reads anything: the OS refuses as it would anyone else
        from cablestream.tasks.inbox import read

        real = read.read_inbox_file
        refused = PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr(
            read,
            "read_inbox_file",
            lambda root, relative, cap: (
                read.open_failure(relative, refused)
                if relative == unreadable.name
                else real(root, relative, cap)
            ),
        )
    else:
        unreadable.chmod(0)

    result = _ingest(inbox, lake, max_file_bytes=200_000)

    reasons = {r["source_path"]: r["reason"] for r in read_reasons(lake).to_pylist()}
    assert reasons == {
        "empty.txt": "empty",
        "big.txt": "oversized",
        "binary.txt": "binary",
        "nocable.txt": "no_cable",
        "bad.txt.gz": "bad_gzip",
        "unreadable.txt": "unreadable",
    }
    assert result["files_quarantined"] == 6
    _assert_exactly_once(lake, parsed_ids_of(inbox, [seed.name for seed in good]))
    assert len(lake_ids(lake)) > 0
    copies = list(layout.quarantine_dir(lake, layout.QUARANTINE_FILES_DIR).iterdir())
    assert (
        len(copies) == 4
    )  # empty, binary, no cable, bad gzip (no bytes kept: oversized, unreadable)


def parsed_ids_of(inbox: Path, names: list[str]) -> set[str]:
    folder = inbox.parent / "only"
    folder.mkdir()
    for name in names:
        shutil.copy(inbox / name, folder / name)
    return parsed_ids(folder)


def test_cable_text_cannot_write_outside_the_lake(prefect_harness: str, tmp_path: Path) -> None:
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    evil = (
        "VZCZCXYZ0001\nO 270710Z MAY 08\nFM AMEMBASSY ../../../../tmp/evil\n"
        "TO RUEHC/SECSTATE WASHDC/../../escape IMMEDIATE 2481\n"
        "S E C R E T ../../..//ESCAPE 000988\nSIPDIS\nE.O. 12958: DECL: 05/27/2023\n"
        "TAGS: ../../PREL, /etc/passwd\nSUBJECT: ../../../year=2008/month=5/../../../x\n"
        "1. (S) year=../../..; month=/etc\nNNNN\n"
    )
    (inbox / "evil.txt").write_text(evil)
    (inbox / "..evil.txt").write_text(evil)  # hidden name: skipped
    before = {p for p in tmp_path.rglob("*")}
    _ingest(inbox, lake)
    created = {p for p in tmp_path.rglob("*")} - before
    roots = (lake.resolve(), layout.control_root(lake))
    assert created and all(any(p.resolve().is_relative_to(r) for r in roots) for p in created)
    for part in lake.glob("year=*/month=*"):
        year, month = (int(x.split("=")[1]) for x in part.relative_to(lake).parts)
        assert (year, month) == (0, 0) or 1 <= month <= 12


def test_growing_file_waits_and_done_marker_is_taken_at_once(
    prefect_harness: str, tmp_path: Path
) -> None:
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    seeds = sorted(SEEDS.glob("*.txt"))
    growing = inbox / "growing.txt"
    growing.write_bytes(seeds[0].read_bytes()[:500])  # a producer is still writing it
    marked = inbox / "marked.txt"
    marked.write_bytes(seeds[1].read_bytes())
    (inbox / "marked.txt.done").write_bytes(b"")

    first = _ingest(inbox, lake, settle_seconds=60)
    assert first["files"] == 1  # only the marked file
    assert {r for r in lake_ids(lake)} == parsed_ids_of(inbox, ["marked.txt"])

    with growing.open("ab") as handle:
        handle.write(seeds[0].read_bytes()[500:])
    assert _ingest(inbox, lake, settle_seconds=60)["files"] == 0
    old = growing.stat().st_mtime - 120  # ... and then nothing changes for the settle interval
    os.utime(growing, (old, old))
    third = _ingest(inbox, lake, settle_seconds=60)
    assert third["files"] == 1 and third["cables"] >= 1


def test_a_batch_that_fails_mid_write_is_finished_never_undone(
    prefect_harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cablestream.tasks.lake import writer

    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, inbox / seed.name)
    real_publish = writer.publish

    def publish_then_fail(lake_root: Path, staged: list[writer.StagedFile]) -> list[str]:
        real_publish(lake_root, staged[:1])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "publish", publish_then_fail)
    with pytest.raises(OSError, match="No space left"):
        _ingest(inbox, lake)
    seen = lake_ids(lake)
    assert seen  # past the point of no return: what a reader saw stays
    monkeypatch.setattr(writer, "publish", real_publish)
    result = _ingest(inbox, lake)
    assert len(result["recovered_batches"]) == 1  # finished by this process' next pass
    assert result["files"] == 0
    assert set(seen) <= set(lake_ids(lake))
    _assert_exactly_once(lake, parsed_ids(inbox))


def test_odd_dates_and_names_do_not_hold_back_the_batch(
    prefect_harness: str, tmp_path: Path
) -> None:
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    seeds = sorted(SEEDS.glob("*.txt"))
    for seed in seeds:
        shutil.copy(seed, inbox / seed.name)
    text = seeds[0].read_text()
    assert "O 270710Z MAY 08" in text and "DECL: 05/27/2023" in text
    far = text.replace("O 270710Z MAY 08", "O 270710Z MAY 9999").replace(
        "ASTANA 000988", "ASTANA 000989"
    )
    (inbox / "dtg-9999.txt").write_text(far)
    (inbox / "decl-2308.txt").write_text(
        text.replace("DECL: 05/27/2023", "DECL: 06/03/2308").replace(
            "ASTANA 000988", "ASTANA 000990"
        )
    )
    (inbox / os.fsdecode(b"name-\xff.txt")).write_text(
        text.replace("ASTANA 000988", "ASTANA 000991")
    )

    result = _ingest(inbox, lake)

    assert result["batches_held"] == 0 and result["files"] == len(seeds) + 3
    expected = parsed_ids(inbox)
    _assert_exactly_once(lake, expected)
    # The year-9999 cable is a real cable with a misread date: kept and flagged, in the
    # partition of that date; nothing is dropped.
    assert result["rows_written"] == len(expected) and result["rows_quarantined"] == 0
    assert read_reasons(lake).num_rows == 0
    rows = ds.dataset(lake, format="parquet", partitioning="hive").to_table().to_pylist()
    flagged = {
        r["source_path"]: (r["year"], r["quality_flags"]) for r in rows if r["quality_flags"]
    }
    # (also "written after" its DECL date of 2023: each broken check is named)
    year, flags = flagged["dtg-9999.txt"]
    assert (year, flags) == (9999, ["created_year_in_range", "nondisclosure_after_created"])
    assert "name-\\xff.txt" in {r["source_path"] for r in rows}


def test_a_file_changed_in_place_leaves_only_its_new_version(
    prefect_harness: str, corpus_files: Path, tmp_path: Path
) -> None:
    """The older version's rows are replaced (issue 17), not kept beside the new ones, and
    they are not "another rendering already in the lake" for validation."""
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    first, second = sorted(corpus_files.glob("*.txt"))[:2]
    shutil.copy(first, inbox / "cable.txt")
    _ingest(inbox, lake)
    # The same cable, one paragraph longer: same reference id, other content.
    (inbox / "cable.txt").write_bytes(first.read_bytes() + b"\n\n9. (U) Added later.\n")
    result = _ingest(inbox, lake)
    assert result["rows_replaced"] == result["rows_written"] > 0
    assert sorted(lake_ids(lake)) == sorted(parsed_ids(inbox))
    _assert_exactly_once(lake, parsed_ids(inbox))
    runs = ds.dataset(layout.quality_dir(lake) / VALIDATIONS_DIR, format="parquet").to_table(
        filter=ds.field("expectation") == "reference_id_new_to_lake"
    )
    assert runs.num_rows == 2 and all(runs["success"].to_pylist())
    # Another file changed into a copy of it: its own older rows go, no row twice.
    shutil.copy(second, inbox / "other.txt")
    _ingest(inbox, lake)
    shutil.copy(inbox / "cable.txt", inbox / "other.txt")
    _ingest(inbox, lake)
    _assert_exactly_once(lake, parsed_ids(inbox))


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inbox"


@pytest.fixture
def examples_pass(
    prefect_harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path, list[Path]]:
    """An inbox of the examples, a lake, and the Data Docs index builds of the passes
    that follow (the real build, counted)."""
    from cablestream.tasks.quality import datadocs

    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    shutil.copytree(EXAMPLES, inbox)
    builds: list[Path] = []
    real_build = datadocs.build_index

    def counted(context: Any, site: str, place: datadocs.DocsPlace) -> None:
        builds.append(place.docs_dir)
        real_build(context, site, place)

    monkeypatch.setattr(datadocs, "build_index", counted)
    return inbox, lake, builds


def test_a_pass_builds_its_data_docs_index_once_listing_every_batch(
    examples_pass: tuple[Path, Path, list[Path]],
) -> None:
    inbox, lake, builds = examples_pass
    result = _ingest(inbox, lake, max_files_per_batch=2)
    assert result["batches"] >= 3
    assert len(builds) == 1  # once for the pass, not once per batch
    assert len(docs_index_lists_every_kept_run(lake)) == result["batches"]
    # A pass with nothing new validates nothing and leaves the index as it is.
    assert _ingest(inbox, lake)["batches"] == 0
    assert len(builds) == 1


def test_a_pass_that_fails_midway_still_leaves_the_index_right(
    examples_pass: tuple[Path, Path, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cablestream.tasks.lake import writer

    inbox, lake, builds = examples_pass
    real_publish = writer.publish
    published: list[int] = []

    def fail_the_second_batch(lake_root: Path, staged: list[writer.StagedFile]) -> list[str]:
        published.append(len(staged))
        if len(published) == 2:
            raise OSError(28, "No space left on device")
        return real_publish(lake_root, staged)

    monkeypatch.setattr(writer, "publish", fail_the_second_batch)
    with pytest.raises(OSError, match="No space left"):
        _ingest(inbox, lake, max_files_per_batch=2)
    assert len(builds) == 1
    # The index lists every batch validated before the error (its pages are there).
    assert len(docs_index_lists_every_kept_run(lake)) >= 2
