"""``advance``: walk one enrollment from its current step as far as it may go now (see the
package's docstring for the rules), and the message ids and A/B variants of its emails."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from leadflow.domain.consent import AWAITING_CONFIRMATION, NO_CONSENT, consent_decision
from leadflow.domain.definitions.conditions import END, SegmentList
from leadflow.domain.definitions.consent import ConsentPolicy
from leadflow.domain.definitions.messaging import MessagingConfig
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.definitions.steps import (
    Action,
    ActionStep,
    BranchStep,
    EmailStep,
    GoalStep,
    StepType,
    Variant,
    WaitStep,
)
from leadflow.domain.nurture.conditions import _CACHE_LIMIT, _COLLECTIONS, Predicate, _compile
from leadflow.domain.nurture.state import (
    ACTIVE,
    COMPLETED,
    CONVERTED,
    EXITED,
    FAILED,
    EmailToSend,
    Enrollment,
    LeadView,
    Outcome,
    SentEmail,
)
from leadflow.domain.nurture.timing import _cap_until, _next_local_time, _quiet_until, lead_timezone

MAX_STEPS = 100
"""Steps one ``advance`` call may pass through before the enrollment fails (a runaway guard)."""
PAUSE_RECHECK = timedelta(hours=1)
CONFIRMATION_RECHECK = timedelta(hours=6)


def message_id_for(lead_id: str, sequence_id: str, entry: int, step_id: str) -> str:
    """The id of the email a step sends to a lead in one enrollment: the same inputs, the same id."""
    digest = hashlib.sha256(f"{lead_id}\x1f{sequence_id}\x1f{entry}\x1f{step_id}".encode()).hexdigest()
    return f"m_{digest[:24]}"


def choose_variant(variants: tuple[Variant, ...], lead_id: str, sequence_id: str, step_id: str) -> Variant | None:
    """The A/B variant a lead gets at a step: weighted by ``weight``, stable for the lead (a hash, no randomness).

    Returns:
        The variant, or None when the step has none.
    """
    if not variants:
        return None
    total = sum(variant.weight for variant in variants)
    digest = hashlib.sha256(f"{sequence_id}\x1f{step_id}\x1f{lead_id}".encode()).digest()
    point = (int.from_bytes(digest[:8], "big") * total) >> 64
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return variant
    return variants[-1]  # pragma: no cover - point < total by construction


# ---------------------------------------------------------------------------- compiled sequences


# Complexity C (11), kept: the plan's one pass over the steps, one branch per kind of step.
class _Plan:
    """A sequence ready to walk: steps by id, where each goes next, conditions compiled."""

    __slots__ = ("conditions", "goal", "next", "sequence", "steps", "wait_for")

    def __init__(self, sequence: Sequence) -> None:
        self.sequence = sequence
        steps: tuple[StepType, ...] = sequence.steps
        self.steps: dict[str, StepType] = {step.id: step for step in steps}
        self.next: dict[str, str] = {}
        self.conditions: dict[str, Predicate] = {}
        self.wait_for: dict[str, timedelta] = {}
        for index, step in enumerate(steps):
            following = steps[index + 1].id if index + 1 < len(steps) else END
            if not isinstance(step, BranchStep):
                self.next[step.id] = step.next or following
            if isinstance(step, BranchStep | GoalStep):
                self.conditions[step.id] = _compile(step.when)
            elif isinstance(step, WaitStep):
                self.wait_for[step.id] = timedelta(seconds=step.seconds)
                if step.until_event is not None:
                    self.conditions[step.id] = _compile(step.until_event)
        self.goal = _compile(sequence.goal) if sequence.goal is not None else None


# Keyed by identity: a Sequence is unhashable once it has migrations (Migration.steps is a
# dict), and slots dataclasses cannot be weakly referenced. The entry holds the sequence, so
# its id cannot be reused while it is cached.
_PLANS: dict[int, _Plan] = {}


def _plan(sequence: Sequence) -> _Plan:
    plan = _PLANS.get(id(sequence))
    if plan is not None and plan.sequence is sequence:
        return plan
    if len(_PLANS) >= _CACHE_LIMIT:
        _PLANS.clear()
    plan = _PLANS[id(sequence)] = _Plan(sequence)
    return plan


# ---------------------------------------------------------------------------- advance


def advance(  # noqa: PLR0917 - the service's contract: the sequence, the enrollment, the lead, when, the rules
    sequence: Sequence,
    enrollment: Enrollment,
    lead: LeadView,
    now: datetime,
    messaging: MessagingConfig,
    segments: SegmentList | None = None,
    consent: ConsentPolicy | None = None,
) -> Outcome:
    """Walk an enrollment from its current step as far as it may go at ``now``.

    Args:
        sequence: the sequence definition of the enrollment's version.
        enrollment: the stored enrollment.
        lead: the lead as of now (profile, decayed scores, recent activities, suppression,
            recent marketing sends across every sequence).
        now: the time of evaluation.
        messaging: messaging.yaml (default timezone, quiet hours, frequency caps, confirmation days).
        segments: segments.yaml, for conditions naming a segment.
        consent: consent.yaml, checked for every marketing email when it is due (None: opt-in
            everywhere, no double opt-in; never "no check").

    Returns:
        The outcome: the enrollment to store, at most one email to send first, the actions
        to run after storing, and why it waits when nothing moved. An enrollment that is not
        active comes back unchanged. Never raises for any sequence, enrollment or lead.
    """
    if enrollment.status != ACTIVE:
        return Outcome(enrollment)
    if sequence.status == "paused":
        return Outcome(replace(enrollment, due_at=now + PAUSE_RECHECK), deferred="paused")
    walk = _Walk(sequence, enrollment, lead, now, messaging, segments, consent)
    goal = walk.plan.goal
    steps = walk.plan.steps
    for _ in range(MAX_STEPS):
        if goal is not None and goal(lead, now, walk.emails, segments, 0):
            return walk.end(CONVERTED, "goal")
        step_id = walk.step_id
        if step_id == END:
            return walk.end(COMPLETED, COMPLETED)
        step = steps.get(step_id)
        if step is None:
            return walk.end(FAILED, "unknown step")
        walk.trail.append(step_id)
        following = walk.take(step)
        if isinstance(following, Outcome):  # the walk stops here
            return following
        walk.step_id = following
        walk.started = now
    return walk.end(FAILED, "step limit")


class _Walk:
    """One ``advance`` call: where the enrollment is, what it collected, and what each kind of step
    does to it. A step answers the id of the step to go on to, or the ``Outcome`` it stops with."""

    __slots__ = (
        "actions",
        "consent",
        "email",
        "emails",
        "enrollment",
        "lead",
        "messaging",
        "now",
        "plan",
        "segments",
        "sequence",
        "started",
        "step_id",
        "trail",
    )

    def __init__(  # noqa: PLR0917 - advance's arguments, kept for its steps
        self,
        sequence: Sequence,
        enrollment: Enrollment,
        lead: LeadView,
        now: datetime,
        messaging: MessagingConfig,
        segments: SegmentList | None,
        consent: ConsentPolicy | None,
    ) -> None:
        self.sequence, self.enrollment, self.lead, self.now = sequence, enrollment, lead, now
        self.messaging, self.segments, self.plan = messaging, segments, _plan(sequence)
        self.consent = consent
        self.step_id = enrollment.step_id
        self.started = enrollment.step_started_at
        self.emails = enrollment.emails
        self.actions: list[Action] = []
        self.trail: list[str] = []
        self.email: EmailToSend | None = None

    def stop(self, due: datetime, deferred: str | None) -> Outcome:
        moved = replace(
            self.enrollment, step_id=self.step_id, step_started_at=self.started, due_at=due, emails=self.emails
        )
        return Outcome(moved, self.email, tuple(self.actions), deferred, tuple(self.trail))

    def end(self, status: str, reason: str) -> Outcome:
        ended = replace(
            self.enrollment,
            step_id=self.step_id,
            step_started_at=self.started,
            status=status,
            exit_reason=reason,
            due_at=None,
            ended_at=self.now,
            emails=self.emails,
        )
        return Outcome(ended, self.email, tuple(self.actions), None, tuple(self.trail))

    def holds(self, step_id: str) -> bool:
        return self.plan.conditions[step_id](self.lead, self.now, self.emails, self.segments, 0)

    def take(self, step: StepType) -> str | Outcome:
        if isinstance(step, BranchStep):
            return step.then if self.holds(step.id) else step.otherwise
        if isinstance(step, GoalStep):
            return self.end(CONVERTED, "goal") if self.holds(step.id) else self.plan.next[step.id]
        if isinstance(step, ActionStep):
            self.actions.extend(step.actions)
            return self.plan.next[step.id]
        if isinstance(step, WaitStep):
            return self.wait(step)
        return self.send(step)

    def wait(self, step: WaitStep) -> str | Outcome:
        """Until the wait's end (then, with ``until``, the next allowed local time), or its event."""
        wake = self.started + self.plan.wait_for[step.id]
        if step.until is not None:
            wake = _next_local_time(wake, step.until, lead_timezone(self.lead.profile, self.messaging.default_timezone))
        event = self.plan.conditions.get(step.id)
        if self.now < wake and not (event is not None and event(self.lead, self.now, self.emails, self.segments, 0)):
            return self.stop(wake, "waiting")
        return self.plan.next[step.id]

    def send(self, step: EmailStep) -> str | Outcome:
        """The step's email, once it passes its gates; one email per call (the next one is looked at
        on the next call, at once)."""
        if self.email is not None:
            return self.stop(self.now, None)
        enrollment = self.enrollment
        message_id = message_id_for(enrollment.lead_id, enrollment.sequence_id, enrollment.entry, step.id)
        # Passed over when already sent (a loop back, a migration): no email, so no gate applies.
        if not any(sent.message_id == message_id for sent in self.emails):
            gate = _gate(step, self.sequence, enrollment.entered_at, self.lead, self.now, self.messaging, self.consent)
            if gate is not None:
                status, reason, due = gate
                return self.end(EXITED, reason) if status == EXITED else self.stop(due, reason)
            self.email = _email_to_send(step, self.sequence, enrollment.lead_id, message_id)
            self.emails = (*self.emails, SentEmail(step.id, message_id, self.now))
        return self.plan.next[step.id]


