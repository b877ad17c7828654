"""Nurture: enroll leads in sequences, and move whole batches of enrollments a step on.

``NurtureService.process`` is the step function's use case: one batch of enrollments (a
tick's shard page, or the due-now queue's messages) is read with two BatchGetItems
(enrollments, profiles and mail logs; the suppression list), each enrollment is advanced by
the pure engine (``domain.nurture.advance``), emails are rendered, claimed and sent (the
lead's mail log first, with one conditional write, then SES, within the account's send
rate), and the enrollments are stored with one conditional write each. The leads of a batch
are worked on by a few threads at once, so SES and DynamoDB round trips overlap. One lead's
failure (a broken template, a rejected address) is recorded on its enrollment and never
stops the batch.

``handle_event`` turns bus events into enrollments (triggers), engagement (opens and
clicks end waits at once) and goal checks. ``broadcast`` enrolls a whole segment with
conditional writes, split into scan segments and invocations (``start_broadcast``,
``broadcast_hop``) so that a segment of any size is never one Lambda invocation.
``unsubscribe`` and ``confirm`` are the preference page's use cases.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import cached_property, lru_cache
from typing import Any, Protocol

from leadflow.adapters.nurture import DynamoNurtureStore, MailLog
from leadflow.adapters.ses import SendRejected, SendThrottled, SendUncertain
from leadflow.config import models
from leadflow.config.sequences import Action, MessagingConfig, Sequence
from leadflow.config.workspace import Workspace
from leadflow.domain.events import DomainEvent
from leadflow.domain.ids import new_id
from leadflow.domain.nurture import (
    CONVERTED,
    ActivityView,
    EmailToSend,
    Enrollment,
    LeadView,
    Outcome,
    advance,
    enroll,
    held_state,
    holdable,
    in_segment,
    matches,
    migrate,
)
from leadflow.domain.rendering import EmailRenderer, RenderedEmail, Sender, TemplateProblem, sender_of
from leadflow.domain.tokens import MessageTokens, TokenKind, TrackingToken, sign

SOURCE_NURTURE = "leadflow.nurture"
STANDARD_FIELDS = frozenset({"first_name", "last_name", "company", "title", "phone", "country", "timezone"})
MAX_ADVANCES_PER_ENROLLMENT = 4
THROTTLE_RETRY = timedelta(minutes=1)
ERROR_RETRY = timedelta(minutes=10)
SEND_WORKERS = 8
SUPPRESSION_LAG = timedelta(minutes=2)
"""How far back each batch looks again for newly listed suppressions: more than the index's lag
behind a write (well under a second) and any skew between the writers' clocks."""
SUPPRESSION_LIST_MOST = 200_000
"""More suppressions than this are not kept in memory: addresses are then read one by one."""
"""Leads of one batch worked on at once: their SES and DynamoDB round trips overlap, so a batch
takes a fraction of the Lambda time (and GB-seconds) it takes one lead after the other."""
SLOT_BLOCK = 25
"""Send slots taken from the shared per-second counter at a time (one write per block)."""
SLOT_WAITS = 10
"""Seconds a worker waits for a free send slot before it leaves the rest of its batch due."""
BROADCAST_PARTS = 8
"""Scan segments a broadcast is split into, each its own chain of invocations, run in parallel."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class EmailSender(Protocol):
    def send(self, email: RenderedEmail, to: str, message_id: str, tags: dict[str, str]) -> str: ...


class DueNowQueue(Protocol):
    def push(self, pairs: list[tuple[str, str]]) -> None: ...


class PointsAwarder(Protocol):
    def award(self, lead_id: str, points: int, model: str | None, reason: str, award_id: str) -> None: ...


class BroadcastParts(Protocol):
    def invoke(self, payload: dict[str, Any]) -> None: ...


@dataclass
class BatchResult:
    """What one batch did, counted (the step function returns it; tests and the bench read it)."""

    processed: int = 0
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "sent": self.sent,
            "outcomes": dict(self.outcomes),
            "failures": self.failures[:20],
        }

    def add(self, other: BatchResult) -> None:
        self.processed += other.processed
        self.sent += other.sent
        self.outcomes.update(other.outcomes)
        self.failures.extend(other.failures)


class TokenIssuer:
    """Signed links of one email: open pixel, tracked clicks, unsubscribe and preferences."""

    def __init__(self, keys: Callable[[], list[bytes]], base_url: str, token_days: int) -> None:
        self.keys = keys
        self.base_url = base_url.rstrip("/")
        self.token_days = token_days
        self._expiry: tuple[datetime, int] | None = None  # the last ``now`` and its expiry

    def token(self, kind: TokenKind, lead_id: str, message_id: str, now: datetime, **extra: Any) -> str:
        return sign(TrackingToken(kind, lead_id, message_id, self.expires(now), **extra), self.keys()[0])

    def expires(self, now: datetime) -> int:
        """When a token issued ``now`` expires (epoch seconds).

        A batch's emails share one ``now`` (the same object): the last one's answer is kept."""
        last = self._expiry
        if last is not None and last[0] is now:
            return last[1]
        expires = int((now + timedelta(days=self.token_days)).timestamp())
        self._expiry = (now, expires)
        return expires

    def links(self, lead_id: str, message_id: str, campaign: str, now: datetime) -> EmailLinks:
        return EmailLinks(self, lead_id, message_id, campaign, now)


class EmailLinks:
    """``LinkSigner`` for one message (the renderer calls it).

    Each distinct link is signed once per message: the text part repeats the HTML part's links
    and the preferences link is the unsubscribe link, and signing is a good part of rendering.
    The signing key and the expiry are looked up once per message, not once per link, and the
    payload fields the message's tokens share are written once (``MessageTokens``)."""

    __slots__ = ("_signed", "_tokens", "campaign", "issuer", "lead_id", "message_id", "now")

    def __init__(self, issuer: TokenIssuer, lead_id: str, message_id: str, campaign: str, now: datetime) -> None:
        self.issuer = issuer
        self.lead_id = lead_id
        self.message_id = message_id
        self.campaign = campaign
        self.now = now
        self._signed: dict[tuple[str, str], str] = {}
        self._tokens = MessageTokens(issuer.keys()[0], lead_id, message_id, issuer.expires(now), campaign)

    def click_url(self, url: str, tag: str) -> str:
        key = (url, tag)
        signed = self._signed.get(key)
        if signed is None:
            signed = self._signed[key] = f"{self.issuer.base_url}/t/c/{self._tokens.token(TokenKind.CLICK, tag, url)}"
        return signed

    def open_pixel_url(self) -> str:
        return f"{self.issuer.base_url}/t/o/{self._tokens.token(TokenKind.OPEN)}"

    def unsubscribe_url(self) -> str:
        key = ("", "unsubscribe")
        signed = self._signed.get(key)
        if signed is None:
            signed = self._signed[key] = f"{self.issuer.base_url}/u/{self._tokens.token(TokenKind.UNSUBSCRIBE)}"
        return signed

    def preferences_url(self) -> str:
        return self.unsubscribe_url()


