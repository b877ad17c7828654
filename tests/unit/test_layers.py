"""Handlers are thin: they take services from the composition root, never an adapter or a setting.

The package's own layers are checked by import-linter (``lint-imports``, contracts in
pyproject.toml); the handlers in functions/ are no package, so this test reads their imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
FORBIDDEN = ("leadflow.adapters", "leadflow.settings")


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


# Parsed as the module is collected, before a test starts a stack whose threads compile code
# (test_structure.py says why).
HANDLERS = {path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(FUNCTIONS.glob("*/app.py"))}


@pytest.mark.parametrize("handler", sorted(HANDLERS), ids=lambda p: p.parent.name)
def test_a_handler_imports_no_adapter_and_no_setting(handler: Path):
    # GIVEN a function's handler module
    # WHEN its imports are read (top level and inside functions alike)
    imported = _imports(HANDLERS[handler])
    # THEN none is an adapter or the settings: bootstrap builds those (from the module of its area)
    assert not [m for m in imported if m.startswith(FORBIDDEN)]
    assert any(m.startswith("leadflow.bootstrap.") for m in imported)
