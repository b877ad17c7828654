"""The composition root: nothing built at import, each builder cached, a missing setting named.

Each check runs in a fresh interpreter with an environment of its own, so the builders' caches
of this test process (the local stack's functions use them) are left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

NEEDS_NO_SETTING = {"not_found_pages"}

PROBE = """
import importlib, json, pkgutil, sys
from leadflow import bootstrap
from leadflow.settings import MissingSetting

parts = [importlib.import_module(f"leadflow.bootstrap.{m.name}") for m in pkgutil.iter_modules(bootstrap.__path__)]
loaded_at_import = sorted(m for m in sys.modules if m.startswith(("boto3", "botocore", "leadflow.adapters")))
builders = {n: getattr(p, n) for p in parts for n in dir(p) if hasattr(getattr(p, n), "cache_clear")}
answers = {}
for name in sorted(builders):
    try:
        builders[name]()
    except MissingSetting as error:
        answers[name] = str(error)
    else:
        answers[name] = "built"
print(json.dumps({"loaded_at_import": loaded_at_import, "answers": answers}))
"""

BUILD_ONCE = """
import json
from leadflow.bootstrap import intake

first, second = intake.outbox_publisher(), intake.outbox_publisher()
print(json.dumps({"same": first is second, "bus": first.bus_name}))
"""


def _run(code: str, env: dict[str, str]) -> dict[str, object]:
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(sys.path)}
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**base, **env}
    )
    return dict(json.loads(completed.stdout))


def test_nothing_is_built_at_import_and_every_builder_names_what_is_missing():
    # GIVEN a function environment with none of leadflow's variables
    # WHEN the composition root is imported and each cached builder runs
    probe = _run(PROBE, {})

    # THEN importing it loaded no AWS client library and no adapter
    assert probe["loaded_at_import"] == []
    # AND every builder failed with the settings' message, naming a variable, except those that
    # need no setting at all (the styled 404 pages: only the local base URL, which may be absent)
    answers = probe["answers"]
    assert isinstance(answers, dict)
    assert len(answers) >= 20
    assert {name for name, answer in answers.items() if answer == "built"} == NEEDS_NO_SETTING
    for name, answer in answers.items():
        assert name in NEEDS_NO_SETTING or "is not set" in answer, (name, answer)


def test_a_builder_builds_once():
    # GIVEN the outbox relay's setting
    # WHEN its publisher is asked for twice
    answer = _run(BUILD_ONCE, {"EVENT_BUS_NAME": "leadflow-bus", "AWS_DEFAULT_REGION": "us-east-1"})
    # THEN one publisher is built, for that bus
    assert answer == {"same": True, "bus": "leadflow-bus"}
