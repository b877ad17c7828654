"""What the README tells a newcomer holds: the welcome series' wait it names is the workspace's,
and ``make deploy`` without the SAM CLI says how to get it instead of failing with ``sam: not found``."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def test_the_try_it_wait_is_the_welcome_series_wait():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    said = re.search(
        r"A click ends the series' (\d+)-day wait .*?after (\d+) days: advance the clock by (\d+) seconds", readme, re.S
    )
    assert said is not None
    steps = yaml.safe_load((ROOT / "workspace" / "sequences" / "welcome.yaml").read_text(encoding="utf-8"))["steps"]
    wait = next(s for s in steps if s["id"] == "wait-for-click")
    assert int(said.group(1)) == int(said.group(2)) == wait["days"]
    assert int(said.group(3)) == wait["days"] * 86_400


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_deploy_without_the_sam_cli_says_how_to_get_it():
    bare = "/usr/bin:/bin"
    if shutil.which("sam", path=bare) or (ROOT / ".venv" / "bin" / "sam").exists():
        pytest.skip("the SAM CLI is installed here: make deploy would deploy")
    # STAMP= : no install step first (the recipe's own check is what is tested)
    done = subprocess.run(
        ["make", "--no-print-directory", "deploy", "STAMP="],
        cwd=ROOT,
        env={"PATH": bare, "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "make deploy needs the AWS SAM CLI" in done.stdout and "pipx install aws-sam-cli" in done.stdout
    assert "sam: not found" not in done.stdout + done.stderr
