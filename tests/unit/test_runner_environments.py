"""The local stack's Lambda runner gives each concurrent invocation an execution environment of its own.

In Lambda an environment runs one invocation at a time. The local stack once ran concurrent
requests through one handler module, and a Powertools resolver's per-request state crossed
between them (``KeyError: '_route'`` from the validation middleware, seen in a CI run of the
push campaign). Two invocations that meet inside the handler must each see their own event.
"""

from __future__ import annotations

import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from leadflow.dev.runner import LambdaRunner, LocalFunction

pytestmark = pytest.mark.unit


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LambdaRunner:
    # GIVEN a handler that keeps its event in module state and waits for a second invocation
    (tmp_path / "meeting_point.py").write_text(
        "import threading\nBARRIER = threading.Barrier(2, timeout=10)\n", encoding="utf-8"
    )
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            import meeting_point

            current = None

            def lambda_handler(event, context):
                global current
                current = event["n"]
                meeting_point.BARRIER.wait()
                return {"n": current, "environment": id(globals())}
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "meeting_point", raising=False)
    runner = LambdaRunner({})
    runner.add(LocalFunction("KeeperFunction", "keeper", "arn:keeper", tmp_path, "app.lambda_handler", {}, 10, 128))
    return runner


def test_concurrent_invocations_run_in_environments_of_their_own(runner: LambdaRunner):
    # WHEN two invocations run at once
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda n: runner.invoke("KeeperFunction", {"n": n}), [1, 2]))
    # THEN each answered from its own event, in an environment of its own
    assert [r["n"] for r in results] == [1, 2]
    assert results[0]["environment"] != results[1]["environment"]
    # AND both environments are kept for later invocations, the first one still the one /_dev reads
    function = runner.functions["KeeperFunction"]
    assert len(function.idle) == 2
    assert runner.load(function) is function.module
    assert runner.invocations["KeeperFunction"] == 2


def test_one_invocation_at_a_time_reuses_the_warm_environment(runner: LambdaRunner):
    import meeting_point

    meeting_point.BARRIER = __import__("threading").Barrier(1)
    first = runner.invoke("KeeperFunction", {"n": 1})
    second = runner.invoke("KeeperFunction", {"n": 2})
    assert (first["n"], second["n"]) == (1, 2)
    assert first["environment"] == second["environment"]
    assert len(runner.functions["KeeperFunction"].idle) == 1
