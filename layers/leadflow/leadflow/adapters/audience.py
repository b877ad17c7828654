"""Leads changed by a person or an import, and lists of leads paged through an index (DynamoDB).

Key design (docs/data-model.md): a lead's tags and segments are also *membership items* in its
partition, ``LEAD#<id>`` / ``MEMBER#TAG#<tag>`` and ``MEMBER#SEG#<segment>``, keyed in the
overloaded ``GSI1`` as ``TAG#<tag>`` / ``SEGMENT#<segment>`` -> ``<lead_id>``: a list of the
members of a tag or segment is a Query of that index, page by page, never a scan. A segment's
member count is a counter item ``SEGMENT#<id>`` / ``COUNT`` moved in the same transaction as the
membership item (``adapters.segments``).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from leadflow.adapters.dynamo import DynamoLeadStore
from leadflow.adapters.dynamo_expressions import lead_key
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.domain.audience import LeadUpdate
from leadflow.domain.errors import AddressTaken, BadCursor, LeadNotFound, StorageUnavailable
from leadflow.domain.events import DomainEvent
from leadflow.ports.leads import ListIndex as Index

MONTHS_BACK = 24
"""How far back the list of newest leads looks (GSI2 is partitioned by month of creation)."""


def member_item(kind: Literal["TAG", "SEG"], name: str, lead_id: str, at: str) -> dict[str, Any]:
    """The membership item of a lead in a tag (``TAG``) or segment (``SEG``), keyed in GSI1."""
    index = "TAG" if kind == "TAG" else "SEGMENT"
    return {
        "PK": f"LEAD#{lead_id}",
        "SK": f"MEMBER#{kind}#{name}",
        "GSI1PK": f"{index}#{name}",
        "GSI1SK": lead_id,
        "lead_id": lead_id,
        "since": at,
    }


def encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, index: Index, partition: str) -> dict[str, Any]:
    """A cursor this store handed out for this list; anything else is ``BadCursor``."""
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor(cursor) from None
    if not isinstance(state, dict) or state.get("i") != index:
        raise BadCursor(cursor)
    key = state.get("k")
    if key is not None and (
        not isinstance(key, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in key.items())
    ):
        raise BadCursor(cursor)
    if index != "recent" and (key is None or key.get(_INDEXES[index][1]) != partition):
        raise BadCursor(cursor)
    if index == "recent" and not (isinstance(state.get("m"), str) and len(state["m"]) == 7):
        raise BadCursor(cursor)
    return state


_INDEXES: dict[str, tuple[str, str]] = {
    "stage": ("GSI3", "GSI3PK"),
    "tag": ("GSI1", "GSI1PK"),
    "segment": ("GSI1", "GSI1PK"),
    "recent": ("GSI2", "GSI2PK"),
}
_PARTITIONS = {"stage": "STAGE#{}", "tag": "TAG#{}", "segment": "SEGMENT#{}"}


class DynamoAudienceStore(DynamoLeadStore):
    """The lead store, with the writes of the admin API and imports, and paged lists of leads."""

    # ------------------------------------------------------------------ writes
    def update_lead(self, update: LeadUpdate) -> None:
        """Apply a PATCH: profile values set and removed, the address's guard moved, the activity
        and its events, in one transaction.

        Raises:
            LeadNotFound: no such lead (or it changed address meanwhile: read it again).
            AddressTaken: the new address is another lead's.
            StorageUnavailable: throttled or down.
        """
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets = []
        for i, (name, value) in enumerate(update.sets.items()):
            names[f"#s{i}"], values[f":s{i}"] = name, value
            sets.append(f"#s{i} = :s{i}")
        removes = []
        for i, name in enumerate(update.removes):
            names[f"#r{i}"] = name
            removes.append(f"#r{i}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        roles = ["lead"]
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize(lead_key(update.lead_id)),
                    "UpdateExpression": expression,
                    "ConditionExpression": "attribute_exists(PK)",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": serialize(values),
                }
            }
        ]
        if update.email_key is not None and update.email_key[0] != update.email_key[1]:
            old, new = update.email_key
            at = update.activity["at"]
            guard = {"PK": f"EMAIL#{new}", "SK": "EMAIL", "lead_id": update.lead_id, "created_at": at}
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": serialize(guard),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
            items.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": serialize({"PK": f"EMAIL#{old}", "SK": "EMAIL"}),
                        "ConditionExpression": "lead_id = :id",
                        "ExpressionAttributeValues": serialize({":id": update.lead_id}),
                    }
                }
            )
            roles += ["new_guard", "old_guard"]
        items += self._activity_items(update.activity, update.events)
        reasons = self._transact(items)
        if reasons is None:
            return
        failed = {roles[i] for i, r in enumerate(reasons[: len(roles)]) if r.get("Code") == "ConditionalCheckFailed"}
        if "new_guard" in failed:
            raise AddressTaken(update.lead_id)
        if failed:
            raise LeadNotFound(update.lead_id)
        raise StorageUnavailable(f"unexpected cancellation: {reasons}")

    def change_tag(
        self, lead_id: str, tag: str, add: bool, activity: dict[str, Any], events: list[DomainEvent]
    ) -> bool:
        """Add (``add``) or remove a tag: the profile's ``tags``, the membership item, the activity
        and its events, in one transaction.

        Returns:
            False when nothing changed (the lead had the tag already, or did not have it).

        Raises:
            LeadNotFound: no such lead.
        """
        at = activity["at"]
        if add:
            change = "ADD #t :t SET #u = :u"
            condition = "attribute_exists(PK) AND (attribute_not_exists(#t) OR NOT contains(#t, :tag))"
            member: dict[str, Any] = {
                "Put": {"TableName": self.table, "Item": serialize(member_item("TAG", tag, lead_id, at))}
            }
        else:
            change = "DELETE #t :t SET #u = :u"
            condition = "attribute_exists(PK) AND contains(#t, :tag)"
            key = {"PK": f"LEAD#{lead_id}", "SK": f"MEMBER#TAG#{tag}"}
            member = {"Delete": {"TableName": self.table, "Key": serialize(key)}}
        items = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize(lead_key(lead_id)),
                    "UpdateExpression": change,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#t": "tags", "#u": "updated_at"},
                    "ExpressionAttributeValues": serialize({":t": {tag}, ":tag": tag, ":u": at}),
                }
            },
            member,
            *self._activity_items(activity, events),
        ]
        reasons = self._transact(items)
        if reasons is None:
            return True
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            if self.get_lead(lead_id) is None:
                raise LeadNotFound(lead_id)
            return False
        raise StorageUnavailable(f"unexpected cancellation: {reasons}")

    def _activity_items(self, activity: dict[str, Any], events: list[DomainEvent]) -> list[dict[str, Any]]:
        pk = f"LEAD#{activity['lead_id']}"
        put = {"PK": pk, "SK": f"ACT#{activity['at']}#{activity['activity_id']}", **activity}
        return [
            {"Put": {"TableName": self.table, "Item": serialize(put)}},
            *({"Put": {"TableName": self.table, "Item": serialize(self._outbox_item(e))}} for e in events),
        ]

    # ------------------------------------------------------------------ paged lists
    def leads_page(
        self, index: Index, value: str, limit: int, cursor: str | None, now: datetime
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of lead profiles of a stage, tag or segment (in lead id order), or of the newest
        leads (``recent``, newest first), and the cursor of the next page (None: the last).

        Raises:
            BadCursor: a cursor this list did not hand out.
        """
        if index == "recent":
            ids, after = self._recent_ids(limit, cursor, now)
        else:
            ids, after = self._index_ids(index, value, limit, cursor)
        found = {p["lead_id"]: p for p in self.batch_get(lead_key(i) for i in ids) if "lead_id" in p}
        return [found[i] for i in ids if i in found], after

    def _index_ids(self, index: Index, value: str, limit: int, cursor: str | None) -> tuple[list[str], str | None]:
        name, hash_key = _INDEXES[index]
        partition = _PARTITIONS[index].format(value)
        kwargs: dict[str, Any] = {
            "IndexName": name,
            "Limit": limit,
            "KeyConditionExpression": f"{hash_key} = :p",
            "ExpressionAttributeValues": serialize({":p": partition}),
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = serialize(decode_cursor(cursor, index, partition)["k"])
        response = self.client.query(TableName=self.table, **kwargs)
        ids = [deserialize(i)["PK"].removeprefix("LEAD#") for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return ids, encode_cursor({"i": index, "k": deserialize(last)}) if last else None

    def _recent_ids(self, limit: int, cursor: str | None, now: datetime) -> tuple[list[str], str | None]:
        state: dict[str, Any] = decode_cursor(cursor, "recent", "") if cursor else {"m": f"{now:%Y-%m}", "k": None}
        month = datetime.strptime(str(state["m"]), "%Y-%m").replace(tzinfo=UTC)
        start: dict[str, Any] | None = state.get("k")
        ids: list[str] = []
        for _ in range(MONTHS_BACK):
            kwargs: dict[str, Any] = {
                "IndexName": "GSI2",
                "Limit": limit - len(ids),
                "ScanIndexForward": False,
                "KeyConditionExpression": "GSI2PK = :p",
                "ExpressionAttributeValues": serialize({":p": f"LEADS#{month:%Y-%m}"}),
            }
            if start:
                kwargs["ExclusiveStartKey"] = serialize(start)
            response = self.client.query(TableName=self.table, **kwargs)
            ids += [deserialize(i)["PK"].removeprefix("LEAD#") for i in response.get("Items", [])]
            last = response.get("LastEvaluatedKey")
            if len(ids) >= limit:
                if last:
                    return ids, encode_cursor({"i": "recent", "m": f"{month:%Y-%m}", "k": deserialize(last)})
                return ids, self._next_month(month)
            start = None
            month = (month - timedelta(days=1)).replace(day=1)
        return ids, None

    @staticmethod
    def _next_month(month: datetime) -> str:
        earlier = (month - timedelta(days=1)).replace(day=1)
        return encode_cursor({"i": "recent", "m": f"{earlier:%Y-%m}", "k": None})
