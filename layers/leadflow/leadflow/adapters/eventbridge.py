"""Publishing outbox events on the leadflow EventBridge bus."""

from __future__ import annotations

from typing import Any

from leadflow.adapters.aws import LazyClient
from leadflow.domain.events import OutboxEvent

MAX_ENTRIES_PER_CALL = 10


class EventBridgePublisher(LazyClient):
    SERVICE = "events"

    def __init__(self, bus_name: str, client: Any = None) -> None:
        self.bus_name = bus_name
        self._client = client

    def publish(self, events: list[OutboxEvent]) -> list[str]:
        """Put events on the bus, ten per call; return the ids of those EventBridge refused."""
        failed: list[str] = []
        for start in range(0, len(events), MAX_ENTRIES_PER_CALL):
            chunk = events[start : start + MAX_ENTRIES_PER_CALL]
            response = self.client.put_events(
                Entries=[
                    {"EventBusName": self.bus_name, "Source": e.source, "DetailType": e.detail_type, "Detail": e.detail}
                    for e in chunk
                ]
            )
            if response.get("FailedEntryCount"):
                failed.extend(e.event_id for e, r in zip(chunk, response["Entries"], strict=True) if r.get("ErrorCode"))
        return failed
