"""The GDPR store: a person's items across the table, their deletion, the audit trail and the
hashed suppression list (key design: docs/data-model.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from leadflow.adapters.audit import AUDIT_PK
from leadflow.adapters.aws import LazyClient
from leadflow.adapters.dynamo_expressions import SUPPRESS_NAMES, SUPPRESS_UPDATE, suppress_values
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.handoff import DynamoHandoffStore
from leadflow.adapters.segments import segment_move_items
from leadflow.domain import gdpr
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.gdpr import AUDIT_INDEX_PK, PersonItems

BATCH_WRITE = 25
DELETE_WORKERS = 8


class DynamoGdprStore(DynamoHandoffStore):
    """Reads and erases one person's items; keeps the audit trail and the hashed suppression list."""

    # ------------------------------------------------------------------ reading a person
    def lead_partition(self, lead_id: str) -> list[dict[str, Any]]:
        """Every item under ``LEAD#<id>`` (profile, activities, consent, ledger, enrollments, mail
        log, hand-offs, pending outbox events), in key order."""
        return self._all(
            "query",
            KeyConditionExpression="PK = :p",
            ExpressionAttributeValues=serialize({":p": f"LEAD#{lead_id}"}),
        )

    def get(self, pk: str, sk: str, consistent: bool = False) -> dict[str, Any] | None:
        answer = self.client.get_item(
            TableName=self.table, Key=serialize({"PK": pk, "SK": sk}), ConsistentRead=consistent
        )
        return deserialize(answer["Item"]) if "Item" in answer else None

    def person(
        self, lead_id: str, partition: list[dict[str, Any]] | None = None, crm_refs: list[dict[str, str]] | None = None
    ) -> PersonItems:
        """Everything of one lead: its partition (read here unless given), its email guard (when it
        still points at it), the visitors stitched to it with their activities, its idempotency
        records and the CRM references its hand-offs created (``crm_refs``: provider and record id)."""
        items = PersonItems(lead_id=lead_id, lead=self.lead_partition(lead_id) if partition is None else partition)
        profile = gdpr.profile_of(items)
        keys: list[dict[str, str]] = []
        if profile and profile.get("email"):
            keys.append({"PK": f"EMAIL#{str(profile['email']).casefold()}", "SK": "EMAIL"})
        keys += [{"PK": k, "SK": "IDEM"} for k in gdpr.idempotency_keys(items)]
        keys += [{"PK": f"VISITOR#{v}", "SK": "LINK"} for v in gdpr.visitor_ids(items)]
        keys += [{"PK": f"CRMREF#{r['provider']}#{r['record_id']}", "SK": "CRMREF"} for r in crm_refs or []]
        keys += [{"PK": k, "SK": "CRMEVT"} for k in gdpr.crm_event_keys(items)]
        for item in self.batch_get(keys):
            if item.get("lead_id") != lead_id:
                continue  # an address, visitor or key that now belongs to someone else
            pk = str(item["PK"])
            if pk.startswith("EMAIL#"):
                items.guard = item
            elif pk.startswith("IDEM#"):
                items.idempotency.append(item)
            elif pk.startswith("VISITOR#"):
                items.visitor_links.append(item)
            elif pk.startswith("CRMREF#"):
                items.crm_refs.append(item)
            elif pk.startswith("CRMEVT#"):
                items.crm_events.append(item)
        for link in items.visitor_links:
            items.visitor_activities += self._query_prefix(str(link["PK"]), "ACT#", None, newest_first=False)
        items.change_audit = self.change_audit_of(lead_id)
        return items

    def change_audit_of(self, lead_id: str) -> list[dict[str, Any]]:
        """The change audit log's entries about the lead (one partition of a few changes a minute at
        most, read with a filter: an export or an erasure is rare)."""
        return self._all(
            "query",
            KeyConditionExpression="PK = :p",
            FilterExpression="contains(#t, :id) OR contains(#a, :id)",
            ExpressionAttributeNames={"#t": "target", "#a": "action"},
            ExpressionAttributeValues=serialize({":p": AUDIT_PK, ":id": lead_id}),
        )

    def redact_change_audit(self, entries: list[dict[str, Any]], lead_id: str, subject: str) -> None:
        """Replace the lead's id in these change audit entries (target, action) by its keyed hash."""
        for entry in entries:
            self.client.update_item(
                TableName=self.table,
                Key=serialize({"PK": entry["PK"], "SK": entry["SK"]}),
                UpdateExpression="SET #t = :t, #a = :a",
                ExpressionAttributeNames={"#t": "target", "#a": "action"},
                ExpressionAttributeValues=serialize(
                    {
                        ":t": gdpr.redacted_target(str(entry.get("target", "")), lead_id, subject),
                        ":a": gdpr.redacted_target(str(entry.get("action", "")), lead_id, subject),
                    }
                ),
            )

    def spam_of(self, partitions: list[str], email_key: str) -> list[dict[str, Any]]:
        """The spam records in these partitions (``SPAM#<form>#<day>``) posted with this address."""

        def read(pk: str) -> list[dict[str, Any]]:
            found = self._all(
                "query", KeyConditionExpression="PK = :p", ExpressionAttributeValues=serialize({":p": pk})
            )
            return [r for r in found if gdpr.posted_by(r, email_key)]

        with ThreadPoolExecutor(max_workers=DELETE_WORKERS) as pool:
            return [record for found in pool.map(read, partitions) for record in found]

    # ------------------------------------------------------------------ erasing
    def delete_keys(self, keys: list[dict[str, str]]) -> int:
        """Delete items by key, 25 a call (BatchWriteItem, unprocessed ones retried), ``DELETE_WORKERS``
        calls at a time; returns the calls made.

        Raises:
            StorageUnavailable: the table refused (after retries); what was deleted stays deleted.
        """
        keys = self._leave_segments(keys)
        chunks = [keys[start : start + BATCH_WRITE] for start in range(0, len(keys), BATCH_WRITE)]
        if len(chunks) <= 1:
            return sum(self._delete_chunk(chunk) for chunk in chunks)
        with ThreadPoolExecutor(max_workers=min(DELETE_WORKERS, len(chunks))) as pool:
            return sum(pool.map(self._delete_chunk, chunks))

    def _leave_segments(self, keys: list[dict[str, str]]) -> list[dict[str, str]]:
        """Take the lead out of its segments with their counters moved (one transaction each,
        conditional: a resumed erasure counts nothing twice); the other keys, to delete."""
        rest = []
        for key in keys:
            sk = str(key.get("SK", ""))
            if not sk.startswith("MEMBER#SEG#"):
                rest.append(key)
                continue
            lead_id, segment_id = str(key["PK"]).removeprefix("LEAD#"), sk.removeprefix("MEMBER#SEG#")
            at = datetime.now(UTC).isoformat()
            self._transact(segment_move_items(self.table, lead_id, segment_id, False, at))
        return rest

    def _delete_chunk(self, keys: list[dict[str, str]]) -> int:
        pending: dict[str, Any] = {self.table: [{"DeleteRequest": {"Key": serialize(k)}} for k in keys]}
        for attempt in range(10):
            try:
                answer = self.client.batch_write_item(RequestItems=pending)
            except (ClientError, BotoCoreError) as error:  # the erasure is recorded: a retry resumes it
                raise StorageUnavailable(type(error).__name__) from error
            pending = answer.get("UnprocessedItems") or {}
            if not pending:
                return attempt + 1
            self._sleep(min(2.0, 0.05 * 2**attempt))
        raise StorageUnavailable("the table kept refusing deletions; the erasure resumes on the next try")

    def mark_erasing(self, lead_id: str, erasure: dict[str, Any]) -> dict[str, Any] | None:
        """Record on the profile that its erasure started (kept if one already did) and list it in
        GSI3 ``GDPR#ERASING`` for the daily sweep; returns the erasure record, None if there is no lead."""
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key=serialize({"PK": f"LEAD#{lead_id}", "SK": "PROFILE"}),
                UpdateExpression="SET #e = if_not_exists(#e, :e), #p3 = :p3, #s3 = :s3",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#e": "erasure", "#p3": "GSI3PK", "#s3": "GSI3SK"},
                ExpressionAttributeValues=serialize({":e": erasure, ":p3": gdpr.ERASING_INDEX_PK, ":s3": lead_id}),
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return dict(deserialize(answer["Attributes"])["erasure"])

    def note_erasure(self, lead_id: str, name: str, value: Any) -> None:
        """Set one field of the profile's erasure record (e.g. that the CRMs were told)."""
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"LEAD#{lead_id}", "SK": "PROFILE"}),
            UpdateExpression="SET #e.#n = :v",
            ConditionExpression="attribute_exists(#e)",
            ExpressionAttributeNames={"#e": "erasure", "#n": name},
            ExpressionAttributeValues=serialize({":v": value}),
        )

    def finish_erasure(
        self, lead_id: str, guard: dict[str, str] | None, address_key: str | None, audit: dict[str, Any], at: str
    ) -> bool:
        """The last step, in one transaction: the profile and the email guard go, the address's hash
        is listed as suppressed (reason ``erased``; an earlier reason is kept), the audit record is
        written. False when the profile was already gone (another attempt finished first)."""
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": serialize({"PK": f"LEAD#{lead_id}", "SK": "PROFILE"}),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": serialize(audit),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        if guard:
            items.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": serialize(guard),
                        "ConditionExpression": "attribute_not_exists(PK) OR lead_id = :l",
                        "ExpressionAttributeValues": serialize({":l": lead_id}),
                    }
                }
            )
        if address_key:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": serialize({"PK": f"SUPPRESS#{address_key}", "SK": "SUPPRESS"}),
                        "UpdateExpression": SUPPRESS_UPDATE,
                        "ExpressionAttributeNames": SUPPRESS_NAMES,
                        "ExpressionAttributeValues": serialize(suppress_values(address_key, "erased", at, at)),
                    }
                }
            )
        reasons = self._transact(items)
        return reasons is None

    def erasing_leads(self, limit: int = 1000) -> list[str]:
        """Leads whose erasure started and did not finish (GSI3 ``GDPR#ERASING``)."""
        answer = self.client.query(
            TableName=self.table,
            IndexName="GSI3",
            KeyConditionExpression="GSI3PK = :p",
            ExpressionAttributeValues=serialize({":p": gdpr.ERASING_INDEX_PK}),
            Limit=limit,
        )
        return [str(i["GSI3SK"]["S"]) for i in answer.get("Items", [])]

    # ------------------------------------------------------------------ audit trail
    def put_audit(self, record: dict[str, Any]) -> None:
        self.client.put_item(
            TableName=self.table, Item=serialize(record), ConditionExpression="attribute_not_exists(PK)"
        )

    def audit_of(self, subject: str) -> list[dict[str, Any]]:
        """The audit records of one subject (its keyed hash), oldest first."""
        return self._all(
            "query",
            KeyConditionExpression="PK = :p",
            ExpressionAttributeValues=serialize({":p": f"{AUDIT_INDEX_PK}{subject}"}),
        )

    def erased_subjects(self) -> set[str]:
        """The subjects (keyed hashes of lead ids) of every erasure in the audit trail (a scan)."""
        items = self._all(
            "scan",
            FilterExpression="begins_with(PK, :p) AND #a = :e",
            ProjectionExpression="#s",
            ExpressionAttributeNames={"#a": "action", "#s": "subject"},
            ExpressionAttributeValues=serialize({":p": AUDIT_INDEX_PK, ":e": "erase"}),
        )
        return {str(i["subject"]) for i in items}

    # ------------------------------------------------------------------ suppression list
    def suppression(self, address_key: str) -> dict[str, Any] | None:
        return self.get(f"SUPPRESS#{address_key}", "SUPPRESS")

    def suppression_entries(self) -> Iterator[dict[str, Any]]:
        """Every ``SUPPRESS#`` item (a scan: the migration's, once)."""
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression="begins_with(PK, :p) AND SK = :s",
            ExpressionAttributeValues=serialize({":p": "SUPPRESS#", ":s": "SUPPRESS"}),
        )
        for answer in pages:
            yield from (deserialize(i) for i in answer.get("Items", []))

    def rekey_suppression(self, old: dict[str, Any], address_key: str) -> bool:
        """Replace a plain-address entry by its hashed one, in one transaction (the first listing's
        reason and time kept; an entry already under the hash keeps its own). False if it moved meanwhile."""
        listed_at = str(old.get("GSI2SK", "")).split("#", 1)[0] or str(old.get("at", ""))
        extra = {k: v for k, v in old.items() if k not in ("PK", "SK", "GSI2PK", "GSI2SK", "reason", "at")}
        names = dict(SUPPRESS_NAMES)
        values = suppress_values(
            address_key, str(old.get("reason", "unsubscribe")), str(old.get("at", listed_at)), listed_at
        )
        sets = []
        for i, (name, value) in enumerate(extra.items()):
            names[f"#x{i}"] = name
            values[f":x{i}"] = value
            sets.append(f"#x{i} = if_not_exists(#x{i}, :x{i})")
        expression = SUPPRESS_UPDATE + ("".join(f", {s}" for s in sets))
        items = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": serialize({"PK": old["PK"], "SK": "SUPPRESS"}),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize({"PK": f"SUPPRESS#{address_key}", "SK": "SUPPRESS"}),
                    "UpdateExpression": expression,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": serialize(values),
                }
            },
        ]
        return self._transact(items) is None

    def recent_audit(self, months: Iterable[str], limit: int) -> list[dict[str, Any]]:
        """The newest audit records (exports, erasures) of ``months`` (``yyyy-mm``, newest first), at
        most ``limit``: their keys from GSI2 (listed by month, keys only), then the records."""
        keys: list[dict[str, str]] = []
        for month in months:
            found = self._index_keys("GSI2", f"{AUDIT_INDEX_PK}{month}", limit - len(keys), newest_first=True)
            keys += [{"PK": k["PK"], "SK": k["SK"]} for k in found]
        return sorted(self.batch_get(keys), key=lambda record: str(record.get("at", "")), reverse=True)

    # ------------------------------------------------------------------ retention
    def leads_created_in(self, month: str) -> list[tuple[str, str]]:
        """(created_at, lead id) of the leads created in ``month`` (``yyyy-mm``, GSI2, keys only)."""
        items = self._all(
            "query",
            IndexName="GSI2",
            KeyConditionExpression="GSI2PK = :p",
            ExpressionAttributeValues=serialize({":p": f"LEADS#{month}"}),
        )
        found = []
        for item in items:
            created, _, lead_id = str(item["GSI2SK"]).rpartition("#")
            found.append((created, lead_id))
        return found

    def last_activity_at(self, lead_id: str) -> str | None:
        """The time of the lead's newest activity (one item read), None when it has none."""
        newest = self._query_prefix(f"LEAD#{lead_id}", "ACT#", 1, newest_first=True)
        return str(newest[0].get("at") or newest[0]["SK"].split("#")[1]) if newest else None


