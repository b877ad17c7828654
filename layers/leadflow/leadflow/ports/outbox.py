"""The outbox (services/outbox): publishing events, reading back a stream's records, and the dead
letters a redrive works through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from leadflow.domain.events import OutboxEvent


class EventPublisher(Protocol):
    def publish(self, events: list[OutboxEvent]) -> list[str]:
        """Publish; return the ids of the events that were refused."""
        ...


class StreamRecordsGone(Exception):
    """The stream no longer holds the records (DynamoDB Streams keeps them 24 hours)."""


class StreamReader(Protocol):
    def read(self, stream_arn: str, shard_id: str, first: str, last: str) -> list[dict[str, Any]]:
        """The stream records of one shard from sequence number ``first`` to ``last``, in Lambda's
        event shape; raises StreamRecordsGone when they were trimmed."""
        ...


class DeadLetters(Protocol):
    def receive(self) -> list[tuple[str, str]]:
        """Up to ten (receipt, body) pairs; none when the queue is empty."""
        ...

    def delete(self, receipt: str) -> None: ...

    def keep(self, receipt: str) -> None:
        """Leave the message, hidden from this run."""
        ...
