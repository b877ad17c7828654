"""Enrollments, the send ledger, sequence versions and the shared send rate, in the LeadsTable.

Items (see docs/data-model.md):
- enrollment ``LEAD#<lead>`` / ``ENR#<sequence>``: step, status, ``due_at``; while active it
  carries ``GSI4PK=DUE#<shard>``, ``GSI4SK=<due_at>#<lead>#<sequence>`` so ticks read what is
  due shard by shard, in parallel;
- mail log ``LEAD#<lead>`` / ``MAIL``: the lead's send ledger: every marketing email of the
  last 7 days (message id, time, sequence, step) and a version. A send is claimed by one
  conditional write of this small item (its version unchanged since the batch read it, the
  message id not in it) before SES is called, so a retried batch never sends one step twice,
  frequency caps hold across sequences, and an unsubscribe (which bumps the version) stops the
  very next send. ``held`` maps a sequence id to an enrollment the log *holds* instead of an
  enrollment item (written by the same claim: see ``NurtureService``): one that sent an email
  and waits at a step that lapses quietly, so it needs no item, no due-index entry and no write
  to end;
- shard lease ``NURTURE#LEASE`` / ``DUE#<shard>``: which tick works a shard of the due index now;
- sequence version ``SEQ#<id>`` / ``V#<content hash>`` (number, definition) and the head
  ``SEQ#<id>`` / ``HEAD`` (the last number given);
- send-rate window ``SESRATE#<epoch second>`` / ``RATE`` shared by every sender.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from time import monotonic
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from leadflow.adapters.dynamo_expressions import (
    SUPPRESSED_PK,
    SUPPRESSION_INDEX,
    lead_key,
    suppress_update,
)
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.dynamo_table import storage_errors
from leadflow.adapters.nurture.broadcasts import BroadcastRuns
from leadflow.adapters.nurture.due import DueIndex
from leadflow.adapters.nurture.items import (
    MAIL_SK,
    enrollment_from,
    enrollment_item,
    enrollment_key,
    mail_item,
    mail_key,
)
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.nurture import Enrollment
from leadflow.domain.nurture.mail_log import MailLog, utc_iso
from leadflow.ports.nurture import NurtureStore, ProfileChange

WRITE_WORKERS = 16
"""Conditional writes of a broadcast page run this many at a time (BatchWriteItem takes no conditions)."""


def profile_update(change: ProfileChange) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The update expression of a profile change, with its attribute names and values."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    clauses = []
    for verb, changes, joiner in (
        ("SET", change.assign, " = "),
        ("ADD", change.add_to, " "),
        ("DELETE", change.remove_from, " "),
    ):
        parts = []
        for attribute, value in changes.items():
            n = len(names)
            names[f"#a{n}"] = attribute
            values[f":v{n}"] = value
            parts.append(f"#a{n}{joiner}:v{n}")
        if parts:
            clauses.append(f"{verb} {', '.join(parts)}")
    return " ".join(clauses), names, values


class DynamoNurtureStore(DueIndex, BroadcastRuns):
    """What the nurture functions read and write (the lead table, as ``DynamoLeadStore``): the
    ``NurtureStore`` port on DynamoDB."""

    # ------------------------------------------------------------------ reading
    # Complexity C (11), kept: builds the keys of three kinds of item, then sorts the answers by kind.
    def load_batch(
        self, pairs: list[tuple[str, str]], mail: bool = True
    ) -> tuple[dict[tuple[str, str], tuple[Enrollment, int]], dict[str, dict[str, Any]], dict[str, MailLog]]:
        """Enrollments, the profiles of their leads and (with ``mail``) their mail logs, in one
        BatchGetItem per 100 keys. A lead without a mail log gets an empty one (version 0)."""
        leads = {lead for lead, _ in pairs}
        keys = [enrollment_key(lead, seq) for lead, seq in pairs]
        keys += [lead_key(lead) for lead in leads]
        if mail:
            keys += [mail_key(lead) for lead in leads]
        enrollments: dict[tuple[str, str], tuple[Enrollment, int]] = {}
        profiles: dict[str, dict[str, Any]] = {}
        logs: dict[str, MailLog] = dict.fromkeys(leads, MailLog()) if mail else {}
        for item in self.batch_get(keys):
            lead = item["PK"].removeprefix("LEAD#")
            if item["SK"] == "PROFILE":
                profiles[lead] = item
            elif item["SK"] == MAIL_SK:
                logs[lead] = MailLog.from_item(item)
            elif item["SK"].startswith("ENR#"):
                enrollment, rev = enrollment_from(item)
                enrollments[(enrollment.lead_id, enrollment.sequence_id)] = (enrollment, rev)
        return enrollments, profiles, logs

    def enrollments_of(
        self, pairs: list[tuple[str, str]], mail: bool = False
    ) -> tuple[dict[tuple[str, str], tuple[Enrollment, int]], dict[str, MailLog]]:
        """The stored enrollments of these (lead, sequence) pairs and (with ``mail``) the leads'
        mail logs (BatchGetItem, 100 keys a call): what a broadcast's scan did not bring (``partial``)."""
        keys = [enrollment_key(lead, seq) for lead, seq in pairs]
        leads = {lead for lead, _ in pairs}
        if mail:
            keys += [mail_key(lead) for lead in leads]
        found = {}
        logs: dict[str, MailLog] = dict.fromkeys(leads, MailLog()) if mail else {}
        for item in self.batch_get(keys):
            if item["SK"] == MAIL_SK:
                logs[item["PK"].removeprefix("LEAD#")] = MailLog.from_item(item)
                continue
            enrollment, rev = enrollment_from(item)
            found[(enrollment.lead_id, enrollment.sequence_id)] = (enrollment, rev)
        return found, logs

    def suppressed(self, address_keys: Iterable[str]) -> set[str]:
        """Which of these address keys (keyed hashes, ``domain.gdpr.address_hash``) are listed."""
        return {item["PK"].removeprefix("SUPPRESS#") for item in self.suppression_items(address_keys)}

    def suppression_items(self, address_keys: Iterable[str]) -> list[dict[str, Any]]:
        return self.batch_get({"PK": f"SUPPRESS#{key}", "SK": "SUPPRESS"} for key in address_keys)

    def unsuppress_erased(self, address_key: str) -> None:
        """Take an address off the list if only an erasure put it there (new consent since)."""
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=serialize({"PK": f"SUPPRESS#{address_key}", "SK": "SUPPRESS"}),
                ConditionExpression="#r = :r",
                ExpressionAttributeNames={"#r": "reason"},
                ExpressionAttributeValues=serialize({":r": "erased"}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return

    def enrollment(self, lead_id: str, sequence_id: str) -> tuple[Enrollment, int] | None:
        with storage_errors():
            item = self.client.get_item(
                TableName=self.table, Key=serialize(enrollment_key(lead_id, sequence_id)), ConsistentRead=True
            ).get("Item")
        return enrollment_from(deserialize(item)) if item else None

    def lead_enrollments(self, lead_id: str) -> list[tuple[Enrollment, int]]:
        return [enrollment_from(i) for i in self._query_prefix(f"LEAD#{lead_id}", "ENR#", None, newest_first=False)]

    def recent_activities(self, lead_id: str, limit: int = 200) -> list[dict[str, Any]]:
        return self._query_prefix(f"LEAD#{lead_id}", "ACT#", limit, newest_first=True)

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
    def put_enrollment(self, enrollment: Enrollment, rev: int, new: bool = False) -> bool:
        """Store the enrollment if nobody else changed it since ``rev`` was read (False if they did).

        One conditional PutItem (no transaction: no other item must change with it). ``rev`` 0
        with ``new`` means the item must not exist yet."""
        item = enrollment_item(enrollment, self.shards, rev + 1)
        put: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if rev == 0:  # stored items have rev >= 1: 0 is a new one (or one a mail log held)
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "#r = :r"
            put["ExpressionAttributeNames"] = {"#r": "rev"}
            put["ExpressionAttributeValues"] = serialize({":r": rev})
        return self._conditional(lambda: self.client.put_item(**put))

    def put_enrollments(self, enrollments: Sequence[tuple[Enrollment, int | None]]) -> int:
        """A broadcast's enrollments, each written conditionally: a new one only if the lead has
        none (``None``), a re-entry only over the ended enrollment read at ``rev``. Two broadcasts
        of one sequence, or a tick that moved an enrollment on meanwhile, are never overwritten.

        Returns:
            How many were written (the others were taken by someone else first).
        """
        if not enrollments:
            return 0

        def write(pair: tuple[Enrollment, int | None]) -> bool:
            enrollment, rev = pair
            return self.put_enrollment(enrollment, rev or 0, new=rev is None)

        with ThreadPoolExecutor(max_workers=min(WRITE_WORKERS, len(enrollments))) as pool:
            return sum(pool.map(write, enrollments))

    # ------------------------------------------------------------------ the send ledger (mail log)
    def claim_send(  # noqa: PLR0917 - the claim: whose, which email, what, when, over which read
        self,
        lead_id: str,
        message_id: str,
        record: dict[str, Any],
        now: datetime,
        log: MailLog,
        held: Enrollment | None = None,
    ) -> tuple[str, MailLog]:
        """Claim one email before SES is called: one conditional write of the lead's mail log.

        Returns "claimed" (send it), "taken" (this message id was claimed before: never send it
        again), "confirmed" (an ambiguous send of it SES has since confirmed: count it as sent, this
        once), "unconfirmed" (its send failed ambiguously and awaits SES's Send event: ask again
        later; ``MailLog.claim_state``) or "changed" (the log changed since the batch read it:
        another sequence emailed the lead, or the lead unsubscribed; decide again with fresh data).
        The write succeeds only over the version read, so frequency caps hold across sequences and
        an unsubscribe (``touch_mail``) that lands before the claim stops the send. The log as
        written comes back with "claimed" and "confirmed" (the next claim in the batch starts from it).

        With ``held``, the same write makes the log hold that enrollment (its state after this
        email) in place of an enrollment item."""
        state, written = log.claim(message_id, record, now, held)
        if written is None:
            return state, log
        return (state, written) if self._put_log(lead_id, log.version, written) else ("changed", log)

    def hold(self, enrollment: Enrollment, log: MailLog) -> bool:
        """Write a held enrollment's new state (an open or click marked on it) over the log read."""
        return self._put_log(enrollment.lead_id, log.version, log.holding(enrollment))

    def release_send(self, lead_id: str, message_id: str) -> None:
        """SES refused before sending (throttled): take the claim back so a later try may send.

        Re-read and rewrite until it holds (another claim or an unsubscribe may bump the log)."""
        for _ in range(5):
            log = self.mail_log(lead_id)
            if not log.has(message_id):
                return
            if self._put_log(lead_id, log.version, log.released(message_id)):
                return

    def mark_uncertain(self, lead_id: str, message_id: str, now: datetime, until: float) -> bool:
        """The provider call failed ambiguously: keep the claim, noting since when (no write started
        after ``until``, a ``time.monotonic()`` value: ``MailLog.confirmation_needed`` relies on it)."""
        for _ in range(5):
            log = self.mail_log(lead_id)
            if not log.has(message_id) or monotonic() >= until:
                return False
            if self._put_log(lead_id, log.version, log.marked(message_id, {"u": utc_iso(now)})):
                return True
        return False

    def confirm_send(self, lead_id: str, message_id: str, accepted_at: datetime, now: datetime) -> bool:
        """SES's Send event for this email arrived: marked taken (never sent again) when the send is
        uncertain or may yet be marked so (``MailLog.confirmation_needed``); else only read."""
        for _ in range(5):
            log = self.mail_log(lead_id)
            if not log.confirmation_needed(message_id, accepted_at, now):
                return False
            if self._put_log(lead_id, log.version, log.marked(message_id, {"c": True})):
                return True
        raise StorageUnavailable("the mail log kept changing while a send was confirmed")  # the event is retried

    def mail_log(self, lead_id: str) -> MailLog:
        with storage_errors():
            key = serialize(mail_key(lead_id))
            item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return MailLog.from_item(deserialize(item) if item else None)

    def touch_mail(self, lead_id: str) -> None:
        """Bump the mail log's version, so any send claimed on an older read fails (an unsubscribe)."""
        with storage_errors():
            self.client.update_item(
                TableName=self.table,
                Key=serialize(mail_key(lead_id)),
                UpdateExpression="ADD #v :one SET #k = :k",
                ExpressionAttributeNames={"#v": "v", "#k": "kind"},
                ExpressionAttributeValues=serialize({":one": 1, ":k": "mail"}),
            )

    def _put_log(self, lead_id: str, version: int, log: MailLog) -> bool:
        """Write ``log`` over the version read (0: there must be no log yet); False if it changed."""
        put: dict[str, Any] = {"TableName": self.table, "Item": serialize(mail_item(lead_id, log))}
        if version == 0:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "#v = :v"
            put["ExpressionAttributeNames"] = {"#v": "v"}
            put["ExpressionAttributeValues"] = serialize({":v": version})
        return self._conditional(lambda: self.client.put_item(**put))

    # ------------------------------------------------------------------ the lead
    def update_profile(self, lead_id: str, change: ProfileChange) -> None:
        """Update the lead's profile (it must exist) and, in the same transaction, store the events
        that announce it; without events, one plain update (a transaction bills twice)."""
        if not change:
            return
        expression, names, values = profile_update(change)
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize(lead_key(lead_id)),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize(values),
        }
        if not change.events:
            self._conditional(lambda: self.client.update_item(**update))  # a lead erased meanwhile: nothing
            return
        items: list[dict[str, Any]] = [{"Update": update}]
        items += [{"Put": {"TableName": self.table, "Item": serialize(self._outbox_item(e))}} for e in change.events]
        self._transact(items)

    def record_consent(self, lead_id: str, record_id: str, consent: Mapping[str, Any]) -> None:
        """One consent record, ``LEAD#<lead>`` / ``CONSENT#<at>#<record id>``."""
        self._put_new([{"PK": f"LEAD#{lead_id}", "SK": f"CONSENT#{consent['at']}#{record_id}", **consent}])

    def suppress(self, address_key: str, reason: str, at: str) -> None:
        """List an address key (its keyed hash, never the address) as suppressed; the first reason is kept."""
        with storage_errors():
            self.client.update_item(**suppress_update(self.table, address_key, reason, at))

    def suppressions_listed(self, since: str | None, most: int) -> list[str] | None:
        """The address keys (keyed hashes) of the suppressions listed at or after ``since`` (an ISO time; None: all),
        from GSI2 (keys only: ~100 bytes each, 0.5 read units per 4 KB); None when there are more
        than ``most`` (the caller then reads addresses one by one)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": SUPPRESSION_INDEX,
            "KeyConditionExpression": "GSI2PK = :p" + (" AND GSI2SK >= :s" if since else ""),
            "ExpressionAttributeValues": serialize({":p": SUPPRESSED_PK, **({":s": since} if since else {})}),
        }
        keys: list[str] = []
        while True:
            answer = self.client.query(**kwargs)
            keys += [str(item["PK"]["S"]).removeprefix("SUPPRESS#") for item in answer.get("Items", [])]
            if len(keys) > most:
                return None
            if not answer.get("LastEvaluatedKey"):
                return keys
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


if TYPE_CHECKING:  # mypy checks that the store keeps to the port
    _store: type[NurtureStore] = DynamoNurtureStore
