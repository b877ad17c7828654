"""The events leadflow publishes on its bus. Versioned: consumers read ``schema_version``.

Events carry ids and attribution, never the email address or other contact details:
consumers that need them read the lead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadflow.domain.submissions import Submission

SCHEMA_VERSION = 1
SOURCE_FORMS = "leadflow.forms"


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


@dataclass(frozen=True)
class OutboxEvent:
    """An event as kept in the outbox: its detail already serialized."""

    event_id: str
    source: str
    detail_type: str
    detail: str


def lead_captured(event_id: str, submission: Submission, lead_id: str, is_new: bool) -> DomainEvent:
    detail: dict[str, Any] = {
        "lead_id": lead_id,
        "new": is_new,
        "form_id": submission.form_id,
        "touch": dict(submission.touch),
        "account_domain": submission.email.company_domain,
    }
    if submission.consent:
        detail["consent"] = {"purpose": submission.consent.purpose, "granted": submission.consent.granted}
    return DomainEvent(event_id, SOURCE_FORMS, "lead.captured", submission.received_at.isoformat(), detail)


def activity_recorded(event_id: str, activity: dict[str, Any], at: datetime) -> DomainEvent:
    detail = {
        "lead_id": activity["lead_id"],
        "activity_id": activity["activity_id"],
        "type": activity["type"],
        "form_id": activity.get("form_id"),
        "touch": activity.get("touch", {}),
    }
    return DomainEvent(event_id, SOURCE_FORMS, "activity.recorded", at.isoformat(), detail)
