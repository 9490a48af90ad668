"""The parser stays pure: it imports only the standard library's text tools,
`regex` and `cablestream.schemas`, never an orchestrator, a validator, Arrow or I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PARSE_PACKAGE = Path(__file__).parents[3] / "tasks" / "parse"
FORBIDDEN_ROOTS = {
    "prefect",
    "great_expectations",
    "pyarrow",
    "pandas",
    "polars",
    "duckdb",
    "os",
    "pathlib",
    "shutil",
    "tempfile",
    "sqlite3",
    "subprocess",
    "socket",
    "urllib",
    "http",
    "fsspec",
    "glob",
}
ALLOWED_PROJECT_PREFIXES = ("cablestream.schemas", "cablestream.tasks.parse")


def imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def calls_open(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
        for node in ast.walk(tree)
    )


MODULES = sorted(PARSE_PACKAGE.rglob("*.py"))


def test_the_parse_package_is_where_it_is_expected() -> None:
    assert {"decode.py", "split.py", "normalize.py", "source.py"} <= {m.name for m in MODULES}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(PARSE_PACKAGE)))
def test_parser_module_is_pure(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    for name in imported_modules(tree):
        assert name.split(".")[0] not in FORBIDDEN_ROOTS, f"{module.name} imports {name}"
        if name.startswith("cablestream."):
            assert name.startswith(ALLOWED_PROJECT_PREFIXES), f"{module.name} imports {name}"
    assert not calls_open(tree), f"{module.name} opens files"
