"""Import rules of tasks/: each swap point is one folder.

Nothing in tasks/ imports flows/ (Prefect stays there); the inbox, the ledger
and the lake import nothing of tasks/ but their own folder (not each other, not
batch/ or quality/ above them), so replacing one touches one folder.
The parser's own purity check is tests/tasks/parse/test_layering.py; its
import reader is reused here.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

TASKS = Path(__file__).parents[2] / "tasks"
_PARSE_CHECK = Path(__file__).parent / "parse" / "test_layering.py"
_spec = importlib.util.spec_from_file_location("parse_layering", _PARSE_CHECK)
assert _spec is not None and _spec.loader is not None
_parse_layering = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_parse_layering)
imported_modules = _parse_layering.imported_modules

SWAP_POINTS = ("inbox", "ledger", "lake")
MODULES = sorted(TASKS.rglob("*.py"))


def _imports(module: Path) -> list[str]:
    names: list[str] = imported_modules(ast.parse(module.read_text(encoding="utf-8")))
    return [name for name in names if name.startswith("cablestream.")]


def _folder(module: Path) -> str:
    return module.relative_to(TASKS).parts[0]


def test_every_swap_point_is_a_folder() -> None:
    folders = {_folder(module) for module in MODULES}
    assert {"inbox", "ledger", "lake", "batch", "quality", "parse"} <= folders


@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(TASKS)))
def test_tasks_never_import_flows(module: Path) -> None:
    for name in _imports(module):
        assert not name.startswith("cablestream.flows"), f"{module.name} imports {name}"


@pytest.mark.parametrize(
    "module",
    [module for module in MODULES if _folder(module) in SWAP_POINTS],
    ids=lambda m: str(m.relative_to(TASKS)),
)
def test_inbox_ledger_and_lake_import_nothing_of_tasks_but_their_own_folder(module: Path) -> None:
    """Not each other, and not batch/ or quality/, which sit above them."""
    own = _folder(module)
    for name in _imports(module):
        parts = name.split(".")
        if parts[:2] == ["cablestream", "tasks"]:
            assert parts[2:3] == [own], f"tasks/{own}/{module.name} imports {name}"
