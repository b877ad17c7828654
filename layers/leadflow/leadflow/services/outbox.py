"""Relaying outbox items from the table's stream to the event bus."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

from leadflow.domain.events import SCORED_ATTRIBUTE, DomainEvent, OutboxEvent, activity_recorded, scored_from_ledger
from leadflow.ports.outbox import DeadLetters, EventPublisher, StreamReader, StreamRecordsGone


@dataclass(frozen=True)
class RelayResult:
    published: int
    failures: list[str]  # sequence numbers to report as batch item failures


def outbox_event_id(pk: str, sk: str) -> str | None:
    """The event id of an outbox item (``OUTBOX#<id>`` / ``EVENT``, or a lead's ``EVENT#<id>``), else None."""
    if sk == "EVENT" and pk.startswith("OUTBOX#"):
        return pk.removeprefix("OUTBOX#")
    if sk.startswith("EVENT#") and pk.startswith("LEAD#"):
        return sk.removeprefix("EVENT#")
    return None


def announced_activity(image: Mapping[str, Any]) -> OutboxEvent | None:
    """The ``activity.recorded`` event an activity item is (``LEAD#<id>`` / ``ACT#...`` with an
    ``event_source``: ``ActivityStore.record_announced``), else None. Its id is the activity's, so a
    record relayed twice is the same event."""
    pk, sk, source = str(image.get("PK", "")), str(image.get("SK", "")), image.get("event_source")
    if not (pk.startswith("LEAD#") and sk.startswith("ACT#") and source):
        return None
    activity = {k: _plain(v) for k, v in image.items() if k not in ("PK", "SK", "event_source")}
    at = datetime.fromisoformat(str(activity["at"]))
    return _outbox(activity_recorded(str(activity["activity_id"]), activity, at, str(source)))


def announced_score(image: Mapping[str, Any]) -> OutboxEvent | None:
    """The ``lead.scored`` event a scored activity's ledger item carries (``LEAD#<id>`` /
    ``LEDGER#...`` with ``scored``: ``domain.events.scored_on_ledger``), else None. Its id is the
    one the scoring function gave it, so a record relayed twice is the same event."""
    pk, sk, carried = str(image.get("PK", "")), str(image.get("SK", "")), image.get(SCORED_ATTRIBUTE)
    entries, activity_id = image.get("entries"), image.get("activity_id")
    if not (pk.startswith("LEAD#") and sk.startswith("LEDGER#") and carried and entries and activity_id):
        return None
    return _outbox(scored_from_ledger(pk.removeprefix("LEAD#"), str(activity_id), _plain(entries), str(carried)))


def _outbox(event: DomainEvent) -> OutboxEvent:
    return OutboxEvent(
        event.event_id, event.source, event.detail_type, json.dumps(event.envelope(), separators=(",", ":"))
    )


def _plain(value: Any) -> Any:
    """A stream image's value as JSON takes it (DynamoDB numbers arrive as ``Decimal``)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def _outbox_event(image: Mapping[str, Any]) -> OutboxEvent | None:
    event_id = outbox_event_id(str(image.get("PK", "")), str(image.get("SK", "")))
    if event_id is None:
        return announced_activity(image) or announced_score(image)
    return OutboxEvent(
        event_id=event_id,
        source=str(image["source"]),
        detail_type=str(image["detail_type"]),
        detail=str(image["detail"]),
    )


def relay_outbox(event: Any, publisher: EventPublisher) -> RelayResult:
    """Publish the outbox events of a DynamoDB stream batch, in order.

    Only INSERTs of outbox items count (the event source mapping filters the rest, this
    checks again): ``OUTBOX#<id>`` / ``EVENT``, a lead's ``LEAD#<id>`` / ``EVENT#<id>``, a
    lead's activity that is its own event (``announced_activity``) and a scored activity's ledger
    item, which carries its ``lead.scored`` (``announced_score``). When some are refused, the
    earliest refused record's sequence number is reported so the stream retries from there:
    later events may be published twice, and consumers de-duplicate on ``event_id``.
    """
    pending: list[tuple[str, OutboxEvent]] = []
    for record in event.records:
        image = record.dynamodb.new_image if record.dynamodb else None
        if record.event_name is None or record.event_name.name != "INSERT" or not image:
            continue
        outbox = _outbox_event(image)
        if outbox is None:
            continue
        pending.append((record.dynamodb.sequence_number, outbox))
    if not pending:
        return RelayResult(0, [])
    try:
        refused = set(publisher.publish([e for _, e in pending]))
    except Exception:  # noqa: BLE001 - any failure to reach the bus: retry the whole batch
        return RelayResult(0, [pending[0][0]])
    first_failure = next((seq for seq, e in pending if e.event_id in refused), None)
    return RelayResult(len(pending) - len(refused), [first_failure] if first_failure else [])


@dataclass(frozen=True)
class FailedStreamBatch:
    """What Lambda's on-failure destination records for a stream batch it gave up on: where the
    records are, never the records themselves (``DDBStreamBatchInfo``)."""

    stream_arn: str
    shard_id: str
    first: str
    last: str

    @classmethod
    def from_message(cls, body: str) -> FailedStreamBatch | None:
        try:
            info = json.loads(body)["DDBStreamBatchInfo"]
            return cls(
                str(info["streamArn"]),
                str(info["shardId"]),
                str(info["startSequenceNumber"]),
                str(info["endSequenceNumber"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


@dataclass
class OutboxReplay:
    batches: int = 0  # failed batches whose events are on the bus now
    events: int = 0  # events published
    expired: int = 0  # batches older than the stream's 24 hours: left in the DLQ
    refused: int = 0  # batches the bus refused again: left in the DLQ
    unreadable: int = 0  # messages that are not a stream batch's failure record: left


def replay_outbox_dead_letters(
    dead_letters: DeadLetters,
    reader: StreamReader,
    publisher: EventPublisher,
    step: Callable[[], None] | None = None,
) -> OutboxReplay:
    """Publish again the outbox events of every stream batch the relay gave up on.

    Each OutboxDLQ message names a shard and a range of sequence numbers; the records are read
    back from the table's stream and relayed as the function would have. A message is deleted
    only when every event of its batch is on the bus; consumers de-duplicate on ``event_id``,
    so events of the batch that did reach the bus before are harmless. Records older than the
    stream's retention (24 hours) cannot be read: those messages stay, counted as expired.
    """
    replay = OutboxReplay()
    while messages := dead_letters.receive():
        for receipt, body in messages:
            batch = FailedStreamBatch.from_message(body)
            if batch is None:
                replay.unreadable += 1
                dead_letters.keep(receipt)
                continue
            try:
                records = reader.read(batch.stream_arn, batch.shard_id, batch.first, batch.last)
            except StreamRecordsGone:
                replay.expired += 1
                dead_letters.keep(receipt)
                continue
            result = relay_outbox(DynamoDBStreamEvent({"Records": records}), publisher)
            if result.failures:
                replay.refused += 1
                dead_letters.keep(receipt)
                continue
            dead_letters.delete(receipt)
            replay.batches += 1
            replay.events += result.published
            if step:
                step()
    return replay
