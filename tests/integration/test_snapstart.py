"""Form capture on Lambda SnapStart: the hooks the runtime calls, the template, and the build that
makes a layer change publish a new version.

The hooks run in a fresh interpreter, as in Lambda (the registries are per process): on moto, the
before-snapshot hook builds the DynamoDB client without a single AWS call, the after-restore hook
seeds ``random`` afresh, and a post handled after them lands in the table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leadflow.dev.deploy import _aliases_as_functions
from leadflow.dev.template import load_template, transform

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

LIFECYCLE = textwrap.dedent(
    r"""
    import importlib.util, json, os, random, sys
    from moto import mock_aws

    with mock_aws():
        import boto3
        from botocore.client import BaseClient

        table = json.loads(os.environ["TEST_TABLE"])
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(TableName=os.environ["LEADS_TABLE"], BillingMode="PAY_PER_REQUEST", **table)
        calls = []
        boto3.DEFAULT_SESSION or boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))

        spec = importlib.util.spec_from_file_location("app", os.environ["TEST_APP"])
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        from snapshot_restore_py import get_after_restore, get_before_snapshot
        from leadflow.bootstrap.intake import capture_service

        # As the runtime runs them when it publishes the version: before-snapshot hooks last-registered first
        for hook, args, kwargs in reversed(get_before_snapshot()):
            hook(*args, **kwargs)
        store = capture_service().store
        primed = isinstance(store.client, BaseClient) and store._client is store.client
        calls_before_snapshot = list(calls)

        # Two environments restored from one snapshot: the same random state, until the hook runs
        snapshot_state = random.getstate()
        draws = []
        for _ in range(2):
            random.setstate(snapshot_state)
            for hook, args, kwargs in get_after_restore():
                hook(*args, **kwargs)
            draws.append(random.random())

        event = json.loads(open(os.environ["TEST_EVENT"]).read())
        answer = app.lambda_handler(event, type("Context", (), {
            "function_name": "FormCaptureFunction", "function_version": "1", "memory_limit_in_mb": 512,
            "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:FormCaptureFunction:live",
            "aws_request_id": "00000000-0000-4000-8000-000000000001",
        })())
        calls_after_restore = calls[len(calls_before_snapshot):]
        items = dynamodb.scan(TableName=os.environ["LEADS_TABLE"])["Items"]
        names = [[hook.__name__ for hook, _, _ in hooks] for hooks in (get_before_snapshot(), get_after_restore())]
        print("RESULT " + json.dumps({
            "hooks": names,
            "primed": primed,
            "calls_before_snapshot": calls_before_snapshot,
            "draws": draws,
            "status": answer["statusCode"],
            "calls_after_restore": calls_after_restore,
            "profiles": sum(1 for i in items if i["SK"]["S"] == "PROFILE"),
        }))
    """
)


def leads_table_schema() -> dict[str, object]:
    """The template's LeadsTable keys and indexes, as create_table takes them."""
    props = load_template(ROOT / "template.yaml")["Resources"]["LeadsTable"]["Properties"]
    return {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "GlobalSecondaryIndexes": [
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in props["GlobalSecondaryIndexes"]
        ],
    }


