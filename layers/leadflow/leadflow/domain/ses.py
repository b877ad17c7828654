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
  else a campaign does (issue 17). They confirm the email in the lead's mail log instead, and a
  Delivery adds one to its sequence report's ``delivered`` counter.

Pure: no boto3, no environment, no clock reads.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from leadflow.domain.errors import LeadflowError

SourceFormat = Literal["notification", "event"]

DIAGNOSTIC_LIMIT = 500
TEXT_LIMIT = 1024
LINK_LIMIT = 4096
ADDRESS_LIMIT = 320
HEADER_PREFIX = "x-leadflow-"
HEADERS_LIMIT = 20
TAGS_LIMIT = 64
TAG_VALUES_LIMIT = 16


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

_BOUNCES = frozenset(
    {FeedbackKind.BOUNCED_PERMANENT, FeedbackKind.BOUNCED_TRANSIENT, FeedbackKind.BOUNCED_UNDETERMINED}
)

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
    Send and Delivery events record none (``CONFIRMATIONS``): they confirm the email in the mail log.
    """
    return ACTIVITY_TYPES.get(feedback.kind)


# --- entry points ------------------------------------------------------------------------


def parse_sns_record(record: dict[str, Any]) -> list[SesFeedback]:
    """Parse one record of a Lambda SNS event (``event["Records"][i]``).

    Args:
        record: the record; ``record["Sns"]["Message"]`` holds the SES JSON as a string.

    Returns:
        One feedback per recipient.

    Raises:
        MalformedFeedback: the record is not an SNS record, or its message is not usable SES JSON.
        NotFeedback: an SES inbound receipt record, or a well-formed message that is not
            feedback about a sent email.
    """
    if not isinstance(record, dict):
        raise MalformedFeedback("SNS record is not an object")
    if record.get("eventSource") == "aws:ses":
        raise NotFeedback("SES inbound receipt event")
    sns = record.get("Sns")
    if not isinstance(sns, dict):
        raise MalformedFeedback("record has no Sns object")
    return _parse_sns_body({"Type": "Notification", **sns})


def parse_message(message: dict[str, Any] | str | bytes) -> list[SesFeedback]:
    """Parse an SES feedback message, as JSON text or already decoded.

    Args:
        message: the SES JSON (object or text), or one of the envelopes below.

    Accepts the SES JSON itself (either format), an SNS HTTP(S) delivery body
    (``{"Type": "Notification", "Message": "<SES JSON>"}``), a Lambda SNS record and an
    EventBridge event whose ``detail`` is an SES record.

    Returns:
        One feedback per recipient.

    Raises:
        MalformedFeedback: not JSON, not an object, or not a usable SES message.
        NotFeedback: an SNS subscription or unsubscribe confirmation, an inbound receipt, or
            another well-formed message that is not about a sent email.
    """
    payload = _loads(message) if isinstance(message, str | bytes | bytearray) else message
    if not isinstance(payload, dict):
        raise MalformedFeedback("message is not a JSON object")
    if "Sns" in payload and "mail" not in payload:
        return parse_sns_record(payload)
    if "Type" in payload and "Message" in payload and "mail" not in payload:
        return _parse_sns_body(payload)
    if "detail-type" in payload and "detail" in payload:
        return parse_eventbridge(payload)
    if "Records" in payload and "mail" not in payload:
        return _refuse_lambda_event(payload)
    return _parse_ses(payload)


def parse_eventbridge(event: dict[str, Any]) -> list[SesFeedback]:
    """Parse an SES event delivered by EventBridge (``source`` ``aws.ses``, record in ``detail``).

    Args:
        event: the EventBridge event as the target receives it.

    Returns:
        One feedback per recipient.

    Raises:
        MalformedFeedback: not an SES sending event (another source, no usable ``detail``).
        NotFeedback: an SES service event that is not about a sent email (sending status,
            advisor recommendations).
    """
    if not isinstance(event, dict):
        raise MalformedFeedback("EventBridge event is not an object")
    if event.get("source") != "aws.ses":
        raise MalformedFeedback("EventBridge event is not from aws.ses")
    detail = event.get("detail")
    detail_type = event.get("detail-type")
    if not isinstance(detail, dict):
        raise MalformedFeedback("EventBridge event has no detail object")
    if isinstance(detail_type, str) and not detail_type.startswith("Email "):
        raise NotFeedback("SES service event, not about a sent email")
    if "eventType" not in detail and "notificationType" not in detail:
        event_type = _EVENTBRIDGE_TYPES.get(detail_type) if isinstance(detail_type, str) else None
        if event_type is None:
            raise MalformedFeedback("EventBridge SES event of unknown detail-type")
        detail = {**detail, "eventType": event_type}
    return _parse_ses(detail)


# --- envelopes ---------------------------------------------------------------------------

_EVENTBRIDGE_TYPES = {
    "Email Sent": "Send",
    "Email Delivered": "Delivery",
    "Email Bounced": "Bounce",
    "Email Complaint Received": "Complaint",
    "Email Rejected": "Reject",
    "Email Opened": "Open",
    "Email Clicked": "Click",
    "Email Rendering Failed": "Rendering Failure",
    "Email Delivery Delayed": "DeliveryDelay",
    "Email Subscribed": "Subscription",
}


def _loads(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedFeedback("message is not valid JSON") from None


def _parse_sns_body(body: dict[str, Any]) -> list[SesFeedback]:
    """An SNS message as Lambda (``record["Sns"]``) or an HTTPS endpoint receives it."""
    message_type = body.get("Type")
    if message_type in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        raise NotFeedback(f"SNS {message_type}")
    if message_type != "Notification":
        raise MalformedFeedback("SNS body of unknown Type")
    message = body.get("Message")
    if not isinstance(message, str):
        raise MalformedFeedback("SNS body Message is not a string")
    return _parse_ses(_loads(message))


def _refuse_lambda_event(event: dict[str, Any]) -> list[SesFeedback]:
    records = event.get("Records")
    if (
        isinstance(records, list)
        and records
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:ses" for r in records)
    ):
        raise NotFeedback("SES inbound receipt event")
    raise MalformedFeedback("a Lambda event, not one message: parse each record with parse_sns_record")


# --- the SES record ----------------------------------------------------------------------

_NOT_FEEDBACK_TYPES = {
    "received": "inbound receipt notification",
    "amazonsnssubscriptionsucceeded": "SES topic subscription notice",
}

# event type (folded) -> (object key holding the details, recipients source)
_DETAILS: dict[str, tuple[str, str]] = {
    "bounce": ("bounce", "bouncedRecipients"),
    "complaint": ("complaint", "complainedRecipients"),
    "delivery": ("delivery", "recipients"),
    "deliverydelay": ("deliveryDelay", "delayedRecipients"),
    "send": ("send", "destination"),
    "reject": ("reject", "destination"),
    "open": ("open", "destination"),
    "click": ("click", "destination"),
    "renderingfailure": ("failure", "destination"),
    "subscription": ("subscription", "destination"),
}

_SIMPLE_KINDS = {
    "complaint": FeedbackKind.COMPLAINED,
    "delivery": FeedbackKind.DELIVERED,
    "deliverydelay": FeedbackKind.DELIVERY_DELAYED,
    "send": FeedbackKind.SENT,
    "reject": FeedbackKind.REJECTED,
    "open": FeedbackKind.OPENED,
    "click": FeedbackKind.CLICKED,
    "renderingfailure": FeedbackKind.RENDERING_FAILED,
    "subscription": FeedbackKind.SUBSCRIPTION_CHANGED,
}

_BOUNCE_KINDS = {
    "permanent": FeedbackKind.BOUNCED_PERMANENT,
    "transient": FeedbackKind.BOUNCED_TRANSIENT,
}


def _parse_ses(payload: Any) -> list[SesFeedback]:  # noqa: C901 - one branch per SES notification and event kind
    if not isinstance(payload, dict):
        raise MalformedFeedback("SES message is not a JSON object")
    source_format: SourceFormat
    if "eventType" in payload:
        raw_type, source_format = payload["eventType"], "event"
    elif "notificationType" in payload:
        raw_type, source_format = payload["notificationType"], "notification"
    elif "receipt" in payload:
        raise NotFeedback("inbound receipt notification")
    else:
        raise MalformedFeedback("no eventType or notificationType")
    if not isinstance(raw_type, str):
        raise MalformedFeedback("event type is not a string")
    event_type = "".join(raw_type.split()).casefold()
    if event_type in _NOT_FEEDBACK_TYPES:
        raise NotFeedback(_NOT_FEEDBACK_TYPES[event_type])
    if event_type not in _DETAILS:
        raise MalformedFeedback(f"unknown event type {_label(raw_type)}")

    mail = payload.get("mail")
    if not isinstance(mail, dict):
        raise MalformedFeedback("no mail object")
    message_id = _text(mail.get("messageId"), TEXT_LIMIT + 1)
    if message_id is None or len(message_id) > TEXT_LIMIT:
        raise MalformedFeedback("no usable mail.messageId")

    details_key, recipients_key = _DETAILS[event_type]
    details = payload.get(details_key)
    if recipients_key != "destination" and not isinstance(details, dict):
        raise MalformedFeedback(f"no {details_key} object")
    details = details if isinstance(details, dict) else {}

    kind = _kind(event_type, details)
    occurred_at = _timestamp(details.get("timestamp")) or _timestamp(mail.get("timestamp"))
    if occurred_at is None:
        raise MalformedFeedback("no usable timestamp")

    entries = mail.get("destination") if recipients_key == "destination" else details.get(recipients_key)
    recipients = _recipients(entries)
    if not recipients:
        raise MalformedFeedback(f"no usable recipient in {recipients_key}")

    common = _Common(
        kind=kind,
        message_id=message_id,
        occurred_at=occurred_at,
        source_format=source_format,
        tags=_tag_map(mail.get("tags")),
        headers=_leadflow_headers(mail.get("headers")),
        details=details,
        details_feedback_id=_text(details.get("feedbackId"), TEXT_LIMIT),
    )
    return [_feedback(common, address, entry) for address, entry in recipients]


@dataclass(frozen=True)
class _Common:
    kind: FeedbackKind
    message_id: str
    occurred_at: datetime
    source_format: SourceFormat
    tags: dict[str, list[str]]
    headers: dict[str, str]
    details: dict[str, Any]
    details_feedback_id: str | None


def _kind(event_type: str, details: dict[str, Any]) -> FeedbackKind:
    if event_type != "bounce":
        return _SIMPLE_KINDS[event_type]
    bounce_type = details.get("bounceType")
    folded = bounce_type.strip().casefold() if isinstance(bounce_type, str) else ""
    return _BOUNCE_KINDS.get(folded, FeedbackKind.BOUNCED_UNDETERMINED)


def _feedback(common: _Common, recipient: str, entry: dict[str, Any]) -> SesFeedback:
    details, kind = common.details, common.kind
    link = _text(details.get("link"), LINK_LIMIT) if kind is FeedbackKind.CLICKED else None
    return SesFeedback(
        kind=kind,
        recipient=recipient,
        message_id=common.message_id,
        feedback_id=_feedback_id(common, recipient, link),
        occurred_at=common.occurred_at,
        source_format=common.source_format,
        tags={name: list(values) for name, values in common.tags.items()},
        headers=dict(common.headers),
        link=link,
        link_tags=_tag_map(details.get("linkTags")) if kind is FeedbackKind.CLICKED else {},
        user_agent=_text(details.get("userAgent"), TEXT_LIMIT),
        ip=_text(details.get("ipAddress"), 64),
        bounce_type=_text(details.get("bounceType"), 64) if kind in _BOUNCES else None,
        bounce_subtype=_text(details.get("bounceSubType"), 64) if kind in _BOUNCES else None,
        diagnostic=_diagnostic(kind, details, entry, recipient),
        complaint_type=_text(details.get("complaintFeedbackType"), 64) if kind is FeedbackKind.COMPLAINED else None,
        unsubscribe_all=_unsubscribe_all(details) if kind is FeedbackKind.SUBSCRIPTION_CHANGED else None,
    )


def _feedback_id(common: _Common, recipient: str, link: str | None) -> str:
    """SES's feedbackId (one per bounce or complaint, shared by its recipients) made per recipient.

    The kind is part of it because SES's own samples reuse one feedbackId for a bounce and a
    complaint. The recipient enters only as a hash, so the id can be logged and put on the bus.
    """
    if common.details_feedback_id and common.kind in (*_BOUNCES, FeedbackKind.COMPLAINED):
        per_recipient = _digest(common.kind.value + "\n" + recipient)[:16]
        return f"{common.details_feedback_id}:{per_recipient}"
    parts = [common.message_id, common.kind.value, recipient, common.occurred_at.isoformat()]
    if link is not None:
        parts.append(link)  # two links clicked in the same millisecond are two clicks
    return _digest("\n".join(parts))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _recipients(entries: Any) -> list[tuple[str, dict[str, Any]]]:
    """Usable, de-duplicated recipients in order, each with its entry (for its diagnostic)."""
    if not isinstance(entries, list):
        return []
    seen: dict[str, dict[str, Any]] = {}
    for entry in entries:
        raw = entry.get("emailAddress") if isinstance(entry, dict) else entry
        address = normalize_recipient(raw)
        if address is not None and address not in seen:
            seen[address] = entry if isinstance(entry, dict) else {}
    return list(seen.items())


_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f<>,;]")


def normalize_recipient(raw: Any) -> str | None:
    """A recipient as leadflow keys it (trimmed, NFC, case-folded), or None when unusable.

    Accepts ``Name <address>``; refuses anything that is not one plain ``local@domain``
    (no white space, no second ``@``: quoted local parts are not worth the ambiguity).
    """
    if not isinstance(raw, str) or len(raw) > 4 * ADDRESS_LIMIT:
        return None
    address = raw.strip()
    if address.endswith(">") and "<" in address:
        name, _, address = address[:-1].rpartition("<")
        if ">" in name:  # a list of addresses, not one
            return None
        address = address.strip()
    address = unicodedata.normalize("NFC", address).casefold()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in local or len(address) > ADDRESS_LIMIT:
        return None
    if _UNSAFE.search(address) or _clean(address) != address:
        return None
    return address


def _clean(text: str) -> str:
    """The text with lone surrogates (valid in JSON escapes, not in UTF-8) replaced."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = _clean(value.strip())
    if not value:
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _tag_map(value: Any) -> dict[str, list[str]]:
    """``{"name": ["value", ...]}``; a lone string value counts as a one-item list."""
    if not isinstance(value, dict):
        return {}
    tags: dict[str, list[str]] = {}
    for name, values in list(value.items())[:TAGS_LIMIT]:
        items = [values] if isinstance(values, str) else values
        if not isinstance(name, str) or not isinstance(items, list):
            continue
        kept = [_clean(item)[:TEXT_LIMIT] for item in items if isinstance(item, str)]
        tags[_clean(name)[:TEXT_LIMIT]] = kept[:TAG_VALUES_LIMIT]
    return tags


