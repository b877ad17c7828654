"""Hand-off records, round-robin counters, owner load and CRM references on the LeadsTable.

Key design in docs/data-model.md. Every write of a record is conditional on its ``rev``, so
two writers (delivery of two destinations at once, the SLA sweep, CRM feedback) never lose
each other's changes: the loser reloads and applies its change again.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.aws import LazyClient
from leadflow.adapters.dynamo import DynamoLeadStore
from leadflow.adapters.dynamo_expressions import lead_key, stage_fields
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.domain.events import DomainEvent

SLA_PARTITION = "HANDOFF#SLA"


def handoff_key(lead_id: str, handoff_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": f"HANDOFF#{handoff_id}"}


def sla_sort_key(due: datetime, lead_id: str, handoff_id: str) -> str:
    return f"{due.isoformat()}#{lead_id}#{handoff_id}"


class DynamoHandoffStore(DynamoLeadStore):
    """``HandoffStore`` on the LeadsTable (it reads profiles, activities and consent like the lead store)."""

    # ------------------------------------------------------------------ records
    def get_handoff(self, lead_id: str, handoff_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table, Key=serialize(handoff_key(lead_id, handoff_id)), ConsistentRead=True
        )
        return _record(deserialize(response["Item"])) if "Item" in response else None

    def lead_handoffs(self, lead_id: str) -> list[dict[str, Any]]:
        """The lead's hand-offs, newest first."""
        return [_record(i) for i in self._query_prefix(f"LEAD#{lead_id}", "HANDOFF#", None, newest_first=True)]

    def create_handoff(
        self, record: dict[str, Any], previous: str | None, sla_due: datetime | None, events: list[DomainEvent]
    ) -> bool:
        """Store a new hand-off and point the profile at it, unless another hand-off got there first.

        Returns:
            False when the profile's ``handoff_id`` is no longer ``previous`` (or the lead is gone).
        """
        lead_id, handoff_id = record["lead_id"], record["handoff_id"]
        condition = "attribute_exists(PK) AND " + (
            "attribute_not_exists(handoff_id)" if previous is None else "handoff_id = :prev"
        )
        values: dict[str, Any] = {":h": handoff_id}
        if previous is not None:
            values[":prev"] = previous
        expression = "SET handoff_id = :h"
        if record.get("owner"):
            values[":o"] = record["owner"]["id"]
            expression += ", owner_id = :o"
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": serialize(self._item(record, sla_due))}},
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize(lead_key(lead_id)),
                    "UpdateExpression": expression,
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": serialize(values),
                }
            },
            *({"Put": {"TableName": self.table, "Item": serialize(self._outbox_item(e))}} for e in events),
        ]
        return self._transact(items) is None

    def save_handoff(
        self,
        record: dict[str, Any],
        sla_due: datetime | None,
        events: list[DomainEvent] | None = None,
        stage: str | None = None,
    ) -> bool:
        """Write a changed record (its ``rev`` one up), its events and the lead's new ``stage``, atomically.

        Returns:
            False when the stored ``rev`` is not the one the record was read at (reload, retry).
        """
        expected = int(record["rev"])
        stored = {**record, "rev": expected + 1}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": serialize(self._item(stored, sla_due)),
                    "ConditionExpression": "#rev = :rev",
                    "ExpressionAttributeNames": {"#rev": "rev"},
                    "ExpressionAttributeValues": serialize({":rev": expected}),
                }
            },
            *({"Put": {"TableName": self.table, "Item": serialize(self._outbox_item(e))}} for e in events or []),
        ]
        if stage is not None:
            names: dict[str, str] = {}
            values: dict[str, Any] = {}
            expression = "SET " + stage_fields(record["lead_id"], stage, names, values)
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": serialize(lead_key(record["lead_id"])),
                        "UpdateExpression": expression,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": serialize(values),
                    }
                }
            )
        written = self._write_all(items)  # the record alone (a lease, an attempt's outcome): one put
        if written:
            record["rev"] = expected + 1
        return written

    def _item(self, record: dict[str, Any], sla_due: datetime | None) -> dict[str, Any]:
        item = {**handoff_key(record["lead_id"], record["handoff_id"]), **record}
        item.pop("payload", None)
        if record.get("payload") is not None:
            item["payload"] = json.dumps(record["payload"], separators=(",", ":"))
        if sla_due is not None:  # sparse: only hand-offs the SLA still watches are in the index
            item["GSI3PK"] = SLA_PARTITION
            item["GSI3SK"] = sla_sort_key(sla_due, record["lead_id"], record["handoff_id"])
        return item

    def sla_due(self, now: datetime, limit: int = 500) -> list[tuple[str, str]]:
        """(lead_id, handoff_id) of hand-offs whose SLA is due by ``now``, oldest first."""
        response = self.client.query(
            TableName=self.table,
            IndexName="GSI3",
            KeyConditionExpression="GSI3PK = :p AND GSI3SK <= :now",
            ExpressionAttributeValues=serialize({":p": SLA_PARTITION, ":now": f"{now.isoformat()}#~"}),
            Limit=limit,
        )
        keys = [deserialize(i) for i in response.get("Items", [])]
        return [(k["PK"].removeprefix("LEAD#"), k["SK"].removeprefix("HANDOFF#")) for k in keys]

    def waiting_handoffs(self, limit: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """(next SLA step's time, record) of the hand-offs the SLA still watches (an acceptance,
        escalation or recycle still to come), soonest first: their keys from the sparse GSI3, then
        the records."""
        keys = self._index_keys("GSI3", SLA_PARTITION, limit, newest_first=False)
        due = {(k["PK"], k["SK"]): str(k["GSI3SK"]).split("#", 1)[0] for k in keys}
        found = [(due[(i["PK"], i["SK"])], _record(i)) for i in self.batch_get({"PK": k[0], "SK": k[1]} for k in due)]
        return sorted(found, key=lambda pair: pair[0])

    # ------------------------------------------------------------------ assignment
    def next_ticket(self, team: str) -> int:
        """The team's next round-robin ticket: one atomic counter, so concurrent assignments never share one."""
        response = self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"RR#{team}", "SK": "RR"}),
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues=serialize({":one": 1}),
            ReturnValues="UPDATED_NEW",
        )
        return int(deserialize(response["Attributes"])["n"])

    def reserve_owner(self, owner_id: str, capacity: int) -> bool:
        """Count one more open hand-off for an owner, if under capacity (conditional, so never over it)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=serialize({"PK": f"OWNER#{owner_id}", "SK": "LOAD"}),
                UpdateExpression="ADD open_handoffs :one",
                ConditionExpression="attribute_not_exists(open_handoffs) OR open_handoffs < :cap",
                ExpressionAttributeValues=serialize({":one": 1, ":cap": capacity}),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_owner(self, owner_id: str) -> None:
        """One open hand-off fewer (closed or recycled); never below zero."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=serialize({"PK": f"OWNER#{owner_id}", "SK": "LOAD"}),
                UpdateExpression="ADD open_handoffs :minus",
                ConditionExpression="open_handoffs > :zero",
                ExpressionAttributeValues=serialize({":minus": -1, ":zero": 0}),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def owner_loads(self, owner_ids: list[str]) -> dict[str, int]:
        loads = {}
        for owner_id in owner_ids:
            response = self.client.get_item(
                TableName=self.table, Key=serialize({"PK": f"OWNER#{owner_id}", "SK": "LOAD"})
            )
            loads[owner_id] = int(deserialize(response.get("Item", {})).get("open_handoffs", 0))
        return loads

    # ------------------------------------------------------------------ destinations
    def disabled_destinations(self) -> dict[str, dict[str, Any]]:
        """Destinations switched off at run time (a 410 answer), name -> when and why."""
        items = self._query_prefix("HANDOFFDEST", "DISABLED#", None, newest_first=False)
        return {i["SK"].removeprefix("DISABLED#"): {"at": i.get("at"), "reason": i.get("reason")} for i in items}

    def disable_destination(self, name: str, at: datetime, reason: str) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=serialize({"PK": "HANDOFFDEST", "SK": f"DISABLED#{name}", "at": at.isoformat(), "reason": reason}),
        )

    def enable_destination(self, name: str) -> None:
        self.client.delete_item(TableName=self.table, Key=serialize({"PK": "HANDOFFDEST", "SK": f"DISABLED#{name}"}))

    def put_crm_ref(self, provider: str, external_id: str, lead_id: str, handoff_id: str) -> None:
        """Which lead a CRM record is (the inbound side finds leads of feedback by it)."""
        self.client.put_item(
            TableName=self.table,
            Item=serialize(
                {
                    "PK": f"CRMREF#{provider}#{external_id}",
                    "SK": "CRMREF",
                    "lead_id": lead_id,
                    "handoff_id": handoff_id,
                    "provider": provider,
                    "external_id": external_id,
                }
            ),
        )

    # ------------------------------------------------------------------ lead data for the payload
    def recent_activities(self, lead_id: str, limit: int) -> list[dict[str, Any]]:
        if limit == 0:
            return []
        return self._query_prefix(f"LEAD#{lead_id}", "ACT#", limit, newest_first=True)


