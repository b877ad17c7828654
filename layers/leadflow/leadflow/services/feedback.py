"""What SES tells us about sent email: suppress, unsubscribe, record, score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from leadflow.domain.emails import InvalidEmail, normalize_email
from leadflow.domain.events import SOURCE_EMAIL, DomainEvent, activity_recorded
from leadflow.domain.ids import new_id
from leadflow.domain.ses import SesFeedback, activity_type, suppresses, unsubscribes
from leadflow.ports import Clock


@dataclass(frozen=True)
class FeedbackWrite:
    """Everything one piece of feedback writes, in one transaction."""

    email_key: str
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


class FeedbackService:
    def __init__(self, store: FeedbackStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def handle(self, feedback: SesFeedback) -> bool:
        """Apply one piece of feedback; False when it was already applied (a duplicate)."""
        try:
            email_key = normalize_email(feedback.recipient).key
        except InvalidEmail:
            email_key = feedback.recipient.casefold()
        lead_id = feedback.tag("lead_id") or self.store.lead_id_for_email(email_key)
        kind = activity_type(feedback)
        activity: dict[str, Any] | None = None
        events: list[DomainEvent] = []
        if lead_id and kind:
            activity = {
                "activity_id": feedback.feedback_id,
                "lead_id": lead_id,
                "type": kind,
                "at": feedback.occurred_at.isoformat(),
                "message_id": feedback.message_id,
            }
            optional = {
                "url": feedback.link,
                "link_tag": next(iter((feedback.link_tags or {}).get("tag") or []), None),
                "campaign": feedback.tag("campaign"),
                "sequence": feedback.tag("sequence"),
                "bounce_type": feedback.bounce_type,
                "diagnostic": feedback.diagnostic,
            }
            activity.update({k: v for k, v in optional.items() if v})
            events.append(activity_recorded(new_id(self.clock.now()), activity, feedback.occurred_at, SOURCE_EMAIL))
        write = FeedbackWrite(
            email_key=email_key,
            feedback_id=feedback.feedback_id,
            at=feedback.occurred_at.isoformat(),
            suppress_reason=feedback.kind.value if suppresses(feedback) else None,
            unsubscribe=unsubscribes(feedback),
            listed_at=self.clock.now().isoformat(),
            lead_id=lead_id,
            activity=activity,
            events=events,
        )
        return self.store.record_feedback(write)
