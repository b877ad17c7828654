"""Form capture's writes: a submission as one transaction (idempotency record, rate window, email
guard, lead, activity, consent, visitor link, outbox events, form stats), and a spam post."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from leadflow.adapters.dynamo_expressions import account_index_keys, lead_key, update_expression
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.dynamo_table import NEW_ITEM, DynamoTable
from leadflow.domain.errors import IdempotencyConflict, RateLimited, StorageUnavailable
from leadflow.domain.leads import FORM, CapturePlan, CaptureWrite, LeadChanges
from leadflow.domain.ratelimit import RateWindow
from leadflow.ports.leads import SpamRecord, StoredCapture

IDEMPOTENCY_TTL = timedelta(days=15)  # longer than the intake queue keeps a post (14 days)
SPAM_TTL = timedelta(days=30)


class CaptureWrites(DynamoTable):
    """A submission's transaction and a spam post's (part of ``DynamoLeadStore``)."""

    def capture(self, plan: CapturePlan, window: RateWindow | None, day: str) -> StoredCapture:
        write = plan.for_lead(plan.new_lead_id, is_new=True)
        for _attempt in range(2):
            items, roles = self._capture_items(plan, write, window, day)
            reasons = self._transact(items)
            if reasons is None:
                return StoredCapture(write.lead_id, created=write.is_new, submission_id=plan.submission_id)
            failed = {roles[i]: r for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"}
            if "idempotency" in failed:
                old = deserialize(failed["idempotency"]["Item"])
                if old.get("payload_digest", plan.payload_digest) != plan.payload_digest:
                    raise IdempotencyConflict("the key was used for another submission")
                return StoredCapture(
                    old["lead_id"],
                    created=bool(old.get("created")),
                    replayed=True,
                    submission_id=str(old.get("submission_id", "")),
                )
            if "rate" in failed and window is not None:
                raise RateLimited(window.retry_after_seconds)
            if "guard" in failed:
                existing = deserialize(failed["guard"]["Item"])["lead_id"]
                write = plan.for_lead(existing, is_new=False)
                continue
            raise StorageUnavailable(f"unexpected cancellation: {reasons}")
        raise StorageUnavailable("lead changed twice during one submission")

    def record_spam(self, spam: SpamRecord, window: RateWindow | None, day: str) -> None:
        expires = int(datetime.fromisoformat(spam.at).timestamp() + SPAM_TTL.total_seconds())
        items: list[dict[str, Any]] = [
            self._put(
                {
                    "PK": f"SPAM#{spam.form_id}#{day}",
                    "SK": f"{spam.at}#{spam.record_id}",
                    "reason": spam.reason,
                    "fields": spam.fields,
                    "at": spam.at,
                    "expires_at": expires,
                }
            ),
            self._stats_item(day, spam.form_id, {"spam": 1, f"spam_{spam.reason}": 1}),
        ]
        if window:
            items.append(self._rate_item(window))
        reasons = self._transact(items)
        if reasons and window and reasons[-1].get("Code") == "ConditionalCheckFailed":
            raise RateLimited(window.retry_after_seconds)
        if reasons:
            raise StorageUnavailable(f"unexpected cancellation: {reasons}")

    def _capture_items(
        self, plan: CapturePlan, write: CaptureWrite, window: RateWindow | None, day: str
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The transaction of one submission, with each item's role (to tell which condition failed)."""
        at = write.activity["at"]
        lead_pk = f"LEAD#{write.lead_id}"
        items: list[dict[str, Any]] = []
        roles: list[str] = []

        def add(role: str, item: dict[str, Any]) -> None:
            items.append(item)
            roles.append(role)

        # What the activity names besides itself, so that an erasure finds the person's other items.
        links: dict[str, str] = {}
        visitor = plan.submission.visitor_id
        if visitor:
            links["visitor_id"] = visitor
        if plan.idempotency_key:
            idempotency = self._idempotency_item(plan.idempotency_key, plan, write)
            links["idem_key"] = idempotency["PK"]
            add("idempotency", self._put(idempotency, NEW_ITEM, old_on_failure=True))
        if window:
            add("rate", self._rate_item(window))
        if write.is_new:
            guard = {"PK": f"EMAIL#{write.email_key}", "SK": "EMAIL", "lead_id": write.lead_id, "created_at": at}
            add("guard", self._put(guard, NEW_ITEM, old_on_failure=True))
        add("lead", self._captured_lead_update(write))
        activity_sk = f"ACT#{at}#{write.activity['activity_id']}"
        add("activity", self._put({"PK": lead_pk, "SK": activity_sk, **write.activity, **links}))
        if write.consent is not None:
            consent_sk = f"CONSENT#{at}#{write.activity['activity_id']}"
            add("consent", self._put({"PK": lead_pk, "SK": consent_sk, **write.consent}))
        if visitor:  # later site events of this visitor are the lead's; earlier ones are stitched by scoring
            add("visitor", self._put({"PK": f"VISITOR#{visitor}", "SK": "LINK", "lead_id": write.lead_id, "at": at}))
        for event in write.events:
            add("outbox", self._put(self._outbox_item(event)))
        if plan.origin == FORM:  # the API and imports are no form: nothing in the forms report
            counters = {"submissions": 1, "new_leads": 1 if write.is_new else 0}
            counters.update({f"flag_{flag}": 1 for flag in plan.submission.flags})
            add("stats", self._stats_item(day, write.activity["form_id"], counters))
        return items, roles

    def _idempotency_item(self, key: str, plan: CapturePlan, write: CaptureWrite) -> dict[str, Any]:
        """The record of a submission's idempotency ``key`` (kept as its digest): a replay finds the lead."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return {
            "PK": f"IDEM#{write.activity['form_id']}#{digest}",
            "SK": "IDEM",
            "lead_id": write.lead_id,
            "created": write.is_new,
            "submission_id": plan.submission_id,
            "payload_digest": plan.payload_digest,
            "expires_at": int(plan.submission.received_at.timestamp() + IDEMPOTENCY_TTL.total_seconds()),
        }

    def _captured_lead_update(self, write: CaptureWrite) -> dict[str, Any]:
        """The lead's update of a submission, with its index keys (month created, stage, account)."""
        at = write.activity["at"]
        changes = write.changes
        indexes: dict[str, Any] = {
            "GSI2PK": f"LEADS#{at[:7]}",
            "GSI2SK": f"{at}#{write.lead_id}",
            "GSI3PK": f"STAGE#{changes.set_if_absent['stage']}",
            "GSI3SK": write.lead_id,
        }
        if "account_domain" in changes.set_if_absent:
            indexes.update(account_index_keys(changes.set_if_absent["account_domain"], write.lead_id))
        changes = LeadChanges(
            changes.set_always, {**changes.set_if_absent, **indexes}, changes.increment, changes.add_to_sets
        )
        expression, names, values = update_expression(changes)
        return {
            "Update": {
                "TableName": self.table,
                "Key": serialize(lead_key(write.lead_id)),
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _rate_item(self, window: RateWindow) -> dict[str, Any]:
        return self._capped_count(window.counter_key, "RATE", window.expires_at, window.limit)

    def _stats_item(self, day: str, form_id: str, counters: dict[str, int]) -> dict[str, Any]:
        names = {f"#c{i}": name for i, name in enumerate(counters)}
        values = {f":c{i}": amount for i, amount in enumerate(counters.values())}
        return {
            "Update": {
                "TableName": self.table,
                "Key": serialize({"PK": f"STATS#{day}", "SK": f"FORM#{form_id}"}),
                "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counters))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": serialize(values),
            }
        }
