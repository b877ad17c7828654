"""The nurture engine's state: an enrollment, the emails it sent, the lead as the engine sees it,
and what one ``advance`` call decided."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.domain.definitions.steps import Action

ACTIVE = "active"
COMPLETED = "completed"
CONVERTED = "converted"
EXITED = "exited"
FAILED = "failed"
TERMINAL_STATUSES = frozenset({COMPLETED, CONVERTED, EXITED, FAILED})


@dataclass(frozen=True, slots=True)
class SentEmail:
    """An email sent in an enrollment, and what the lead did with it."""

    step_id: str
    message_id: str
    sent_at: datetime
    opened: bool = False
    clicked: bool = False
    link_tags: tuple[str, ...] = ()
    """Tags of the links clicked in this email."""


@dataclass(frozen=True, slots=True)
class ActivityView:
    """A recent activity of the lead: ``attrs`` holds url, form_id, link_tag, message_id..."""

    type: str
    at: datetime
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeadView:
    """What the engine knows of a lead.

    ``profile`` is the lead profile item: first_name, country, company, title, custom fields
    as ``cf_<name>``, ``stage``, ``grade`` (a letter or None), ``tags``, ``timezone`` (IANA,
    optional), ``unsubscribed``, ``unsubscribed_topics``, consent (``consent_<purpose>``,
    ``consent_pending``, ``consent_confirmed_at``: see ``domain.consent``).
    """

    lead_id: str
    profile: Mapping[str, Any]
    scores: Mapping[str, float] = field(default_factory=dict)
    """The decayed score per model, as of now."""
    activities: tuple[ActivityView, ...] = ()
    """Recent activities, in any order."""
    suppressed: bool = False
    """The address is on the suppression list (bounce, complaint, unsubscribe)."""
    recent_sends: tuple[datetime, ...] = ()
    """When marketing emails were sent to this lead in the last 7 days, across all sequences."""
    default_model: str | None = None
    """scoring.yaml's default_model: what a score test without ``model`` reads. When not given,
    such a test reads the lead's only score if it has exactly one model, else 0."""


@dataclass(frozen=True, slots=True)
class Enrollment:
    """One lead's walk through one version of one sequence."""

    lead_id: str
    sequence_id: str
    version: int
    """The version of the sequence definition this enrollment runs on."""
    entry: int
    """1 for the lead's first enrollment in the sequence, 2 for its first re-entry..."""
    step_id: str
    """The current step ('end' is never stored while active)."""
    status: str
    """active, completed, converted, exited or failed."""
    entered_at: datetime
    step_started_at: datetime
    """When the current step began: waits count from here."""
    due_at: datetime | None
    """When the current step must be looked at again; None when not active."""
    emails: tuple[SentEmail, ...] = ()
    """Emails sent in this enrollment, oldest first."""
    exit_reason: str | None = None
    """goal, unsubscribed, suppressed, no_consent, unconfirmed, completed, manual, step limit..."""
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmailToSend:
    """An email the caller must send (then store the outcome's enrollment)."""

    step_id: str
    message_id: str
    """Deterministic per lead, sequence, entry and step: the send's idempotency key."""
    template: str
    subject: str
    variant: str | None
    """The A/B variant chosen for this lead (stable), None without variants."""
    topic: str
    sender: str | None
    """The step's sender address; None for messaging.yaml's."""
    sender_name: str | None
    transactional: bool = False
    """It answers something the person asked for: sent without consent, tracked only with it."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one ``advance`` call decided."""

    enrollment: Enrollment
    """The state to store (with the email already recorded, if there is one)."""
    email: EmailToSend | None = None
    """Send this first; store ``enrollment`` only once it is sent (or found already sent)."""
    actions: tuple[Action, ...] = ()
    """Run these (tag, set_field, handoff, enroll...) after storing."""
    deferred: str | None = None
    """Why nothing moved: quiet_hours, frequency_cap, awaiting_confirmation, waiting or paused."""
    trail: tuple[str, ...] = ()
    """The step ids passed through in this call, for the history."""
