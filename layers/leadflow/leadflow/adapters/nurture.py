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

import hashlib
import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.dynamo import (
    SUPPRESS_NAMES,
    SUPPRESS_UPDATE,
    SUPPRESSED_PK,
    SUPPRESSION_INDEX,
    DynamoLeadStore,
    deserialize,
    lead_key,
    serialize,
    suppress_values,
)
from leadflow.domain.events import DomainEvent
from leadflow.domain.nurture import Enrollment, SentEmail, message_id_for

MAIL_SK = "MAIL"

DEFAULT_SHARDS = 16
DUE_INDEX = "GSI4"
RECENT_SENDS = timedelta(days=7)
"""How long the mail log keeps a send: the frequency caps' longest window, and far longer than a
claimed send can stay unrecorded on its enrollment (a failed batch is retried within minutes)."""
WRITE_WORKERS = 16
"""Conditional writes of a broadcast page run this many at a time (BatchWriteItem takes no conditions)."""


def shard_of(lead_id: str, shards: int) -> int:
    return int(hashlib.sha256(lead_id.encode()).hexdigest()[:8], 16) % shards


_ISO: dict[datetime, str] = {}
_ISO_LIMIT = 1024


def _iso(value: datetime | None) -> str | None:
    """``value`` in UTC, ISO 8601.

    A batch writes the same few instants (its ``now``, the waits' ends) for every lead, several
    times each: the text of a UTC datetime is kept (two UTC datetimes are equal exactly when their
    fields are, so equal ones have the same text). Others (another zone, naive, a subclass) are
    converted each time."""
    if value is None:
        return None
    if type(value) is not datetime or value.tzinfo is not UTC:
        return value.astimezone(UTC).isoformat()
    text = _ISO.get(value)
    if text is None:
        if len(_ISO) >= _ISO_LIMIT:
            _ISO.clear()
        text = _ISO[value] = value.isoformat()
    return text


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class MailLog:
    """The lead's mail log as read: its version, its recent sends (``{"at", "m", "s", "p"}`` each) and
    the enrollments it holds (by sequence id, as ``held_entry`` writes them)."""

    version: int = 0
    sends: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    held: dict[str, dict[str, Any]] = field(default_factory=dict)

    def holds(self, sequence_id: str, entry: int, step_id: str) -> bool:
        """Whether the log holds this entry of the sequence at this step."""
        held = self.held.get(sequence_id)
        return held is not None and int(held["e"]) == entry and held["st"] == step_id

    def held_enrollment(self, lead_id: str, sequence_id: str) -> Enrollment | None:
        entry = self.held.get(sequence_id)
        return held_from(lead_id, sequence_id, entry) if entry else None

    def has(self, message_id: str) -> bool:
        return any(send.get("m") == message_id for send in self.sends)

    def times(self) -> tuple[datetime, ...]:
        return tuple(datetime.fromisoformat(send["at"]) for send in self.sends if send.get("at"))

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> MailLog:
        if not item:
            return cls()
        held = {str(k): dict(v) for k, v in (item.get("held") or {}).items()}
        return cls(int(item.get("v", 0)), tuple(dict(send) for send in item.get("sends") or ()), held)


@dataclass
class ScannedPage:
    """One page of a broadcast's scan: the profiles found, the enrollments and mail logs of their
    leads that came with them, the leads whose items began before the scan's start key (their
    enrollment and log are not here: read them), and the key to go on from (None: the end)."""

    after: dict[str, Any] | None
    profiles: list[dict[str, Any]] = field(default_factory=list)
    enrollments: dict[tuple[str, str], tuple[Enrollment, int]] = field(default_factory=dict)
    logs: dict[str, MailLog] = field(default_factory=dict)
    partial: set[str] = field(default_factory=set)


def held_entry(enrollment: Enrollment) -> dict[str, Any]:
    """An active enrollment as the mail log holds it: short keys (the log is read and written whole
    with every send, and stays within one write unit); message ids are not stored, they are
    ``message_id_for`` of lead, sequence, entry and step."""
    emails = []
    for e in enrollment.emails:
        email: dict[str, Any] = {"p": e.step_id, "at": _iso(e.sent_at)}
        if e.opened:
            email["o"] = True
        if e.clicked:
            email["c"] = True
        if e.link_tags:
            email["t"] = list(e.link_tags)
        emails.append(email)
    return {
        "v": enrollment.version,
        "e": enrollment.entry,
        "st": enrollment.step_id,
        "in": _iso(enrollment.entered_at),
        "ss": _iso(enrollment.step_started_at),
        "due": _iso(enrollment.due_at),
        "em": emails,
    }


