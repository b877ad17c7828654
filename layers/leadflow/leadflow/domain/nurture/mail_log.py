"""The lead's mail log: its send ledger and the enrollments it holds, and the rules of its changes.

A send is claimed by writing the log over the version read (the store makes that write
conditional): the claim keeps the sends of the last ``RECENT_SENDS`` (the frequency caps' longest
window), adds this one, and may make the log *hold* the enrollment that sent it (its state after
this email: see ``held``). Held enrollments are kept with short keys, so that the log, read and
written whole with every send, stays within one write unit; their message ids are not kept but
worked out (``message_id_for``). Pure: the caller gives ``now``.

A send whose provider call failed ambiguously (a 5xx, a lost answer: it may have gone out) stays
claimed, marked uncertain (``u``: when), until the provider confirms it (``c``: SES's Send event)
or ``CONFIRM_WINDOW`` passes without a confirmation: then it was not taken and may be claimed
again (``claim_state``). README, "Email delivery".

SES publishes a Send event for every email it takes, but only an uncertain send needs one: the
event is written (``c``) only when the send is marked ``u``, or when the event is younger than
``SEND_SETTLED`` (its send may still be marked: written then, to be safe). The SES events queue
holds each event back longer than that, so in AWS nearly no Send event writes (one read each,
where every one was a read and a write: docs/benchmarks.md section 6). That rests on a bound the
nurture service keeps: it marks a send uncertain only within ``UNCERTAIN_MARK_WITHIN`` of the
``SendEmail`` call's start, and gives up otherwise (the claim then stands as sent: at most once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from leadflow.domain.nurture.engine import message_id_for
from leadflow.domain.nurture.state import Enrollment, SentEmail

RECENT_SENDS = timedelta(days=7)
"""How long the mail log keeps a send: the frequency caps' longest window, and far longer than a
claimed send can stay unrecorded on its enrollment (a failed batch is retried within minutes)."""

CONFIRM_WINDOW = timedelta(minutes=15)
"""How long an ambiguous send waits for SES's Send event before it counts as never taken. SES
publishes Send as it takes a message; through SNS and SQS it is applied within seconds."""

UNCERTAIN_MARK_WITHIN = 20.0
"""Seconds after its ``SendEmail`` call began within which an ambiguous send may still be marked
uncertain; later, the mark is not written and the claim stands as sent (never sent twice)."""

SEND_SETTLED = timedelta(seconds=60)
"""When SES took an email this long ago, its send is marked uncertain already if it ever will be:
``UNCERTAIN_MARK_WITHIN`` (20 s), plus the longest a DynamoDB write started then can take to land
under the clients' timeouts (3 attempts of 2 s to connect and 5 s to read, ~3 s of backoff: 24 s),
plus 16 s for clocks. The SES events queue's ``DelaySeconds`` (template.yaml) is longer than this."""

_ISO: dict[datetime, str] = {}
_ISO_LIMIT = 1024


