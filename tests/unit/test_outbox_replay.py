"""Replaying the outbox relay's dead letters (issue 13, defect 5): the OutboxDLQ names stream
batches, never events; their records are read back from the stream and published again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leadflow.domain.events import OutboxEvent
from leadflow.ports.outbox import StreamRecordsGone
from leadflow.services.outbox import FailedStreamBatch, replay_outbox_dead_letters

pytestmark = pytest.mark.unit

# The shape of Lambda's on-failure record for a DynamoDB stream batch, as the AWS Lambda Developer
# Guide shows it ("Retaining discarded batches for a DynamoDB event source"; ids and times changed).
ON_FAILURE = {
    "requestContext": {
        "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
        "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:leadflow-OutboxRelayFunction",
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 51,
    },
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "version": "1.0",
    "timestamp": "2026-12-05T00:38:06.021Z",
    "DDBStreamBatchInfo": {
        "shardId": "shardId-00000001573689847184-864758bb",
        "startSequenceNumber": "800000000003126276362",
        "endSequenceNumber": "800000000003126276363",
        "approximateArrivalOfFirstRecord": "2026-12-05T00:38:04Z",
        "approximateArrivalOfLastRecord": "2026-12-05T00:38:04Z",
        "batchSize": 2,
        "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/leadflow-LeadsTable/stream/2026-12-01T00:00:00.000",
    },
}


def stream_record(sequence: str, event_id: str) -> dict[str, Any]:
    return {
        "eventID": sequence,
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "SequenceNumber": sequence,
            "Keys": {"PK": {"S": f"OUTBOX#{event_id}"}, "SK": {"S": "EVENT"}},
            "NewImage": {
                "PK": {"S": f"OUTBOX#{event_id}"},
                "SK": {"S": "EVENT"},
                "source": {"S": "leadflow.capture"},
                "detail_type": {"S": "lead.captured"},
                "detail": {"S": json.dumps({"lead_id": event_id})},
            },
        },
    }


class FakeDeadLetters:
    def __init__(self, bodies: list[str]) -> None:
        self.waiting = [(str(i), body) for i, body in enumerate(bodies)]
        self.deleted: list[str] = []
        self.kept: list[str] = []

    def receive(self) -> list[tuple[str, str]]:
        batch, self.waiting = self.waiting[:10], self.waiting[10:]
        return batch

    def delete(self, receipt: str) -> None:
        self.deleted.append(receipt)

    def keep(self, receipt: str) -> None:
        self.kept.append(receipt)


class FakeStream:
    def __init__(self, records: list[dict[str, Any]], trimmed: bool = False) -> None:
        self.records, self.trimmed = records, trimmed

    def read(self, stream_arn: str, shard_id: str, first: str, last: str) -> list[dict[str, Any]]:
        if self.trimmed:
            raise StreamRecordsGone(shard_id)
        return [r for r in self.records if int(first) <= int(r["dynamodb"]["SequenceNumber"]) <= int(last)]


class FakeBus:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.published: list[OutboxEvent] = []
        self.refuse = refuse or set()

    def publish(self, events: list[OutboxEvent]) -> list[str]:
        self.published.extend(e for e in events if e.event_id not in self.refuse)
        return [e.event_id for e in events if e.event_id in self.refuse]


RECORDS = [
    stream_record("800000000003126276361", "E0"),  # before the batch
    stream_record("800000000003126276362", "E1"),
    stream_record("800000000003126276363", "E2"),
    stream_record("800000000003126276364", "E3"),  # after it
]


def test_the_failure_record_names_the_batch_not_its_events():
    batch = FailedStreamBatch.from_message(json.dumps(ON_FAILURE))
    assert batch == FailedStreamBatch(
        ON_FAILURE["DDBStreamBatchInfo"]["streamArn"],
        "shardId-00000001573689847184-864758bb",
        "800000000003126276362",
        "800000000003126276363",
    )
    assert FailedStreamBatch.from_message('{"not": "a failure record"}') is None
    assert FailedStreamBatch.from_message("not json") is None


def test_a_failed_batch_is_read_back_and_published_then_deleted():
    # GIVEN one failure record in the DLQ and the stream still holding its records
    dead, bus = FakeDeadLetters([json.dumps(ON_FAILURE)]), FakeBus()
    # WHEN it is replayed
    result = replay_outbox_dead_letters(dead, FakeStream(RECORDS), bus)
    # THEN exactly the batch's two events are on the bus and the message is gone
    assert [e.event_id for e in bus.published] == ["E1", "E2"]
    assert (result.batches, result.events, dead.deleted, dead.kept) == (1, 2, ["0"], [])


def test_what_cannot_be_replayed_stays_in_the_dlq_and_is_counted():
    # GIVEN a batch the bus refuses again, one older than the stream's 24 hours, and a stranger
    refused = FakeDeadLetters([json.dumps(ON_FAILURE)])
    expired = FakeDeadLetters([json.dumps(ON_FAILURE), "{}"])
    # WHEN each is replayed
    first = replay_outbox_dead_letters(refused, FakeStream(RECORDS), FakeBus(refuse={"E2"}))
    second = replay_outbox_dead_letters(expired, FakeStream(RECORDS, trimmed=True), FakeBus())
    # THEN nothing is deleted, and each reason is counted
    assert (first.refused, refused.deleted, refused.kept) == (1, [], ["0"])
    assert (second.expired, second.unreadable, expired.deleted, sorted(expired.kept)) == (1, 1, [], ["0", "1"])


# ---------------------------------------------------------------------------- activities that are their own event
def activity_record(sequence: str, **extra: dict[str, str]) -> dict[str, Any]:
    """The stream record of a tracked open as ``record_announced`` writes it (issue 17)."""
    image = {
        "PK": {"S": "LEAD#01KLEAD"},
        "SK": {"S": "ACT#2026-12-05T10:00:00+00:00#01KACT"},
        "activity_id": {"S": "01KACT"},
        "lead_id": {"S": "01KLEAD"},
        "type": {"S": "page_viewed"},
        "at": {"S": "2026-12-05T10:00:00+00:00"},
        "url": {"S": "https://www.example.com/pricing"},
        "seconds": {"N": "42"},
        "user_agent": {"S": "Mozilla/5.0"},
        **extra,
    }
    return {
        "eventID": sequence,
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"SequenceNumber": sequence, "Keys": {k: image[k] for k in ("PK", "SK")}, "NewImage": image},
    }


class Bus:
    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []

    def publish(self, events: list[OutboxEvent]) -> list[str]:
        self.events += events
        return []


def test_an_announced_activity_is_published_as_its_own_event_and_others_are_not():
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

    from leadflow.services.outbox import relay_outbox

    # GIVEN a stream batch: a site event stored as its own event, the same record again (a retried
    # batch), an activity written with an outbox item (no event_source), and an outbox item
    announced = activity_record("1", event_source={"S": "leadflow.tracking"})
    batch = [announced, announced, activity_record("2"), stream_record("3", "E3")]
    bus = Bus()
    # WHEN the relay runs on it
    result = relay_outbox(DynamoDBStreamEvent({"Records": batch}), bus)
    # THEN the announced activity is published as activity.recorded, its id the activity's (so the
    # repeat is the same event for every consumer), with the activity's fields and plain numbers
    assert result.failures == [] and result.published == 3
    first, again, outbox = bus.events[0], bus.events[1], bus.events[2]
    assert (first.event_id, first.source, first.detail_type) == ("01KACT", "leadflow.tracking", "activity.recorded")
    assert again.event_id == first.event_id
    detail = json.loads(first.detail)
    assert detail["lead_id"] == "01KLEAD" and detail["occurred_at"] == "2026-12-05T10:00:00+00:00"
    assert (detail["type"], detail["seconds"], detail["url"]) == ("page_viewed", 42, "https://www.example.com/pricing")
    assert "user_agent" not in detail and "event_source" not in detail
    # AND the activity without event_source is not published: its outbox item is its event
    assert outbox.event_id == "E3" and len(bus.events) == 3


# ---------------------------------------------------------------------------- ledger items that carry lead.scored
def ledger_record(sequence: str, scored: bool = True) -> dict[str, Any]:
    """The stream record of a scored download's ledger item as ``apply_score`` writes it (issue 17):
    three models' entries, and the ``lead.scored`` event they earned."""
    from leadflow.adapters.dynamo_json import serialize
    from leadflow.adapters.dynamo_scoring import compact_entries
    from leadflow.domain.events import lead_scored, scored_on_ledger

    entries = [
        {
            "entry_id": f"01KACT:{model}:download",
            "model": model,
            "rule_id": "download",
            "activity_id": "01KACT",
            "activity_type": "download",
            "at": "2026-12-05T10:00:00+00:00",
            "points": points,
            "reason": "Downloaded a guide",
        }
        for model, points in (("smb", 10), ("key_account", 15), ("customer", 5))
    ]
    event = lead_scored(
        "01KSCORED",
        "2026-12-05T10:00:01+00:00",
        "01KLEAD",
        "01KACT",
        entries,
        {"smb": 65.0, "key_account": 70.5, "customer": 15.0},
        "C",
        True,
    )
    item: dict[str, Any] = {
        "PK": "LEAD#01KLEAD",
        "SK": "LEDGER#2026-12-05T10:00:00+00:00#01KACT:customer:download",
        **compact_entries(entries),
    }
    image = serialize(item)
    if scored:
        image["scored"] = {"S": scored_on_ledger(event)}
    return {
        "eventID": sequence,
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"SequenceNumber": sequence, "Keys": {k: image[k] for k in ("PK", "SK")}, "NewImage": image},
    }