def held_from(lead_id: str, sequence_id: str, entry: dict[str, Any]) -> Enrollment:
    """The enrollment a mail log entry holds, as stored (``NurtureService`` works out what it is now)."""
    number = int(entry["e"])
    return Enrollment(
        lead_id=lead_id,
        sequence_id=sequence_id,
        version=int(entry["v"]),
        entry=number,
        step_id=str(entry["st"]),
        status="active",
        entered_at=datetime.fromisoformat(entry["in"]),
        step_started_at=datetime.fromisoformat(entry["ss"]),
        due_at=_dt(entry.get("due")),
        emails=tuple(
            SentEmail(
                step_id=str(e["p"]),
                message_id=message_id_for(lead_id, sequence_id, number, str(e["p"])),
                sent_at=datetime.fromisoformat(e["at"]),
                opened=bool(e.get("o")),
                clicked=bool(e.get("c")),
                link_tags=tuple(e.get("t") or ()),
            )
            for e in entry.get("em") or ()
        ),
    )


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
        self.scan_page_limit: int | None = None
        """Items a broadcast's Scan reads per page (DynamoDB's 1 MB when None)."""

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
        self, pairs: list[tuple[str, str]], mail: bool = True
    ) -> tuple[dict[tuple[str, str], tuple[Enrollment, int]], dict[str, dict[str, Any]], dict[str, MailLog]]:
        """Enrollments, the profiles of their leads and (with ``mail``) their mail logs, in one
        BatchGetItem per 100 keys. A lead without a mail log gets an empty one (version 0)."""
        leads = {lead for lead, _ in pairs}
        keys = [{"PK": f"LEAD#{lead}", "SK": f"ENR#{seq}"} for lead, seq in pairs]
        keys += [lead_key(lead) for lead in leads]
        if mail:
            keys += [{"PK": f"LEAD#{lead}", "SK": MAIL_SK} for lead in leads]
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
        keys = [{"PK": f"LEAD#{lead}", "SK": f"ENR#{seq}"} for lead, seq in pairs]
        leads = {lead for lead, _ in pairs}
        if mail:
            keys += [{"PK": f"LEAD#{lead}", "SK": MAIL_SK} for lead in leads]
        found = {}
        logs: dict[str, MailLog] = dict.fromkeys(leads, MailLog()) if mail else {}
        for item in self.batch_get(keys):
            if item["SK"] == MAIL_SK:
                logs[item["PK"].removeprefix("LEAD#")] = MailLog.from_item(item)
                continue
            enrollment, rev = enrollment_from(item)
            found[(enrollment.lead_id, enrollment.sequence_id)] = (enrollment, rev)
        return found, logs

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

    def recent_activities(self, lead_id: str, limit: int = 200) -> list[dict[str, Any]]:
        return self._query_prefix(f"LEAD#{lead_id}", "ACT#", limit, newest_first=True)

    def scan_leads(
        self, sequence_id: str, segment: int, segments: int, start: dict[str, Any] | None = None
    ) -> Iterable[ScannedPage]:
        """Every lead profile, with the lead's enrollment in ``sequence_id`` and its mail log, page by
        page, in one of ``segments`` parallel scan segments, from ``start`` (a page's ``after``).

        A Scan is billed for every item it reads, returned or not, and a lead's items come
        together, in key order: its enrollment (``ENR#...``) and mail log (``MAIL``) just before its
        profile (``PROFILE``, the last of its keys). So the one scan that finds the segment's
        members returns their enrollments and logs too, for nothing more: no ``BatchGetItem`` of
        two items per member (1 read unit per lead). A lead whose items a page boundary splits is
        completed from the next page; one whose items began before ``start`` (where an earlier
        invocation stopped) is marked ``partial``: the caller reads its enrollment and log."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "SK IN (:p, :m, :e)",
            "ExpressionAttributeValues": serialize({":p": "PROFILE", ":m": MAIL_SK, ":e": f"ENR#{sequence_id}"}),
            "Segment": segment,
            "TotalSegments": segments,
        }
        cut = str(deserialize(start)["PK"]) if start else None
        if start:
            kwargs["ExclusiveStartKey"] = start
        if self.scan_page_limit:
            kwargs["Limit"] = self.scan_page_limit
        lead_pk, carried = cut, dict[str, dict[str, Any]]()
        while True:
            answer = self.client.scan(**kwargs)
            page = ScannedPage(after=answer.get("LastEvaluatedKey"))
            for raw in answer.get("Items", []):
                item = deserialize(raw)
                if item["PK"] != lead_pk:
                    lead_pk, carried = item["PK"], {}
                if item["SK"] != "PROFILE":
                    carried[item["SK"]] = item
                    continue
                lead = str(item["PK"]).removeprefix("LEAD#")
                page.profiles.append(item)
                page.logs[lead] = MailLog.from_item(carried.get(MAIL_SK))
                stored = carried.get(f"ENR#{sequence_id}")
                if stored is not None:
                    page.enrollments[(lead, sequence_id)] = enrollment_from(stored)
                if item["PK"] == cut:
                    page.partial.add(lead)
            yield page
            if not page.after:
                return
            kwargs["ExclusiveStartKey"] = page.after

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

    def _conditional(self, call: Any) -> bool:
        """Run one conditional write: False when its condition failed."""
        try:
            call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

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
        again) or "changed" (the log changed since the batch read it: another sequence emailed
        the lead, or the lead unsubscribed; decide again with fresh data). The write succeeds
        only over the version read, so frequency caps hold across sequences and an unsubscribe
        (``touch_mail``) that lands before the claim stops the send. The log as written comes
        back with "claimed" (the next claim in the batch starts from it).

        With ``held``, the same write makes the log hold that enrollment (its state after this
        email) in place of an enrollment item."""
        if log.has(message_id):
            return "taken", log
        since = now - RECENT_SENDS
        sends = [s for s in log.sends if s.get("at") and datetime.fromisoformat(s["at"]) > since]
        sends.append({"at": _iso(now), "m": message_id, **{k: v for k, v in record.items() if v is not None}})
        holds = dict(log.held)
        if held is not None:
            holds[held.sequence_id] = held_entry(held)
        if self._put_log(lead_id, log.version, sends, holds):
            return "claimed", MailLog(log.version + 1, tuple(sends), holds)
        return "changed", log

    def hold(self, enrollment: Enrollment, log: MailLog) -> bool:
        """Write a held enrollment's new state (an open or click marked on it) over the log read."""
        holds = {**log.held, enrollment.sequence_id: held_entry(enrollment)}
        return self._put_log(enrollment.lead_id, log.version, list(log.sends), holds)

    def release_send(self, lead_id: str, message_id: str) -> None:
        """SES refused before sending (throttled): take the claim back so a later try may send.

        Re-read and rewrite until it holds (another claim or an unsubscribe may bump the log)."""
        for _ in range(5):
            log = self.mail_log(lead_id)
            if not log.has(message_id):
                return
            if self._put_log(lead_id, log.version, [s for s in log.sends if s.get("m") != message_id], log.held):
                return

    def mail_log(self, lead_id: str) -> MailLog:
        item = self.client.get_item(
            TableName=self.table, Key=serialize({"PK": f"LEAD#{lead_id}", "SK": MAIL_SK}), ConsistentRead=True
        ).get("Item")
        return MailLog.from_item(deserialize(item) if item else None)

    def touch_mail(self, lead_id: str) -> None:
        """Bump the mail log's version, so any send claimed on an older read fails (an unsubscribe)."""
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"LEAD#{lead_id}", "SK": MAIL_SK}),
            UpdateExpression="ADD #v :one SET #k = :k",
            ExpressionAttributeNames={"#v": "v", "#k": "kind"},
            ExpressionAttributeValues=serialize({":one": 1, ":k": "mail"}),
        )

    def _put_log(
        self, lead_id: str, version: int, sends: list[dict[str, Any]], held: dict[str, dict[str, Any]]
    ) -> bool:
        item: dict[str, Any] = {
            "PK": f"LEAD#{lead_id}",
            "SK": MAIL_SK,
            "kind": "mail",
            "v": version + 1,
            "sends": sends,
        }
        if held:
            item["held"] = held
        put: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if version == 0:
            put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put["ConditionExpression"] = "#v = :v"
            put["ExpressionAttributeNames"] = {"#v": "v"}
            put["ExpressionAttributeValues"] = serialize({":v": version})
        return self._conditional(lambda: self.client.put_item(**put))

    # ------------------------------------------------------------------ the lead
    def update_profile(
        self,
        lead_id: str,
        expression: str,
        names: dict[str, str],
        values: dict[str, Any],
        events: Sequence[DomainEvent] = (),
    ) -> None:  # type: ignore[assignment]
        """Update the lead's profile (it must exist) and, in the same transaction, store the events
        that announce it; without events, one plain update (a transaction bills twice)."""
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize(lead_key(lead_id)),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": names,
            **({"ExpressionAttributeValues": serialize(values)} if values else {}),
        }
        if not events:
            self._conditional(lambda: self.client.update_item(**update))  # a lead erased meanwhile: nothing
            return
        items: list[dict[str, Any]] = [{"Update": update}]
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
            UpdateExpression=SUPPRESS_UPDATE,
            ExpressionAttributeNames=SUPPRESS_NAMES,
            ExpressionAttributeValues=serialize(suppress_values(email_key, reason, at, at)),
        )

    def suppressions_listed(self, since: str | None, most: int) -> list[str] | None:
        """The address keys of the suppressions listed at or after ``since`` (an ISO time; None: all),
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

    # ------------------------------------------------------------------ the shared send rate
    def take_send_slots(self, wanted: int, rate: int, now: float) -> int:
        """Up to ``wanted`` sends of the current second's ``rate`` (shared by every worker).

        A refused take answers the counter as it is (``ReturnValuesOnConditionCheckFailure``), so
        the next try takes exactly what is left, and a full second costs one refused write, not
        one per size tried (every refused conditional write is billed)."""
        second = int(now)
        take = wanted
        for _ in range(3):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=serialize({"PK": f"SESRATE#{second}", "SK": "RATE"}),
                    UpdateExpression="ADD #n :k SET #e = :e",
                    ConditionExpression="attribute_not_exists(#n) OR #n <= :room",
                    ExpressionAttributeNames={"#n": "n", "#e": "expires_at"},
                    ExpressionAttributeValues=serialize({":k": take, ":e": second + 120, ":room": rate - take}),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return take
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                current = error.response.get("Item")
                # What is left of the second; an endpoint that does not answer the item: try smaller.
                take = min(take, rate - int(deserialize(current).get("n", 0))) if current is not None else take // 2
                if take <= 0:
                    return 0
        return 0

    # ------------------------------------------------------------------ tick leases
    def lease_shard(self, shard: int, holder: str, now: datetime, hold: timedelta) -> bool:
        """Hold one shard of the due index for one tick until ``now + hold`` (renewed page by page).

        False when another tick holds it and its lease has not run out: overlapping ticks (a
        tick every 5 minutes while a long wave runs) then leave the shard to the one working it."""
        return self._conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key=serialize({"PK": "NURTURE#LEASE", "SK": f"DUE#{shard}"}),
                UpdateExpression="SET #h = :h, #u = :u",
                ConditionExpression="attribute_not_exists(#h) OR #h = :h OR #u < :now",
                ExpressionAttributeNames={"#h": "holder", "#u": "until"},
                ExpressionAttributeValues=serialize(
                    {":h": holder, ":u": int((now + hold).timestamp()), ":now": int(now.timestamp())}
                ),
            )
        )

    def release_shard(self, shard: int, holder: str) -> None:
        """The tick is done with the shard: the next one may take it at once."""
        self._conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key=serialize({"PK": "NURTURE#LEASE", "SK": f"DUE#{shard}"}),
                UpdateExpression="SET #u = :zero",
                ConditionExpression="#h = :h",
                ExpressionAttributeNames={"#h": "holder", "#u": "until"},
                ExpressionAttributeValues=serialize({":h": holder, ":zero": 0}),
            )
        )

    # ------------------------------------------------------------------ broadcast runs
    def record_broadcast(self, sequence_id: str, run: str, counts: dict[str, int], parts_done: int) -> None:
        """Add one part's counts to the run's item (``SEQ#<id>`` / ``BROADCAST#<run>``): its progress."""
        names = {f"#c{i}": key for i, key in enumerate(counts)}
        values: dict[str, Any] = {f":c{i}": value for i, value in enumerate(counts.values())}
        names["#d"] = "parts_done"
        values[":d"] = parts_done
        additions = ", ".join(f"#c{i} :c{i}" for i in range(len(counts)))
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"SEQ#{sequence_id}", "SK": f"BROADCAST#{run}"}),
            UpdateExpression=f"ADD {additions}, #d :d" if counts else "ADD #d :d",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def delete_item(self, pk: str, sk: str) -> None:
        """Take a claim back (a broadcast hop whose invocation could not be started)."""
        self.client.delete_item(TableName=self.table, Key=serialize({"PK": pk, "SK": sk}))

    def broadcast_run(self, sequence_id: str, run: str) -> dict[str, Any] | None:
        """The run's item: when it was started, its parts, and the counts so far."""
        item = self.client.get_item(
            TableName=self.table,
            Key=serialize({"PK": f"SEQ#{sequence_id}", "SK": f"BROADCAST#{run}"}),
            ConsistentRead=True,
        ).get("Item")
        return deserialize(item) if item else None


class LambdaBroadcastParts:
    """Invokes the nurture plan function asynchronously with one part (or the next hop) of a broadcast."""

    def __init__(self, function_name: str, client: Any = None) -> None:
        self.function_name = function_name
        self._client = client

    def invoke(self, payload: dict[str, Any]) -> None:
        if self._client is None:
            from leadflow.adapters.aws import client

            self._client = client("lambda")
        self._client.invoke(
            FunctionName=self.function_name,
            InvocationType="Event",
            Payload=json.dumps(payload, separators=(",", ":")).encode(),
        )