def utc_iso(value: datetime | None) -> str | None:
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

    def claim_state(self, message_id: str, now: datetime) -> str:
        """Whether this email may be claimed: "new" (never claimed), "taken" (claimed and sent, or
        confirmed and counted: never send it again), "confirmed" (an ambiguous send the provider has
        since confirmed: it went out, and is counted as sent once, by the claim that marks it ``k``),
        "unconfirmed" (an ambiguous send waiting for its confirmation: ask again later) or "resend"
        (an ambiguous send never confirmed within ``CONFIRM_WINDOW``: the provider did not take it,
        claim it again)."""
        send = next((s for s in self.sends if s.get("m") == message_id), None)
        if send is None:
            return "new"
        if "u" in send and send.get("c") and not send.get("k"):
            return "confirmed"
        if "u" not in send or send.get("c"):
            return "taken"
        return "unconfirmed" if now - datetime.fromisoformat(send["u"]) < CONFIRM_WINDOW else "resend"

    def confirmation_needed(self, message_id: str, accepted_at: datetime, now: datetime) -> bool:
        """Whether SES's Send event for this email (SES took it at ``accepted_at``) is to be written:
        the send is in the log, not confirmed yet, and marked uncertain, or the event is younger
        than ``SEND_SETTLED`` (the send may yet be marked: confirmed to be safe)."""
        send = next((s for s in self.sends if s.get("m") == message_id), None)
        if send is None or send.get("c"):
            return False
        return "u" in send or now - accepted_at < SEND_SETTLED

    def claim(
        self, message_id: str, record: dict[str, Any], now: datetime, held: Enrollment | None = None
    ) -> tuple[str, MailLog | None]:
        """A claim of this email: its answer (``claim_state``, "new" and "resend" answered
        "claimed") and the log to write over this one's version for it (None: nothing to write)."""
        state = self.claim_state(message_id, now)
        if state in ("taken", "unconfirmed"):
            return state, None
        if state == "confirmed":
            return state, self.marked(message_id, {"k": True})
        return "claimed", self.claimed(message_id, record, now, held)

    def marked(self, message_id: str, change: dict[str, Any]) -> MailLog:
        """The log with fields of this send set (``u``: uncertain since, ``c``: confirmed, ``k``: an
        uncertain send's confirmation counted as sent)."""
        sends = tuple({**s, **change} if s.get("m") == message_id else s for s in self.sends)
        return MailLog(self.version + 1, sends, self.held)

    def times(self) -> tuple[datetime, ...]:
        return tuple(datetime.fromisoformat(send["at"]) for send in self.sends if send.get("at"))

    def claimed(
        self, message_id: str, record: dict[str, Any], now: datetime, held: Enrollment | None = None
    ) -> MailLog:
        """The log once this email is claimed (the next version): the sends of the last
        ``RECENT_SENDS`` and this one (``record``'s fields that are set), and with ``held`` that
        enrollment held in place of an item (an earlier, unconfirmed claim of it replaced). The
        caller checks ``claim_state`` first."""
        since = now - RECENT_SENDS
        sends = [
            s
            for s in self.sends
            if s.get("at") and datetime.fromisoformat(s["at"]) > since and s.get("m") != message_id
        ]
        sends.append({"at": utc_iso(now), "m": message_id, **{k: v for k, v in record.items() if v is not None}})
        holds = dict(self.held)
        if held is not None:
            holds[held.sequence_id] = held_entry(held)
        return MailLog(self.version + 1, tuple(sends), holds)

    def holding(self, enrollment: Enrollment) -> MailLog:
        """The log with a held enrollment's new state (an open or click marked on it)."""
        return MailLog(self.version + 1, self.sends, {**self.held, enrollment.sequence_id: held_entry(enrollment)})

    def released(self, message_id: str) -> MailLog:
        """The log without this send's claim (the provider refused before sending: a later try may send)."""
        return MailLog(self.version + 1, tuple(s for s in self.sends if s.get("m") != message_id), self.held)

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> MailLog:
        if not item:
            return cls()
        held = {str(k): dict(v) for k, v in (item.get("held") or {}).items()}
        return cls(int(item.get("v", 0)), tuple(dict(send) for send in item.get("sends") or ()), held)


def held_entry(enrollment: Enrollment) -> dict[str, Any]:
    """An active enrollment as the mail log holds it: short keys (the log is read and written whole
    with every send, and stays within one write unit); message ids are not stored, they are
    ``message_id_for`` of lead, sequence, entry and step."""
    emails = []
    for e in enrollment.emails:
        email: dict[str, Any] = {"p": e.step_id, "at": utc_iso(e.sent_at)}
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
        "in": utc_iso(enrollment.entered_at),
        "ss": utc_iso(enrollment.step_started_at),
        "due": utc_iso(enrollment.due_at),
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