def _record(item: dict[str, Any]) -> dict[str, Any]:
    record = {k: v for k, v in item.items() if k not in ("PK", "SK", "GSI3PK", "GSI3SK")}
    if isinstance(record.get("payload"), str):
        record["payload"] = json.loads(record["payload"])
    return record


class SqsHandoffQueue(LazyClient):
    """The HandoffQueue: delivery messages in, retries by visibility, final failures to the DLQ."""

    SERVICE = "sqs"

    def __init__(self, queue_url: str, dlq_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self._client = client

    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = self.client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "MessageBody": json.dumps(m)} for i, m in enumerate(chunk)],
            )
            if response.get("Failed"):
                raise RuntimeError(f"HandoffQueue refused {len(response['Failed'])} message(s)")

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """The message comes back after ``seconds`` (ChangeMessageVisibility; Lambda leaves it as set)."""
        self.client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    def dead_letter(self, body: str, reason: str) -> None:
        """Keep a final failure in the DLQ (``leadflow replay`` sends it again)."""
        self.client.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000] or "final"}},
        )


class SesSlaNotifier:
    """SLA reminders and escalations to sales reps, through SES (the workspace's sender)."""

    def __init__(self, sender: Any, from_header: str) -> None:
        self.sender = sender  # an ``SesEmailSender``
        self.from_header = from_header

    def notify(self, notice: Any, message_id: str) -> None:
        from leadflow.domain.rendering import RenderedEmail

        email = RenderedEmail(notice.subject, notice.html, notice.text, self.from_header, {}, ())
        self.sender.send(email, notice.to, message_id, {"kind": "handoff-sla"})
