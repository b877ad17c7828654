"""Ctrl-C stops `leadflow dev` within seconds, whatever it is doing (issue 13, defect 13).

It used to wait for every handler still running on a worker thread: with a hand-off waiting
on a slow CRM (a destination may take 30 s), Ctrl-C seemed to do nothing.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, WORKSPACE, unique_email
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

STOPS_WITHIN_SECONDS = 5


def start(workspace: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "leadflow.dev.cli", "dev", "--port", str(port), "--workspace", str(workspace)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt(process: subprocess.Popen[str]) -> tuple[int, float, str]:
    """SIGINT; the exit code, the seconds it took and what it wrote to stderr."""
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        pytest.fail("leadflow dev was still running 30 s after Ctrl-C")
    assert process.stderr is not None
    return code, time.monotonic() - began, process.stderr.read()


def test_ctrl_c_stops_within_seconds_while_a_crm_delivery_is_in_flight(tmp_path: Path):
    # GIVEN leadflow dev whose CRM destination may take 30 s, and a fake CRM that takes 30 s
    workspace = tmp_path / "workspace"
    shutil.copytree(WORKSPACE, workspace)
    handoff = workspace / "handoff.yaml"
    handoff.write_text(handoff.read_text().replace("timeout_seconds: 5", "timeout_seconds: 30"))
    port = free_port()
    process = start(workspace, port)
    assert process.stdout is not None
    assert process.stdout.readline().startswith("leadflow dev ready:")
    url = f"http://127.0.0.1:{port}"
    token = requests.get(f"{url}/_dev/stack", timeout=10).json()["admin_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.post(f"{url}/_dev/crm/mode", json={"status": 200, "delay_seconds": 30}, timeout=10).ok
    email = unique_email("ctrl-c")
    assert requests.post(f"{url}/forms/demo-signup", json={"email": email}, timeout=10).status_code < 300
    lead_id = requests.get(f"{url}/api/v1/leads", params={"email": email}, headers=auth, timeout=10).json()["leads"][0][
        "lead_id"
    ]
    assert requests.post(f"{url}/api/v1/leads/{lead_id}/handoff", json={}, headers=auth, timeout=10).status_code < 300
    # ... and the delivery is under way (the hand-off's destination is being sent)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        handoffs = requests.get(f"{url}/api/v1/leads/{lead_id}/handoffs", headers=auth, timeout=10).json()
        if "sending" in str(handoffs):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the delivery never started: {handoffs}")

    # WHEN the user presses Ctrl-C
    code, took, stderr = interrupt(process)

    # THEN it stops within seconds, cleanly
    assert took < STOPS_WITHIN_SECONDS, f"took {took:.1f} s"
    assert code == 0
    assert "Traceback" not in stderr


def test_ctrl_c_while_starting_stops_within_seconds(tmp_path: Path):
    # GIVEN leadflow dev half-way through starting (moto up, the template being deployed)
    process = start(WORKSPACE, free_port())
    time.sleep(2.5)
    assert process.poll() is None

    # WHEN the user presses Ctrl-C
    code, took, stderr = interrupt(process)

    # THEN it stops within seconds, without a traceback
    assert took < STOPS_WITHIN_SECONDS, f"took {took:.1f} s"
    assert code in (0, 130)
    assert "Traceback" not in stderr
