"""The local stack's own machinery: queue and stream polling semantics, schedules on the local clock."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from leadflow.dev.pollers import SqsMapping, StreamMapping, matches
from leadflow.dev.runner import HandlerError

pytestmark = pytest.mark.integration


class ScriptedRunner:
    """Stands in for LambdaRunner: answers each batch with a scripted result."""

    def __init__(self, answer):
        self.answer = answer
        self.batches: list[list[dict]] = []

    def invoke(self, function, event):
        self.batches.append(event["Records"])
        return self.answer(event["Records"])


@mock_aws
def test_sqs_partial_failures_are_retried_then_dead_lettered(monkeypatch):
    monkeypatch.setattr("leadflow.dev.pollers.SQS_RETRY_DELAY_SECONDS", 0)
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="work",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for body in ("good-1", "poison", "good-2"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    # GIVEN a handler that always reports the poison message as failed
    runner = ScriptedRunner(
        lambda records: {
            "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records if r["body"] == "poison"]
        }
    )
    mapping = SqsMapping("uuid", "Fn", queue, arn, 10, report_failures=True)
    # WHEN the mapping polls until the queue is empty
    for _ in range(10):
        mapping.poll(sqs, runner)
    # THEN the good messages were delivered once, the poison one three times, then moved to the DLQ
    delivered = [r["body"] for batch in runner.batches for r in batch]
    assert delivered.count("good-1") == delivered.count("good-2") == 1
    assert delivered.count("poison") == 3
    assert runner.batches[0][0]["eventSource"] == "aws:sqs"
    assert runner.batches[0][0]["eventSourceARN"] == arn
    moved = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]


@mock_aws
def test_sqs_handler_error_fails_the_whole_batch(monkeypatch):
    monkeypatch.setattr("leadflow.dev.pollers.SQS_RETRY_DELAY_SECONDS", 0)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="work")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=queue, MessageBody="a")
    calls = []

    def crash(records):
        calls.append(records)
        if len(calls) == 1:
            raise HandlerError("Fn", RuntimeError("boom"))
        return {"batchItemFailures": []}

    mapping = SqsMapping("uuid", "Fn", queue, arn, 10, report_failures=True)
    mapping.poll(sqs, ScriptedRunner(crash))
    mapping.poll(sqs, ScriptedRunner(crash))
    assert len(calls) == 2  # retried after the crash, then deleted
    assert mapping.poll(sqs, ScriptedRunner(crash)) == 0


class FakeShard:
    def __init__(self, records):
        self.items = [type("Record", (), {"record": r})() for r in records]


class FakeTable:
    def __init__(self, records):
        self.stream_shard = FakeShard(records)


class FakeBackend:
    def __init__(self, records):
        self.table = FakeTable(records)

    def get_table(self, name):
        return self.table


def stream_record(seq: int, sk: str, event_name: str = "INSERT") -> dict:
    return {
        "eventID": str(seq),
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"SequenceNumber": str(seq), "Keys": {}, "NewImage": {"SK": {"S": sk}}},
    }


def test_stream_filters_retries_from_the_failure_then_gives_up(monkeypatch):
    records = [
        stream_record(1, "EVENT"),
        stream_record(2, "PROFILE"),
        stream_record(3, "EVENT"),
        stream_record(4, "EVENT"),
    ]
    backend = FakeBackend(records)
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"SK": {"S": ["EVENT"]}}}}
    # GIVEN a handler that fails record 3 twice and then succeeds
    failures = {"3": 2}

    def answer(batch):
        for record in batch:
            seq = record["dynamodb"]["SequenceNumber"]
            if failures.get(seq, 0) > 0:
                failures[seq] -= 1
                return {"batchItemFailures": [{"itemIdentifier": seq}]}
        return {"batchItemFailures": []}

    runner = ScriptedRunner(answer)
    mapping = StreamMapping("uuid", "Fn", "table", "arn:stream", 100, [pattern], True, 5, None)
    for _ in range(6):
        mapping.retry_after = 0
        mapping.poll(backend, None, runner)
    # THEN the filtered-out record never reached the handler, 1 was delivered once, 3 and 4 until they passed
    sequences = [[r["dynamodb"]["SequenceNumber"] for r in batch] for batch in runner.batches]
    assert sequences == [["1", "3", "4"], ["3", "4"], ["3", "4"]]
    assert mapping.position == 4


def test_stream_gives_up_to_the_on_failure_destination():
    sent = []

    class Sqs:
        def send_message(self, QueueUrl, MessageBody):
            sent.append(json.loads(MessageBody))

    backend = FakeBackend([stream_record(7, "EVENT")])
    mapping = StreamMapping("uuid", "Fn", "table", "arn:stream", 100, [], True, 2, "dlq-url")
    runner = ScriptedRunner(lambda batch: {"batchItemFailures": [{"itemIdentifier": "7"}]})
    for _ in range(5):
        mapping.retry_after = 0
        mapping.poll(backend, Sqs(), runner)
    assert len(runner.batches) == 3  # the first try and two retries
    assert sent[0]["DDBStreamBatchInfo"]["startSequenceNumber"] == "7"
    assert mapping.position == 1


def test_filter_patterns():
    assert matches({"a": ["x", "y"]}, {"a": "y", "b": 1})
    assert not matches({"a": ["x"]}, {"a": "z"})
    assert matches({"n": {"m": ["v"]}}, {"n": {"m": "v"}})
    assert not matches({"n": {"m": ["v"]}}, {"n": {}})


SCHEDULED_TEMPLATE = textwrap.dedent("""
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