_PROFILE_ATTRIBUTE = {"tag": "tags", "untag": "tags", "handoff": "handoff_requested_at"}


@dataclass
class _ProfileUpdate:
    """Profile changes of consecutive actions, gathered into one update expression."""

    parts: dict[str, list[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)

    def add(self, verb: str, attribute: str, value: Any, events: Iterable[DomainEvent] = ()) -> None:
        n = len(self.names)
        self.names[f"#a{n}"] = attribute
        self.values[f":v{n}"] = value
        self.parts.setdefault(verb, []).append(f"#a{n} = :v{n}" if verb == "SET" else f"#a{n} :v{n}")
        self.events.extend(events)

    def expression(self) -> str:
        return " ".join(f"{verb} {', '.join(parts)}" for verb, parts in self.parts.items())

    def clear(self) -> None:
        self.parts, self.names, self.values, self.events = {}, {}, {}, []


class StepFailed(RuntimeError):
    """A step taken at once for a bus event failed unexpectedly: the event must be delivered again."""


@dataclass(frozen=True)
class _Job:
    """One enrollment to advance, over the item read at ``rev``.

    A broadcast's enrollment is ``fresh``: not stored yet, it must be written whatever its first
    step does; ``new`` when the lead had no enrollment in the sequence (the write then requires
    that none exists), else it replaces the ended one read at ``rev`` (a re-entry)."""

    enrollment: Enrollment
    rev: int
    new: bool
    profile: dict[str, Any]
    fresh: bool = False


class NurtureService:
    def __init__(
        self,
        *,
        workspace: Workspace,
        store: DynamoNurtureStore,
        sender: EmailSender,
        tokens: TokenIssuer,
        due_now: DueNowQueue,
        clock: Clock,
        points: PointsAwarder | None = None,
        monotonic: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.workspace = workspace
        self.store = store
        self.sender = sender
        self.tokens = tokens
        self.due_now = due_now
        self.clock = clock
        self.points = points
        self._wall = monotonic
        self._sleep = sleep
        self._current: dict[str, tuple[Sequence, int]] = {}
        self._old: dict[tuple[str, int], Sequence] = {}
        self._slots = 0
        self._slot_second = -1
        self._slot_lock = threading.Lock()
        self.workers = SEND_WORKERS
        self._activity_needed: dict[int, bool] = {}  # by id(): sequences are kept for the service's life
        self._suppression_lock = threading.Lock()
        self._suppression_list: set[str] | None = set()  # None: too long to keep, read one by one
        self._suppression_read: datetime | None = None

    # ------------------------------------------------------------------ configuration
    @cached_property
    def messaging(self) -> MessagingConfig:
        return self.workspace.messaging

    @cached_property
    def renderer(self) -> EmailRenderer:
        return EmailRenderer(self.workspace.templates)

    def current(self, sequence_id: str) -> tuple[Sequence, int] | None:
        """The sequence as the workspace has it now, and its version number (looked up once per sequence:
        the service's workspace does not change)."""
        found = self._current.get(sequence_id)
        if found is not None:
            return found
        sequence = self.workspace.sequences.get(sequence_id)
        if sequence is None:
            return None
        version = self.store.version_of(sequence_id, sequence.content_hash, models.dump(Sequence, sequence))
        found = self._current[sequence_id] = (sequence, version)
        return found

    def definition(self, enrollment: Enrollment) -> tuple[Sequence, Enrollment] | None:
        """The sequence version this enrollment runs on (migrated onto the current one where declared)."""
        found = self.current(enrollment.sequence_id)
        if found is None:
            return None
        sequence, version = found
        if enrollment.version == version:
            return sequence, enrollment
        moved = migrate(enrollment, sequence, version)
        if moved is not None:
            return sequence, moved
        old = self._version(enrollment.sequence_id, enrollment.version)
        return (old, enrollment) if old is not None else None

    def _version(self, sequence_id: str, number: int) -> Sequence | None:
        """Version ``number`` of the sequence: the workspace's when current, else as registered."""
        found = self.current(sequence_id)
        if found is not None and found[1] == number:
            return found[0]
        key = (sequence_id, number)
        if key not in self._old:
            data = self.store.version_definition(sequence_id, number)
            if data is None:
                return None
            self._old[key] = Sequence.from_trusted(data)
        return self._old[key]

    # ------------------------------------------------------------------ reading enrollments
    def _resolve(
        self,
        lead_id: str,
        sequence_id: str,
        stored: tuple[Enrollment, int] | None,
        log: MailLog | None,
        now: datetime,
    ) -> tuple[Enrollment, int, bool] | None:
        """The lead's enrollment in the sequence: its item, or the one its mail log holds when that
        one is a later entry (a held enrollment reads as completed once its wait is over and it lapses
        quietly). Returns (enrollment, the item's rev or 0 when there is none, whether it is held)."""
        held = log.held_enrollment(lead_id, sequence_id) if log is not None else None
        if held is None or (stored is not None and stored[0].entry >= held.entry):
            return (stored[0], stored[1], False) if stored is not None else None
        # Worked out on the version it runs on (a migration, if one applies, happens at its next step).
        state = held_state(self._version(sequence_id, held.version), held, now)
        return state, (stored[1] if stored is not None else 0), True

    def enrollment(self, lead_id: str, sequence_id: str) -> tuple[Enrollment, int] | None:
        """The lead's enrollment in the sequence (stored or held) and the rev to write it over."""
        found = self._resolve(
            lead_id,
            sequence_id,
            self.store.enrollment(lead_id, sequence_id),
            self.store.mail_log(lead_id),
            self.clock.now(),
        )
        return (found[0], found[1]) if found is not None else None

    def lead_enrollments(self, lead_id: str) -> list[tuple[Enrollment, int]]:
        """Every enrollment of the lead, stored or held, by sequence id."""
        now = self.clock.now()
        stored = {e.sequence_id: (e, rev) for e, rev in self.store.lead_enrollments(lead_id)}
        log = self.store.mail_log(lead_id)
        found = []
        for sequence_id in sorted(stored.keys() | log.held.keys()):
            resolved = self._resolve(lead_id, sequence_id, stored.get(sequence_id), log, now)
            if resolved is not None:
                found.append((resolved[0], resolved[1]))
        return found

    def overview(self) -> list[dict[str, Any]]:
        """Every sequence of the workspace: its current version, triggers, steps and version history."""
        rows = []
        for sequence in self.workspace.sequences.values():
            found = self.current(sequence.id)
            rows.append(
                {
                    "id": sequence.id,
                    "name": sequence.name,
                    "status": sequence.status,
                    "version": found[1] if found else None,
                    "topic": sequence.topic,
                    "triggers": [t.key for t in sequence.triggers],
                    "steps": [{"id": s.id, "type": s.type} for s in sequence.steps],
                    "versions": self.store.versions(sequence.id),
                }
            )
        return rows

    # ------------------------------------------------------------------ the step
    def process(self, pairs: list[tuple[str, str]]) -> BatchResult:
        """Advance every (lead id, sequence id) enrollment of the batch that is due."""
        result = BatchResult()
        if not pairs:
            return result
        now = self.clock.now()
        enrollments, profiles, logs = self.store.load_batch(pairs)
        jobs: list[_Job] = []
        for pair in pairs:
            resolved = self._resolve(pair[0], pair[1], enrollments.get(pair), logs.get(pair[0]), now)
            profile = profiles.get(pair[0])
            if resolved is None or profile is None:
                result.outcomes["missing"] += 1
                continue
            enrollment, rev, held = resolved
            if enrollment.status != "active" or (enrollment.due_at and enrollment.due_at > now):
                result.outcomes["not_due"] += 1
                continue
            # A held enrollment (woken by an open or click) is not stored: like a broadcast's, it is
            # written only if it cannot be held again after this step.
            jobs.append(_Job(enrollment, rev, held and rev == 0, profile, fresh=held))
        result.add(self._work(jobs, logs, now))
        return result

    def _work(self, jobs: list[_Job], logs: Mapping[str, MailLog], now: datetime) -> BatchResult:
        """Advance the jobs' enrollments, ``workers`` leads at a time; one lead's jobs run in order on
        one thread (they share its mail log). The suppression list is read once for all."""
        result = BatchResult()
        addresses = {str(j.profile["email"]).casefold() for j in jobs if j.profile.get("email")}
        suppressed = self._suppressed(addresses, now) if addresses else set()
        by_lead: dict[str, list[_Job]] = {}
        for job in jobs:
            by_lead.setdefault(job.enrollment.lead_id, []).append(job)

        saturated = threading.Event()

        def lead_jobs(lead_id: str, part: BatchResult | None = None) -> BatchResult:
            """The lead's jobs, counted in ``part`` (a new one when not given)."""
            part = BatchResult() if part is None else part
            log = logs.get(lead_id) or MailLog()
            for job in by_lead[lead_id]:
                if saturated.is_set():
                    # The account's send rate is used up: the rest of the batch is left as it is
                    # (no write per lead to put it off), except new enrollments, which are stored.
                    part.outcomes["left_due"] += 1
                    if job.fresh:
                        self.store.put_enrollment(job.enrollment, job.rev, new=job.new)
                    continue
                part.processed += 1
                is_suppressed = str(job.profile.get("email", "")).casefold() in suppressed
                limited = part.outcomes["rate_limited"]
                try:
                    log = self._advance_one(job, is_suppressed, log, now, part)
                    if part.outcomes["rate_limited"] > limited:
                        saturated.set()
                except Exception as error:  # one lead never stops the batch  # noqa: BLE001
                    part.outcomes["error"] += 1
                    part.failures.append(
                        {"lead_id": lead_id, "sequence_id": job.enrollment.sequence_id, "error": type(error).__name__}
                    )
                    self._back_off(job, now)
            return part

        # No more threads than a second's send slots can keep busy (each waits ~40 ms per email).
        workers = min(self.workers, len(by_lead), max(1, self.messaging.send_rate_per_second // 4))
        if workers <= 1:
            for lead in by_lead:  # one after the other: counted straight into the batch's result
                lead_jobs(lead, result)
            return result
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lead_jobs, by_lead))
        for part in parts:
            result.add(part)
        return result

    def _suppressed(self, addresses: set[str], now: datetime) -> set[str]:
        """Which of these addresses are suppressed (bounced, complained, unsubscribed).

        The whole suppression list (GSI2) is read once per service, then before every batch only
        what was listed since the last read (one query, a lookback of ``SUPPRESSION_LAG``): a few
        read units per batch instead of half a unit per lead. A list longer than
        ``SUPPRESSION_LIST_MOST`` is not kept: the batch's addresses are read one by one."""
        with self._suppression_lock:
            if self._suppression_list is not None:
                read = self._suppression_read
                since = read - SUPPRESSION_LAG if read is not None and read <= now else None  # a clock set back: all
                listed = self.store.suppressions_listed(since.isoformat() if since else None, SUPPRESSION_LIST_MOST)
                if listed is None or len(self._suppression_list) + len(listed) > SUPPRESSION_LIST_MOST:
                    self._suppression_list = None
                else:
                    self._suppression_list.update(listed)
                    self._suppression_read = now
                    return addresses & self._suppression_list
        return self.store.suppressed(addresses)

    def _needs_activity(self, sequence: Sequence) -> bool:
        """Whether the sequence's conditions read recent activities (worked out once per sequence)."""
        key = id(sequence)
        if key not in self._activity_needed:
            self._activity_needed[key] = _needs_activity(sequence, self.workspace)
        return self._activity_needed[key]

    def _back_off(self, job: _Job, now: datetime) -> None:
        """An enrollment whose step failed unexpectedly is looked at again later, not in a tight loop
        (a new one, from a broadcast, is stored due then, so the lead is not lost)."""
        try:
            current = self.store.enrollment(job.enrollment.lead_id, job.enrollment.sequence_id)
            if job.fresh and (current is None or current[1] == job.rev):
                self.store.put_enrollment(replace(job.enrollment, due_at=now + ERROR_RETRY), job.rev, new=job.new)
            elif current is not None and current[0].status == "active":
                self.store.put_enrollment(replace(current[0], due_at=now + ERROR_RETRY), current[1])
        except Exception:  # noqa: BLE001, S110 - the store itself is failing: the next tick retries anyway
            pass

    def _lead_view(
        self, profile: dict[str, Any], suppressed: bool, needs_activity: bool, log: MailLog | None = None
    ) -> LeadView:
        lead_id = str(profile["lead_id"])
        activities: tuple[ActivityView, ...] = ()
        if needs_activity:
            activities = tuple(
                ActivityView(str(a.get("type")), datetime.fromisoformat(a["at"]), a)
                for a in self.store.recent_activities(lead_id)
                if a.get("at")
            )
        scores = profile.get("scores")
        return LeadView(  # by position: made twice per lead of a broadcast
            lead_id,
            profile,
            {k: float(v) for k, v in scores.items()} if scores else {},
            activities,
            suppressed,
            _recent_sends(profile, log),
            self._scoring_default_model,
        )

    def _advance_one(self, job: _Job, suppressed: bool, log: MailLog, now: datetime, result: BatchResult) -> MailLog:
        """Move one enrollment as far as it goes now; returns the lead's mail log as it now is.

        Every write of the enrollment is conditional on the ``rev`` read (a new one: on there
        being none), so whoever changed it meanwhile (an unsubscribe, another worker) wins."""
        enrollment, rev, new, fresh, profile = job.enrollment, job.rev, job.new, job.fresh, job.profile

        def store(state: Enrollment) -> bool:
            return self.store.put_enrollment(state, rev, new=new)

        found = self.definition(enrollment)
        if found is None:
            exited = replace(enrollment, status="exited", exit_reason="sequence removed", due_at=None, ended_at=now)
            store(exited)
            result.outcomes["sequence_removed"] += 1
            return log
        sequence, enrollment = found
        lead = self._lead_view(profile, suppressed, self._needs_activity(sequence), log)
        segments = self.workspace.segments
        for _ in range(MAX_ADVANCES_PER_ENROLLMENT):
            outcome = advance(sequence, enrollment, lead, now, self.messaging, segments)
            sent_now = False
            if outcome.email is not None:
                # Not stored yet and now waiting where it lapses quietly: the claim of its email makes
                # the lead's mail log hold it (no enrollment item, no due-index entry, no write to end).
                held = outcome.enrollment if fresh and holdable(sequence, outcome) else None
                try:
                    sent, log = self._send(sequence, outcome, lead, log, now, result, held)
                except TemplateProblem as problem:
                    # This lead fails visibly, nothing is sent; the rest of the batch goes on.
                    failed = replace(
                        outcome.enrollment,
                        status="failed",
                        exit_reason=f"template {problem}"[:300],
                        due_at=None,
                        ended_at=now,
                        emails=outcome.enrollment.emails[:-1],
                    )
                    store(failed)
                    result.outcomes["template_error"] += 1
                    result.failures.append({"lead_id": lead.lead_id, "sequence_id": sequence.id, "error": "template"})
                    return log
                if sent == "saturated":
                    # No send slot: left as stored (still due, nothing written), taken up by a later
                    # page or tick; a broadcast's new enrollment is stored due now.
                    if fresh:
                        store(enrollment)
                    return log
                if sent == "retry":
                    # Throttled or changed meanwhile: stays on its step, looked at again soon.
                    store(replace(enrollment, due_at=now + THROTTLE_RETRY))
                    return log
                sent_now = True
                if held is not None and log.holds(sequence.id, held.entry, held.step_id):
                    result.outcomes["held"] += 1
                    result.outcomes[outcome.deferred or held.status] += 1
                    return log
            if outcome.enrollment != enrollment or fresh:
                if not store(outcome.enrollment):
                    result.outcomes["conflict"] += 1
                    return log
                rev, new, fresh = rev + 1, False, False
            self._run_actions(sequence, outcome.enrollment, outcome.actions, now)
            result.outcomes[outcome.deferred or outcome.enrollment.status] += 1
            enrollment = outcome.enrollment
            if (
                outcome.email is None
                or enrollment.status != "active"
                or (enrollment.due_at and enrollment.due_at > now)
            ):
                return log
            if sent_now:  # the next step's caps count the email just sent
                lead = replace(lead, recent_sends=(*lead.recent_sends, now))
        return log

    def _send(  # noqa: PLR0917 - one private call site
        self,
        sequence: Sequence,
        outcome: Outcome,
        lead: LeadView,
        log: MailLog,
        now: datetime,
        result: BatchResult,
        held: Enrollment | None = None,
    ) -> tuple[str, MailLog]:
        """Render, claim, send one email. Returns ("sent" | "taken" | "retry" | "saturated", the mail log)
        ("saturated": no send slot of the account's rate came free within ~2 s).

        Raises:
            TemplateProblem: the email cannot be rendered for this lead (nothing was claimed or sent).
        """
        email: EmailToSend = outcome.email  # type: ignore[assignment]
        lead_id = lead.lead_id
        profile = lead.profile
        messaging = self.messaging
        sender = sender_of(  # made once per distinct sender, not per email
            email.sender or messaging.from_address,
            email.sender_name or messaging.from_name,
            messaging.reply_to,
            messaging.postal_address,
        )
        if not self._take_slot():
            result.outcomes["rate_limited"] += 1
            return "saturated", log
        links = self.tokens.links(lead_id, email.message_id, sequence.id, now)
        rendered = self.renderer.render(
            email.template,
            email.subject,
            _personal(profile),
            {"sequence": sequence.id, "step": email.step_id, "variant": email.variant},
            sender,
            links,
        )
        rendered.headers["Date"] = _date_header(now)  # the send time on the service's clock
        record = {"s": sequence.id, "p": email.step_id, "variant": email.variant}
        claim, log = self.store.claim_send(lead_id, email.message_id, record, now, log, held)
        if claim == "taken":
            result.outcomes["already_sent"] += 1
            return "taken", log
        if claim == "changed":
            result.outcomes["changed_meanwhile"] += 1
            return "retry", log
        try:
            self.sender.send(
                rendered,
                str(profile["email"]),
                email.message_id,
                {"lead": lead_id, "sequence": sequence.id, "step": email.step_id},
            )
        except SendThrottled:
            self.store.release_send(lead_id, email.message_id)
            result.outcomes["throttled"] += 1
            return "retry", self.store.mail_log(lead_id)
        except SendRejected as error:
            result.outcomes["rejected"] += 1
            result.failures.append({"lead_id": lead_id, "sequence_id": sequence.id, "error": f"rejected {error}"})
            return "taken", log  # counted as this step's email: never retried
        except SendUncertain:
            result.outcomes["uncertain"] += 1
            return "taken", log  # it may have gone out: never sent again
        result.sent += 1
        return "sent", log

    def _take_slot(self) -> bool:
        """One send within the account's SES rate, shared by all workers (waits up to ``SLOT_WAITS`` seconds).

        Slots are taken from the shared counter of the current second in blocks (one write per
        ``slot_block(rate)`` sends); a block's unused slots lapse with their second, so the rate is
        never exceeded, only sometimes not used in full."""
        rate = self.messaging.send_rate_per_second
        for _ in range(SLOT_WAITS):
            with self._slot_lock:
                second = int(self._wall())
                if second != self._slot_second:
                    self._slots, self._slot_second = 0, second
                if self._slots > 0:
                    self._slots -= 1
                    return True
                got = self.store.take_send_slots(slot_block(rate), rate, second)
                if got:
                    self._slots = got - 1
                    return True
            # This second is used up: try again when the next one starts (jittered, so that
            # the workers waiting for it do not all write the counter at the same instant).
            self._sleep(1 - self._wall() % 1 + random.uniform(0, 0.1))  # noqa: S311 - jitter, not secrecy
        return False

    # ------------------------------------------------------------------ actions
    def _run_actions(
        self, sequence: Sequence, enrollment: Enrollment, actions: Iterable[Action], now: datetime
    ) -> None:
        """Apply a step's actions in order. Consecutive changes of the profile (tag, untag, set a
        field, hand off) are one update, with their events, in one transaction (a transaction bills
        every item twice: one instead of one per action); an action that writes elsewhere (points,
        enrollments) or touches an attribute again first applies what is pending."""
        lead_id = enrollment.lead_id
        update = _ProfileUpdate()

        def apply() -> None:
            if update.parts:
                self.store.update_profile(lead_id, update.expression(), update.names, update.values, update.events)
                update.clear()

        for index, action in enumerate(actions):
            key = action.key
            attribute = _PROFILE_ATTRIBUTE.get(key)
            if key == "set_field" and action.set_field is not None:
                name = action.set_field.name
                attribute = name if name in STANDARD_FIELDS else f"cf_{name}"
            if attribute is not None and attribute in update.names.values():
                apply()  # one update expression may name an attribute once
            if key in ("tag", "untag"):
                tag = str(getattr(action, key))
                events = [self._event("lead.tagged", now, lead_id=lead_id, tag=tag)] if key == "tag" else []
                update.add("ADD" if key == "tag" else "DELETE", "tags", {tag}, events)
            elif key == "set_field" and action.set_field is not None and attribute is not None:
                update.add("SET", attribute, action.set_field.value)
            elif key == "handoff":
                event = self._event(
                    "lead.handoff_requested",
                    now,
                    lead_id=lead_id,
                    reason=action.handoff,
                    sequence_id=sequence.id,
                    step_id=enrollment.step_id,
                )
                update.add("SET", "handoff_requested_at", now.isoformat(), [event])
            else:
                apply()
                if key == "add_points" and action.add_points is not None and self.points is not None:
                    award = f"{sequence.id}.{enrollment.entry}.{enrollment.step_id}.{index}"
                    self.points.award(
                        lead_id, action.add_points.points, action.add_points.model, action.add_points.reason, award
                    )
                elif key == "enroll" and action.enroll is not None:
                    self.enroll_lead(lead_id, action.enroll, reason=f"sequence {sequence.id}")
                elif key == "exit_sequence" and action.exit_sequence is not None:
                    self.exit(lead_id, action.exit_sequence, f"sequence {sequence.id}")
        apply()

    def _event(self, detail_type: str, now: datetime, **detail: Any) -> DomainEvent:
        return DomainEvent(new_id(now), SOURCE_NURTURE, detail_type, now.isoformat(), detail)

    # ------------------------------------------------------------------ enrolling
    def enroll_lead(self, lead_id: str, sequence_id: str, reason: str = "api", push: bool = True) -> Enrollment | None:
        """Enroll one lead (its re-entry policy decides); due-now steps go to the queue at once."""
        found = self.current(sequence_id)
        if found is None:
            return None
        sequence, version = found
        now = self.clock.now()
        previous = self.enrollment(lead_id, sequence_id)
        created = enroll(sequence, version, lead_id, now, previous[0] if previous else None)
        if created is None:
            return None
        rev = previous[1] if previous else 0
        if not self.store.put_enrollment(created, rev, new=previous is None):
            return None
        if push:
            self.due_now.push([(lead_id, sequence_id)])
        return created

    def exit(self, lead_id: str, sequence_id: str, reason: str) -> bool:
        current = self.enrollment(lead_id, sequence_id)
        if current is None or current[0].status != "active":
            return False
        now = self.clock.now()
        exited = replace(current[0], status="exited", exit_reason=reason, due_at=None, ended_at=now)
        return self.store.put_enrollment(exited, current[1])

    def triggered(self, detail_type: str, detail: dict[str, Any], profile: dict[str, Any] | None) -> list[str]:
        """The sequences this event enrolls the lead in (by their triggers)."""
        found = []
        for sequence in self.workspace.sequences.values():
            if sequence.status != "active":
                continue
            for trigger in sequence.triggers:
                key = trigger.key
                if key == "form_submitted" and detail_type == "lead.captured":
                    if trigger.form_submitted in ("*", detail.get("form_id")):
                        found.append(sequence.id)
                elif key == "stage_reached" and detail_type == "lead.stage_changed":
                    if detail.get("to") == trigger.stage_reached:
                        found.append(sequence.id)
                elif key == "tag_added" and detail_type == "lead.tagged":
                    if detail.get("tag") == trigger.tag_added:
                        found.append(sequence.id)
                elif key == "score_crossed" and detail_type == "lead.scored" and trigger.score_crossed:
                    model = trigger.score_crossed.model or self._default_model()
                    new = float((detail.get("scores") or {}).get(model, 0))
                    old = new - float(detail.get("points_added") or 0)
                    if old < trigger.score_crossed.at_least <= new:
                        found.append(sequence.id)
        return sorted(set(found))

    def _default_model(self) -> str:
        return self._scoring_default_model

    @cached_property
    def _scoring_default_model(self) -> str:
        try:
            return self.workspace.scoring.default_model
        except Exception:  # noqa: BLE001 - a workspace without scoring
            return "default"

    def listens(self, detail_type: str, detail: Mapping[str, Any]) -> bool:
        """Whether the workspace's sequences act on this bus event at all (``Workspace.nurture_listens``):
        the rest cost their delivery and nothing else, no read, no write."""
        listened = self.workspace.nurture_listens
        if detail_type == "activity.recorded":
            return detail.get("type") in ("email_opened", "email_clicked") or listened["activity"]
        return listened.get(detail_type, True)

    def handle_event(self, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
        """One bus event: enrollments its triggers ask for, engagement, and waking the lead's waits."""
        lead_id = str(detail.get("lead_id") or "")
        if not lead_id or not self.listens(detail_type, detail):
            return {"ignored": True}
        done: dict[str, Any] = {"enrolled": [], "woken": 0}
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return {"ignored": True}
        if detail_type == "lead.captured":
            self._double_opt_in(profile, detail)
        if detail_type == "activity.recorded" and detail.get("type") in ("email_opened", "email_clicked"):
            done["woken"] += self._engaged(lead_id, detail, profile)
        for sequence_id in self.triggered(detail_type, detail, profile):
            if self.enroll_lead(lead_id, sequence_id, reason=detail_type):
                done["enrolled"].append(sequence_id)
        done["enrolled"] += self._segments_joined(profile)
        if detail_type in ("lead.stage_changed", "lead.scored", "lead.tagged", "lead.consent_confirmed"):
            done["woken"] += self._wake(lead_id, profile)
        return done

    def _engaged(self, lead_id: str, detail: dict[str, Any], profile: dict[str, Any]) -> int:
        """Mark the email opened/clicked on its enrollment; a wait for it ends now.

        A held enrollment (a broadcast's) that this wakes takes its next step here, at once, as the
        step function would after a hop through the due-now queue: the step's own write (the claim
        of its email, which holds it again, or its stored item) records the open with it. No
        separate write of the open, no queue message, no second read of the lead.

        Raises:
            StepFailed: that step failed unexpectedly; the event is retried (nothing was recorded,
                or the enrollment was stored to be retried by the ticks and the retry finds the
                open recorded)."""
        sequence_id = detail.get("campaign")
        message_id = detail.get("message_id")
        if not sequence_id or not message_id:
            return 0
        for _ in range(3):
            now = self.clock.now()
            log = self.store.mail_log(lead_id)
            current = self._resolve(
                lead_id, str(sequence_id), self.store.enrollment(lead_id, str(sequence_id)), log, now
            )
            if current is None:
                return 0
            enrollment, rev, held = current
            if held and enrollment.status != "active":
                return 0  # its wait is over and it has ended: the activity itself is recorded
            emails = []
            touched = False
            for email in enrollment.emails:
                if email.message_id == message_id:
                    clicked = email.clicked or detail.get("type") == "email_clicked"
                    tags = email.link_tags
                    tag = detail.get("link_tag") or detail.get("link_id")
                    if detail.get("type") == "email_clicked" and tag and tag not in tags:
                        tags = (*tags, str(tag))
                    updated = replace(email, opened=True, clicked=clicked, link_tags=tags)
                    touched = touched or updated != email
                    emails.append(updated)
                else:
                    emails.append(email)
            if not touched:
                return 0
            woken = enrollment.status == "active" and enrollment.due_at is not None and enrollment.due_at > now
            changed = replace(enrollment, emails=tuple(emails), due_at=now if woken else enrollment.due_at)
            if woken and held:
                done = self._work([_Job(changed, rev, rev == 0, profile, fresh=True)], {lead_id: log}, now)
                if done.outcomes["conflict"]:
                    continue  # written meanwhile (an unsubscribe, another event): read again
                if done.outcomes["error"]:
                    raise StepFailed(f"{lead_id} {enrollment.sequence_id}: {done.failures}")
                return 1
            if self.store.hold(changed, log) if held else self.store.put_enrollment(changed, rev):
                if woken:
                    self.due_now.push([(lead_id, enrollment.sequence_id)])
                return 1 if woken else 0
        return 0

    def _wake(self, lead_id: str, profile: dict[str, Any] | None = None) -> int:
        """The lead changed (stage, score, tags, consent): look at its waiting enrollments now.

        A sequence goal that now holds ends the enrollment at once (converted), and a wait for
        an event that has now happened ends (the step is due now). Nothing is written for the
        others: they stay due when they were (a frequency cap, a wait's end).
        """
        now = self.clock.now()
        profile = profile if profile is not None else self.store.get_lead(lead_id)
        if profile is None:
            return 0
        segments = self.workspace.segments
        woken: list[tuple[str, str]] = []
        for stored, rev in self.lead_enrollments(lead_id):
            if stored.status != "active" or not stored.due_at or stored.due_at <= now:
                continue
            found = self.definition(stored)
            if found is None:
                continue
            sequence, enrollment = found
            lead = self._lead_view(profile, False, self._needs_activity(sequence))
            if sequence.goal is not None and matches(sequence.goal, lead, now, enrollment, segments):
                converted = replace(enrollment, status=CONVERTED, exit_reason="goal", due_at=None, ended_at=now)
                self.store.put_enrollment(converted, rev)
                continue
            step = next((s for s in sequence.steps if s.id == enrollment.step_id), None)
            until = getattr(step, "until_event", None)
            happened = until is not None and matches(until, lead, now, enrollment, segments)
            if happened and self.store.put_enrollment(replace(enrollment, due_at=now), rev):
                woken.append((lead_id, enrollment.sequence_id))
        if woken:
            self.due_now.push(woken)
        return len(woken)

    def _segments_joined(self, profile: dict[str, Any]) -> list[str]:
        """Enrollments of segment_joined triggers for segments the lead newly matches."""
        wanted = {
            t.segment_joined: s.id
            for s in self.workspace.sequences.values()
            for t in s.triggers
            if t.segment_joined and s.status == "active"
        }
        if not wanted:
            return []
        now = self.clock.now()
        lead = self._lead_view(profile, False, True)
        known = set(profile.get("segments") or ())
        segments = {s.id: s for s in self.workspace.segments.segments}
        joined = [
            sid
            for sid in wanted
            if sid in segments and sid not in known and in_segment(segments[sid], lead, now, self.workspace.segments)
        ]
        if not joined:
            return []
        self.store.update_profile(str(profile["lead_id"]), "ADD #s :s", {"#s": "segments"}, {":s": set(joined)})
        return [
            wanted[sid]
            for sid in joined
            if self.enroll_lead(str(profile["lead_id"]), wanted[sid], reason="segment_joined")
        ]

    # ------------------------------------------------------------------ double opt-in
    def _double_opt_in(self, profile: dict[str, Any], detail: dict[str, Any]) -> None:
        """A form that asks for double opt-in: mark consent pending and send the confirmation email."""
        form_id = detail.get("form_id")
        try:
            form = self.workspace.form(str(form_id))
        except Exception:  # noqa: BLE001 - an unknown or removed form asks nothing
            return
        if not getattr(form, "double_opt_in", False) or profile.get("consent_confirmed_at"):
            return
        consent = detail.get("consent") or {}
        if not consent.get("granted"):
            return
        lead_id = str(profile["lead_id"])
        now = self.clock.now()
        self.store.update_profile(lead_id, "SET #p = :t", {"#p": "consent_pending"}, {":t": True})
        message_id = f"optin_{lead_id}_{int(now.timestamp())}"
        confirm = self.tokens.token(TokenKind.CONFIRM, lead_id, message_id, now)
        messaging = self.messaging
        links = self.tokens.links(lead_id, message_id, "double-opt-in", now)
        rendered = self.renderer.render(
            "double_opt_in",
            "Please confirm your subscription",
            _personal(profile),
            {"confirm_url": f"{self.tokens.base_url}/u/{confirm}?confirm=1"},
            Sender(messaging.from_address, messaging.from_name, messaging.reply_to, messaging.postal_address),
            links,
        )
        self.sender.send(rendered, str(profile["email"]), message_id, {"lead": lead_id, "kind": "double-opt-in"})

    # ------------------------------------------------------------------ broadcast
    def _broadcast_target(self, sequence_id: str) -> tuple[Sequence, int, Any]:
        """The sequence, its version and its broadcast segment.

        Raises:
            KeyError: no such sequence, it has no broadcast trigger, or its segment is unknown.
        """
        found = self.current(sequence_id)
        if found is None:
            raise KeyError(sequence_id)
        sequence, version = found
        trigger = next((t.broadcast for t in sequence.triggers if t.broadcast), None)
        if trigger is None:
            raise KeyError(f"{sequence_id} has no broadcast trigger")
        segment = next((s for s in self.workspace.segments.segments if s.id == trigger.segment), None)
        if segment is None:
            raise KeyError(trigger.segment)
        return sequence, version, segment

    def broadcast(
        self, sequence_id: str, progress: Callable[[int, int], None] | None = None, scan_segments: int = 4
    ) -> dict[str, int]:
        """Enroll every lead of the sequence's broadcast segment here and now, segment after segment
        (``leadflow broadcast``; in AWS, ``start_broadcast`` splits it over invocations).

        Raises:
            KeyError: no such sequence, or it has no broadcast trigger.
        """
        counts = Counter[str]()
        for part in range(scan_segments):
            cursor: dict[str, Any] | None = None
            while True:
                done, cursor = self.broadcast_part(sequence_id, part, scan_segments, cursor, progress=progress)
                counts.update(done)
                if cursor is None:
                    break
        return dict(counts)

    def broadcast_part(  # noqa: PLR0917 - a resumable part: where, from which key, until when
        self,
        sequence_id: str,
        segment: int,
        segments: int,
        cursor: dict[str, Any] | None = None,
        stop: Callable[[], bool] = lambda: False,
        progress: Callable[[int, int], None] | None = None,
        first_step: bool = False,
    ) -> tuple[dict[str, int], dict[str, Any] | None]:
        """Enroll the segment's members found in one scan segment, page by page, from ``cursor``
        until the scan segment ends or ``stop()`` says the time is up.

        Each enrollment is written conditionally (new: only if the lead has none; re-entry: only
        over the ended one read), so running a part again, two broadcasts of one sequence, or a
        tick moving an enrollment on meanwhile never overwrite an enrollment.

        With ``first_step`` (the broadcast's parts in AWS) each new enrollment is not stored due now
        for a tick to read back, but taken through its first step at once, exactly as a tick
        would (gates, render, mail-log claim, SES within the shared rate) and stored once, after
        it: one enrollment write per lead instead of two, and no due-index entry to add and move.
        A lead the first step defers (quiet hours, caps, throttling) is stored due then, for the ticks.

        Returns:
            The counts (scanned, enrolled, already_enrolled, refused, taken; with ``first_step``
            also sent and the step outcomes) and the key to go on from, None when the scan
            segment is done.

        Raises:
            KeyError: no such sequence, or it has no broadcast trigger.
        """
        sequence, version, segment_rule = self._broadcast_target(sequence_id)
        needs_activity = any(p.key == "activity" for p in segment_rule.when.walk())
        now = self.clock.now()
        counts = Counter[str]()
        for page in self.store.scan_leads(sequence_id, segment, segments, cursor):
            counts["scanned"] += len(page.profiles)
            members = [
                p
                for p in page.profiles
                if in_segment(segment_rule, self._lead_view(p, False, needs_activity), now, self.workspace.segments)
            ]
            if members:
                # The scan brought each member's enrollment and mail log; a lead whose items began
                # before this invocation's start key is read here (one per invocation at most).
                existing, logs = page.enrollments, page.logs
                partial = [(str(p["lead_id"]), sequence_id) for p in members if p["lead_id"] in page.partial]
                if partial:
                    found, read = self.store.enrollments_of(partial, mail=True)
                    existing, logs = {**existing, **found}, {**logs, **read}
                fresh: list[tuple[Enrollment, int | None]] = []
                profiles: dict[str, dict[str, Any]] = {}
                for profile in members:
                    lead_id = str(profile["lead_id"])
                    resolved = self._resolve(
                        lead_id, sequence_id, existing.get((lead_id, sequence_id)), logs.get(lead_id), now
                    )
                    previous = (resolved[0], resolved[1]) if resolved is not None else None
                    if previous is not None and previous[0].status == "active":
                        counts["already_enrolled"] += 1
                        continue
                    created = enroll(sequence, version, lead_id, now, previous[0] if previous else None)
                    if created is None:
                        counts["refused"] += 1
                        continue
                    fresh.append((created, (previous[1] or None) if previous else None))
                    profiles[lead_id] = profile
                if first_step:
                    jobs = [_Job(e, rev or 0, rev is None, profiles[e.lead_id], fresh=True) for e, rev in fresh]
                    done = self._work(jobs, logs, now)
                    taken = done.outcomes.pop("conflict", 0)
                    counts["enrolled"] += len(jobs) - taken - done.outcomes["error"]
                    counts["taken"] += taken
                    counts["sent"] += done.sent
                    counts.update(done.outcomes)
                else:
                    written = self.store.put_enrollments(fresh)
                    counts["enrolled"] += written
                    counts["taken"] += len(fresh) - written
            if progress:
                progress(counts["scanned"], counts["enrolled"])
            if page.after is None:
                return dict(counts), None
            if stop():
                return dict(counts), page.after
        return dict(counts), None

    def start_broadcast(
        self, sequence_id: str, run: str, parts: BroadcastParts, segments: int | None = None
    ) -> dict[str, int]:
        """Start a broadcast as ``segments`` parallel parts (one scan segment each), once per run.

        Without ``segments``, as many parts as the account's send rate keeps busy: one per
        ``SLOT_BLOCK`` emails a second, at most ``BROADCAST_PARTS`` (at 14 a second, one part:
        more would only wait for send slots, and each wait and refused take is billed).

        Each part is claimed (``SEQ#<id>`` / ``BROADCAST#<run>#<segment>#0``) before it is invoked,
        so a redelivered start invokes only what is missing; the run's item counts the progress.

        Raises:
            KeyError: no such sequence, or it has no broadcast trigger.
        """
        self._broadcast_target(sequence_id)
        if segments is None:
            segments = max(1, min(BROADCAST_PARTS, self.messaging.send_rate_per_second // SLOT_BLOCK))
        self.store.put_items(
            [
                {
                    "PK": f"SEQ#{sequence_id}",
                    "SK": f"BROADCAST#{run}",
                    "at": self.clock.now().isoformat(),
                    "parts": segments,
                }
            ]
        )
        started = 0
        for segment in range(segments):
            if not self._claim_hop(sequence_id, run, segment, 0):
                continue
            self._start_hop(parts, sequence_id, run, segment, segments, 0, None)
            started += 1
        return {"parts_started": started}

    def broadcast_hop(  # noqa: PLR0917 - one invocation of a part: where, from which key, until when
        self,
        sequence_id: str,
        run: str,
        segment: int,
        segments: int,
        hop: int,
        cursor: dict[str, Any] | None,
        stop: Callable[[], bool],
        parts: BroadcastParts,
    ) -> dict[str, int]:
        """One invocation of a broadcast part: enroll from ``cursor`` until the time is up, then
        hand the rest to a new invocation (claimed first, so a duplicate delivery of this one
        does not start a second chain). Run again after a crash, it redoes its pages (the
        conditional writes make that harmless) and goes on."""
        counts, after = self.broadcast_part(sequence_id, segment, segments, cursor, stop, first_step=True)
        if not self._claim_hop(sequence_id, run, segment, hop + 1 if after else -1):
            return {**counts, "duplicate": 1}
        if after:
            self._start_hop(parts, sequence_id, run, segment, segments, hop + 1, after)
        self.store.record_broadcast(sequence_id, run, counts, 0 if after else 1)
        return counts

    def _start_hop(  # noqa: PLR0917 - the hop's address and where its scan starts
        self,
        parts: BroadcastParts,
        sequence_id: str,
        run: str,
        segment: int,
        segments: int,
        hop: int,
        cursor: dict[str, Any] | None,
    ) -> None:
        """Invoke a claimed hop; if the invoke fails, the claim is taken back before the error goes
        up, so the retried invocation can claim and start it again (the chain is never lost)."""
        payload: dict[str, Any] = {
            "broadcast": sequence_id,
            "run": run,
            "segment": segment,
            "segments": segments,
            "hop": hop,
        }
        if cursor is not None:
            payload["cursor"] = cursor
        try:
            parts.invoke(payload)
        except Exception:
            self.store.delete_item(f"SEQ#{sequence_id}", f"BROADCAST#{run}#{segment}#{hop}")
            raise

    def _claim_hop(self, sequence_id: str, run: str, segment: int, hop: int) -> bool:
        """Claim one hop of a part once (hop -1: the part is done)."""
        name = "done" if hop < 0 else str(hop)
        return self.store.put_items(
            [
                {
                    "PK": f"SEQ#{sequence_id}",
                    "SK": f"BROADCAST#{run}#{segment}#{name}",
                    "at": self.clock.now().isoformat(),
                }
            ]
        )

    def scheduled_broadcasts(self, now: datetime, parts: BroadcastParts | None = None) -> list[str]:
        """Start every broadcast whose ``at`` has come, once each (a claim item per sequence and time).

        With ``parts`` they are started as parallel invocations (the tick's plan must not spend
        its time enrolling); without, they run here."""
        ran = []
        for sequence in self.workspace.sequences.values():
            for trigger in sequence.triggers:
                if trigger.broadcast is None or trigger.broadcast.at is None or sequence.status != "active":
                    continue
                if datetime.fromisoformat(trigger.broadcast.at) > now:
                    continue
                claim = {"PK": f"SEQ#{sequence.id}", "SK": f"BROADCAST#{trigger.broadcast.at}", "at": now.isoformat()}
                if self.store.put_items([claim]):
                    if parts is not None:
                        self.start_broadcast(sequence.id, f"scheduled-{trigger.broadcast.at}", parts)
                    else:
                        self.broadcast(sequence.id)
                    ran.append(sequence.id)
        return ran

    # ------------------------------------------------------------------ unsubscribe and confirmation
    def unsubscribe(self, lead_id: str, topics: list[str] | None, source: str) -> dict[str, Any]:
        """Unsubscribe from everything (``topics`` None) or from some topics; exits sequences of those topics."""
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return {"found": False}
        now = self.clock.now()
        at = now.isoformat()
        if topics is None:
            event = self._event("lead.unsubscribed", now, lead_id=lead_id, source=source)
            self.store.update_profile(
                lead_id,
                "SET #u = :t, #ua = :a, #c = :c",
                {"#u": "unsubscribed", "#ua": "unsubscribed_at", "#c": "consent_marketing_email"},
                {":t": True, ":a": at, ":c": {"granted": False, "at": at, "source": source}},
                [event],
            )
            self.store.put_items(
                [
                    {
                        "PK": f"LEAD#{lead_id}",
                        "SK": f"CONSENT#{at}#{new_id(now)}",
                        "purpose": "marketing_email",
                        "granted": False,
                        "at": at,
                        "source": source,
                    }
                ]
            )
            if profile.get("email"):
                self.store.suppress(str(profile["email"]).casefold(), "unsubscribe", at)
        else:
            self.store.update_profile(
                lead_id, "SET #t = :t", {"#t": "unsubscribed_topics"}, {":t": sorted(set(topics))}
            )
        # Any send claimed on a read from before this point now fails and is decided again.
        self.store.touch_mail(lead_id)
        exited = 0
        for enrollment, _rev in self.lead_enrollments(lead_id):
            sequence = self.workspace.sequences.get(enrollment.sequence_id)
            if enrollment.status == "active" and (topics is None or (sequence and sequence.topic in topics)):
                exited += self.exit(lead_id, enrollment.sequence_id, "unsubscribed")
        return {"found": True, "exited": exited, "topics": topics}

    def confirm(self, lead_id: str) -> bool:
        """The double opt-in link was followed: consent confirmed, marketing email may start."""
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return False
        if profile.get("consent_confirmed_at"):
            return True
        now = self.clock.now()
        at = now.isoformat()
        event = self._event("lead.consent_confirmed", now, lead_id=lead_id)
        self.store.update_profile(
            lead_id,
            "SET #p = :f, #c = :a",
            {"#p": "consent_pending", "#c": "consent_confirmed_at"},
            {":f": False, ":a": at},
            [event],
        )
        self.store.put_items(
            [
                {
                    "PK": f"LEAD#{lead_id}",
                    "SK": f"CONSENT#{at}#{new_id(now)}",
                    "purpose": "marketing_email",
                    "granted": True,
                    "step": "confirmed",
                    "at": at,
                    "source": "double_opt_in",
                }
            ]
        )
        self._wake(lead_id)
        return True


@lru_cache(maxsize=8)
def _date_header(now: datetime) -> str:
    """The Date header of a batch's emails (one ``now`` per batch: formatted once)."""
    return format_datetime(now)


def slot_block(rate: int) -> int:
    """Send slots one worker takes from the shared counter at a time: ``SLOT_BLOCK``, more at a high
    rate (a sixteenth of it: the broadcast's parts each take a block a second and still leave half
    the rate to the others), never more than the rate."""
    return min(rate, max(SLOT_BLOCK, rate // (2 * BROADCAST_PARTS)))


def _recent_sends(profile: Mapping[str, Any], log: MailLog | None) -> tuple[datetime, ...]:
    """When the lead was last sent marketing email: its mail log, and the ``recent_sends`` list
    profiles written before the mail log existed may still carry (read, never written)."""
    listed = profile.get("recent_sends")
    legacy = tuple(datetime.fromisoformat(s) for s in listed) if listed else ()
    if log is None or not log.sends:
        return legacy
    return legacy + log.times()


HIDDEN_FIELDS = frozenset(
    {"PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "recent_sends", "score_version"}
)
"""Profile attributes that are the table's or the engine's, never a template's."""


def _personal(profile: Mapping[str, Any]) -> dict[str, Any]:
    """What templates may read about the lead: its profile fields and custom fields, no internals."""
    lead = {k: v for k, v in profile.items() if k not in HIDDEN_FIELDS}
    for key, value in profile.items():
        if key.startswith("cf_"):
            lead.setdefault(key[3:], value)
    return lead


def _needs_activity(sequence: Sequence, workspace: Workspace) -> bool:
    from leadflow.config.sequences import BranchStep, GoalStep, WaitStep

    conditions = [sequence.goal] if sequence.goal else []
    for step in sequence.steps:
        if isinstance(step, BranchStep | GoalStep):
            conditions.append(step.when)
        elif isinstance(step, WaitStep) and step.until_event is not None:
            conditions.append(step.until_event)
    segments = {s.id: s for s in workspace.segments.segments}
    for condition in conditions:
        for part in condition.walk():
            if part.key == "activity":
                return True
            if (
                part.key == "segment"
                and part.segment in segments
                and any(p.key == "activity" for p in segments[part.segment].when.walk())
            ):
                return True
    return False
