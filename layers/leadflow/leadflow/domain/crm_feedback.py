"""Sales feedback from the CRM: who sent it, what it says, and what it does to the lead.

Three senders (``POST /crm/{provider}/webhook``):

- ``generic``: leadflow's own JSON (``GenericFeedback``), signed with Standard Webhooks
  (``leadflow.domain.webhook_signing``); the ``webhook-id`` is the replay key;
- ``hubspot``: a JSON array of webhook events, signed with HubSpot's v3 signature
  (base64 HMAC-SHA256 of method + URI + body + millisecond timestamp, 5 minutes' tolerance);
  ``contact.propertyChange`` events of the configured properties are feedback;
- ``salesforce``: an Outbound Message (SOAP), which Salesforce cannot sign: authenticated by a
  secret token the operator puts in the Outbound Message's endpoint URL (``?token=...``,
  compared in constant time) and by its OrganizationId; answered with ``<Ack>true</Ack>``; each
  Notification's Id is the replay key.

Signatures are checked on the raw body before it is parsed. Feedback dated more than
``FUTURE_SKEW`` ahead of ``now`` is refused (a sender's clock may be a little ahead; a date
far ahead would make every later, real feedback look stale). What an outcome does (``decide``):
accepted -> SQL, opportunity -> opportunity, won -> customer, rejected and lost -> recycled
(back to nurture) or disqualified (a rejection reason from the configured list). Feedback older
than what was already applied changes nothing (CRMs deliver out of order); a won hand-off is
closed, and the hand-off record only moves as its transitions allow (``domain.handoff``); a
stage never moves back from customer, nor from opportunity to SQL.

Pure: no AWS, no environment, no clock reads (``now`` is passed in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from leadflow.domain.definitions.crm_feedback import CrmFeedbackConfig
from leadflow.domain.errors import LeadflowError
from leadflow.domain.handoff import TRANSITIONS

Outcome = Literal["accepted", "rejected", "opportunity", "won", "lost"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "rejected", "opportunity", "won", "lost")
PROVIDERS = ("generic", "hubspot", "salesforce")
HUBSPOT_TOLERANCE_MS = 5 * 60 * 1000
# How far ahead of our clock a CRM's event time may be (clock skew); later is refused.
FUTURE_SKEW = timedelta(minutes=5)
# The Salesforce endpoint token: a URL query parameter, long enough that guessing is hopeless.
SALESFORCE_TOKEN_PARAMETER = "token"  # noqa: S105 - the parameter's name, not a secret  # nosec B105
SALESFORCE_TOKEN_MIN_LENGTH = 32
# The stage each outcome moves the lead to (a rejection may disqualify instead: ``decide``).
STAGE_FOR_OUTCOME: dict[str, str] = {
    "accepted": "sql",
    "opportunity": "opportunity",
    "won": "customer",
    "rejected": "recycled",
    "lost": "recycled",
}
# How far along the sales stages are: feedback never moves a lead back down this order
# (except rejected / lost, which hand a not-yet-customer lead back to marketing).
_SALES_ORDER = {"sql": 1, "opportunity": 2, "customer": 3}
# Characters HubSpot asks to decode in the URI before computing a v3 signature.
_HUBSPOT_URI_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
SALESFORCE_ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    "</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)
_SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_OM_NS = "http://soap.sforce.com/2005/09/outbound"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


class InvalidSignature(LeadflowError):
    """The request is not signed by the CRM we share a secret with (or comes from another org)."""


class MalformedFeedback(LeadflowError):
    """The body is not what the provider sends; ``problems`` name each bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class LeadRef:
    """Which lead feedback is about: our id, or the CRM's record id (looked up in the CRMREF items)."""

    lead_id: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Feedback:
    """One thing sales did, as leadflow understands it."""

    provider: str
    event_id: str
    outcome: Outcome
    lead: LeadRef
    occurred_at: datetime
    handoff_id: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """What the CRM said, for the record (property and value, amount...); never contact data."""