ERASED_PER_TRANSACTION = 99  # + the erasure's marker: TransactWriteItems takes 100 items


class DynamoReportMarkers(LazyClient):
    """The ReportsTable's markers of one person: ``LEADRPT#<lead id>`` (created, each stage reached),
    ``HANDOFFRPT#<hand-off id>`` (assigned, outcomes), ``MSGRPT#<message id>`` (each email's
    engagement). The aggregate counters are no one's and stay."""

    SERVICE = "dynamodb"

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table = table_name
        self._client = client

    def markers(
        self, lead_id: str, handoff_ids: Iterable[str] = (), message_ids: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        partitions = [
            f"LEADRPT#{lead_id}",
            *(f"HANDOFFRPT#{h}" for h in handoff_ids),
            *(f"MSGRPT#{m}" for m in message_ids),
        ]
        with ThreadPoolExecutor(max_workers=DELETE_WORKERS) as pool:
            return [marker for found in pool.map(self._partition, partitions) for marker in found]

    def _partition(self, pk: str) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :p",
            "ExpressionAttributeValues": serialize({":p": pk}),
        }
        found: list[dict[str, Any]] = []
        while True:
            try:
                answer = self.client.query(**kwargs)
            except (ClientError, BotoCoreError) as error:
                raise StorageUnavailable(type(error).__name__) from error
            found += [deserialize(i) for i in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                return found
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def keep_counts(self, erasure_id: str, counts: dict[tuple[str, str], dict[str, int]]) -> None:
        """Add what an erased person's records had counted to ``ERASED#<counter PK>`` / ``<counter SK>``
        (``services.report_verify.erased_contribution``), once per erasure: each transaction of up to
        99 counters carries a marker ``ERASEDRPT#<erasure id>`` / ``<part>`` written only if absent,
        so a resumed erasure (same id, same records, the same parts) adds nothing twice."""
        keys = sorted(k for k, fields in counts.items() if any(fields.values()))
        for part, start in enumerate(range(0, len(keys), ERASED_PER_TRANSACTION)):
            actions: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": serialize({"PK": f"ERASEDRPT#{erasure_id}", "SK": f"{part:04d}"}),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            ]
            for pk, sk in keys[start : start + ERASED_PER_TRANSACTION]:
                fields = {name: n for name, n in counts[(pk, sk)].items() if n}
                actions.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": serialize({"PK": f"ERASED#{pk}", "SK": sk}),
                            "UpdateExpression": "ADD " + ", ".join(f"#f{i} :v{i}" for i in range(len(fields))),
                            "ExpressionAttributeNames": {f"#f{i}": name for i, name in enumerate(fields)},
                            "ExpressionAttributeValues": serialize(
                                {f":v{i}": n for i, n in enumerate(fields.values())}
                            ),
                        }
                    }
                )
            try:
                self.client.transact_write_items(TransactItems=actions)
            except ClientError as error:
                reasons = error.response.get("CancellationReasons") or []
                if reasons and (reasons[0] or {}).get("Code") == "ConditionalCheckFailed":
                    continue  # this part was kept by an earlier run of the same erasure
                raise StorageUnavailable(type(error).__name__) from error
            except BotoCoreError as error:
                raise StorageUnavailable(type(error).__name__) from error

    def delete(self, keys: list[dict[str, str]]) -> None:
        """Delete markers (a lead has a handful: one call each, conditional on nothing)."""
        for key in keys:
            try:
                self.client.delete_item(TableName=self.table, Key=serialize(key))
            except (ClientError, BotoCoreError) as error:
                raise StorageUnavailable(type(error).__name__) from error
