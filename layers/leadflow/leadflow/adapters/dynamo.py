"""The lead store on one DynamoDB table (key design: docs/data-model.md)."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from leadflow.adapters.aws import LazyClient
from leadflow.domain.errors import IdempotencyConflict, RateLimited, StorageUnavailable
from leadflow.domain.events import DomainEvent
from leadflow.domain.leads import FORM, CapturePlan, CaptureWrite, LeadChanges
from leadflow.domain.ratelimit import HitCounter, RateWindow
from leadflow.ports import ScoreState, SpamRecord, StoredCapture

if TYPE_CHECKING:
    from leadflow.ports import FeedbackWrite, ScoreWrite

OUTBOX_TTL = timedelta(days=7)
IDEMPOTENCY_TTL = timedelta(days=15)  # longer than the intake queue keeps a post (14 days)
SPAM_TTL = timedelta(days=30)
NEW_ITEM = "attribute_not_exists(PK)"  # a Put's condition: only if no such item yet
CONFLICT_RETRIES = 6
# Errors that mean "the table cannot take this write now" (after botocore's own retries).
UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """An item (or a key, or expression values) in DynamoDB JSON; floats become Decimals first.

    The same output as boto3's ``TypeSerializer`` over ``_to_dynamo`` (tested for equivalence),
    written out for the types items are made of (str, int, bool, None, dict, list, tuple): boto3's
    serializer cost a broadcast more CPU than the step's own logic. Anything else (floats,
    Decimals, sets, bytes, subclasses) goes through boto3's."""
    return {k: _dump(v) for k, v in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """An item from DynamoDB JSON, numbers as int (integral) or float: boto3's ``TypeDeserializer``
    then ``_from_dynamo``, written out for S, N, M, L, BOOL and NULL (B and the sets go through boto3's)."""
    return {k: _load(v) for k, v in item.items()}


def _dump(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is dict:
        return {"M": {k: _dump(v) for k, v in value.items()}}
    if kind is int and -_MAX_PLAIN_INT < value < _MAX_PLAIN_INT:
        return {"N": str(value)}
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is list or kind is tuple:
        return {"L": [_dump(v) for v in value]}
    return _serializer.serialize(_to_dynamo(value))  # type: ignore[no-any-return]


def _load(value: dict[str, Any]) -> Any:
    if "S" in value:
        return value["S"]
    if "N" in value:
        number = value["N"]
        digits = number[1:] if number[:1] == "-" else number
        if 0 < len(digits) <= _PLAIN_DIGITS and digits.isascii() and digits.isdigit():
            return int(number)
        return _from_dynamo(_deserializer.deserialize(value))
    if "M" in value:
        return {k: _load(v) for k, v in value["M"].items()}
    if "L" in value:
        return [_load(v) for v in value["L"]]
    if "BOOL" in value:
        return value["BOOL"]
    if "NULL" in value:
        return None
    return _from_dynamo(_deserializer.deserialize(value))


_PLAIN_DIGITS = 38  # DynamoDB numbers have up to 38 digits of precision (boto3's decimal context)
_MAX_PLAIN_INT = 10**_PLAIN_DIGITS


SUPPRESSION_INDEX = "GSI2"
SUPPRESSED_PK = "SUPPRESSED"
SUPPRESS_UPDATE = "SET #r = if_not_exists(#r, :r), #a = if_not_exists(#a, :a), #gp = :gp, #gs = if_not_exists(#gs, :gs)"
"""A suppression: its first reason and time kept, and listed in GSI2 (``SUPPRESSED`` /
``<listed at>#<address key>``, from its first listing), so that the senders read the whole list
once and then only what was listed since."""
SUPPRESS_NAMES = {"#r": "reason", "#a": "at", "#gp": "GSI2PK", "#gs": "GSI2SK"}


def suppress_values(address_key: str, reason: str, at: str, listed_at: str) -> dict[str, str]:
    """The values of ``SUPPRESS_UPDATE`` for one suppression (``address_key``: the address's keyed
    hash, ``domain.gdpr.address_hash``; the list never holds an address)."""
    return {":r": reason, ":a": at, ":gp": SUPPRESSED_PK, ":gs": f"{listed_at}#{address_key}"}


def lead_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": "PROFILE"}


def update_expression(changes: LeadChanges) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``changes`` as one DynamoDB update (the semantics of ``apply_changes``)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    for i, (name, value) in enumerate(changes.set_always.items()):
        names[f"#s{i}"] = name
        values[f":s{i}"] = value
        sets.append(f"#s{i} = :s{i}")
    for i, (name, value) in enumerate(changes.set_if_absent.items()):
        names[f"#o{i}"] = name
        values[f":o{i}"] = value
        sets.append(f"#o{i} = if_not_exists(#o{i}, :o{i})")
    adds = []
    for i, (name, amount) in enumerate(changes.increment.items()):
        names[f"#n{i}"] = name
        values[f":n{i}"] = amount
        adds.append(f"#n{i} :n{i}")
    for i, (name, members) in enumerate(changes.add_to_sets.items()):
        names[f"#a{i}"] = name
        values[f":a{i}"] = set(members)
        adds.append(f"#a{i} :a{i}")
    expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
    return expression, names, serialize(values)


def stage_fields(lead_id: str, stage: str, names: dict[str, str], values: dict[str, Any]) -> str:
    """The SET fragment that moves a lead to ``stage`` with its stage-index keys (GSI3)."""
    names.update({"#st": "stage", "#p3": "GSI3PK", "#s3": "GSI3SK"})
    values.update({":st": stage, ":p3": f"STAGE#{stage}", ":s3": lead_id})
    return "#st = :st, #p3 = :p3, #s3 = :s3"


def score_summary_fields(summary: dict[str, Any], names: dict[str, str], values: dict[str, Any]) -> str:
    """The SET fragment of a lead's score summary (scores per model, grade, grade points, when)."""
    names.update({"#s": "scores", "#g": "grade", "#gp": "grade_points", "#at": "scored_at"})
    values.update(
        {":s": summary["scores"], ":g": summary["grade"], ":gp": summary["grade_points"], ":at": summary["scored_at"]}
    )
    return "#s = :s, #g = :g, #gp = :gp, #at = :at"


def score_version_condition(expected: int, values: dict[str, Any]) -> str:
    """The condition that the lead exists and its ``score_version`` (``#v``) is still ``expected``
    (absent when 0): the optimistic lock of every write that moves scores or the stage."""
    if expected == 0:
        return "attribute_exists(PK) AND attribute_not_exists(#v)"
    values[":v"] = expected
    return "attribute_exists(PK) AND #v = :v"


def versioned_lead_update(  # noqa: PLR0917 - the update's table, lead, fields, and its lock
    table: str,
    lead_id: str,
    fields: str,
    names: dict[str, str],
    values: dict[str, Any],
    expected: int,
    stage: str | None = None,
) -> dict[str, Any]:
    """The transaction item that sets ``fields`` on the lead's profile (and moves it to ``stage``)
    under the ``score_version`` lock, bumping the version: what scoring and sales feedback write."""
    names["#v"] = "score_version"
    values[":next"] = expected + 1
    expression = f"SET #v = :next, {fields}"
    if stage:
        expression += ", " + stage_fields(lead_id, stage, names, values)
    return {
        "Update": {
            "TableName": table,
            "Key": serialize(lead_key(lead_id)),
            "UpdateExpression": expression,
            "ConditionExpression": score_version_condition(expected, values),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize(values),
        }
    }


class DynamoLeadStore(LazyClient):
    """``LeadStore`` on DynamoDB: every submission is one transaction (two for a returning lead)."""

    SERVICE = "dynamodb"

    def __init__(self, table_name: str, client: Any = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.table = table_name
        self._client = client
        self._sleep = sleep

    # ------------------------------------------------------------------ writes
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
            indexes.update(GSI1PK=f"ACCOUNT#{changes.set_if_absent['account_domain']}", GSI1SK=f"LEAD#{write.lead_id}")
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

    def _put(
        self, item: dict[str, Any], condition: str | None = None, *, old_on_failure: bool = False
    ) -> dict[str, Any]:
        """One ``Put`` of a transaction; ``condition`` guards it (``NEW_ITEM``: only if absent), and
        ``old_on_failure`` has a failed condition return the item it met."""
        put: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if condition:
            put["ConditionExpression"] = condition
        if old_on_failure:
            put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Put": put}

    def _outbox_item(self, event: DomainEvent) -> dict[str, Any]:
        """An event waiting in the outbox. An event about a lead is kept in the lead's partition
        (``LEAD#<id>`` / ``EVENT#<event id>``), so that an erasure finds it with the lead's items;
        others under ``OUTBOX#<event id>`` / ``EVENT``. The stream relays both."""
        expires = int(datetime.fromisoformat(event.occurred_at).timestamp() + OUTBOX_TTL.total_seconds())
        lead_id = event.detail.get("lead_id")
        return {
            **(
                {"PK": f"LEAD#{lead_id}", "SK": f"EVENT#{event.event_id}"}
                if lead_id
                else {"PK": f"OUTBOX#{event.event_id}", "SK": "EVENT"}
            ),
            "source": event.source,
            "detail_type": event.detail_type,
            "detail": json.dumps(event.envelope(), separators=(",", ":")),
            "expires_at": expires,
        }

    def _rate_item(self, window: RateWindow) -> dict[str, Any]:
        return self._capped_count(window.counter_key, "RATE", window.expires_at, window.limit)

    def _capped_count(self, pk: str, sk: str, expires_at: int, limit: int) -> dict[str, Any]:
        """A transaction's count of one more on a counter item (``n``, with a TTL), refused (the
        transaction cancelled) once it holds ``limit``: a rate window, a tracking hit counter."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": serialize({"PK": pk, "SK": sk}),
                "UpdateExpression": "ADD #n :one SET #e = :exp",
                "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
                "ExpressionAttributeNames": {"#n": "n", "#e": "expires_at"},
                "ExpressionAttributeValues": serialize({":one": 1, ":exp": expires_at, ":limit": limit}),
            }
        }

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

    def _transact(self, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Run a transaction; None on success, else the cancellation reasons.

        Conflicts with a concurrent transaction on the same items are retried here.

        Raises:
            StorageUnavailable: throttled, down, or unreachable after retries.
        """
        for attempt in range(CONFLICT_RETRIES):
            try:
                self.client.transact_write_items(TransactItems=items)
                return None
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == "TransactionCanceledException":
                    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])
                    codes = {r.get("Code") for r in reasons}
                    if "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes:
                        self._sleep(random.uniform(0.005, 0.02) * 2**attempt)  # nosec B311 # backoff jitter, not secrecy
                        continue
                    if codes & UNAVAILABLE_CODES:
                        raise StorageUnavailable(code) from error
                    return reasons
                if code in UNAVAILABLE_CODES:
                    raise StorageUnavailable(code) from error
                raise
            except BotoCoreError as error:  # timeouts, connection errors
                raise StorageUnavailable(type(error).__name__) from error
        raise StorageUnavailable("TransactionConflict")

    def record_activity(
        self, owner_pk: str, activity: dict[str, Any], events: list[DomainEvent], counter: HitCounter | None = None
    ) -> bool:
        """Store one activity (under ``LEAD#id`` or ``VISITOR#id``) with its outbox events.

        Returns:
            False when nothing was written: the hit counter is full, an activity with this id
            is already stored (a redelivery), or the lead does not exist (erased).

        Raises:
            StorageUnavailable: throttled or down.
        """
        items: list[dict[str, Any]] = []
        if counter is not None:
            items.append(self._capped_count(counter.key, "HITS", counter.expires_at, counter.cap))
        activity_sk = f"ACT#{activity['at']}#{activity['activity_id']}"
        items.append(self._put({"PK": owner_pk, "SK": activity_sk, **activity}, NEW_ITEM))
        items.extend(self._put(self._outbox_item(e)) for e in events)
        if owner_pk.startswith("LEAD#"):
            # Only for a lead that exists: an open or click of an erased lead's old email writes nothing.
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": serialize({"PK": owner_pk, "SK": "PROFILE"}),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                }
            )
        reasons = self._transact(items)
        if reasons is None:
            return True
        if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
            return False
        raise StorageUnavailable(f"unexpected cancellation: {reasons}")

    def record_announced(
        self, lead_id: str, activity: dict[str, Any], source: str, counter: HitCounter | None = None
    ) -> bool:
        """One activity of a known lead, written as its own event (issue 17: ~2 write units, where a
        transaction of counter, activity, outbox event and profile check took ~8).

        Three plain calls: the profile's key read (an unknown or erased lead: nothing written, as
        the transaction's check did), the hit counter's capped count, the activity's conditional
        put. The activity carries ``event_source``: the outbox relay publishes its stream record as
        ``activity.recorded`` with the activity id as the event id (``services.outbox``), so a
        redelivered record is the same event and consumers de-duplicate it.
        """
        try:
            profile = serialize({"PK": f"LEAD#{lead_id}", "SK": "PROFILE"})
            found = self.client.get_item(TableName=self.table, Key=profile, ProjectionExpression="PK")
            if "Item" not in found:
                return False
            if counter is not None:
                count = self._capped_count(counter.key, "HITS", counter.expires_at, counter.cap)["Update"]
                if not self._conditional(lambda: self.client.update_item(**count)):
                    return False
            item = {
                "PK": f"LEAD#{lead_id}",
                "SK": f"ACT#{activity['at']}#{activity['activity_id']}",
                **activity,
                "event_source": source,
            }
            return self._conditional(
                lambda: self.client.put_item(TableName=self.table, Item=serialize(item), ConditionExpression=NEW_ITEM)
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in UNAVAILABLE_CODES:
                raise StorageUnavailable(code) from error
            raise

    def _conditional(self, call: Callable[[], Any]) -> bool:
        """Run one conditional write: False when its condition failed."""
        try:
            call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def record_feedback(self, write: FeedbackWrite) -> bool:
        """One SES feedback: suppression, unsubscribe (consent withdrawn), activity, events.

        The activity's id is the feedback's own id, so a redelivered or duplicated
        notification is refused by its condition and changes nothing twice.
        """
        at = write.at
        items: list[dict[str, Any]] = []
        if write.activity is not None:
            activity = {"PK": f"LEAD#{write.lead_id}", "SK": f"ACT#{at}#{write.feedback_id}", **write.activity}
            items.append(self._put(activity, NEW_ITEM))
        else:
            expires = int(datetime.fromisoformat(at).timestamp()) + 30 * 86400
            items.append(
                self._put(
                    {"PK": f"FEEDBACK#{write.feedback_id}", "SK": "SEEN", "at": at, "expires_at": expires}, NEW_ITEM
                )
            )
        if write.suppress_reason:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": serialize({"PK": f"SUPPRESS#{write.address_key}", "SK": "SUPPRESS"}),
                        "UpdateExpression": f"{SUPPRESS_UPDATE}, #l = :l",
                        "ExpressionAttributeNames": {**SUPPRESS_NAMES, "#l": "last_feedback"},
                        "ExpressionAttributeValues": serialize(
                            {
                                **suppress_values(write.address_key, write.suppress_reason, at, write.listed_at),
                                ":l": write.feedback_id,
                            }
                        ),
                    }
                }
            )
        if write.unsubscribe and write.lead_id:
            items.extend(self._withdrawal_items(write.lead_id, write))
        items.extend(self._put(self._outbox_item(e)) for e in write.events)
        reasons = self._transact(items)
        if reasons is None:
            return True
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return False  # seen before
        raise StorageUnavailable(f"unexpected cancellation: {reasons}")

    def _withdrawal_items(self, lead_id: str, write: FeedbackWrite) -> list[dict[str, Any]]:
        """A complaint or unsubscribe feedback: the lead's consent withdrawn, and its history entry."""
        at = write.at
        withdrawn = {
            "Update": {
                "TableName": self.table,
                "Key": serialize(lead_key(lead_id)),
                # Withdrawn, and its double opt-in confirmation with it: given again, confirmed again.
                "UpdateExpression": "SET #c = :c REMOVE #cc",
                "ConditionExpression": "attribute_exists(PK)",
                "ExpressionAttributeNames": {"#c": "consent_marketing_email", "#cc": "consent_confirmed_at"},
                "ExpressionAttributeValues": serialize({":c": {"granted": False, "at": at, "source": "complaint"}}),
            }
        }
        history = {
            "PK": f"LEAD#{lead_id}",
            "SK": f"CONSENT#{at}#{write.feedback_id}",
            "purpose": "marketing_email",
            "granted": False,
            "at": at,
            "source": "ses_feedback",
            "reason": write.suppress_reason or "unsubscribe",
        }
        return [withdrawn, self._put(history)]

    # ------------------------------------------------------------------ scoring
    def score_state(self, lead_id: str) -> ScoreState:
        """The lead's profile (None if there is no such lead), its score ledger and version."""
        profile = self.get_lead(lead_id)
        if profile is None:
            return ScoreState(None, [], 0)
        ledger = self._query_prefix(f"LEAD#{lead_id}", "LEDGER#", None, newest_first=False)
        return ScoreState(profile, ledger, int(profile.get("score_version", 0)))

    def apply_score(self, write: ScoreWrite) -> bool:
        """New ledger entries, the score summary and a stage move, if the version is still current."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        fields = score_summary_fields(write.summary, names, values)
        stage = write.stage[1] if write.stage else None
        items: list[dict[str, Any]] = [
            versioned_lead_update(self.table, write.lead_id, fields, names, values, write.expected_version, stage)
        ]
        for entry in write.entries:
            ledger_sk = f"LEDGER#{entry['at']}#{entry['entry_id']}"
            items.append(self._put({"PK": f"LEAD#{write.lead_id}", "SK": ledger_sk, **entry}, NEW_ITEM))
        items.extend(self._put(self._outbox_item(e)) for e in write.events)
        reasons = self._transact(items)
        if reasons is None:
            return True
        if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
            return False
        raise StorageUnavailable(f"unexpected cancellation: {reasons}")

    def lead_ids(self) -> list[str]:
        """Every lead id (a scan of the profiles: for offline jobs such as a rescore)."""
        items = self._all(
            "scan",
            FilterExpression="SK = :p AND begins_with(PK, :l)",
            ProjectionExpression="PK",
            ExpressionAttributeValues=serialize({":p": "PROFILE", ":l": "LEAD#"}),
        )
        return [item["PK"].removeprefix("LEAD#") for item in items]

    def lead_activities(self, lead_id: str) -> list[dict[str, Any]]:
        return self._query_prefix(f"LEAD#{lead_id}", "ACT#", None, newest_first=False)

    def rewrite_ledger(
        self,
        lead_id: str,
        remove: list[dict[str, Any]],
        add: list[dict[str, Any]],
        summary: dict[str, Any],
        stage: str | None,
    ) -> None:
        """Replace ledger entries in batches, then the summary (a rescore; not concurrent-safe by design)."""
        requests = [
            {
                "DeleteRequest": {
                    "Key": serialize({"PK": f"LEAD#{lead_id}", "SK": f"LEDGER#{item['at']}#{item['entry_id']}"})
                }
            }
            for item in remove
        ]
        requests += [
            {
                "PutRequest": {
                    "Item": serialize(
                        {"PK": f"LEAD#{lead_id}", "SK": f"LEDGER#{item['at']}#{item['entry_id']}", **item}
                    )
                }
            }
            for item in add
        ]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: requests[start : start + 25]}
            for attempt in range(8):
                unprocessed = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not unprocessed:
                    break
                pending = unprocessed
                self._sleep(0.05 * 2**attempt)
        names = {"#v": "score_version"}
        values: dict[str, Any] = {":one": 1}
        fields = score_summary_fields(summary, names, values)
        if stage:
            fields += ", " + stage_fields(lead_id, stage, names, values)
        expression = f"SET {fields} ADD #v :one"
        self.client.update_item(
            TableName=self.table,
            Key=serialize(lead_key(lead_id)),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def _all(self, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a Query or Scan, page after page, deserialized."""
        items: list[dict[str, Any]] = []
        while True:
            response = getattr(self.client, operation)(TableName=self.table, **kwargs)
            items.extend(deserialize(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def leads_in_stage(self, stage: str) -> list[str]:
        items = self._all(
            "query",
            IndexName="GSI3",
            KeyConditionExpression="GSI3PK = :p",
            ExpressionAttributeValues=serialize({":p": f"STAGE#{stage}"}),
        )
        return [item["GSI3SK"] for item in items]

    def account_leads(self, domain: str) -> list[dict[str, Any]]:
        return self._all(
            "query",
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :p",
            ExpressionAttributeValues=serialize({":p": f"ACCOUNT#{domain}"}),
        )

    def visitor_activities(self, visitor_id: str) -> list[dict[str, Any]]:
        """What an anonymous visitor did before they became a lead."""
        return self._query_prefix(f"VISITOR#{visitor_id}", "ACT#", None, newest_first=False)

    def visitor_lead(self, visitor_id: str) -> str | None:
        """The lead an anonymous visitor turned out to be, once they submitted a form."""
        response = self.client.get_item(
            TableName=self.table, Key=serialize({"PK": f"VISITOR#{visitor_id}", "SK": "LINK"})
        )
        return deserialize(response["Item"])["lead_id"] if "Item" in response else None

    # ------------------------------------------------------------------ reads
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

    def get_lead(self, lead_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.table, Key=serialize(lead_key(lead_id)))
        return deserialize(response["Item"]) if "Item" in response else None

    def lead_id_for_email(self, email_key: str) -> str | None:
        response = self.client.get_item(
            TableName=self.table, Key=serialize({"PK": f"EMAIL#{email_key}", "SK": "EMAIL"})
        )
        return deserialize(response["Item"])["lead_id"] if "Item" in response else None

    def _query_prefix(self, pk: str, prefix: str, limit: int | None, newest_first: bool) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": serialize({":pk": pk, ":prefix": prefix}),
            "ScanIndexForward": not newest_first,
        }
        found: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(found)
            response = self.client.query(**kwargs)
            found.extend(deserialize(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response or (limit is not None and len(found) >= limit):
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def lead_history(self, lead_id: str, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        activities = self._query_prefix(f"LEAD#{lead_id}", "ACT#", limit, newest_first=True)
        consents = self._query_prefix(f"LEAD#{lead_id}", "CONSENT#", None, newest_first=False)
        return activities, consents

    def recent_leads(self, limit: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """The newest leads, scanning back month by month (GSI2) for up to a year."""
        month = (now or datetime.now()).replace(day=1)
        keys: list[dict[str, Any]] = []
        for _ in range(12):
            response = self.client.query(
                TableName=self.table,
                IndexName="GSI2",
                Limit=limit - len(keys),
                ScanIndexForward=False,
                KeyConditionExpression="GSI2PK = :pk",
                ExpressionAttributeValues=serialize({":pk": f"LEADS#{month:%Y-%m}"}),
            )
            keys.extend({"PK": i["PK"], "SK": i["SK"]} for i in response.get("Items", []))
            if len(keys) >= limit:
                break
            month = (month - timedelta(days=1)).replace(day=1)
        if not keys:
            return []
        response = self.client.batch_get_item(RequestItems={self.table: {"Keys": keys}})
        leads = [deserialize(item) for item in response["Responses"][self.table]]
        return sorted(leads, key=lambda lead: lead.get("created_at", ""), reverse=True)

    def form_stats(self, day: str) -> dict[str, dict[str, int]]:
        items = self._query_prefix(f"STATS#{day}", "FORM#", None, newest_first=False)
        return {
            item["SK"].removeprefix("FORM#"): {k: v for k, v in item.items() if k not in ("PK", "SK")} for item in items
        }