def test_the_snapstart_hooks_prime_the_client_without_calling_aws_and_reseed_random(tmp_path: Path):
    # GIVEN form capture's environment (moto's credentials, the demo workspace compiled as its layer ships it)
    from leadflow.config.compiled import compile_workspace

    compile_workspace(ROOT / "workspace", tmp_path / "workspace")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": f"{ROOT / 'layers' / 'leadflow'}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LEADS_TABLE": "leads-snapstart",
        "INTAKE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/intake",
        "EVENT_BUS_NAME": "leadflow",
        "LEADFLOW_WORKSPACE": str(tmp_path / "workspace"),
        "RATE_LIMIT_PER_MINUTE": "30",
        "TRACKING_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:tracking",
        "POWERTOOLS_SERVICE_NAME": "form_capture",
        "POWERTOOLS_METRICS_NAMESPACE": "leadflow",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "TEST_APP": str(ROOT / "functions" / "form_capture" / "app.py"),
        "TEST_EVENT": str(ROOT / "events" / "form_capture_post_json.json"),
        "TEST_TABLE": json.dumps(leads_table_schema()),
    }
    # WHEN the runtime's phases run in a fresh interpreter: init, the snapshot's hooks, two restores, a post
    done = subprocess.run(
        [sys.executable, "-c", LIFECYCLE], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    # THEN app.py registered one hook each way
    assert result["hooks"] == [["prime_capture_service"], ["reseed_random"]]
    # AND before the snapshot the store's client was built, and nothing was sent to AWS
    assert result["primed"] is True
    assert result["calls_before_snapshot"] == []
    # AND two environments restored from one random state draw different numbers
    assert result["draws"][0] != result["draws"][1]
    # AND the post after the restore used the primed client: one transaction, one new lead
    assert result["status"] == 200
    assert result["calls_after_restore"] == ["TransactWriteItems"]
    assert result["profiles"] == 1


def test_form_capture_runs_on_snapstart_behind_its_alias(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the SAM transform wants a region
    template = load_template(ROOT / "template.yaml")
    function = template["Resources"]["FormCaptureFunction"]
    # On unless the stack's FormCaptureSnapStart says Disabled (a month's snapshot cache is its cost)
    apply_on = function["Properties"]["SnapStart"]["ApplyOn"]
    assert apply_on == {"Fn::If": ["FormCaptureSnapStartOn", "PublishedVersions", "None"]}
    assert template["Conditions"]["FormCaptureSnapStartOn"] == {
        "Fn::Equals": [{"Ref": "FormCaptureSnapStart"}, "Enabled"]
    }
    assert template["Parameters"]["FormCaptureSnapStart"]["Default"] == "Enabled"
    assert function["Properties"]["AutoPublishAlias"] == "live"
    assert function["Metadata"]["BuildMethod"] == "makefile"
    # The transformed template: a version with SnapStart, the alias on it, the HTTP API's permissions on the alias
    transformed = transform(load_template(ROOT / "template.yaml"), ROOT)["Resources"]
    kinds = {k: r["Type"] for k, r in transformed.items() if k.startswith("FormCaptureFunction")}
    alias = next(k for k, kind in kinds.items() if kind == "AWS::Lambda::Alias")
    assert sum(kind == "AWS::Lambda::Version" for kind in kinds.values()) == 1
    permissions = [r for r in transformed.values() if r["Type"] == "AWS::Lambda::Permission"]
    on_alias = [p for p in permissions if p["Properties"]["FunctionName"] == {"Ref": alias}]
    assert on_alias, "the HTTP API must invoke the alias, whose version has the snapshot"
    # AND the local stack, whose moto has no aliases, runs the function itself for them
    local = _aliases_as_functions({"Resources": transformed})["Resources"]
    assert not [k for k, r in local.items() if r["Type"] in ("AWS::Lambda::Alias", "AWS::Lambda::Version")]
    assert all(
        p["Properties"]["FunctionName"] != {"Ref": alias}
        for p in local.values()
        if p["Type"] == "AWS::Lambda::Permission"
    )
    assert {"Ref": "FormCaptureFunction"} in [
        p["Properties"]["FunctionName"] for p in local.values() if p["Type"] == "AWS::Lambda::Permission"
    ]


def build(tmp_path: Path, root: Path, name: str) -> Path:
    """What ``sam build`` runs for FormCaptureFunction: the function's Makefile, from a copy of its folder."""
    scratch, artifacts = tmp_path / f"scratch-{name}", tmp_path / f"artifacts-{name}"
    shutil.copytree(root / "functions" / "form_capture", scratch, ignore=shutil.ignore_patterns("__pycache__"))
    artifacts.mkdir()
    done = subprocess.run(
        ["make", "--makefile", str(root / "functions" / "form_capture" / "Makefile"), "build-FormCaptureFunction"],
        cwd=scratch,
        env={
            **os.environ,
            "ARTIFACTS_DIR": str(artifacts),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return artifacts


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_change_to_a_layer_changes_form_captures_package(tmp_path: Path):
    # GIVEN a copy of the project's sources (functions, layers, workspace, infra)
    root = tmp_path / "project"
    for part in ("functions/form_capture", "layers/leadflow/leadflow", "workspace", "infra"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "layers" / "leadflow" / "requirements.txt", root / "layers" / "leadflow" / "requirements.txt")
    # WHEN the function is built, again unchanged, after a cache appears, and after one line of a layer changes
    first = build(tmp_path, root, "first")
    again = build(tmp_path, root, "again")
    (root / "layers" / "leadflow" / "leadflow" / "__pycache__").mkdir()
    (root / "layers" / "leadflow" / "leadflow" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    cached = build(tmp_path, root, "cached")
    with (root / "layers" / "leadflow" / "leadflow" / "domain" / "ids.py").open("a") as source:
        source.write("# changed\n")
    changed = build(tmp_path, root, "changed")
    workspace_form = next((root / "workspace" / "forms").glob("*.yaml"))
    workspace_form.write_text(workspace_form.read_text() + "\n# changed\n")
    workspace_changed = build(tmp_path, root, "workspace")

    # THEN the package is app.py and the fingerprint; the same sources give the same bytes, caches aside
    assert sorted(p.name for p in first.iterdir()) == ["app.py", "layers.sha256"]
    assert (first / "app.py").read_bytes() == (ROOT / "functions" / "form_capture" / "app.py").read_bytes()
    prints = [(d / "layers.sha256").read_text() for d in (first, again, cached, changed, workspace_changed)]
    assert prints[0] == prints[1] == prints[2]
    # AND a change to either layer's sources changes the package (so SAM publishes a new version)
    assert len({prints[0], prints[3], prints[4]}) == 3
