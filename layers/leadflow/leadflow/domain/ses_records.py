"""One SES record, in either format, as one ``SesFeedback`` per recipient.

The event type and bounce type as a ``FeedbackKind``, the recipients (normalized and
de-duplicated), the per-recipient feedback id, and every field SES sends trimmed, clipped and
cleaned: tags, ``X-Leadflow-*`` headers, diagnostics with other addresses masked.

Pure: no boto3, no environment, no clock reads.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadflow.domain.ses import FeedbackKind, MalformedFeedback, NotFeedback, SesFeedback, SourceFormat

DIAGNOSTIC_LIMIT = 500
TEXT_LIMIT = 1024
LINK_LIMIT = 4096
ADDRESS_LIMIT = 320
HEADER_PREFIX = "x-leadflow-"
HEADERS_LIMIT = 20
TAGS_LIMIT = 64
TAG_VALUES_LIMIT = 16

_BOUNCES = frozenset(
    {FeedbackKind.BOUNCED_PERMANENT, FeedbackKind.BOUNCED_TRANSIENT, FeedbackKind.BOUNCED_UNDETERMINED}
)

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


def parse_ses(payload: Any) -> list[SesFeedback]:  # noqa: C901 - one branch per SES notification and event kind
    """One feedback per recipient of an SES record (``eventType`` or ``notificationType``), envelopes removed.

    Raises:
        MalformedFeedback: not an object, an unknown event type, or no usable message id,
            details object, timestamp or recipient.
        NotFeedback: an inbound receipt or SES's topic subscription notice.
    """
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