def test_schedules_fire_on_the_local_clock(tmp_path: Path):
    from leadflow.dev.stack import LocalStack

    # GIVEN a template with a function on an hourly EventBridge Scheduler schedule
    marker = tmp_path / "fired.jsonl"
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(
        "import json, os\n"
        "def lambda_handler(event, context):\n"
        "    with open(os.environ['MARKER_FILE'], 'a') as f:\n"
        "        f.write(json.dumps(event) + '\\n')\n"
    )
    (tmp_path / "template.yaml").write_text(SCHEDULED_TEMPLATE.format(marker=marker))
    (tmp_path / "workspace" / "forms").mkdir(parents=True)
    stack = LocalStack(tmp_path, tmp_path / "workspace", stack_name="scheduled").start()
    try:
        # WHEN nothing is due, a tick fires nothing
        assert stack.tick()["fired_schedules"] == 0
        assert not marker.exists()
        # WHEN the local clock moves 2.5 hours on
        stack.clock.advance(2.5 * 3600)
        result = stack.tick()
        # THEN the schedule fired twice, with its input
        assert result["fired_schedules"] == 2
        assert [json.loads(line) for line in marker.read_text().splitlines()] == [{"job": "hourly"}] * 2
    finally:
        stack.stop()


STATE_MACHINE_TEMPLATE = textwrap.dedent("""
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


def test_step_functions_tasks_run_handlers_in_process(tmp_path: Path):
    import time

    from leadflow.dev.stack import LocalStack

    # GIVEN a state machine (DefinitionUri + DefinitionSubstitutions) whose task invokes a function
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def lambda_handler(event, context):\n    return {'n': event['n'] * 2}\n")
    (tmp_path / "machine.asl.json").write_text(json.dumps(MACHINE))
    (tmp_path / "template.yaml").write_text(STATE_MACHINE_TEMPLATE)
    (tmp_path / "workspace" / "forms").mkdir(parents=True)
    stack = LocalStack(tmp_path, tmp_path / "workspace", stack_name="machines").start()
    try:
        sfn = stack.client("stepfunctions")
        # WHEN it is started
        execution = sfn.start_execution(stateMachineArn=stack.physical["DoubleStateMachine"], input='{"n": 21}')
        deadline = time.monotonic() + 20
        while (status := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # THEN the placeholder was resolved and the handler ran here, once
        assert status["status"] == "SUCCEEDED", status
        assert json.loads(status["output"]) == {"n": 42}
        assert stack.runner.invocations["DoubleFunction"] == 1
    finally:
        stack.stop()
