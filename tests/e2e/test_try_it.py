"""The README's "Try it" runs as written: every command, in order, in one shell, with the output shown.

The commands are read from the README itself (its ``console`` blocks under "## Try it": a line
``$ command``, continued while it ends with a backslash or a quote is open, then the output to
expect, where ``...`` stands for anything, as in doctest). Two things differ from a reader's
terminal, and only these: the stack listens on a free port instead of 8000 (``make dev`` is the
test's own ``leadflow dev`` process), and its clock is first moved to mid-morning in Germany, so
that the quiet hours of the lead's timezone never hold an email whatever the hour the suite runs.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.conftest import ROOT
from tests.e2e.conftest import DevServer, start_dev, stop_dev

pytestmark = pytest.mark.e2e
MARK = "@@leadflow-try-it@@"


def try_it_blocks(readme: str) -> list[list[tuple[str, str]]]:
    """The README's Try-it section as blocks of (command, expected output)."""
    section = readme.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for block in re.findall(r"```console\n(.*?)```", section, flags=re.DOTALL):
        pairs: list[tuple[str, str]] = []
        command: list[str] | None = None
        for line in block.splitlines():
            if command is not None and _continues(command):
                command.append(line)
                continue
            if line.startswith("$ "):
                if command is not None:
                    pairs.append(("\n".join(command), ""))
                command = [line[2:]]
                continue
            assert pairs or command is not None, f"output before any command: {line!r}"
            if command is not None:
                pairs.append(("\n".join(command), ""))
                command = None
            last, expected = pairs[-1]
            pairs[-1] = (last, expected + line + "\n")
        if command is not None:
            pairs.append(("\n".join(command), ""))
        blocks.append(pairs)
    return blocks


def _continues(lines: list[str]) -> bool:
    text = "\n".join(lines)
    if text.endswith("\\"):
        return True
    try:
        shlex.split(text)
    except ValueError:  # a quote still open
        return True
    return False


def run_in_one_shell(commands: list[str], port: int) -> list[str]:
    """Each command's output (stdout and stderr), run in order in one bash, from the project."""
    script = ["set -u"]
    for index, command in enumerate(commands):
        local = command.replace("localhost:8000", f"localhost:{port}").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        script += [f"echo '{MARK} {index}'", local]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not done.stderr.strip(), done.stderr
    parts = re.split(rf"^{MARK} \d+\n", done.stdout, flags=re.MULTILINE)
    return parts[1:]


def to_mid_morning_in_germany(url: str) -> None:
    now = datetime.fromisoformat(requests.get(f"{url}/_dev/clock", timeout=10).json()["now"])
    berlin = now.astimezone(ZoneInfo("Europe/Berlin"))
    if 9 <= berlin.hour < 17:
        return
    target = berlin.replace(hour=10, minute=0, second=0, microsecond=0)
    if target <= berlin:
        target += timedelta(days=1)
    seconds = (target - berlin).total_seconds()
    requests.post(f"{url}/_dev/clock", json={"advance_seconds": seconds}, timeout=10).raise_for_status()


@pytest.fixture
def fresh_stack() -> Iterator[DevServer]:
    server = start_dev()
    try:
        yield server
    finally:
        stop_dev(server)


def test_the_readme_try_it_runs_as_written(fresh_stack: DevServer):
    blocks = try_it_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    # The first block is `make dev` and its ready line: the stack this test started
    (start,) = blocks[0]
    assert start[0] == "make dev"
    port = int(fresh_stack.url.rsplit(":", 1)[1])
    ready = [line for line in fresh_stack.output if line.startswith("leadflow dev ready: ")]
    assert ready == [start[1].replace(":8000", f":{port}")]
    to_mid_morning_in_germany(fresh_stack.url)
    pairs = [pair for block in blocks[1:] for pair in block]
    assert len(pairs) >= 15, "the walk-through lost its commands"
    outputs = run_in_one_shell([command for command, _ in pairs], port)
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for (command, expected), got in zip(pairs, outputs, strict=True):
        want = expected.replace(":8000", f":{port}")
        assert checker.check_output(want, got, flags), f"$ {command}\nexpected:\n{want}\ngot:\n{got}"