def _leadflow_headers(value: Any) -> dict[str, str]:
    """The ``X-Leadflow-*`` headers leadflow put on the message, keyed by lowercase name."""
    if not isinstance(value, list):
        return {}
    headers: dict[str, str] = {}
    for header in value:
        if not isinstance(header, dict):
            continue
        name, text = header.get("name"), _text(header.get("value"), TEXT_LIMIT)
        if isinstance(name, str) and name.strip().lower().startswith(HEADER_PREFIX) and text is not None:
            headers.setdefault(name.strip().lower(), text)
            if len(headers) >= HEADERS_LIMIT:
                break
    return headers


_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]*[^\s<>()\[\]\"',;:@.]")


def _diagnostic(kind: FeedbackKind, details: dict[str, Any], entry: dict[str, Any], recipient: str) -> str | None:
    """Why delivery failed, clipped, with any address other than the recipient's masked."""
    if kind in _BOUNCES or kind is FeedbackKind.DELIVERY_DELAYED:
        raw = entry.get("diagnosticCode") or entry.get("status")
    elif kind is FeedbackKind.REJECTED:
        raw = details.get("reason")
    elif kind is FeedbackKind.RENDERING_FAILED:
        raw = details.get("errorMessage")
    else:
        return None
    text = _text(raw, 4 * DIAGNOSTIC_LIMIT)
    if text is None:
        return None
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)

    def mask(match: re.Match[str]) -> str:
        return match.group(0) if match.group(0).casefold() == recipient else "[address]"

    return _text(_ADDRESS.sub(mask, text), DIAGNOSTIC_LIMIT)


def _unsubscribe_all(details: dict[str, Any]) -> bool | None:
    preferences = details.get("newTopicPreferences")
    if not isinstance(preferences, dict):
        return None
    value = preferences.get("unsubscribeAll")
    return value if isinstance(value, bool) else None


def _label(value: str) -> str:
    """An unexpected type name, safe for an error reason (no address, no control characters)."""
    return repr("".join(c for c in value[:40] if c.isascii() and (c.isalnum() or c in " _-")))
