"""Relaying outbox items from the table's stream to the event bus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from leadflow.domain.events import OutboxEvent


class EventPublisher(Protocol):
    def publish(self, events: list[OutboxEvent]) -> list[str]:
        """Publish; return the ids of the events that were refused."""
        ...


@dataclass(frozen=True)
class RelayResult:
    published: int
    failures: list[str]  # sequence numbers to report as batch item failures


def relay_outbox(event: Any, publisher: EventPublisher) -> RelayResult:
    """Publish the outbox events of a DynamoDB stream batch, in order.

    Only INSERTs of outbox items count (the event source mapping filters the rest, this
    checks again). When some are refused, the earliest refused record's sequence number is
    reported so the stream retries from there: later events may be published twice, and
    consumers de-duplicate on ``event_id``.
    """
    pending: list[tuple[str, OutboxEvent]] = []
    for record in event.records:
        image = record.dynamodb.new_image if record.dynamodb else None
        if record.event_name is None or record.event_name.name != "INSERT" or not image:
            continue
        if not str(image.get("PK", "")).startswith("OUTBOX#") or image.get("SK") != "EVENT":
            continue
        outbox = OutboxEvent(
            event_id=str(image["PK"]).removeprefix("OUTBOX#"),
            source=str(image["source"]),
            detail_type=str(image["detail_type"]),
            detail=str(image["detail"]),
        )
        pending.append((record.dynamodb.sequence_number, outbox))
    if not pending:
        return RelayResult(0, [])
    try:
        refused = set(publisher.publish([e for _, e in pending]))
    except Exception:  # noqa: BLE001 - any failure to reach the bus: retry the whole batch
        return RelayResult(0, [pending[0][0]])
    first_failure = next((seq for seq, e in pending if e.event_id in refused), None)
    return RelayResult(len(pending) - len(refused), [first_failure] if first_failure else [])
