"""Ports: what the services need from the outside world. Adapters implement them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from leadflow.domain.leads import CapturePlan
from leadflow.domain.ratelimit import RateWindow

if TYPE_CHECKING:  # not imported at run time: form capture's cold start loads neither the renderer nor nurture
    from leadflow.domain import handoff as domain
    from leadflow.domain.audience import LeadUpdate
    from leadflow.domain.definitions.handoff import Destination
    from leadflow.domain.definitions.sequences import Sequence as SequenceConfig
    from leadflow.domain.events import DomainEvent, OutboxEvent
    from leadflow.domain.gdpr import PersonItems
    from leadflow.domain.handoff import Outcome
    from leadflow.domain.nurture.mail_log import MailLog
    from leadflow.domain.nurture.state import Enrollment
    from leadflow.domain.ratelimit import HitCounter
    from leadflow.domain.rendering import RenderedEmail
    from leadflow.domain.reporting import Key


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class StoredCapture:
    """What the store did with a submission."""

    lead_id: str
    created: bool
    replayed: bool = False
    submission_id: str = ""


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class ScoreState:
    """A lead as scoring reads it: its profile (None: no such lead), ledger and score version."""

    profile: dict[str, Any] | None
    ledger: list[dict[str, Any]]
    version: int


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class SpamRecord:
    form_id: str
    reason: str
    at: str
    fields: dict[str, list[str]]
    record_id: str


class LeadStore(Protocol):
    def capture(self, plan: CapturePlan, window: RateWindow | None, day: str) -> StoredCapture:
        """Store a submission atomically: lead (created or merged), activity, consent, outbox events.

        Raises:
            RateLimited: the client's window is full (nothing written).
            StorageUnavailable: the store is throttled or down (nothing written).
        """
        ...

    def record_spam(self, spam: SpamRecord, window: RateWindow | None, day: str) -> None:
        """Keep a spam post (with a TTL) and count it; raises like ``capture``."""
        ...

    def get_lead(self, lead_id: str) -> dict[str, Any] | None: ...

    def lead_id_for_email(self, email_key: str) -> str | None: ...

    def lead_history(self, lead_id: str, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The lead's most recent activities (newest first) and its whole consent history."""
        ...

    def recent_leads(self, limit: int) -> list[dict[str, Any]]: ...

    def form_stats(self, day: str) -> dict[str, dict[str, int]]: ...


class IntakeQueue(Protocol):
    def enqueue(self, message: dict[str, Any]) -> None:
        """Keep a raw submission durably for replay.

        Raises:
            IntakeUnavailable: the queue did not take it.
        """
        ...


# ---------------------------------------------------------------------------------------------
# Nurture ports (services/nurture). Kept as one block: the nurture package's collaborators.


class SendThrottled(Exception):
    """The provider did not take the message (throttled after backing off, or unreachable): try again later."""


class SendRejected(Exception):
    """The provider refused this message for good (or the account cannot send): do not retry it as is."""


class SendUncertain(Exception):
    """A 5xx or a lost answer: the provider may have taken the message. Sent again only when the
    provider does not confirm it within ``CONFIRM_WINDOW`` (README, "Email delivery")."""


class EmailSender(Protocol):
    def send(self, email: RenderedEmail, to: str, message_id: str, tags: dict[str, str]) -> str:
        """Send one rendered email; returns the provider's message id.

        Raises:
            SendThrottled: the provider did not take it (throttled or unreachable; retry later).
            SendRejected: the provider refused this email (never retried).
            SendUncertain: it may have gone out (a 5xx, a lost answer): wait for the provider's
                confirmation, send again only without one (README, "Email delivery").
        """
        ...


class DueNowQueue(Protocol):
    def push(self, pairs: list[tuple[str, str]]) -> None:
        """Have these (lead id, sequence id) enrollments stepped now, not at the next tick."""
        ...


class PointsAwarder(Protocol):
    def award(self, lead_id: str, points: int, model: str | None, reason: str, award_id: str) -> None:
        """Add points to the lead's score, once per ``award_id``."""
        ...


class BroadcastRunner(Protocol):
    def start(self, name: str, parts: list[dict[str, Any]]) -> None:
        """Run a broadcast's parts in parallel, a hop of each at a time, until every part is done
        (the broadcast state machine); started once per ``name``, a second start is a no-op."""
        ...