def test_a_scored_activitys_ledger_item_is_published_as_its_lead_scored_event():
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

    from leadflow.services.outbox import relay_outbox

    # GIVEN a stream batch: a ledger item carrying its lead.scored, the same record again (a retried
    # batch), and a ledger item a rescore wrote (no event carried)
    carried = ledger_record("1")
    batch = [carried, carried, ledger_record("2", scored=False)]
    bus = Bus()
    # WHEN the relay runs on it
    result = relay_outbox(DynamoDBStreamEvent({"Records": batch}), bus)
    # THEN the carried event is published twice with the id the scoring function gave it (one
    # event to every consumer), the rescore's item not at all
    assert result.failures == [] and result.published == 2
    assert [(e.event_id, e.source, e.detail_type) for e in bus.events] == [
        ("01KSCORED", "leadflow.scoring", "lead.scored")
    ] * 2
    # AND its detail is the event the scoring function built: the points and rules from the
    # entries, the scores, grade and nurture flag it carried, plain numbers
    assert json.loads(bus.events[0].detail) == {
        "schema_version": 1,
        "event_id": "01KSCORED",
        "occurred_at": "2026-12-05T10:00:01+00:00",
        "lead_id": "01KLEAD",
        "activity_id": "01KACT",
        "points_added": 30,
        "scores": {"smb": 65.0, "key_account": 70.5, "customer": 15.0},
        "grade": "C",
        "rules": ["download"],
        "nurture": True,
    }
