"""In-memory nurture adapters: the ``NurtureStore`` port in dicts, and fakes of the sender, the
due-now queue, the clock and the broadcast parts. One implementation that the unit tests and the
benchmarks share (``bench/nurture_step_logic.py``), so what they drive is what the port promises.

``InMemoryNurtureStore`` keeps the rules the DynamoDB store keeps: every enrollment write is
conditional on the ``rev`` read (0: there must be none), every mail log write on the version
read, claims and run items are written once, a profile update of a lead that is gone does
nothing, and the shared send rate is a counter per second. What it does not model: index lag,
throttling, item sizes and page boundaries that split a lead's items (no ``partial`` leads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import TYPE_CHECKING, Any

from leadflow.adapters.nurture.items import shard_of
from leadflow.domain.errors import IntakeUnavailable
from leadflow.domain.events import DomainEvent
from leadflow.domain.nurture import ACTIVE, Enrollment
from leadflow.domain.nurture.mail_log import MailLog, utc_iso
from leadflow.domain.rendering import RenderedEmail
from leadflow.ports.nurture import EnrollmentsByKey, NurtureStore, ProfileChange, ScannedPage

SCAN_PAGE = 1000
"""Profiles per page of ``scan_leads`` (about what a 1 MB DynamoDB Scan page holds)."""


class InMemoryNurtureStore:
    """The ``NurtureStore`` port in dicts (thread-safe: the service works a batch on several threads).

    Args:
        profiles: the leads' profile items (each with ``lead_id``).
        shards: the due index's shards (as ``DynamoNurtureStore``).
        rate_limited: whether ``take_send_slots`` keeps to the rate (False: every slot asked for is
            given; the step-logic benchmark measures the CPU work, not the account's send rate).
    """

    def __init__(
        self, profiles: Iterable[Mapping[str, Any]] = (), shards: int = 16, *, rate_limited: bool = True
    ) -> None:
        self.profiles: dict[str, dict[str, Any]] = {str(p["lead_id"]): dict(p) for p in profiles}
        self.shards = shards
        self.rate_limited = rate_limited
        self.enrollments: EnrollmentsByKey = {}
        self.logs: dict[str, MailLog] = {}
        self.activities: dict[str, list[dict[str, Any]]] = {}
        self.consents: dict[str, list[dict[str, Any]]] = {}
        self.suppressions: dict[str, tuple[str, str]] = {}
        """Address key -> (reason, when it was listed)."""
        self.events: list[DomainEvent] = []
        """The events stored with profile changes (the outbox), oldest first."""
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        """Broadcast runs and claims by (sequence id, name)."""
        self.sent_slots: dict[int, int] = {}
        self.leases: dict[int, tuple[str, int]] = {}
        self._versions: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ leads
    def add_lead(self, profile: Mapping[str, Any]) -> None:
        self.profiles[str(profile["lead_id"])] = dict(profile)

    def add_activity(self, lead_id: str, activity: Mapping[str, Any]) -> None:
        self.activities.setdefault(lead_id, []).append(dict(activity))

    def get_lead(self, lead_id: str) -> dict[str, Any] | None:
        profile = self.profiles.get(lead_id)
        return dict(profile) if profile is not None else None

    def recent_activities(self, lead_id: str, limit: int = 200) -> list[dict[str, Any]]:
        found = sorted(self.activities.get(lead_id, ()), key=lambda a: str(a.get("at", "")), reverse=True)
        return found[:limit]

    def update_profile(self, lead_id: str, change: ProfileChange) -> None:
        with self._lock:
            profile = self.profiles.get(lead_id)
            if profile is None or not change:
                return
            profile.update(change.assign)
            for attribute, members in change.add_to.items():
                profile[attribute] = set(profile.get(attribute) or ()) | members
            for attribute, members in change.remove_from.items():
                profile[attribute] = set(profile.get(attribute) or ()) - members
            self.events.extend(change.events)

    def put_events(self, events: Sequence[DomainEvent]) -> None:
        with self._lock:
            self.events.extend(events)

    def record_consent(self, lead_id: str, record_id: str, consent: Mapping[str, Any]) -> None:
        with self._lock:
            self.consents.setdefault(lead_id, []).append({"record_id": record_id, **consent})

    def suppress(self, address_key: str, reason: str, at: str) -> None:
        with self._lock:
            self.suppressions.setdefault(address_key, (reason, at))

    def suppressed(self, address_keys: Iterable[str]) -> set[str]:
        return {key for key in address_keys if key in self.suppressions}

    def suppression_items(self, address_keys: Iterable[str]) -> list[dict[str, Any]]:
        found = [(key, self.suppressions.get(key)) for key in address_keys]
        return [{"PK": f"SUPPRESS#{key}", "reason": entry[0], "at": entry[1]} for key, entry in found if entry]

    def unsuppress_erased(self, address_key: str) -> None:
        with self._lock:
            if (self.suppressions.get(address_key) or ("",))[0] == "erased":
                del self.suppressions[address_key]

    def suppressions_listed(self, since: str | None, most: int) -> list[str] | None:
        keys = [key for key, (_, at) in self.suppressions.items() if since is None or at >= since]
        return None if len(keys) > most else keys

    # ------------------------------------------------------------------ sequence versions
    def version_of(self, sequence_id: str, content_hash: str, definition: dict[str, Any]) -> int:
        with self._lock:
            versions = self._versions.setdefault(sequence_id, {})
            if content_hash not in versions:
                versions[content_hash] = {
                    "number": len(versions) + 1,
                    "hash": content_hash,
                    "definition": definition,
                    "created_at": datetime.now(UTC).isoformat(),
                }
            return int(versions[content_hash]["number"])

    def version_definition(self, sequence_id: str, number: int) -> dict[str, Any] | None:
        for version in self._versions.get(sequence_id, {}).values():
            if version["number"] == number:
                definition: dict[str, Any] = version["definition"]
                return definition
        return None

    def versions(self, sequence_id: str) -> list[dict[str, Any]]:
        rows = (
            {k: v[k] for k in ("number", "hash", "created_at")} for v in self._versions.get(sequence_id, {}).values()
        )
        return sorted(rows, key=lambda r: r["number"])

    # ------------------------------------------------------------------ enrollments
    def enrollment(self, lead_id: str, sequence_id: str) -> tuple[Enrollment, int] | None:
        return self.enrollments.get((lead_id, sequence_id))

    def lead_enrollments(self, lead_id: str) -> list[tuple[Enrollment, int]]:
        return [found for (lead, _), found in sorted(self.enrollments.items()) if lead == lead_id]

    def load_batch(
        self, pairs: list[tuple[str, str]], mail: bool = True
    ) -> tuple[EnrollmentsByKey, dict[str, dict[str, Any]], dict[str, MailLog]]:
        found, logs = self.enrollments_of(pairs, mail)
        leads = {lead for lead, _ in pairs}
        return found, {lead: self.profiles[lead] for lead in leads if lead in self.profiles}, logs

    def enrollments_of(
        self, pairs: list[tuple[str, str]], mail: bool = False
    ) -> tuple[EnrollmentsByKey, dict[str, MailLog]]:
        found = {pair: self.enrollments[pair] for pair in pairs if pair in self.enrollments}
        logs = {lead: self.mail_log(lead) for lead, _ in pairs} if mail else {}
        return found, logs

    def put_enrollment(self, enrollment: Enrollment, rev: int, new: bool = False) -> bool:
        key = (enrollment.lead_id, enrollment.sequence_id)
        with self._lock:
            current = self.enrollments.get(key)
            if (current[1] if current is not None else 0) != rev:
                return False
            self.enrollments[key] = (enrollment, rev + 1)
        return True

    def put_enrollments(self, enrollments: Sequence[tuple[Enrollment, int | None]]) -> int:
        return sum(self.put_enrollment(enrollment, rev or 0, new=rev is None) for enrollment, rev in enrollments)

    # ------------------------------------------------------------------ the mail log
    def mail_log(self, lead_id: str) -> MailLog:
        return self.logs.get(lead_id) or MailLog()

    def _put_log(self, lead_id: str, version: int, log: MailLog) -> bool:
        with self._lock:
            if self.mail_log(lead_id).version != version:
                return False
            self.logs[lead_id] = log
        return True

    def claim_send(  # noqa: PLR0917 - the port's signature
        self,
        lead_id: str,
        message_id: str,
        record: dict[str, Any],
        now: datetime,
        log: MailLog,
        held: Enrollment | None = None,
    ) -> tuple[str, MailLog]:
        state, written = log.claim(message_id, record, now, held)
        if written is None:
            return state, log
        return (state, written) if self._put_log(lead_id, log.version, written) else ("changed", log)

    def hold(self, enrollment: Enrollment, log: MailLog) -> bool:
        return self._put_log(enrollment.lead_id, log.version, log.holding(enrollment))

    def release_send(self, lead_id: str, message_id: str) -> None:
        with self._lock:
            log = self.mail_log(lead_id)
            if log.has(message_id):
                self.logs[lead_id] = log.released(message_id)

    def mark_uncertain(self, lead_id: str, message_id: str, now: datetime, until: float) -> bool:
        with self._lock:
            log = self.mail_log(lead_id)
            if not log.has(message_id) or monotonic() >= until:
                return False
            self.logs[lead_id] = log.marked(message_id, {"u": utc_iso(now)})
            return True

    def confirm_send(self, lead_id: str, message_id: str, accepted_at: datetime, now: datetime) -> bool:
        with self._lock:
            log = self.mail_log(lead_id)
            if not log.confirmation_needed(message_id, accepted_at, now):
                return False
            self.logs[lead_id] = log.marked(message_id, {"c": True})
            return True

    def touch_mail(self, lead_id: str) -> None:
        with self._lock:
            log = self.mail_log(lead_id)
            self.logs[lead_id] = replace(log, version=log.version + 1)

    # ------------------------------------------------------------------ the shared send rate
    def take_send_slots(self, wanted: int, rate: int, now: float) -> int:
        if not self.rate_limited:
            return wanted
        second = int(now)
        with self._lock:
            take = max(0, min(wanted, rate - self.sent_slots.get(second, 0)))
            self.sent_slots[second] = self.sent_slots.get(second, 0) + take
        return take

    # ------------------------------------------------------------------ the due index and the ticks
    def due(self, shard: int, now: datetime, limit: int) -> list[tuple[str, str]]:
        due = sorted(
            (enrollment.due_at, lead, sequence)
            for (lead, sequence), (enrollment, _) in self.enrollments.items()
            if enrollment.status == ACTIVE
            and enrollment.due_at is not None
            and enrollment.due_at <= now
            and shard_of(lead, self.shards) == shard
        )
        return [(lead, sequence) for _, lead, sequence in due[:limit]]

    def shards_with_due(self, now: datetime) -> list[int]:
        return [shard for shard in range(self.shards) if self.due(shard, now, 1)]

    def lease_shard(self, shard: int, holder: str, now: datetime, hold: timedelta) -> bool:
        with self._lock:
            current = self.leases.get(shard)
            if current is not None and current[0] != holder and current[1] >= int(now.timestamp()):
                return False
            self.leases[shard] = (holder, int((now + hold).timestamp()))
        return True

    def release_shard(self, shard: int, holder: str) -> None:
        with self._lock:
            if self.leases.get(shard, ("", 0))[0] == holder:
                self.leases[shard] = (holder, 0)

    # ------------------------------------------------------------------ broadcasts
    def scan_leads(
        self, sequence_id: str, segment: int, segments: int, start: dict[str, Any] | None = None
    ) -> Iterable[ScannedPage]:
        """The profiles of the scan segment (leads split by ``shard_of``), ``SCAN_PAGE`` a page, in
        lead id order, each with its enrollment in the sequence and its mail log."""
        leads = sorted(lead for lead in self.profiles if segments == 1 or shard_of(lead, segments) == segment)
        first = int(start["at"]) if start else 0
        for at in range(first, len(leads), SCAN_PAGE):
            chunk = leads[at : at + SCAN_PAGE]
            following = {"at": at + SCAN_PAGE} if at + SCAN_PAGE < len(leads) else None
            start = {"at": at} if at else None
            page = ScannedPage(after=following, start=start, profiles=[self.profiles[lead] for lead in chunk])
            for lead in chunk:
                page.logs[lead] = self.mail_log(lead)
                if (lead, sequence_id) in self.enrollments:
                    page.enrollments[(lead, sequence_id)] = self.enrollments[(lead, sequence_id)]
            yield page

    def _claim(self, sequence_id: str, name: str, item: dict[str, Any]) -> bool:
        with self._lock:
            if (sequence_id, name) in self.claims:
                return False
            self.claims[(sequence_id, name)] = item
        return True

    def table_items(self) -> int | None:
        with self._lock:
            return len(self.profiles) + len(self.logs) + len(self.enrollments)

    def start_broadcast_run(self, sequence_id: str, run: str, at: str, parts: int) -> bool:
        return self._claim(sequence_id, run, {"at": at, "parts": parts})

    def claim_broadcast(self, sequence_id: str, name: str, at: str) -> bool:
        return self._claim(sequence_id, name, {"at": at})

    def release_broadcast(self, sequence_id: str, name: str) -> None:
        with self._lock:
            self.claims.pop((sequence_id, name), None)

    def record_broadcast(self, sequence_id: str, run: str, counts: dict[str, int], parts_done: int) -> None:
        with self._lock:
            item = self.claims.setdefault((sequence_id, run), {})
            for key, value in {**counts, "parts_done": parts_done}.items():
                item[key] = item.get(key, 0) + value

    def broadcast_run(self, sequence_id: str, run: str) -> dict[str, Any] | None:
        item = self.claims.get((sequence_id, run))
        return dict(item) if item is not None else None


@dataclass
class FakeEmailSender:
    """Records every email (``sent``: address, message id, tags and the rendered email)."""

    sent: list[tuple[str, str, dict[str, str], RenderedEmail]] = field(default_factory=list)
    fail_with: Exception | None = None
    """Raised by every send while set (``SendThrottled``, ``SendRejected``...)."""

    def send(self, email: RenderedEmail, to: str, message_id: str, tags: dict[str, str]) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((to, message_id, tags, email))
        return f"fake-{len(self.sent)}"


@dataclass
class InMemoryDueNowQueue:
    """The due-now queue as a list of (lead id, sequence id) pushed."""

    pushed: list[tuple[str, str]] = field(default_factory=list)

    def push(self, pairs: list[tuple[str, str]]) -> None:
        self.pushed.extend(pairs)


@dataclass
class InMemoryIntakeQueue:
    """The intake queue's messages in memory; ``down`` makes it refuse them (``IntakeUnavailable``)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    def enqueue(self, message: dict[str, Any]) -> None:
        if self.down:
            raise IntakeUnavailable("the intake queue is down")
        self.messages.append(message)


@dataclass
class FakeClock:
    """A clock that says ``current`` (set it to move time)."""

    current: datetime

    def now(self) -> datetime:
        return self.current


@dataclass
class FakeBroadcastRunner:
    """Records the broadcasts started: their names and parts (once per name, as the state machine)."""

    started: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail_with: Exception | None = None

    def start(self, name: str, parts: list[dict[str, Any]]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.started.setdefault(name, parts)

    def run(self, name: str, hop: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Run a started broadcast as its state machine does: a hop of every open part a round, round
        after round while any part has more. Returns the rounds run."""
        parts, rounds = self.started[name], 0
        while any(part["more"] for part in parts):
            parts = [hop(part) if part["more"] else part for part in parts]
            rounds += 1
        self.started[name] = parts
        return rounds


if TYPE_CHECKING:  # mypy checks that the fake keeps to the port
    _store: type[NurtureStore] = InMemoryNurtureStore