@dataclass
class ProfileChange:
    """Changes to a lead's profile made together (one write), and the events that announce them
    (stored with it). An attribute appears once: a second change of it is another ``ProfileChange``."""

    assign: dict[str, Any] = field(default_factory=dict)
    """Attributes set to a value."""
    add_to: dict[str, set[str]] = field(default_factory=dict)
    """Set attributes (tags, segments) given these members."""
    remove_from: dict[str, set[str]] = field(default_factory=dict)
    """Set attributes these members are taken out of."""
    events: list[DomainEvent] = field(default_factory=list)

    def touches(self, attribute: str) -> bool:
        return attribute in self.assign or attribute in self.add_to or attribute in self.remove_from

    def __bool__(self) -> bool:
        return bool(self.assign or self.add_to or self.remove_from)


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


EnrollmentsByKey: TypeAlias = "dict[tuple[str, str], tuple[Enrollment, int]]"
"""Enrollments by (lead id, sequence id), each with the rev it was read at."""


class NurtureStore(Protocol):
    """What the nurture service and the tick read and write: leads, enrollments, mail logs,
    sequence versions, suppressions, the shared send rate, the due index and broadcast runs.

    Every write of an enrollment or a mail log is conditional on what was read (an enrollment's
    ``rev``, a log's ``version``): whoever changed it meanwhile wins, and the write says False
    (or "changed")."""

    # -- leads
    def get_lead(self, lead_id: str) -> dict[str, Any] | None: ...

    def recent_activities(self, lead_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The lead's most recent activities, newest first."""
        ...

    def update_profile(self, lead_id: str, change: ProfileChange) -> None:
        """Apply the change to the lead's profile (nothing when the lead is gone), its events with it."""
        ...

    def record_consent(self, lead_id: str, record_id: str, consent: Mapping[str, Any]) -> None:
        """Add one record (``purpose``, ``granted``, ``at``, ``source``...) to the lead's consent history."""
        ...

    def suppress(self, address_key: str, reason: str, at: str) -> None:
        """List an address key (its keyed hash, never the address); the first reason is kept."""
        ...

    def suppressed(self, address_keys: Iterable[str]) -> set[str]:
        """Which of these address keys are suppressed."""
        ...

    def suppression_items(self, address_keys: Iterable[str]) -> list[dict[str, Any]]:
        """The entries of these address keys (``PK`` ``SUPPRESS#<key>``, ``reason``, ``at``)."""
        ...

    def unsuppress_erased(self, address_key: str) -> None:
        """Delete the entry if its reason is ``erased`` (the person consented again since)."""
        ...

    def suppressions_listed(self, since: str | None, most: int) -> list[str] | None:
        """The address keys suppressed at or after ``since`` (None: all); None when more than ``most``."""
        ...

    # -- sequence versions
    def version_of(self, sequence_id: str, content_hash: str, definition: dict[str, Any]) -> int:
        """The version number of this content of the sequence; a new content gets the next number."""
        ...

    def version_definition(self, sequence_id: str, number: int) -> dict[str, Any] | None: ...

    def versions(self, sequence_id: str) -> list[dict[str, Any]]:
        """Every registered version: ``number``, ``hash``, ``created_at``, by number."""
        ...

    # -- enrollments
    def enrollment(self, lead_id: str, sequence_id: str) -> tuple[Enrollment, int] | None: ...

    def lead_enrollments(self, lead_id: str) -> list[tuple[Enrollment, int]]: ...

    def load_batch(
        self, pairs: list[tuple[str, str]], mail: bool = True
    ) -> tuple[EnrollmentsByKey, dict[str, dict[str, Any]], dict[str, MailLog]]:
        """The enrollments of these pairs, their leads' profiles and (with ``mail``) mail logs (an
        empty one for a lead without)."""
        ...

    def enrollments_of(
        self, pairs: list[tuple[str, str]], mail: bool = False
    ) -> tuple[EnrollmentsByKey, dict[str, MailLog]]: ...

    def put_enrollment(self, enrollment: Enrollment, rev: int, new: bool = False) -> bool:
        """Store the enrollment over the one read at ``rev`` (0: there must be none); False if it changed."""
        ...

    def put_enrollments(self, enrollments: Sequence[tuple[Enrollment, int | None]]) -> int:
        """Each written like ``put_enrollment`` (rev None: new); returns how many were written."""
        ...

    # -- the mail log
    def mail_log(self, lead_id: str) -> MailLog: ...

    def claim_send(  # noqa: PLR0917 - the claim: whose, which email, what, when, over which read
        self,
        lead_id: str,
        message_id: str,
        record: dict[str, Any],
        now: datetime,
        log: MailLog,
        held: Enrollment | None = None,
    ) -> tuple[str, MailLog]:
        """Claim one email before it is sent (``MailLog.claimed``, written over ``log``'s version).

        Returns "claimed" with the log as written, "taken" (claimed before: never send it again),
        "confirmed" with the log as written (an ambiguous send of it the provider has since
        confirmed, now marked counted: count it as sent, once), "unconfirmed" (an ambiguous send
        awaiting the provider's confirmation: ask again later) or "changed" (the log changed since
        ``log`` was read: decide again)."""
        ...

    def mark_uncertain(self, lead_id: str, message_id: str, now: datetime) -> None:
        """Keep a claim whose send failed ambiguously, marked uncertain since ``now``."""
        ...

    def hold(self, enrollment: Enrollment, log: MailLog) -> bool:
        """Write a held enrollment's new state over the log read; False if the log changed."""
        ...

    def release_send(self, lead_id: str, message_id: str) -> None:
        """Take a claim back (the provider refused before sending)."""
        ...

    def touch_mail(self, lead_id: str) -> None:
        """Change the log's version: any send claimed on an older read fails (an unsubscribe)."""
        ...

    # -- the shared send rate
    def take_send_slots(self, wanted: int, rate: int, now: float) -> int:
        """Up to ``wanted`` sends of the current second's ``rate``, shared by every sender."""
        ...

    # -- the due index and the ticks
    def due(self, shard: int, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(lead id, sequence id) of the shard's enrollments due at ``now``, oldest first."""
        ...

    def shards_with_due(self, now: datetime) -> list[int]: ...

    def lease_shard(self, shard: int, holder: str, now: datetime, hold: timedelta) -> bool:
        """Hold one shard for one tick until ``now + hold``; False while another tick holds it."""
        ...

    def release_shard(self, shard: int, holder: str) -> None: ...

    # -- broadcasts
    def scan_leads(
        self, sequence_id: str, segment: int, segments: int, start: dict[str, Any] | None = None
    ) -> Iterable[ScannedPage]:
        """Every lead profile of one of ``segments`` scan segments, with its enrollment in the
        sequence and its mail log, page by page, from ``start`` (a page's ``after``)."""
        ...

    def table_items(self) -> int | None:
        """About how many items the table holds (DynamoDB updates the figure every ~6 hours;
        None when unknown): a broadcast runs no more parts than its Scan has pages of work for."""
        ...

    def start_broadcast_run(self, sequence_id: str, run: str, at: str, parts: int) -> bool:
        """Record a broadcast run (once: False when it exists)."""
        ...

    def claim_broadcast(self, sequence_id: str, name: str, at: str) -> bool:
        """Claim one named step of a sequence's broadcasts once (a scheduled time)."""
        ...

    def release_broadcast(self, sequence_id: str, name: str) -> None:
        """Take a claim or a run back (the run's state machine could not be started)."""
        ...

    def record_broadcast(self, sequence_id: str, run: str, counts: dict[str, int], parts_done: int) -> None:
        """Add one part's counts to the run's progress."""
        ...

    def broadcast_run(self, sequence_id: str, run: str) -> dict[str, Any] | None: ...


class StreamRecordsGone(Exception):
    """The stream no longer holds the records (DynamoDB Streams keeps them 24 hours)."""


class StreamReader(Protocol):
    def read(self, stream_arn: str, shard_id: str, first: str, last: str) -> list[dict[str, Any]]:
        """The stream records of one shard from sequence number ``first`` to ``last``, in Lambda's
        event shape; raises StreamRecordsGone when they were trimmed."""
        ...


class DeadLetters(Protocol):
    def receive(self) -> list[tuple[str, str]]:
        """Up to ten (receipt, body) pairs; none when the queue is empty."""
        ...

    def delete(self, receipt: str) -> None: ...

    def keep(self, receipt: str) -> None:
        """Leave the message, hidden from this run."""
        ...


# ---------------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class ScoreWrite:
    lead_id: str
    expected_version: int
    entries: list[dict[str, Any]]
    summary: dict[str, Any]
    stage: tuple[str, str] | None
    events: list[DomainEvent] = field(default_factory=list)


class ScoreStore(Protocol):
    def score_state(self, lead_id: str) -> ScoreState: ...

    def apply_score(self, write: ScoreWrite) -> bool:
        """False when the version moved on (reload and retry)."""
        ...

    def leads_in_stage(self, stage: str) -> list[str]: ...

    def account_leads(self, domain: str) -> list[dict[str, Any]]: ...


# ---------------------------------------------------------------------------- SES feedback
@dataclass(frozen=True)
class FeedbackWrite:
    """Everything one piece of feedback writes, in one transaction."""

    email_key: str
    address_key: str
    """The address's key on the suppression list (its keyed hash)."""
    feedback_id: str
    at: str
    suppress_reason: str | None
    unsubscribe: bool
    listed_at: str
    """When the suppression (if any) is listed: this write's time (the list is read by it)."""
    lead_id: str | None
    activity: dict[str, Any] | None
    events: list[DomainEvent]


class FeedbackStore(Protocol):
    def lead_id_for_email(self, email_key: str) -> str | None: ...

    def record_feedback(self, write: FeedbackWrite) -> bool: ...


class SendConfirmations(Protocol):
    def confirm_send(self, lead_id: str, message_id: str) -> None:
        """SES took this email (its Send event): an ambiguous send of it is never repeated."""
        ...

    def confirm_delivery(self, lead_id: str, message_id: str) -> bool:
        """The recipient's server took this email (its Delivery event): marked on the email in the
        mail log and, for a sequence's email, added to its report's ``delivered`` counter, in one
        write. False when there is nothing to mark: the email is not in the log, or already marked
        (a redelivered event)."""
        ...


# ---------------------------------------------------------------------------- CRM feedback
ApplyStatus = Literal["applied", "duplicate", "conflict", "ignored"]


@dataclass(frozen=True)
class FeedbackState:
    """What deciding needs: the lead's stage and lock, and the hand-off's status, lock and last feedback."""

    lead_id: str
    stage: str
    score_version: int
    last_feedback_at: datetime | None
    handoff_id: str | None = None
    handoff_status: str | None = None
    handoff_rev: int | None = None
    handoff_found: bool = True
    owner_id: str | None = None


@dataclass(frozen=True)
class CrmFeedbackWrite:
    """One transaction: the event claimed, and (when applied) the hand-off, the lead, an activity and events."""

    provider: str
    event_id: str
    lead_id: str
    seen_expires_at: int
    applied: bool
    expected_score_version: int = 0
    handoff_id: str | None = None
    expected_rev: int | None = None
    status: str | None = None
    history_entry: dict[str, Any] | None = None
    stage_move: tuple[str, str] | None = None
    feedback: dict[str, Any] = field(default_factory=dict)
    activity: dict[str, Any] | None = None
    events: list[DomainEvent] = field(default_factory=list)


class CrmFeedbackStore(Protocol):
    def lead_for_external_id(self, provider: str, external_id: str) -> str | None:
        """The lead a CRM record id was handed off as (the CRMREF item), or None."""
        ...

    def feedback_state(self, lead_id: str, handoff_id: str | None) -> FeedbackState | None:
        """The lead (None: no such lead) and the hand-off (``handoff_id``, else the lead's latest)."""
        ...

    def apply_feedback(self, write: CrmFeedbackWrite) -> ApplyStatus:
        """Write it atomically: ``duplicate`` when the event was claimed before (nothing written),
        ``conflict`` when the lead or hand-off changed since it was read (nothing written).

        Raises:
            StorageUnavailable: the table is throttled or down.
        """
        ...

    def release_owner(self, owner_id: str) -> None:
        """One open hand-off fewer for the owner's capacity (never below zero)."""
        ...


# ---------------------------------------------------------------------------- sales hand-off
@dataclass(frozen=True)
class Delivery:
    """One hand-off to one destination: what a sender needs."""

    destination: Destination
    url: str  # the effective URL (the fake CRM under `leadflow dev`)
    allow_private: bool
    payload: dict[str, Any]
    handoff_id: str
    lead_id: str


class DeliverySender(Protocol):
    def send(self, delivery: Delivery, now: datetime) -> Outcome: ...


# ---------------------------------------------------------------------------- secrets
class MissingSecret(RuntimeError):
    """A key the function needs is absent or empty in its JSON secret (the operator must set it)."""


# ---------------------------------------------------------------------------------------------
# Audience (services/audience): leads written by a person or an import, and paged lists of leads.
ListIndex = Literal["stage", "tag", "segment", "recent"]


class AudienceStore(Protocol):
    def capture(self, plan: CapturePlan, window: RateWindow | None, day: str) -> StoredCapture:
        """As ``LeadStore.capture``: a stated lead goes through the same guard and merge."""
        ...

    def get_lead(self, lead_id: str) -> dict[str, Any] | None: ...

    def lead_id_for_email(self, email_key: str) -> str | None: ...

    def update_lead(self, update: LeadUpdate) -> None:
        """Apply a PATCH in one transaction. Raises LeadNotFound, AddressTaken, StorageUnavailable."""
        ...

    def change_tag(
        self, lead_id: str, tag: str, add: bool, activity: dict[str, Any], events: list[DomainEvent]
    ) -> bool:
        """Add or remove a tag with its membership item; False when nothing changed. Raises LeadNotFound."""
        ...

    def leads_page(
        self, index: ListIndex, value: str, limit: int, cursor: str | None, now: datetime
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of profiles of a stage, tag or segment (or the newest), and the next page's cursor."""
        ...


# ---------------------------------------------------------------------------------------------
# Console (services/audit, transport/console): the audit log, signing people in, their tokens.
class AuditLog(Protocol):
    def record(self, entry: dict[str, Any]) -> None: ...

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest changes first."""
        ...


class TokenVerifier(Protocol):
    def claims(self, token: str) -> dict[str, Any]:
        """A verified ID token's claims. Raises an exception of the adapter's for any other token."""
        ...


# ---------------------------------------------------------------------------- ports the services declared


class ActivityStore(Protocol):
    def record_activity(
        self, owner_pk: str, activity: dict[str, Any], events: list[DomainEvent], counter: HitCounter | None = None
    ) -> bool: ...

    def record_announced(
        self, lead_id: str, activity: dict[str, Any], source: str, counter: HitCounter | None = None
    ) -> bool:
        """Store an activity of a known lead that is its own ``activity.recorded`` event (published
        by ``source``, its id the activity's): no outbox item. False when nothing was written: the
        lead does not exist (erased), the hit counter is full, or the activity is stored already."""
        ...

    def visitor_lead(self, visitor_id: str) -> str | None: ...

    def visitor_activities(self, visitor_id: str) -> list[dict[str, Any]]: ...


class PageViewCounter(Protocol):
    def viewed(self, key: tuple[str, str]) -> None: ...


class RescoreStore(ScoreStore, Protocol):
    def lead_ids(self) -> list[str]: ...

    def lead_activities(self, lead_id: str) -> list[dict[str, Any]]: ...

    def rewrite_ledger(
        self,
        lead_id: str,
        remove: list[dict[str, Any]],
        add: list[dict[str, Any]],
        summary: dict[str, Any],
        stage: str | None,
    ) -> None: ...


class ReportWriter(Protocol):
    def existing(self, keys: list[Key]) -> set[Key]: ...

    def items(self, keys: list[Key]) -> dict[Key, dict[str, Any]]: ...

    def apply(self, markers: list[tuple[Key, dict[str, Any]]], counters: dict[Key, dict[str, int]]) -> None: ...

    def query(self, pk: str, sk_from: str, sk_to: str) -> list[dict[str, Any]]: ...


class LeadFacts(Protocol):
    def profiles(self, lead_ids: list[str]) -> dict[str, dict[str, Any]]: ...

    def form_stats(self, day: str) -> list[tuple[str, dict[str, Any]]]: ...

    def mail_logs(self, lead_ids: list[str]) -> dict[str, list[dict[str, Any]]]: ...


class EventPublisher(Protocol):
    def publish(self, events: list[OutboxEvent]) -> list[str]:
        """Publish; return the ids of the events that were refused."""
        ...


class CounterReader(Protocol):
    def query(self, pk: str, sk_from: str, sk_to: str) -> list[dict[str, Any]]: ...


class VariantWinners(Protocol):
    def winner(self, sequence: SequenceConfig, version: int, step_id: str, now: datetime) -> str | None: ...


class HandoffStore(Protocol):
    def get_lead(self, lead_id: str) -> dict[str, Any] | None: ...
    def get_handoff(self, lead_id: str, handoff_id: str) -> dict[str, Any] | None: ...
    def lead_handoffs(self, lead_id: str) -> list[dict[str, Any]]: ...
    def create_handoff(
        self, record: dict[str, Any], previous: str | None, sla_due: datetime | None, events: list[DomainEvent]
    ) -> bool: ...
    def save_handoff(
        self,
        record: dict[str, Any],
        sla_due: datetime | None,
        events: list[DomainEvent] | None = None,
        stage: str | None = None,
    ) -> bool:
        """Write a changed record (conditional on its ``rev``) with its events and, when ``stage``
        is given, the lead moved to that stage, atomically; False when the record changed meanwhile."""
        ...

    def sla_due(self, now: datetime, limit: int = 500) -> list[tuple[str, str]]: ...
    def next_ticket(self, team: str) -> int: ...
    def reserve_owner(self, owner_id: str, capacity: int) -> bool: ...
    def release_owner(self, owner_id: str) -> None: ...
    def disabled_destinations(self) -> dict[str, dict[str, Any]]: ...
    def disable_destination(self, name: str, at: datetime, reason: str) -> None: ...
    def put_crm_ref(self, provider: str, external_id: str, lead_id: str, handoff_id: str) -> None: ...
    def recent_activities(self, lead_id: str, limit: int) -> list[dict[str, Any]]: ...


class Explainer(Protocol):
    def explain_lead(self, lead_id: str, top: int = 5) -> dict[str, Any]: ...


class DeliveryQueue(Protocol):
    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        """One message per (hand-off, destination)."""
        ...


class Notifier(Protocol):
    def notify(self, notice: domain.SlaNotice, message_id: str) -> None:
        """Email a sales rep (SLA reminders and escalations)."""
        ...


class GdprStore(Protocol):
    def get_lead(self, lead_id: str) -> dict[str, Any] | None: ...
    def lead_id_for_email(self, email_key: str) -> str | None: ...
    def person(
        self, lead_id: str, partition: list[dict[str, Any]] | None = None, crm_refs: list[dict[str, str]] | None = None
    ) -> PersonItems: ...
    def spam_of(self, partitions: list[str], email_key: str) -> list[dict[str, Any]]: ...
    def lead_partition(self, lead_id: str) -> list[dict[str, Any]]: ...
    def suppression(self, address_key: str) -> dict[str, Any] | None: ...
    def mark_erasing(self, lead_id: str, erasure: dict[str, Any]) -> dict[str, Any] | None: ...
    def note_erasure(self, lead_id: str, name: str, value: Any) -> None: ...
    def delete_keys(self, keys: list[dict[str, str]]) -> int: ...
    def redact_change_audit(self, entries: list[dict[str, Any]], lead_id: str, subject: str) -> None: ...
    def finish_erasure(
        self, lead_id: str, guard: dict[str, str] | None, address_key: str | None, audit: dict[str, Any], at: str
    ) -> bool: ...
    def erasing_leads(self, limit: int = 1000) -> list[str]: ...
    def erased_subjects(self) -> set[str]: ...
    def lead_ids(self) -> list[str]: ...
    def put_audit(self, record: dict[str, Any]) -> None: ...
    def audit_of(self, subject: str) -> list[dict[str, Any]]: ...
    def release_owner(self, owner_id: str) -> None: ...
    def leads_created_in(self, month: str) -> list[tuple[str, str]]: ...
    def last_activity_at(self, lead_id: str) -> str | None: ...


class ReportMarkers(Protocol):
    def markers(
        self, lead_id: str, handoff_ids: Iterable[str] = (), message_ids: Iterable[str] = ()
    ) -> list[dict[str, Any]]: ...
    def delete(self, keys: list[dict[str, str]]) -> None: ...
    def keep_counts(self, erasure_id: str, counts: dict[tuple[str, str], dict[str, int]]) -> None: ...


class NoticeQueue(Protocol):
    def enqueue(self, messages: list[dict[str, Any]]) -> None: ...


class SuppressionMigrationStore(Protocol):
    def suppression_entries(self) -> Iterator[dict[str, Any]]: ...
    def rekey_suppression(self, old: dict[str, Any], address_key: str) -> bool: ...
