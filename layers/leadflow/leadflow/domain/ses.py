"""SES sending feedback: parse what SES reports about a sent email and decide what it means.

SES reports through SNS in two formats: identity *notifications* (key ``notificationType``:
Bounce, Complaint, Delivery) and configuration-set *event publishing* (key ``eventType``:
Send, Reject, Bounce, Complaint, Delivery, Open, Click, Rendering Failure, DeliveryDelay,
Subscription). Event publishing can also target EventBridge, where the same record is the
event's ``detail``. Every entry point returns one ``SesFeedback`` per recipient, so a bounce
of three addresses is three decisions.

Outcomes other than feedback are types, never message text:

- ``NotFeedback``: a well-formed message that is not about a sent email (an SNS subscription
  confirmation, an inbound receipt, SES's "topic subscribed" notice). Acknowledge and drop.
- ``MalformedFeedback``: anything else that cannot be used (not JSON, no ``mail.messageId``,
  no usable recipient or timestamp, an unknown event type). Keep it (DLQ) for a replay.

Reasons never carry an address: they end up in logs.

Decisions (see ``suppresses`` and ``unsubscribes``):

- An *undetermined* bounce is recorded, not suppressed: SES could not tell why the message
  bounced, and its own account-level suppression list only takes hard bounces.
- A permanent bounce suppresses whatever its subtype (``OnAccountSuppressionList`` included:
  SES already refused to send, so sending again is wasted quota).
- Every complaint suppresses and unsubscribes, whatever its feedback type.
- A Subscription event whose new preferences say ``unsubscribeAll`` unsubscribes (a consent
  withdrawal made through SES subscription management) but does not suppress.
- An unknown event type is malformed (kept for a replay once supported), not dropped.
- Open and Click events are parsed but record no activity (``activity_type``): leadflow
  tracks opens and clicks itself, and counting SES's too would count each twice.
- Send and Delivery events record no activity either (``CONFIRMATIONS``): there is one of each
  per email, so an activity, a bus event and a scoring of each would cost more than everything
  else a campaign does (issue 17). A Send event confirms an ambiguous send in the lead's mail log
  (``MailLog.confirmation_needed``); the configuration set does not publish Delivery (a report's
  ``delivered`` is sent less bounces, as HubSpot and Mailchimp count it), and one that arrives
  changes nothing.

Here: the feedback model, the refusals and the decisions. Parsing is in ``ses_parsing`` (the
entry points and the SNS and EventBridge envelopes) and ``ses_records`` (the SES record itself).

Pure: no boto3, no environment, no clock reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from leadflow.domain.errors import LeadflowError

SourceFormat = Literal["notification", "event"]


class MalformedFeedback(LeadflowError):
    """The message is not a usable SES feedback message; it belongs in the DLQ."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFeedback(LeadflowError):
    """A well-formed message that is not feedback about a sent email; acknowledge and drop it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FeedbackKind(StrEnum):
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED_PERMANENT = "bounced_permanent"
    BOUNCED_TRANSIENT = "bounced_transient"
    BOUNCED_UNDETERMINED = "bounced_undetermined"
    COMPLAINED = "complained"
    REJECTED = "rejected"
    RENDERING_FAILED = "rendering_failed"
    DELIVERY_DELAYED = "delivery_delayed"
    SENT = "sent"
    SUBSCRIPTION_CHANGED = "subscription_changed"


@dataclass(frozen=True)
class SesFeedback:
    """What SES reported about one sent email, for one recipient.

    ``feedback_id`` is stable across redeliveries and across both formats (a notification and
    the event-publishing record of the same bounce share it), so it is the idempotency key.
    ``recipient`` is trimmed, NFC-normalized and case-folded (lowercase for ASCII), the same
    folding as ``NormalizedEmail.key``. ``occurred_at`` is timezone-aware UTC.
    """

    kind: FeedbackKind
    recipient: str
    message_id: str
    feedback_id: str
    occurred_at: datetime
    source_format: SourceFormat
    tags: dict[str, list[str]] = field(default_factory=dict, hash=False)
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    link: str | None = None
    link_tags: dict[str, list[str]] = field(default_factory=dict, hash=False)
    user_agent: str | None = None
    ip: str | None = None
    bounce_type: str | None = None
    bounce_subtype: str | None = None
    diagnostic: str | None = None
    complaint_type: str | None = None
    unsubscribe_all: bool | None = None

    def tag(self, name: str) -> str | None:
        """The first value of a message tag (``lead_id``, ``sequence``, ``step``, ``campaign``)."""
        values = self.tags.get(name)
        return values[0] if values else None


# --- decisions ---------------------------------------------------------------------------

# Opens and clicks are leadflow's own (its pixel and signed click redirects record them): an
# SES Open or Click event is the same open or click seen a second time, so it records nothing.
TRACKED_BY_LEADFLOW = frozenset({FeedbackKind.OPENED, FeedbackKind.CLICKED})

# One Send and one Delivery event per email: they confirm it in the mail log (the delivery
# policy's Send confirmation; a delivery marked once and counted for the sequence report),
# never an activity (FeedbackService).
CONFIRMATIONS = frozenset({FeedbackKind.SENT, FeedbackKind.DELIVERED})

ACTIVITY_TYPES: dict[FeedbackKind, str] = {
    FeedbackKind.BOUNCED_PERMANENT: "email_bounced",
    FeedbackKind.BOUNCED_TRANSIENT: "email_bounced",
    FeedbackKind.BOUNCED_UNDETERMINED: "email_bounced",
    FeedbackKind.COMPLAINED: "email_complained",
    FeedbackKind.REJECTED: "email_rejected",
    FeedbackKind.RENDERING_FAILED: "email_rendering_failed",
    FeedbackKind.DELIVERY_DELAYED: "email_delivery_delayed",
}


def suppresses(feedback: SesFeedback) -> bool:
    """Whether the address must never be sent to again: a permanent bounce or a complaint.

    Transient and undetermined bounces do not suppress (SES retried or could not classify);
    the activity they record lets a later rule count repeated soft bounces.
    """
    return feedback.kind in (FeedbackKind.BOUNCED_PERMANENT, FeedbackKind.COMPLAINED)


def unsubscribes(feedback: SesFeedback) -> bool:
    """Whether the recipient withdrew consent to marketing email.

    True for a complaint, and for a Subscription event whose new preferences opt out of all
    topics.
    """
    if feedback.kind is FeedbackKind.COMPLAINED:
        return True
    return feedback.kind is FeedbackKind.SUBSCRIPTION_CHANGED and feedback.unsubscribe_all is True


def activity_type(feedback: SesFeedback) -> str | None:
    """The product's activity type for this feedback, or None when it records no activity.

    Every bounce type is ``email_bounced`` (``bounce_type`` tells them apart). A Subscription
    change records no email activity: ``unsubscribes`` covers what it means. SES opens and clicks
    record none either (``TRACKED_BY_LEADFLOW``): leadflow's pixel and click redirect count them
    once; the configuration set does not publish them, and one that arrives is not a second count.
    Send and Delivery events record none (``CONFIRMATIONS``): a Send event confirms an ambiguous send.
    """
    return ACTIVITY_TYPES.get(feedback.kind)