Gate = tuple[str, str, datetime]
"""(exited, reason, now), or (active, deferral, when to look again)."""


# The email's gates in the order the rules give them: suppressed; for a marketing email its
# unsubscribes and consent (``_permission``); quiet hours (not for a reply); frequency caps (not
# for a transactional email). Read top to bottom, each gate is two lines.
def _gate(  # noqa: PLR0917 - one private call site
    step: EmailStep,
    sequence: Sequence,
    entered_at: datetime,
    lead: LeadView,
    now: datetime,
    messaging: MessagingConfig,
    consent: ConsentPolicy | None,
) -> Gate | None:
    """Why this email may not go out now, None when it may."""
    if lead.suppressed:
        return EXITED, "suppressed", now
    profile = lead.profile
    purpose = sequence.purpose_of(step)
    if purpose is not None:
        refused = _permission(step.topic or sequence.topic, purpose, entered_at, lead, now, messaging, consent)
        if refused is not None:
            return refused
    if messaging.quiet_hours is not None and not step.reply:
        zone = lead_timezone(profile, messaging.default_timezone)
        quiet_end = _quiet_until(now, messaging.quiet_hours, zone)
        if quiet_end is not None:
            return ACTIVE, "quiet_hours", quiet_end
    if lead.recent_sends and purpose is not None:
        free_at = _cap_until(now, lead.recent_sends, messaging.frequency)
        if free_at is not None:
            return ACTIVE, "frequency_cap", free_at
    return None


