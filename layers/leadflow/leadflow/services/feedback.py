"""What SES tells us about sent email: suppress, unsubscribe, record, score."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leadflow.domain.emails import InvalidEmail, normalize_email
from leadflow.domain.events import SOURCE_EMAIL, DomainEvent, activity_recorded
from leadflow.domain.ids import new_id
from leadflow.domain.ses import (
    CONFIRMATIONS,
    FeedbackKind,
    SesFeedback,
    activity_type,
    suppresses,
    unsubscribes,
)
from leadflow.ports.clock import Clock
from leadflow.ports.messaging import FeedbackStore, FeedbackWrite, SendConfirmations

MESSAGE_HEADER = "x-leadflow-message"  # leadflow's message id, on every email it sends


class FeedbackService:
    def __init__(
        self,
        store: FeedbackStore,
        clock: Clock,
        address_key: Callable[[str], str],
        sends: SendConfirmations | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.address_key = address_key
        self.sends = sends

    def handle(self, feedback: SesFeedback) -> bool:
        """Apply one piece of feedback; False when it was already applied (a duplicate) or changed
        nothing.

        Send and Delivery events (one of each per email) record nothing but an ambiguous send's
        confirmation in the mail log (``_confirm``); the rest write ``record_feedback``'s transaction.
        """
        if feedback.kind in CONFIRMATIONS:
            return self._confirm(feedback)
        try:
            email_key = normalize_email(feedback.recipient).key
        except InvalidEmail:
            email_key = feedback.recipient.casefold()
        lead_id = feedback.tag("lead_id") or feedback.tag("lead") or self.store.lead_id_for_email(email_key)
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
        suppress = suppresses(feedback)
        write = FeedbackWrite(
            email_key=email_key,
            address_key=self.address_key(email_key) if suppress else "",
            feedback_id=feedback.feedback_id,
            at=feedback.occurred_at.isoformat(),
            suppress_reason=feedback.kind.value if suppress else None,
            unsubscribe=unsubscribes(feedback),
            listed_at=self.clock.now().isoformat(),
            lead_id=lead_id,
            activity=activity,
            events=events,
        )
        return self.store.record_feedback(write)

    def _confirm(self, feedback: SesFeedback) -> bool:
        """A Send event of an email leadflow sent: its tag names the lead and its header leadflow's
        message id (an email without them is not one leadflow logged: nothing to do).

        It confirms an ambiguous send (the delivery policy's answer to an ambiguous SendEmail:
        README, "Email delivery"), written only when the mail log needs it
        (``MailLog.confirmation_needed``). A Delivery event changes nothing: the configuration set
        does not publish them (one per email would cost more than the rest of a campaign, issue
        17), and a report's ``delivered`` is its sent less its bounces. Neither records an
        activity, a bus event or a score.
        """
        lead_id = feedback.tag("lead_id") or feedback.tag("lead")
        message_id = feedback.headers.get(MESSAGE_HEADER)
        if feedback.kind is not FeedbackKind.SENT or not lead_id or not message_id or self.sends is None:
            return False
        return self.sends.confirm_send(lead_id, message_id, feedback.occurred_at, self.clock.now())
