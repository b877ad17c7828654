"""The code's shape, kept as issue 14 left it: modules a reader can hold, functions a screen long.

Every module of the ``leadflow`` package (the local stack included) and every handler stays within
~500 lines; a module that grows past it is split by what a reader looks for. Every function that
ships to Lambda keeps its body (docstring aside) within 60 lines. The dev tools' moto mends are
exempt from the function rule: each is one patch, read beside the moto code it mends.
Complexity has its own gate: ruff's McCabe check (``max-complexity = 12`` in pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

PACKAGE = ROOT / "layers" / "leadflow" / "leadflow"
FUNCTIONS = ROOT / "functions"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *FUNCTIONS.rglob("*.py")])


def _shipped(path: Path) -> bool:
    return PACKAGE / "dev" not in path.parents


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        body = body[1:]
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


# Parsed as the module is collected, before any test of this worker starts a local stack: CPython
# 3.11's parser keeps a recursion-depth count that another thread compiling at the same moment (a
# stack's pollers render templates) can upset, and ``ast.parse`` then raised "SystemError: AST
# constructor recursion depth mismatch" in a full run (make test, 2026-12-08), not in this file's.
SHIPPED_TREES = {path: ast.parse(path.read_text(encoding="utf-8")) for path in filter(_shipped, _modules())}


def test_the_modules_are_found():
    modules = _modules()
    assert len(modules) > 100
    assert PACKAGE / "domain" / "scoring.py" in modules


def test_no_module_is_over_500_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in _modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, "split these by what a reader looks for"


def test_no_shipped_function_is_over_60_lines():
    long = {}
    for path, tree in SHIPPED_TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = _body_lines(node)
    assert long == {}


def test_the_measure_counts_a_body_without_its_docstring():
    source = 'def f():\n    """Doc.\n\n    More."""\n    a = 1\n    return a\n'
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef)
    assert _body_lines(node) == 2
