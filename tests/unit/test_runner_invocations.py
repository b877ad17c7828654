"""The local stack's Lambda runner: concurrent invocations of one function.

In Lambda an execution environment runs one invocation at a time. The local stack runs each
function's handler module once, in one process, so a handler that keeps the invocation's state
on a module-level object (a Powertools resolver or batch processor) must not serve two
invocations at once: two requests crossing one resolver's state failed a CI run of the push
campaign with ``KeyError: '_route'`` in LeadApiFunction. Handlers without such state stay
concurrent, so races between invocations (one email posted 200 times at once) stay testable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from leadflow.dev.runner import LambdaRunner, LocalFunction

pytestmark = pytest.mark.unit

HANDLER = """
import threading
import time
{state}

lock = threading.Lock()
active = 0
most = 0

def lambda_handler(event, context):
    global active, most
    with lock:
        active += 1
        most = max(most, active)
    time.sleep(0.2)
    with lock:
        active -= 1
    if event.get("again"):
        return {{"inner": INNER(event)}}
    return {{"n": event["n"], "most": most}}
"""

BATCH_STATE = (
    "from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType\n"
    "processor = BatchProcessor(event_type=EventType.SQS)"
)
RESOLVER_STATE = (
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\napp = APIGatewayHttpResolver()"
)


def runner_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str) -> LambdaRunner:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(textwrap.dedent(HANDLER.format(state=state)), encoding="utf-8")
    runner = LambdaRunner({})
    runner.add(LocalFunction("KeeperFunction", "keeper", "arn:keeper", code, "app.lambda_handler", {}, 10, 128))
    # A handler that invokes its own function again, in the same thread (moto's Invoke API would)
    module = runner.load(runner.functions["KeeperFunction"])
    module.INNER = lambda event: runner.invoke("KeeperFunction", {"n": event["n"] + 100})
    return runner


def run_together(runner: LambdaRunner, count: int) -> list[dict]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda n: runner.invoke("KeeperFunction", {"n": n}), range(count)))


@pytest.mark.parametrize("state", [BATCH_STATE, RESOLVER_STATE], ids=["batch processor", "resolver"])
def test_a_handler_keeping_invocation_state_runs_one_invocation_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str
):
    # GIVEN a handler module with a Powertools object that keeps the current invocation's state
    runner = runner_for(tmp_path, monkeypatch, state)
    assert runner.functions["KeeperFunction"].serial
    # WHEN four invocations arrive at once
    results = run_together(runner, 4)
    # THEN each answered its own event, and never two ran at once
    assert sorted(r["n"] for r in results) == [0, 1, 2, 3]
    assert max(r["most"] for r in results) == 1
    assert runner.invocations["KeeperFunction"] == 4


def test_a_handler_without_invocation_state_stays_concurrent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    runner = runner_for(tmp_path, monkeypatch, "")
    assert not runner.functions["KeeperFunction"].serial
    results = run_together(runner, 4)
    assert sorted(r["n"] for r in results) == [0, 1, 2, 3]
    assert max(r["most"] for r in results) > 1


def test_a_serial_function_may_invoke_itself_in_the_same_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # GIVEN a serial function whose handler invokes the same function synchronously
    runner = runner_for(tmp_path, monkeypatch, BATCH_STATE)
    # WHEN it runs, THEN the inner invocation is not stuck behind the outer one
    done: list[dict] = []
    worker = threading.Thread(target=lambda: done.append(runner.invoke("KeeperFunction", {"n": 1, "again": True})))
    worker.start()
    worker.join(timeout=5)
    assert done == [{"inner": {"n": 101, "most": 1}}]


PROBE = """
import importlib.util, json, sys
from pathlib import Path
from leadflow.dev.runner import keeps_invocation_state

found = {}
for name in ("lead_api", "scoring", "form_capture"):
    spec = importlib.util.spec_from_file_location(f"probe_{name}", Path(sys.argv[1]) / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found[name] = keeps_invocation_state(module)
print(json.dumps(found))
"""


def test_the_shipped_functions_that_keep_invocation_state_are_found():
    # The admin API's resolver and every SQS batch handler keep state; form capture keeps none.
    # Loaded in a fresh interpreter: a second copy of the admin API's module in this process would
    # tie the shared transport routers to its resolver, and the local stack's LeadApiFunction (the
    # session's, in this process) would then answer every routed request with a KeyError.
    root = Path(__file__).resolve().parents[2] / "functions"
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(root)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert json.loads(completed.stdout) == {"lead_api": True, "scoring": True, "form_capture": False}


IMPORT_PROBE = """
import os

SEEN_KEYS = sorted(os.environ)
SEEN_SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME")

def lambda_handler(event, context):
    return {}
"""


def test_loading_a_function_adds_or_removes_no_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # A variable added to or removed from the environment while another thread walks it raises in
    # that thread, and botocore walks it whenever it makes a client: a first request to a handler
    # answered 500 in CI when another function's module was loaded at that moment.
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(IMPORT_PROBE, encoding="utf-8")
    # GIVEN the local stack's runner, with one function naming its service and one not
    runner = LambdaRunner({})
    keys = sorted(os.environ)
    named = {"POWERTOOLS_SERVICE_NAME": "form_capture"}
    runner.add(LocalFunction("NamedFunction", "named", "arn:named", code, "app.lambda_handler", named, 10, 128))
    runner.add(LocalFunction("PlainFunction", "plain", "arn:plain", code, "app.lambda_handler", {}, 10, 128))
    # WHEN each module is loaded
    modules = [runner.load(runner.functions[name]) for name in ("NamedFunction", "PlainFunction")]
    # THEN each imported with its own service name, as in Lambda (unset: Powertools' own default)
    assert [m.SEEN_SERVICE for m in modules] == ["form_capture", "service_undefined"]
    # and no load added or removed a variable, while importing or after
    assert [m.SEEN_KEYS for m in modules] == [keys, keys]
    assert sorted(os.environ) == keys
    assert os.environ["POWERTOOLS_SERVICE_NAME"] == "service_undefined"
