"""Segment membership items and counters on the LeadsTable (key design: docs/data-model.md).

A lead in a segment: ``LEAD#<id>`` / ``MEMBER#SEG#<segment>`` (GSI1 ``SEGMENT#<segment>`` ->
``<lead_id>``); the segment's count: ``SEGMENT#<segment>`` / ``COUNT`` (``n``, the rule's hash it
was counted under, when it was last recounted). A join is one transaction: the membership put
(condition: absent) and ``ADD n 1``; a leave the delete (condition: present) and ``ADD n -1``; so a
redelivered or concurrent event never counts twice. A tag's index item (``MEMBER#TAG#<tag>``) has
no counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from leadflow.adapters.audience import DynamoAudienceStore, member_item
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.segments import TAG, MembershipChanges

ACTIVITIES_READ = 100
"""The newest activities a segment rule with an activity condition sees."""


def counter_key(segment_id: str) -> dict[str, str]:
    return {"PK": f"SEGMENT#{segment_id}", "SK": "COUNT"}


def segment_move_items(table: str, lead_id: str, segment_id: str, join: bool, at: str) -> list[dict[str, Any]]:
    """The transaction of one lead joining (``join``) or leaving a segment: the membership item
    (conditional, so it happens once) and the counter's move. Also what an erasure runs for each
    segment the erased lead was in."""
    if join:
        member: dict[str, Any] = {
            "Put": {
                "TableName": table,
                "Item": serialize(member_item("SEG", segment_id, lead_id, at)),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
    else:
        member = {
            "Delete": {
                "TableName": table,
                "Key": serialize({"PK": f"LEAD#{lead_id}", "SK": f"MEMBER#SEG#{segment_id}"}),
                "ConditionExpression": "attribute_exists(PK)",
            }
        }
    counter = {
        "Update": {
            "TableName": table,
            "Key": serialize(counter_key(segment_id)),
            "UpdateExpression": "ADD #n :d SET #u = :at",
            "ExpressionAttributeNames": {"#n": "n", "#u": "updated_at"},
            "ExpressionAttributeValues": serialize({":d": 1 if join else -1, ":at": at}),
        }
    }
    return [member, counter]


class DynamoSegmentStore(DynamoAudienceStore):
    """Membership and counts of segments, on top of the audience store (member lists page through
    GSI1 with ``leads_page("segment", ...)``)."""

    def membership_state(
        self, lead_id: str, with_activities: bool
    ) -> tuple[dict[str, Any] | None, set[tuple[str, str]], list[dict[str, Any]]]:
        """The lead's profile (None: no such lead), its membership items as (kind, name), and
        (when asked) its newest activities. One Query for the first two (``MEMBER#`` sorts right
        before ``PROFILE``)."""
        items = self._all(
            "query",
            KeyConditionExpression="PK = :pk AND SK BETWEEN :a AND :b",
            ExpressionAttributeValues=serialize({":pk": f"LEAD#{lead_id}", ":a": "MEMBER#", ":b": "PROFILE"}),
            ConsistentRead=True,
        )
        profile = next((i for i in items if i["SK"] == "PROFILE"), None)
        members = set()
        for item in items:
            parts = str(item["SK"]).split("#", 2)
            if parts[0] == "MEMBER" and len(parts) == 3:
                members.add((parts[1], parts[2]))
        activities = (
            self._query_prefix(f"LEAD#{lead_id}", "ACT#", ACTIVITIES_READ, newest_first=True)
            if with_activities and profile is not None
            else []
        )
        return profile, members, activities

    def apply_membership(self, lead_id: str, changes: MembershipChanges, at: str) -> int:
        """Write the changes; returns how many segment moves took (a move another worker made
        first is skipped: its condition fails)."""
        moved = 0
        for segment_id, join in [(s, True) for s in changes.joined] + [(s, False) for s in changes.left]:
            reasons = self._transact(segment_move_items(self.table, lead_id, segment_id, join, at))
            if reasons is None:
                moved += 1
            elif not any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                raise StorageUnavailable(f"unexpected cancellation: {reasons}")
        for tag in changes.tags_added:
            self.client.put_item(TableName=self.table, Item=serialize(member_item(TAG, tag, lead_id, at)))
        for tag in changes.tags_removed:
            key = {"PK": f"LEAD#{lead_id}", "SK": f"MEMBER#{TAG}#{tag}"}
            self.client.delete_item(TableName=self.table, Key=serialize(key))
        return moved

    def counters(self, segment_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The counter items of these segments (a segment never counted has none)."""
        found = self.batch_get(counter_key(s) for s in segment_ids)
        return {str(item["PK"]).removeprefix("SEGMENT#"): item for item in found}

    def recount(self, segment_id: str, rule_hash: str, at: str) -> int:
        """Count the segment's membership items through GSI1 (``Select=COUNT``: the index's keys
        are read, nothing is returned) and set the counter to it, with the rule it was counted
        under."""
        total, kwargs = (
            0,
            {
                "IndexName": "GSI1",
                "Select": "COUNT",
                "KeyConditionExpression": "GSI1PK = :p",
                "ExpressionAttributeValues": serialize({":p": f"SEGMENT#{segment_id}"}),
            },
        )
        while True:
            response = self.client.query(TableName=self.table, **kwargs)
            total += int(response.get("Count", 0))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        item = {**counter_key(segment_id), "n": total, "definition": rule_hash, "counted_at": at, "updated_at": at}
        self.client.put_item(TableName=self.table, Item=serialize(item))
        return total

    def set_definition(self, segment_id: str, rule_hash: str) -> None:
        """Note the rule a counter is counted under (after a back-fill)."""
        self.client.update_item(
            TableName=self.table,
            Key=serialize(counter_key(segment_id)),
            UpdateExpression="SET #d = :d",
            ExpressionAttributeNames={"#d": "definition"},
            ExpressionAttributeValues=serialize({":d": rule_hash}),
        )

    def profiles(self, part: int, parts: int) -> Iterator[list[dict[str, Any]]]:
        """Every lead profile of one parallel Scan segment, a page at a time (a back-fill)."""
        kwargs: dict[str, Any] = {
            "Segment": part,
            "TotalSegments": parts,
            "FilterExpression": "SK = :p",
            "ExpressionAttributeValues": serialize({":p": "PROFILE"}),
        }
        while True:
            response = self.client.scan(TableName=self.table, **kwargs)
            yield [deserialize(i) for i in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