def _permission(  # noqa: PLR0917 - one private call site
    topic: str,
    purpose: str,
    entered_at: datetime,
    lead: LeadView,
    now: datetime,
    messaging: MessagingConfig,
    consent: ConsentPolicy | None,
) -> Gate | None:
    """A marketing email's unsubscribe and consent gates (``domain.consent``): exit when unsubscribed or
    without consent for ``purpose``; wait while a double opt-in is pending, exit once its link expired."""
    profile = lead.profile
    topics = profile.get("unsubscribed_topics")
    if _flag(profile.get("unsubscribed")) or (isinstance(topics, _COLLECTIONS) and topic in topics):
        return EXITED, "unsubscribed", now
    decision = consent_decision(purpose, profile, consent)
    if decision == NO_CONSENT:
        return EXITED, NO_CONSENT, now
    if decision == AWAITING_CONFIRMATION:
        if now - entered_at > timedelta(days=messaging.confirmation_days):
            return EXITED, "unconfirmed", now
        return ACTIVE, AWAITING_CONFIRMATION, now + CONFIRMATION_RECHECK
    return None


GATE_EXITS = frozenset({"suppressed", "unsubscribed", NO_CONSENT, "unconfirmed"})
"""Why an email step's gate ends an enrollment: the lead was skipped at that step."""


def skipped(outcome: Outcome) -> bool:
    """Whether ``advance`` ended the enrollment at an email step's gate in this call (the lead was
    skipped there: counted for the step, never silently)."""
    ended = outcome.enrollment
    return bool(outcome.trail) and ended.status == EXITED and ended.exit_reason in GATE_EXITS


def _flag(value: Any) -> bool:
    """A yes/no profile field: a boolean, or its text form ("true", "1", "yes") as some imports store it."""
    if isinstance(value, str):
        return value.strip().casefold() in ("true", "1", "yes")
    return bool(value)


def _email_to_send(step: EmailStep, sequence: Sequence, lead_id: str, message_id: str) -> EmailToSend:
    variant = choose_variant(step.variants, lead_id, sequence.id, step.id)
    return EmailToSend(
        step_id=step.id,
        message_id=message_id,
        template=(variant.template if variant is not None and variant.template else step.template),
        subject=(variant.subject if variant is not None and variant.subject else step.subject),
        variant=variant.id if variant is not None else None,
        topic=step.topic or sequence.topic,
        sender=step.sender,
        sender_name=step.sender_name,
        transactional=step.transactional,
    )