@dataclass(frozen=True)
class ParsedBatch:
    items: list[Feedback]
    ignored: int = 0
    """Events of the batch that are not feedback (other properties, unmapped values, other objects)."""


@dataclass(frozen=True)
class Decision:
    """What one piece of feedback does: the hand-off status and the lead's new stage (None: unchanged)."""

    apply: bool
    status: str | None = None
    stage: str | None = None
    why: str = ""


# ---------------------------------------------------------------------------- signatures


def hubspot_request_uri(configured: str | None, host: str, raw_path: str, raw_query: str) -> str:
    """The URI HubSpot signed: the configured webhook URL, else ``https://host/path?query`` as received.

    HubSpot asks for a few percent-encoded characters to be decoded before signing.
    """
    uri = configured or f"https://{host}{raw_path}" + (f"?{raw_query}" if raw_query else "")
    for encoded, char in _HUBSPOT_URI_DECODE.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def hubspot_v3_signature(client_secret: str, method: str, uri: str, body: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(client_secret, method + uri + body + timestamp))."""
    message = f"{method}{uri}{body}{timestamp}".encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_hubspot_v3(  # noqa: PLR0917 - the parts HubSpot signs
    client_secret: str, method: str, uri: str, body: str, headers: dict[str, str], now_ms: int
) -> None:
    """Check a HubSpot v3 signature (headers lower-cased).

    Raises:
        InvalidSignature: no v3 signature or timestamp, a timestamp more than 5 minutes off, or
            a signature that does not match.
    """
    received = headers.get("x-hubspot-signature-v3", "").strip()
    timestamp = headers.get("x-hubspot-request-timestamp", "").strip()
    if not received or not timestamp:
        raise InvalidSignature("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    if not timestamp.isdigit():
        raise InvalidSignature("X-HubSpot-Request-Timestamp is not a number")
    if abs(now_ms - int(timestamp)) > HUBSPOT_TOLERANCE_MS:
        raise InvalidSignature("X-HubSpot-Request-Timestamp is outside the 5-minute tolerance")
    expected = hubspot_v3_signature(client_secret, method.upper(), uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), received.encode()):
        raise InvalidSignature("X-HubSpot-Signature-v3 does not match")


class WeakEndpointToken(LeadflowError):
    """The configured Salesforce endpoint token is too short to authenticate anything (set a longer one)."""


def verify_salesforce_token(expected: str, received: str | None) -> None:
    """Check the token of an Outbound Message's endpoint URL (``?token=...``) in constant time.

    Salesforce Outbound Messages carry no signature; the endpoint URL the operator sets in
    Salesforce is the one secret they carry (over TLS).

    Raises:
        WeakEndpointToken: the configured token is shorter than ``SALESFORCE_TOKEN_MIN_LENGTH``.
        InvalidSignature: no token, or another one.
    """
    if len(expected) < SALESFORCE_TOKEN_MIN_LENGTH:
        raise WeakEndpointToken(f"the Salesforce endpoint token needs {SALESFORCE_TOKEN_MIN_LENGTH}+ characters")
    if not received or not hmac.compare_digest(expected.encode(), received.encode()):
        raise InvalidSignature("the endpoint URL's token is missing or wrong")


def refuse_future(items: list[Feedback], now: datetime) -> None:
    """Refuse feedback dated more than ``FUTURE_SKEW`` after ``now``.

    Raises:
        MalformedFeedback: naming each item (by its position) that is too far ahead.
    """
    limit = now + FUTURE_SKEW
    problems = [
        f"{i}.occurred_at: {item.occurred_at.isoformat()} is more than {FUTURE_SKEW} in the future"
        for i, item in enumerate(items)
        if item.occurred_at > limit
    ]
    if problems:
        raise MalformedFeedback(problems)


# ---------------------------------------------------------------------------- parsing


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_generic(body: str, webhook_id: str, now: datetime) -> Feedback:
    """leadflow's own JSON feedback (schema: ``GenericFeedback``).

    Raises:
        MalformedFeedback: not JSON, or a field missing or wrong (each named).
    """
    from pydantic import ValidationError

    from leadflow.domain.crm_feedback_models import GenericFeedback

    try:
        payload = GenericFeedback.model_validate_json(body)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}"
            for item in error.errors(include_url=False)
        ]
        raise MalformedFeedback(problems) from None
    details: dict[str, Any] = {}
    if payload.amount is not None:
        details["amount"] = payload.amount
        details["currency"] = payload.currency
    if payload.owner:
        details["owner"] = payload.owner
    return Feedback(
        provider="generic",
        event_id=webhook_id,
        outcome=payload.outcome,
        lead=LeadRef(lead_id=payload.lead_id),
        occurred_at=_utc(payload.occurred_at) if payload.occurred_at else now,
        handoff_id=payload.handoff_id,
        reason=payload.reason,
        details=details,
    )


def parse_hubspot(body: str, config: CrmFeedbackConfig) -> ParsedBatch:
    """A HubSpot webhook batch: ``contact.propertyChange`` events of mapped properties and values.

    Raises:
        MalformedFeedback: not a JSON array of events, or an event without its ids.
    """
    try:
        events = json.loads(body)
    except ValueError:
        raise MalformedFeedback(["body: not JSON"]) from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise MalformedFeedback(["body: a HubSpot webhook batch is a JSON array of event objects"])
    problems = []
    for i, event in enumerate(events):
        for name in ("eventId", "subscriptionId", "objectId", "occurredAt", "subscriptionType"):
            value = event.get(name)
            if value is None or isinstance(value, bool | dict | list):
                problems.append(f"{i}.{name}: missing or not a value")
        if not isinstance(event.get("occurredAt"), int) or isinstance(event.get("occurredAt"), bool):
            problems.append(f"{i}.occurredAt: must be epoch milliseconds")
    if problems:
        raise MalformedFeedback(sorted(set(problems)))
    items: list[Feedback] = []
    for event in events:
        mapping = config.hubspot.properties.get(str(event.get("propertyName") or ""), {})
        outcome = mapping.get(str(event.get("propertyValue") or ""))
        if event["subscriptionType"] != "contact.propertyChange" or outcome is None:
            continue
        occurred = datetime.fromtimestamp(event["occurredAt"] / 1000, tz=UTC)
        items.append(
            Feedback(
                provider="hubspot",
                event_id=f"{event['subscriptionId']}:{event['objectId']}:{event['eventId']}:{event['occurredAt']}",
                outcome=outcome,
                lead=LeadRef(external_id=str(event["objectId"])),
                occurred_at=occurred,
                details={"property": event["propertyName"], "value": event["propertyValue"]},
            )
        )
    return ParsedBatch(items, ignored=len(events) - len(items))


@dataclass(frozen=True)
class SalesforceMessage:
    organization_id: str
    batch: ParsedBatch


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_salesforce(body: str, config: CrmFeedbackConfig, now: datetime) -> SalesforceMessage:
    """An Outbound Message: its OrganizationId and the notifications that are feedback.

    Parsed with defusedxml: no entity expansion, no DTDs, no external fetches.

    Raises:
        MalformedFeedback: not XML, not an Outbound Message, or a notification without its Id.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError):
        raise MalformedFeedback(["body: not a well-formed XML document without a DTD"]) from None
    notifications = root.find(f"{{{_SOAP_NS}}}Body/{{{_OM_NS}}}notifications")
    if notifications is None:
        raise MalformedFeedback(["body: not a SOAP envelope with an Outbound Message (notifications)"])
    organization = (notifications.findtext(f"{{{_OM_NS}}}OrganizationId") or "").strip()
    if not organization:
        raise MalformedFeedback(["OrganizationId: missing"])
    items: list[Feedback] = []
    ignored = 0
    for i, notification in enumerate(notifications.findall(f"{{{_OM_NS}}}Notification")):
        feedback = _salesforce_notification(i, notification, config, now)
        if feedback is None:
            ignored += 1
        else:
            items.append(feedback)
    return SalesforceMessage(organization, ParsedBatch(items, ignored))


