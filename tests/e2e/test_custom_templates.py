"""`leadflow dev` on other templates: schedules on the local clock, Step Functions tasks in-process.

Each runs its own `leadflow dev` process (moto keeps its state per process), from a project
folder holding only a template, a function and a workspace.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "workspace" / "forms").mkdir(parents=True)
    (tmp_path / "fn").mkdir()
    return tmp_path


def run_dev(folder: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "leadflow.dev.cli", "dev", "--port", str(port)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        assert line == f"leadflow dev ready: http://127.0.0.1:{port}\n", line
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


SCHEDULED = textwrap.dedent("""
    AWSTemplateFormatVersion: "2010-09-09"
    Transform: AWS::Serverless-2016-10-31
    Resources:
      HourlyFunction:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          CodeUri: fn/
          Handler: app.lambda_handler
          Environment:
            Variables:
              MARKER_FILE: "{marker}"
          Events:
            Hourly:
              Type: ScheduleV2
              Properties:
                ScheduleExpression: rate(1 hour)
                Input: '{{"job": "hourly"}}'
""")


def test_schedules_fire_on_the_local_clock(project: Path):
    # GIVEN a template with a function on an hourly EventBridge Scheduler schedule
    marker = project / "fired.jsonl"
    (project / "fn" / "app.py").write_text(
        "import json, os\n"
        "def lambda_handler(event, context):\n"
        "    with open(os.environ['MARKER_FILE'], 'a') as f:\n"
        "        f.write(json.dumps(event) + '\\n')\n"
    )
    (project / "template.yaml").write_text(SCHEDULED.format(marker=marker))
    for url in run_dev(project):
        # WHEN nothing is due, a tick fires nothing
        assert requests.post(f"{url}/_dev/tick", timeout=60).json()["fired_schedules"] == 0
        assert not marker.exists()
        # WHEN the local clock moves 2.5 hours on
        requests.post(f"{url}/_dev/clock", json={"advance_seconds": 2.5 * 3600}, timeout=10)
        result = requests.post(f"{url}/_dev/tick", timeout=60).json()
        # THEN the schedule fired twice (on its own or in the tick), with its input
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (not marker.exists() or len(marker.read_text().splitlines()) < 2):
            time.sleep(0.1)
        assert result["fired_schedules"] <= 2
        assert [json.loads(line) for line in marker.read_text().splitlines()] == [{"job": "hourly"}] * 2


MACHINE_TEMPLATE = textwrap.dedent("""
    AWSTemplateFormatVersion: "2010-09-09"
    Transform: AWS::Serverless-2016-10-31
    Resources:
      DoubleFunction:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          CodeUri: fn/
          Handler: app.lambda_handler
      DoubleStateMachine:
        Type: AWS::Serverless::StateMachine
        Properties:
          DefinitionUri: machine.asl.json
          DefinitionSubstitutions:
            DoubleFunctionArn: !GetAtt DoubleFunction.Arn
          Policies:
            - LambdaInvokePolicy:
                FunctionName: !Ref DoubleFunction
    Outputs:
      MachineArn:
        Value: !Ref DoubleStateMachine
""")
MACHINE = {
    "StartAt": "Double",
    "States": {
        "Double": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${DoubleFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        }
    },
}


def test_step_functions_tasks_run_handlers_in_process(project: Path):
    # GIVEN a state machine (DefinitionUri + DefinitionSubstitutions) whose task invokes a function
    (project / "fn" / "app.py").write_text("def lambda_handler(event, context):\n    return {'n': event['n'] * 2}\n")
    (project / "machine.asl.json").write_text(json.dumps(MACHINE))
    (project / "template.yaml").write_text(MACHINE_TEMPLATE)
    for url in run_dev(project):
        info = requests.get(f"{url}/_dev/stack", timeout=10).json()
        sfn = boto3.client(
            "stepfunctions",
            endpoint_url=info["aws_endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        # WHEN it is started through the AWS API
        execution = sfn.start_execution(stateMachineArn=info["outputs"]["MachineArn"], input='{"n": 21}')
        deadline = time.monotonic() + 20
        while (status := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # THEN the placeholder was resolved and the handler ran
        assert status["status"] == "SUCCEEDED", status
        assert json.loads(status["output"]) == {"n": 42}
