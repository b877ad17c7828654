"""The product as a user starts it: `leadflow dev` in its own process, driven over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, StackClient

READY_WITHIN_SECONDS = 15


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    def __init__(self, process: subprocess.Popen[str], url: str, started_in: float, output: list[str]) -> None:
        self.process = process
        self.url = url
        self.started_in = started_in
        self.output = output

    def printed(self, text: str, within: float = 10) -> bool:
        """Whether the process prints ``text`` within ``within`` seconds (lines after the ready line
        are read by a thread of their own: one printed just after it may not be read yet)."""
        deadline = time.monotonic() + within
        while text not in "".join(self.output):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def start_dev(*options: str, ready_within: float = 60) -> DevServer:
    """``leadflow dev`` on a free port in its own process, once it has printed its ready line."""
    port = free_port()
    leadflow = Path(sys.executable).parent / "leadflow"
    started = time.monotonic()
    process = subprocess.Popen(
        [str(leadflow), "dev", "--port", str(port), *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.startswith("leadflow dev ready: "):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(ready_within):
        process.kill()
        pytest.fail("leadflow dev did not print its ready line:\n" + "".join(output[-40:]))
    return DevServer(process, f"http://127.0.0.1:{port}", time.monotonic() - started, output)


def run_leadflow(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The ``leadflow`` command, as a user runs it from the project folder (its output captured)."""
    leadflow = Path(sys.executable).parent / "leadflow"
    return subprocess.run(
        [str(leadflow), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def stop_dev(server: DevServer) -> None:
    """Ctrl-C, as a user stops it (killed if it does not stop within 15 s)."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
    # Shown only when a test fails (pytest keeps a passing test's output to itself): what the stack
    # printed, an error's stack trace with it.
    print(f"--- leadflow dev on {server.url} printed:\n" + "".join(server.output[-80:]))


@pytest.fixture(scope="session")
def dev_server() -> Iterator[DevServer]:
    server = start_dev("--verbose")
    yield server
    stop_dev(server)


@pytest.fixture(scope="session")
def dev(dev_server: DevServer) -> StackClient:
    return StackClient(dev_server.url)


def api_csv(dev: StackClient, path: str, **params: str) -> str:
    """A report as the API answers it to ``Accept: text/csv``."""
    answer = dev.http.get(
        f"{dev.url}/api/v1{path}",
        params=params,
        headers={"Authorization": f"Bearer {dev.token}", "Accept": "text/csv"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv"), answer.text
    return answer.text
