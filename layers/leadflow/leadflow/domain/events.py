"""The events leadflow publishes on its bus. Versioned: consumers read ``schema_version``.

Events carry ids and attribution, never the email address or other contact details:
consumers that need them read the lead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadflow.domain.submissions import Submission

SCHEMA_VERSION = 1
SOURCE_FORMS = "leadflow.forms"
SOURCE_TRACKING = "leadflow.tracking"
SOURCE_EMAIL = "leadflow.email"
# Changes a person made through the admin API, and imports.
SOURCE_API = "leadflow.api"
SOURCE_SCORING = "leadflow.scoring"
# Activity attributes that travel with activity.recorded (what scoring rules match on);
# never contact details, IPs or user agents.
ACTIVITY_ATTRIBUTES = (
    "form_id",
    "touch",
    "url",
    "title",
    "seconds",
    "asset",
    "percent",
    "event",
    "message_id",
    "link_id",
    "link_tag",
    "campaign",
    "visitor_id",
    "sequence",
    "bounce_type",
    "referrer",
)


@dataclass(frozen=True)
class DomainEvent:
    event_id: str
    source: str
    detail_type: str
    occurred_at: str
    detail: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        """The event as stored in the outbox and sent as EventBridge ``Detail``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "event_id": self.event_id,
            "occurred_at": self.occurred_at,
            **self.detail,
        }


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class OutboxEvent:
    """An event as kept in the outbox: its detail already serialized."""

    event_id: str
    source: str
    detail_type: str
    detail: str


def lead_captured(  # noqa: PLR0917 - the event's id, what it announces, and where it came from
    event_id: str, submission: Submission, lead_id: str, is_new: bool, source: str = SOURCE_FORMS, via: str = "form"
) -> DomainEvent:
    """A lead created or merged: by a form post (``via`` ``form``), the admin API or an import
    (``via`` ``api`` / ``import``: no form was submitted, so no form trigger fires)."""
    detail: dict[str, Any] = {
        "lead_id": lead_id,
        "new": is_new,
        "form_id": submission.form_id,
        "touch": dict(submission.touch),
        "account_domain": submission.email.company_domain,
    }
    if via != "form":
        detail["via"] = via
    if submission.consent:
        detail["consent"] = {"purpose": submission.consent.purpose, "granted": submission.consent.granted}
    if submission.visitor_id:
        detail["visitor_id"] = submission.visitor_id
    return DomainEvent(event_id, source, "lead.captured", submission.received_at.isoformat(), detail)


def activity_recorded(event_id: str, activity: dict[str, Any], at: datetime, source: str = SOURCE_FORMS) -> DomainEvent:
    detail = {
        "lead_id": activity.get("lead_id"),
        "activity_id": activity["activity_id"],
        "type": activity["type"],
        "at": activity.get("at", at.isoformat()),
        **{k: activity[k] for k in ACTIVITY_ATTRIBUTES if activity.get(k) is not None},
    }
    return DomainEvent(event_id, source, "activity.recorded", at.isoformat(), detail)


def lead_scored(  # noqa: PLR0917 - the event's fields, as its consumers read them
    event_id: str,
    occurred_at: str,
    lead_id: str,
    activity_id: str | None,
    entries: list[dict[str, Any]],
    scores: dict[str, float],
    grade: str,
    nurture: bool,
) -> DomainEvent:
    """A lead's score moved: the activity that moved it, the points and rules of its new ledger
    ``entries`` (``LedgerEntry.as_item``), the scores and grade now, and whether a nurture sequence
    acts on score events (the nurture bus rule takes only those: a queue delivery per scored
    activity otherwise)."""
    detail = {
        "lead_id": lead_id,
        "activity_id": activity_id,
        "points_added": sum(entry["points"] for entry in entries),
        "scores": scores,
        "grade": grade,
        "rules": sorted({str(entry["rule_id"]) for entry in entries}),
        "nurture": nurture,
    }
    return DomainEvent(event_id, SOURCE_SCORING, "lead.scored", occurred_at, detail)


SCORED_ATTRIBUTE = "scored"
"""The ledger item's attribute that carries its ``lead.scored`` (``scored_on_ledger``); the outbox
relay's stream filter in template.yaml names it too."""


def scored_on_ledger(event: DomainEvent) -> str:
    """What a scored activity's ledger item carries of its ``lead.scored`` event (issue 17: the item
    is the event, published from its stream record, so the scoring transaction writes no outbox
    item): the fields its entries cannot give, as compact JSON. ``scored_from_ledger`` rebuilds the
    event; only for an event whose ``activity_id`` is its entries' (an activity's, not an award's)."""
    detail = event.detail
    carried = {
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "scores": detail["scores"],
        "grade": detail["grade"],
        "nurture": detail["nurture"],
    }
    return json.dumps(carried, separators=(",", ":"))


def scored_from_ledger(lead_id: str, activity_id: str, entries: list[dict[str, Any]], carried: str) -> DomainEvent:
    """The ``lead.scored`` event a ledger item carries (``scored_on_ledger``), its entries (of
    ``activity_id``) giving the points and rules: the event the scoring function would have put in
    the outbox.

    Raises:
        KeyError, ValueError, IndexError: not an item written by ``scored_on_ledger``'s writer.
    """
    fields = json.loads(carried)
    return lead_scored(
        str(fields["event_id"]),
        str(fields["occurred_at"]),
        lead_id,
        activity_id,
        entries,
        fields["scores"],
        str(fields["grade"]),
        bool(fields["nurture"]),
    )