def _salesforce_notification(i: int, notification: Any, config: CrmFeedbackConfig, now: datetime) -> Feedback | None:
    """The feedback one notification of an Outbound Message carries, or None when its object or
    status is not one ``crm_feedback.yaml`` maps.

    Raises:
        MalformedFeedback: the notification lacks its Id or sObject, or the sObject both ids.
    """
    notification_id = (notification.findtext(f"{{{_OM_NS}}}Id") or "").strip()
    sobject = notification.find(f"{{{_OM_NS}}}sObject")
    if not notification_id or sobject is None:
        raise MalformedFeedback([f"Notification.{i}: missing Id or sObject"])
    kind = (sobject.get(_XSI_TYPE) or "").rpartition(":")[2]
    fields = {_local(child.tag): (child.text or "").strip() for child in sobject}
    mapping = config.salesforce.objects.get(kind)
    outcome = mapping.values.get(fields.get(mapping.status_field, "")) if mapping else None
    if mapping is None or outcome is None:
        return None
    lead_id = fields.get(mapping.lead_id_field or "") or None
    record_id = fields.get("Id") or None
    if not lead_id and not record_id:
        raise MalformedFeedback([f"Notification.{i}: the sObject has neither Id nor {mapping.lead_id_field}"])
    return Feedback(
        provider="salesforce",
        event_id=notification_id,
        outcome=outcome,
        lead=LeadRef(lead_id=lead_id, external_id=None if lead_id else record_id),
        occurred_at=_modified_at(fields.get("LastModifiedDate"), now),
        reason=fields.get(mapping.reason_field or "") or None,
        details={"object": kind, "field": mapping.status_field, "value": fields[mapping.status_field]},
    )


