"""The local stack's own machinery: queue and stream polling semantics, schedules on the local clock."""

from __future__ import annotations

import json
import uuid

import pytest

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


def queue_name(role: str) -> str:
    return f"mechanics-{role}-{uuid.uuid4().hex[:8]}"


def test_sqs_partial_failures_are_retried_then_dead_lettered(local_stack, monkeypatch):
    monkeypatch.setattr("leadflow.dev.pollers.SQS_RETRY_DELAY_SECONDS", 0)
    sqs = local_stack.client("sqs")
    dlq = sqs.create_queue(QueueName=queue_name("dlq"))["QueueUrl"]
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


def test_sqs_handler_error_fails_the_whole_batch(local_stack, monkeypatch):
    monkeypatch.setattr("leadflow.dev.pollers.SQS_RETRY_DELAY_SECONDS", 0)
    sqs = local_stack.client("sqs")
    queue = sqs.create_queue(QueueName=queue_name("work"))["QueueUrl"]
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
    id = "shardId-00000001541626099285-f35f62ef"

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
    info = sent[0]["DDBStreamBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"]) == (FakeShard.id, "7", "7")
    assert "records" not in sent[0]  # as in AWS: where the batch is, never its records
    assert mapping.position == 1


def test_filter_patterns():
    assert matches({"a": ["x", "y"]}, {"a": "y", "b": 1})
    assert not matches({"a": ["x"]}, {"a": "z"})
    assert matches({"n": {"m": ["v"]}}, {"n": {"m": "v"}})
    assert not matches({"n": {"m": ["v"]}}, {"n": {}})
