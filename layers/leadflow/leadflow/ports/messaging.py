"""Email: the sender (and how a send fails), and SES feedback (bounces, complaints, unsubscribes,
ambiguous sends confirmed) written back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # not imported at run time: form capture's cold start loads neither the renderer nor nurture
    from datetime import datetime

    from leadflow.domain.events import DomainEvent
    from leadflow.domain.rendering import RenderedEmail


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
    def confirm_send(self, lead_id: str, message_id: str, accepted_at: datetime, now: datetime) -> bool:
        """SES took this email at ``accepted_at`` (its Send event): marked confirmed on the email in
        the mail log when the log needs it (``MailLog.confirmation_needed``: an uncertain send is
        never repeated). False when nothing was written."""
        ...
