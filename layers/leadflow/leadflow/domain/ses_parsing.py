"""Parsing SES feedback: the entry points and the envelopes SES JSON arrives in.

An SNS record as Lambda receives it, an SNS HTTP(S) delivery body, an EventBridge event whose
``detail`` is an SES record, or the SES JSON itself; each is unwrapped and its SES record handed
to ``ses_records.parse_ses``. The decisions about the result are in ``ses``.

Pure: no boto3, no environment, no clock reads.
"""

from __future__ import annotations

import json
from typing import Any

from leadflow.domain.ses import MalformedFeedback, NotFeedback, SesFeedback
from leadflow.domain.ses_records import parse_ses

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
    return parse_ses(payload)


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
    return parse_ses(detail)


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
    return parse_ses(_loads(message))


def _refuse_lambda_event(event: dict[str, Any]) -> list[SesFeedback]:
    records = event.get("Records")
    if (
        isinstance(records, list)
        and records
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:ses" for r in records)
    ):
        raise NotFeedback("SES inbound receipt event")
    raise MalformedFeedback("a Lambda event, not one message: parse each record with parse_sns_record")
