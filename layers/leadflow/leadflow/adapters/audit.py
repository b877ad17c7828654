"""The audit log of changes people and machines make through the console and the admin API.

One item per change, ``PK = AUDIT#CHANGES``, ``SK = <at>#<id>`` (newest last), read newest first.
Changes by people are a few a minute at most, so one partition holds them well within its limits.
"""

from __future__ import annotations

from typing import Any, ClassVar

from leadflow.adapters.aws import LazyClient
from leadflow.adapters.dynamo_json import deserialize, serialize

AUDIT_PK = "AUDIT#CHANGES"


class DynamoAuditLog(LazyClient):
    SERVICE: ClassVar[str] = "dynamodb"

    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self._client = client

    def record(self, entry: dict[str, Any]) -> None:
        item = {"PK": AUDIT_PK, "SK": f"{entry['at']}#{entry['id']}", **entry}
        self.client.put_item(TableName=self.table, Item=serialize(item))

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        answer = self.client.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": AUDIT_PK}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [
            {k: v for k, v in deserialize(item).items() if k not in ("PK", "SK")} for item in answer.get("Items", [])
        ]
