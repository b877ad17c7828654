"""A compiled workspace (the Lambda layer's workspace.json) reads back exactly as its YAML does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from leadflow.config.compiled import compile_workspace
from leadflow.config.workspace import COMPILED_FILE, Workspace
from leadflow.domain.errors import InvalidWorkspace
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit


def test_compiled_forms_and_referrers_equal_the_yaml_ones(tmp_path: Path):
    # GIVEN the demo workspace compiled, as the layer build does
    target = compile_workspace(WORKSPACE, tmp_path)
    assert target == tmp_path / COMPILED_FILE
    source, compiled = Workspace(WORKSPACE), Workspace(tmp_path)
    # THEN every form and share code is the same object, read without YAML
    assert compiled.compiled and not source.compiled
    assert compiled.form_ids() == source.form_ids()
    assert compiled.forms() == source.forms()
    assert compiled.referrers == source.referrers
    assert compiled.tracking == source.tracking
    # AND what the nurture sequences act on is read from the compiled file, not from the sequences
    fresh = Workspace(tmp_path)
    assert fresh.nurture_listens == source.nurture_listens
    assert fresh._sequences is None  # the scoring function never loads them


def test_a_broken_workspace_does_not_compile(tmp_path: Path):
    (tmp_path / "src" / "forms").mkdir(parents=True)
    (tmp_path / "src" / "forms" / "x.yaml").write_text("id: x\nname: X\nthank_you_url: /t\nfields: []\n")
    with pytest.raises(InvalidWorkspace) as refused:
        compile_workspace(tmp_path / "src", tmp_path / "out")
    assert "x.yaml" in str(refused.value)
    assert not (tmp_path / "out" / COMPILED_FILE).exists()


def test_reading_a_compiled_workspace_imports_neither_pydantic_nor_yaml(tmp_path: Path):
    # GIVEN a compiled workspace, read in a fresh process as form capture does at cold start
    compile_workspace(WORKSPACE, tmp_path)
    script = (
        "import sys, json\n"
        "from leadflow.config.workspace import Workspace\n"
        f"w = Workspace({str(tmp_path)!r})\n"
        "w.form('demo-signup'); w.referrers\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml'))))\n"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    )
    assert loaded == []
