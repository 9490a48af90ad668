"""The lake's data root and its control folder: where every path goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cablestream.schemas import lake as layout
from cablestream.tasks.lake.writer import move_legacy_control

BATCH = "20261125T100450Z-3f9a1c2b"
SHA = "a" * 64


def test_the_control_folder_sits_beside_the_lake(tmp_path: Path) -> None:
    lake = tmp_path / "data" / "lake"
    control = tmp_path / "data" / "lake.cablestream"
    assert layout.control_root(lake) == control
    assert layout.ledger_path(lake) == control / "state" / "ledger.sqlite"
    assert layout.staging_dir(lake, BATCH) == control / "staging" / BATCH
    assert layout.quarantine_dir(lake, "reasons") == control / "quarantine" / "reasons"
    assert layout.report_path(lake) == control / "quality" / "report.html"


def test_a_relative_lake_and_a_trailing_slash_name_the_same_control_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert layout.control_root(Path("lake/")) == tmp_path / "lake.cablestream"
    assert layout.control_root(Path(".")) == tmp_path.parent / f"{tmp_path.name}.cablestream"


def test_the_env_var_moves_the_control_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(layout.CONTROL_ENV, str(tmp_path / "elsewhere"))
    assert (
        layout.ledger_path(tmp_path / "lake") == tmp_path / "elsewhere" / "state" / "ledger.sqlite"
    )


def test_outputs_go_to_their_root_and_never_leave_it(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    control = layout.control_root(lake)
    assert layout.output_path(lake, "year=2008/month=5/part-x-0.parquet") == (
        lake / "year=2008" / "month=5" / "part-x-0.parquet"
    )
    copy = layout.quarantine_copy_relative(SHA)
    assert layout.output_path(lake, copy) == control / "quarantine" / "files" / f"{SHA}.src"
    # Ledgers of the first layout recorded `_quarantine/...`.
    assert layout.output_path(lake, "_quarantine/reasons/part-x.parquet") == (
        control / "quarantine" / "reasons" / "part-x.parquet"
    )
    for escaping in ("../x.parquet", "quarantine/../../x", "/etc/passwd"):
        with pytest.raises(layout.UnsafePathError):
            layout.output_path(lake, escaping)


def test_a_lake_of_the_first_layout_moves_its_control_folders_out(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (lake / "_state").mkdir(parents=True)
    (lake / "_state" / "ledger.sqlite").write_bytes(b"ledger")
    (lake / "_quarantine" / "reasons").mkdir(parents=True)
    (lake / "year=2008" / "month=5").mkdir(parents=True)
    assert move_legacy_control(lake) == ["_state", "_quarantine"]
    assert layout.ledger_path(lake).read_bytes() == b"ledger"
    assert layout.quarantine_dir(lake, "reasons").is_dir()
    assert sorted(p.name for p in lake.iterdir()) == ["year=2008"]
    assert move_legacy_control(lake) == []


def test_a_legacy_folder_is_never_merged_into_an_existing_one(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (lake / "_state").mkdir(parents=True)
    layout.ledger_path(lake).parent.mkdir(parents=True)
    with pytest.raises(FileExistsError, match="merge them by hand"):
        move_legacy_control(lake)
    assert (lake / "_state").is_dir()
