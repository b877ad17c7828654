"""The suppression list on the LeadsTable for the console: ``SUPPRESS#<address key>`` items, listed
newest first through GSI2 (``GSI2PK = SUPPRESSED``, ``GSI2SK = <listed at>#<address key>``; keys
only, so a page is one ``Query`` and one ``BatchGetItem``). Key design: docs/data-model.md."""

from __future__ import annotations

from typing import Any

from leadflow.adapters.dynamo_expressions import SUPPRESSED_PK, SUPPRESSION_INDEX
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.nurture import DynamoNurtureStore


class DynamoSuppressionList(DynamoNurtureStore):
    """The nurture store's suppression reads and writes, plus pages of the list and lifting an entry."""

    def suppression_page(self, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": SUPPRESSION_INDEX,
            "KeyConditionExpression": "GSI2PK = :p",
            "ExpressionAttributeValues": serialize({":p": SUPPRESSED_PK}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after:  # the cursor is the last entry's GSI2SK, "<listed at>#<key>": the item's key follows from it
            key = after.rsplit("#", 1)[-1]
            start = {"PK": f"SUPPRESS#{key}", "SK": "SUPPRESS", "GSI2PK": SUPPRESSED_PK, "GSI2SK": after}
            kwargs["ExclusiveStartKey"] = serialize(start)
        answer = self.client.query(**kwargs)
        listed = [deserialize(item) for item in answer.get("Items", [])]
        items = {item["PK"]: item for item in self.batch_get({"PK": i["PK"], "SK": "SUPPRESS"} for i in listed)}
        entries = []
        for index_item in listed:
            item = items.get(index_item["PK"], {})
            entries.append(
                {
                    "key": str(index_item["PK"]).removeprefix("SUPPRESS#"),
                    "reason": item.get("reason"),
                    "at": item.get("at"),
                    "listed_at": str(index_item["GSI2SK"]).rsplit("#", 1)[0],
                }
            )
        last = answer.get("LastEvaluatedKey")
        return entries, (deserialize(last)["GSI2SK"] if last else None)

    def lift(self, address_key: str) -> dict[str, Any] | None:
        answer = self.client.delete_item(
            TableName=self.table,
            Key=serialize({"PK": f"SUPPRESS#{address_key}", "SK": "SUPPRESS"}),
            ReturnValues="ALL_OLD",
        )
        old = answer.get("Attributes")
        if not old:
            return None
        item = deserialize(old)
        return {"key": address_key, "reason": item.get("reason"), "at": item.get("at")}
