"""Enrollments, the send ledger, sequence versions and the shared send rate, in the LeadsTable.

Items (see docs/data-model.md):
- enrollment ``LEAD#<lead>`` / ``ENR#<sequence>``: step, status, ``due_at``; while active it
  carries ``GSI4PK=DUE#<shard>``, ``GSI4SK=<due_at>#<lead>#<sequence>`` so ticks read what is
  due shard by shard, in parallel;
- send ledger ``LEAD#<lead>`` / ``SEND#<message_id>``: written (conditionally) before SES is
  called, so a retried batch never sends one step twice;
- sequence version ``SEQ#<id>`` / ``V#<content hash>`` (number, definition) and the head
  ``SEQ#<id>`` / ``HEAD`` (the last number given);
- send-rate window ``SESRATE#<epoch second>`` / ``RATE`` shared by every sender.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.dynamo import DynamoLeadStore, deserialize, lead_key, serialize
from leadflow.domain.events import DomainEvent
from leadflow.domain.nurture import Enrollment, SentEmail

DEFAULT_SHARDS = 16
DUE_INDEX = "GSI4"
SEND_TTL = timedelta(days=400)
RECENT_SENDS = timedelta(days=7)


def shard_of(lead_id: str, shards: int) -> int:
    return int(hashlib.sha256(lead_id.encode()).hexdigest()[:8], 16) % shards


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def enrollment_item(enrollment: Enrollment, shards: int, rev: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "PK": f"LEAD#{enrollment.lead_id}",
        "SK": f"ENR#{enrollment.sequence_id}",
        "kind": "enrollment",
        "lead_id": enrollment.lead_id,
        "sequence_id": enrollment.sequence_id,
        "version": enrollment.version,
        "entry": enrollment.entry,
        "step_id": enrollment.step_id,
        "status": enrollment.status,
        "entered_at": _iso(enrollment.entered_at),
        "step_started_at": _iso(enrollment.step_started_at),
        "emails": [
            {
                "step_id": e.step_id,
                "message_id": e.message_id,
                "sent_at": _iso(e.sent_at),
                "opened": e.opened,
                "clicked": e.clicked,
                "link_tags": list(e.link_tags),
            }
            for e in enrollment.emails
        ],
        "rev": rev,
    }
    if enrollment.exit_reason:
        item["exit_reason"] = enrollment.exit_reason
    if enrollment.ended_at:
        item["ended_at"] = _iso(enrollment.ended_at)
    if enrollment.status == "active" and enrollment.due_at is not None:
        due = _iso(enrollment.due_at)
        item["due_at"] = due
        item["GSI4PK"] = f"DUE#{shard_of(enrollment.lead_id, shards)}"
        item["GSI4SK"] = f"{due}#{enrollment.lead_id}#{enrollment.sequence_id}"
    return item


def enrollment_from(item: dict[str, Any]) -> tuple[Enrollment, int]:
    enrollment = Enrollment(
        lead_id=item["lead_id"],
        sequence_id=item["sequence_id"],
        version=int(item["version"]),
        entry=int(item["entry"]),
        step_id=item["step_id"],
        status=item["status"],
        entered_at=datetime.fromisoformat(item["entered_at"]),
        step_started_at=datetime.fromisoformat(item["step_started_at"]),
        due_at=_dt(item.get("due_at")),
        emails=tuple(
            SentEmail(
                step_id=e["step_id"],
                message_id=e["message_id"],
                sent_at=datetime.fromisoformat(e["sent_at"]),
                opened=bool(e.get("opened")),
                clicked=bool(e.get("clicked")),
                link_tags=tuple(e.get("link_tags") or ()),
            )
            for e in item.get("emails") or ()
        ),
        exit_reason=item.get("exit_reason"),
        ended_at=_dt(item.get("ended_at")),
    )
    return enrollment, int(item.get("rev", 0))


class DynamoNurtureStore(DynamoLeadStore):
    """What the nurture functions read and write (the lead table, as ``DynamoLeadStore``)."""

    def __init__(self, table_name: str, client: Any = None, shards: int = DEFAULT_SHARDS) -> None:
        super().__init__(table_name, client)
        self.shards = shards

    # ------------------------------------------------------------------ reading
    def due(self, shard: int, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(lead id, sequence id) of enrollments of one shard due at ``now``, oldest first."""
        answer = self.client.query(
            TableName=self.table,
            IndexName=DUE_INDEX,
            KeyConditionExpression="GSI4PK = :p AND GSI4SK <= :n",
            ExpressionAttributeValues=serialize({":p": f"DUE#{shard}", ":n": f"{_iso(now)}#~"}),
            Limit=limit,
        )
        keys = []
        for item in answer.get("Items", []):
            row = deserialize(item)
            keys.append((row["PK"].removeprefix("LEAD#"), row["SK"].removeprefix("ENR#")))
        return keys

    def shards_with_due(self, now: datetime) -> list[int]:
        """The shards that have anything due (one cheap query each, in parallel)."""

        def has_due(shard: int) -> bool:
            return bool(self.due(shard, now, 1))

        with ThreadPoolExecutor(max_workers=min(16, self.shards)) as pool:
            flags = list(pool.map(has_due, range(self.shards)))
        return [shard for shard, flag in enumerate(flags) if flag]

    def batch_get(self, keys: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
        """Items by key (any number; BatchGetItem 100 at a time, unprocessed keys retried)."""
        wanted = [serialize(k) for k in {(k["PK"], k["SK"]): k for k in keys}.values()]
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {self.table: {"Keys": wanted[start : start + 100]}}
            for attempt in range(8):
                answer = self.client.batch_get_item(RequestItems=request)
                found.extend(deserialize(i) for i in answer.get("Responses", {}).get(self.table, []))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(min(1.0, 0.05 * 2**attempt))
        return found

    def load_batch(
        self, pairs: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], tuple[Enrollment, int]], dict[str, dict[str, Any]]]:
        """Enrollments and the profiles of their leads, two reads for the whole batch."""
        keys = [{"PK": f"LEAD#{lead}", "SK": f"ENR#{seq}"} for lead, seq in pairs]
        keys += [lead_key(lead) for lead in {lead for lead, _ in pairs}]
        enrollments: dict[tuple[str, str], tuple[Enrollment, int]] = {}
        profiles: dict[str, dict[str, Any]] = {}
        for item in self.batch_get(keys):
            if item["SK"] == "PROFILE":
                profiles[item["PK"].removeprefix("LEAD#")] = item
            elif item["SK"].startswith("ENR#"):
                enrollment, rev = enrollment_from(item)
                enrollments[(enrollment.lead_id, enrollment.sequence_id)] = (enrollment, rev)
        return enrollments, profiles

    def suppressed(self, email_keys: Iterable[str]) -> set[str]:
        items = self.batch_get({"PK": f"SUPPRESS#{key}", "SK": "SUPPRESS"} for key in email_keys)
        return {item["PK"].removeprefix("SUPPRESS#") for item in items}

    def enrollment(self, lead_id: str, sequence_id: str) -> tuple[Enrollment, int] | None:
        item = self.client.get_item(
            TableName=self.table,
            Key=serialize({"PK": f"LEAD#{lead_id}", "SK": f"ENR#{sequence_id}"}),
            ConsistentRead=True,
        ).get("Item")
        return enrollment_from(deserialize(item)) if item else None

    def lead_enrollments(self, lead_id: str) -> list[tuple[Enrollment, int]]:
        return [enrollment_from(i) for i in self._query_prefix(f"LEAD#{lead_id}", "ENR#", None, newest_first=False)]

    def lead_sends(self, lead_id: str) -> list[dict[str, Any]]:
        return self._query_prefix(f"LEAD#{lead_id}", "SEND#", None, newest_first=False)

    def recent_activities(self, lead_id: str, limit: int = 200) -> list[dict[str, Any]]:
        return self._query_prefix(f"LEAD#{lead_id}", "ACT#", limit, newest_first=True)

    def scan_profiles(self, segment: int, segments: int) -> Iterable[list[dict[str, Any]]]:
        """Every lead profile, page by page, in one of ``segments`` parallel scan segments."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "SK = :p",
            "ExpressionAttributeValues": serialize({":p": "PROFILE"}),
            "Segment": segment,
            "TotalSegments": segments,
        }
        while True:
            answer = self.client.scan(**kwargs)
            yield [deserialize(i) for i in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                return
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    # ------------------------------------------------------------------ sequence versions
    def version_of(self, sequence_id: str, content_hash: str, definition: dict[str, Any]) -> int:
        """The version number of this content of the sequence; a new content gets the next number."""
        key = serialize({"PK": f"SEQ#{sequence_id}", "SK": f"V#{content_hash}"})
        item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if item:
            return int(deserialize(item)["number"])
        head = self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"SEQ#{sequence_id}", "SK": "HEAD"}),
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "number"},
            ExpressionAttributeValues=serialize({":one": 1}),
            ReturnValues="UPDATED_NEW",
        )
        number = int(deserialize(head["Attributes"])["number"])
        try:
            self.client.put_item(
                TableName=self.table,
                Item=serialize(
                    {
                        "PK": f"SEQ#{sequence_id}",
                        "SK": f"V#{content_hash}",
                        "number": number,
                        "hash": content_hash,
                        "definition": json.dumps(definition, separators=(",", ":")),
                        "created_at": datetime.now(UTC).isoformat(),
                    }
                ),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # Another worker registered the same content first: its number wins.
            item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)["Item"]
            return int(deserialize(item)["number"])
        return number

    def version_definition(self, sequence_id: str, number: int) -> dict[str, Any] | None:
        for item in self._query_prefix(f"SEQ#{sequence_id}", "V#", None, newest_first=False):
            if int(item["number"]) == number:
                definition: dict[str, Any] = json.loads(item["definition"])
                return definition
        return None

    def versions(self, sequence_id: str) -> list[dict[str, Any]]:
        rows = self._query_prefix(f"SEQ#{sequence_id}", "V#", None, newest_first=False)
        return sorted(
            ({"number": int(r["number"]), "hash": r["hash"], "created_at": r["created_at"]} for r in rows),
            key=lambda r: r["number"],
        )

    # ------------------------------------------------------------------ writing enrollments
    def put_enrollment(
        self, enrollment: Enrollment, rev: int, events: Sequence[DomainEvent] = (), new: bool = False
    ) -> bool:  # type: ignore[assignment]
        """Store the enrollment if nobody else changed it since ``rev`` was read (False if they did)."""
        item = enrollment_item(enrollment, self.shards, rev + 1)
        put: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if new and rev == 0:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "#r = :r"
            put["ExpressionAttributeNames"] = {"#r": "rev"}
            put["ExpressionAttributeValues"] = serialize({":r": rev})
        items = [{"Put": put}]
        items += [{"Put": {"TableName": self.table, "Item": serialize(self._outbox_item(e))}} for e in events]
        reasons = self._transact(items)
        return reasons is None

    def put_enrollments(self, enrollments: list[Enrollment]) -> int:
        """New enrollments in bulk (BatchWriteItem, 25 a request): a broadcast's writes."""
        requests = [{"PutRequest": {"Item": serialize(enrollment_item(e, self.shards, 1))}} for e in enrollments]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: requests[start : start + 25]}
            for attempt in range(10):
                answer = self.client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
                self._sleep(min(2.0, 0.05 * 2**attempt))
        return len(requests)

    # ------------------------------------------------------------------ the send ledger
    def claim_send(  # noqa: PLR0917
        self, lead_id: str, message_id: str, record: dict[str, Any], now: datetime, seen_sends: int, email_key: str
    ) -> str:
        """Write the ledger item before sending. Returns "claimed", "taken" (this message was
        claimed before: never send it again) or "changed" (the lead was emailed by another
        sequence, unsubscribed or suppressed since the batch read it: decide again).

        The same transaction checks that the lead is still subscribed and the address not
        suppressed, so an unsubscribe that lands mid-wave stops the very next send."""
        sends = f"{_iso(now)}"
        items = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": serialize(
                        {
                            "PK": f"LEAD#{lead_id}",
                            "SK": f"SEND#{message_id}",
                            "status": "sending",
                            "claimed_at": sends,
                            "expires_at": int((now + SEND_TTL).timestamp()),
                            **record,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize(lead_key(lead_id)),
                    "UpdateExpression": "SET #s = list_append(if_not_exists(#s, :empty), :now)",
                    "ConditionExpression": "attribute_exists(PK) AND (attribute_not_exists(#s) OR size(#s) = :seen)"
                    " AND (attribute_not_exists(#u) OR #u = :no)",
                    "ExpressionAttributeNames": {"#s": "recent_sends", "#u": "unsubscribed"},
                    "ExpressionAttributeValues": serialize(
                        {":empty": [], ":now": [sends], ":seen": seen_sends, ":no": False}
                    ),
                }
            },
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": serialize({"PK": f"SUPPRESS#{email_key}", "SK": "SUPPRESS"}),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        reasons = self._transact(items)
        if reasons is None:
            return "claimed"
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            return "taken"
        return "changed"

    def set_recent_sends(self, lead_id: str, before: list[str], after: list[str]) -> None:
        """Replace the profile's list of recent sends, if nobody changed it meanwhile."""
        if before == after:
            return
        try:
            self.client.update_item(
                TableName=self.table,
                Key=serialize(lead_key(lead_id)),
                UpdateExpression="SET #s = :after",
                ConditionExpression="size(#s) = :n",
                ExpressionAttributeNames={"#s": "recent_sends"},
                ExpressionAttributeValues=serialize({":after": after, ":n": len(before)}),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def mark_sent(self, lead_id: str, message_id: str, ses_message_id: str, now: datetime) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"LEAD#{lead_id}", "SK": f"SEND#{message_id}"}),
            UpdateExpression="SET #s = :s, #i = :i, #a = :a",
            ExpressionAttributeNames={"#s": "status", "#i": "ses_message_id", "#a": "sent_at"},
            ExpressionAttributeValues=serialize({":s": "sent", ":i": ses_message_id, ":a": _iso(now)}),
        )

    def release_send(self, lead_id: str, message_id: str) -> None:
        """SES refused before sending (throttled, rejected): free the claim so a later try may send."""
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=serialize({"PK": f"LEAD#{lead_id}", "SK": f"SEND#{message_id}"}),
                ConditionExpression="#s = :sending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=serialize({":sending": "sending"}),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def send_record(self, lead_id: str, message_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table,
            Key=serialize({"PK": f"LEAD#{lead_id}", "SK": f"SEND#{message_id}"}),
            ConsistentRead=True,
        ).get("Item")
        return deserialize(item) if item else None

    # ------------------------------------------------------------------ the lead
    def update_profile(
        self,
        lead_id: str,
        expression: str,
        names: dict[str, str],
        values: dict[str, Any],
        events: Sequence[DomainEvent] = (),
    ) -> None:  # type: ignore[assignment]
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize(lead_key(lead_id)),
                    "UpdateExpression": expression,
                    "ConditionExpression": "attribute_exists(PK)",
                    "ExpressionAttributeNames": names,
                    **({"ExpressionAttributeValues": serialize(values)} if values else {}),
                }
            }
        ]
        items += [{"Put": {"TableName": self.table, "Item": serialize(self._outbox_item(e))}} for e in events]
        self._transact(items)

    def put_items(self, items: list[dict[str, Any]], events: Sequence[DomainEvent] = ()) -> bool:
        writes = [
            {"Put": {"TableName": self.table, "Item": serialize(i), "ConditionExpression": "attribute_not_exists(PK)"}}
            for i in items
        ]
        writes += [{"Put": {"TableName": self.table, "Item": serialize(self._outbox_item(e))}} for e in events]
        return self._transact(writes) is None

    def suppress(self, email_key: str, reason: str, at: str) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"SUPPRESS#{email_key}", "SK": "SUPPRESS"}),
            UpdateExpression="SET #r = if_not_exists(#r, :r), #a = if_not_exists(#a, :a)",
            ExpressionAttributeNames={"#r": "reason", "#a": "at"},
            ExpressionAttributeValues=serialize({":r": reason, ":a": at}),
        )

    # ------------------------------------------------------------------ the shared send rate
    def take_send_slots(self, wanted: int, rate: int, now: float) -> int:
        """Up to ``wanted`` sends of the current second's ``rate`` (shared by every worker)."""
        second = int(now)
        for take in (wanted, max(1, wanted // 2), 1):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=serialize({"PK": f"SESRATE#{second}", "SK": "RATE"}),
                    UpdateExpression="ADD #n :k SET #e = :e",
                    ConditionExpression="attribute_not_exists(#n) OR #n <= :room",
                    ExpressionAttributeNames={"#n": "n", "#e": "expires_at"},
                    ExpressionAttributeValues=serialize({":k": take, ":e": second + 120, ":room": rate - take}),
                )
                return take
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
        return 0