def _modified_at(text: str | None, now: datetime) -> datetime:
    """A record's LastModifiedDate as UTC, or ``now`` when it has none or it does not parse."""
    if not text:
        return now
    try:
        return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return now


# ---------------------------------------------------------------------------- what it does


def decide(
    feedback: Feedback,
    stage: str,
    handoff_status: str | None,
    last_feedback_at: datetime | None,
    disqualify_reasons: tuple[str, ...] = (),
) -> Decision:
    """What ``feedback`` does to a lead in ``stage`` whose hand-off is in ``handoff_status``.

    Args:
        feedback: the outcome and when it happened.
        stage: the lead's lifecycle stage now.
        handoff_status: the status of the hand-off it is about (None: no hand-off record).
        last_feedback_at: when the last applied feedback of that hand-off (or lead) happened.
        disqualify_reasons: reasons that make a rejection disqualify rather than recycle.

    Returns:
        ``apply=False`` (with ``why``) when it changes nothing: older than what was applied, or
        a move the hand-off's status does not allow (a won hand-off is closed). Otherwise the
        new hand-off status (the outcome) and the new stage, None when the stage stays (already
        there, or it would move a lead back from customer, or from opportunity to SQL).
    """
    if last_feedback_at is not None and feedback.occurred_at < last_feedback_at:
        return Decision(False, why="stale: newer feedback was already applied")
    allowed = TRANSITIONS.get(handoff_status, frozenset()) if handoff_status else None
    if allowed is not None and feedback.outcome != handoff_status and feedback.outcome not in allowed:
        return Decision(False, why=f"a hand-off that is {handoff_status} cannot become {feedback.outcome}")
    target = STAGE_FOR_OUTCOME[feedback.outcome]
    reasons = {r.casefold() for r in disqualify_reasons}
    if feedback.outcome == "rejected" and feedback.reason and feedback.reason.casefold() in reasons:
        target = "disqualified"
    new_stage: str | None = target
    if stage in {target, "customer"}:
        new_stage = None  # a customer stays a customer (an upsell lost is not a churned account)
    elif target in _SALES_ORDER and _SALES_ORDER.get(stage, 0) > _SALES_ORDER[target]:
        new_stage = None
    return Decision(True, status=feedback.outcome, stage=new_stage, why="applied")
