"""The fake CRM talking back: sales feedback sent the way each real CRM sends it (dev only).

``POST /_dev/crm/feedback`` (the dev console's buttons, tests, demos) builds the request a CRM
would send for "sales accepted / rejected / won ... this lead" and posts it to the stack's own
``POST /crm/{provider}/webhook`` through the gateway, so the whole loop runs on the deployed
path: generic JSON signed with Standard Webhooks (the stack's ``inbound_generic_secret``), a
HubSpot ``contact.propertyChange`` batch signed v3 (``hubspot_client_secret``, for a lead whose
hand-off reached HubSpot), or a Salesforce Outbound Message from the first allowed organization
to the endpoint URL with the stack's ``salesforce_endpoint_token``, as set in Salesforce.
Times are the dev clock's, so signatures pass however far the clock was moved.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape  # nosec B406 # escapes text into the XML we build; nothing is parsed

from leadflow.domain.crm_feedback import OUTCOMES, SALESFORCE_TOKEN_PARAMETER, hubspot_request_uri, hubspot_v3_signature
from leadflow.domain.definitions.crm_feedback import CrmFeedbackConfig
from leadflow.domain.webhook_signing import sign

SOAP = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
    '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
    "<OrganizationId>{org}</OrganizationId><ActionId>04k000000000001AAA</ActionId>"
    "<SessionId>dev</SessionId><EnterpriseUrl>https://dev.my.salesforce.com/services/Soap/c/61.0</EnterpriseUrl>"
    "<PartnerUrl>https://dev.my.salesforce.com/services/Soap/u/61.0</PartnerUrl>"
    "<Notification><Id>{notification}</Id>"
    '<sObject xsi:type="sf:{kind}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{fields}</sObject>'
    "</Notification></notifications></soapenv:Body></soapenv:Envelope>"
)


class FeedbackRequestError(ValueError):
    """The fake CRM cannot send that (unknown provider or outcome, or nothing maps to it)."""


@dataclass(frozen=True)
class CrmRequest:
    path: str
    headers: dict[str, str]
    body: str


def _reverse(mapping: Mapping[str, str], outcome: str) -> str | None:
    return next((value for value, mapped in mapping.items() if mapped == outcome), None)


def build_feedback_request(  # noqa: PLR0917 - what a CRM request is made of
    provider: str,
    lead_id: str,
    outcome: str,
    reason: str | None,
    now: datetime,
    config: CrmFeedbackConfig,
    dev_secrets: dict[str, str],
    hubspot_contact_id: str | None = None,
    host: str = "127.0.0.1",
) -> CrmRequest:
    """The request ``provider`` would send to say ``outcome`` for ``lead_id``.

    HubSpot signs the URL it calls: ``https://<host>/crm/hubspot/webhook`` (or the configured
    ``webhook_url``), ``host`` being the one the request is sent to, as the receiver reads it.

    Raises:
        FeedbackRequestError: an unknown provider or outcome, a provider that is disabled or has
            no value meaning the outcome, or HubSpot without the lead's contact id.
    """
    if outcome not in OUTCOMES:
        raise FeedbackRequestError(f"outcome must be one of {', '.join(OUTCOMES)}")
    if not config.enabled(provider):
        raise FeedbackRequestError(f"provider {provider!r} is not enabled in crm_feedback.yaml")
    if provider == "generic":
        body = json.dumps(
            {"type": "handoff.feedback", "lead_id": lead_id, "outcome": outcome, "occurred_at": now.isoformat()}
            | ({"reason": reason} if reason else {})
        )
        signed = sign(dev_secrets["inbound_generic_secret"], f"msg_{secrets.token_hex(12)}", int(now.timestamp()), body)
        return CrmRequest("/crm/generic/webhook", {**signed.as_dict(), "content-type": "application/json"}, body)
    if provider == "hubspot":
        if not hubspot_contact_id:
            raise FeedbackRequestError("this lead was not handed off to HubSpot (no contact id)")
        found = [(name, _reverse(values, outcome)) for name, values in config.hubspot.properties.items()]
        name, value = next(((n, v) for n, v in found if v is not None), ("", None))
        if value is None:
            raise FeedbackRequestError(f"no HubSpot property value means {outcome}")
        at_ms = int(now.timestamp() * 1000)
        event = {
            "eventId": secrets.randbelow(2**31),
            "subscriptionId": 1,
            "portalId": 1,
            "appId": 1,
            "occurredAt": at_ms,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": int(hubspot_contact_id) if hubspot_contact_id.isdigit() else hubspot_contact_id,
            "propertyName": name,
            "propertyValue": value,
            "changeSource": "CRM_UI",
        }
        body = json.dumps([event])
        uri = hubspot_request_uri(config.hubspot.webhook_url, host, "/crm/hubspot/webhook", "")
        signature = hubspot_v3_signature(dev_secrets["hubspot_client_secret"], "POST", uri, body, str(at_ms))
        headers = {
            "content-type": "application/json",
            "x-hubspot-signature-v3": signature,
            "x-hubspot-request-timestamp": str(at_ms),
            "x-hubspot-signature-version": "v3",
        }
        return CrmRequest("/crm/hubspot/webhook", headers, body)
    salesforce = config.salesforce
    for kind, mapping in salesforce.objects.items():
        value = _reverse(mapping.values, outcome)
        if value is None or not mapping.lead_id_field:
            continue
        fields: dict[str, str] = {mapping.status_field: value, mapping.lead_id_field: lead_id}
        if reason and mapping.reason_field:
            fields[mapping.reason_field] = reason
        fields["LastModifiedDate"] = now.isoformat()
        body = SOAP.format(
            org=salesforce.organization_ids[0],
            notification="04l" + secrets.token_hex(8),
            kind=kind,
            fields="".join(f"<sf:{k}>{escape(v)}</sf:{k}>" for k, v in fields.items()),
        )
        query = urlencode({SALESFORCE_TOKEN_PARAMETER: dev_secrets["salesforce_endpoint_token"]})
        return CrmRequest(f"/crm/salesforce/webhook?{query}", {"content-type": "text/xml; charset=utf-8"}, body)
    raise FeedbackRequestError(f"no Salesforce object value means {outcome}")


def hubspot_contact_id(handoffs: list[dict[str, Any]], hubspot_destinations: set[str]) -> str | None:
    """The HubSpot contact id the lead's newest hand-off got, if one went to HubSpot."""
    for record in handoffs:
        for name, state in (record.get("destinations") or {}).items():
            if name in hubspot_destinations and state.get("external_id"):
                return str(state["external_id"])
    return None
