"""The nurture store's table: what its parts share (the client, the shards, conditional writes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leadflow.adapters.dynamo import DynamoLeadStore
from leadflow.adapters.dynamo_json import serialize
from leadflow.adapters.nurture.items import DEFAULT_SHARDS
from leadflow.domain.events import DomainEvent


class NurtureTable(DynamoLeadStore):
    """The lead table as the nurture functions use it (``DynamoNurtureStore`` puts its parts together)."""

    def __init__(self, table_name: str, client: Any = None, shards: int = DEFAULT_SHARDS) -> None:
        super().__init__(table_name, client)
        self.shards = shards
        self.scan_page_limit: int | None = None
        """Items a broadcast's Scan reads per page (DynamoDB's 1 MB when None)."""

    def put_events(self, events: Sequence[DomainEvent]) -> None:
        """Events into the outbox, which the table's stream relays to the bus (what the bus refused)."""
        self._put_new([], events)

    def _put_new(self, items: list[dict[str, Any]], events: Sequence[DomainEvent] = ()) -> bool:
        """Write items that must not exist yet (and events), together; False if one exists."""
        writes = [
            {"Put": {"TableName": self.table, "Item": serialize(i), "ConditionExpression": "attribute_not_exists(PK)"}}
            for i in items
        ]
        writes += [{"Put": {"TableName": self.table, "Item": serialize(self._outbox_item(e))}} for e in events]
        return self._write_all(writes)
