"""``POST /crm/{provider}/webhook``: sales feedback from the CRM (generic, HubSpot, Salesforce).

The order matters: size, then the signature over the raw body (HubSpot v3, Standard Webhooks),
then parsing, then applying. Salesforce Outbound Messages carry no signature: the body is parsed
with defusedxml and refused unless its OrganizationId is allowed; its answer is the SOAP
``<Ack>true</Ack>`` (anything else makes Salesforce retry).

Answers: ``200`` applied, unchanged, stale or a replay (with what happened per item); ``401`` a
missing, forged or stale signature; ``403`` another Salesforce organization; ``400`` a body the
provider would not send (each bad field named); ``404`` an unknown or disabled provider, or a
generic feedback about a lead or hand-off leadflow does not know; ``413`` over 256 KB; ``415`` a
content type the provider does not use; ``503`` (with ``retry-after``) when the table cannot
take it now or a secret is not set: every CRM retries those, so nothing is lost.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from html import escape
from typing import Any

from leadflow.adapters.secrets import MissingSecret
from leadflow.domain.crm_feedback import (
    PROVIDERS,
    SALESFORCE_ACK,
    InvalidSignature,
    MalformedFeedback,
    hubspot_request_uri,
    parse_generic,
    parse_hubspot,
    parse_salesforce,
    verify_hubspot_v3,
)
from leadflow.domain.errors import StorageUnavailable, UnsupportedContentType
from leadflow.domain.webhook_signing import WebhookSecretError, WebhookSignatureError, verify
from leadflow.services.crm_feedback import CrmFeedbackService
from leadflow.transport.http import json_response, lower_headers

MAX_FEEDBACK_BODY = 256 * 1024
RETRY_AFTER_SECONDS = "30"
# Names of keys in the CRM secret (their values live in Secrets Manager).
GENERIC_SECRET = "inbound_generic_secret"  # noqa: S105
HUBSPOT_SECRET = "hubspot_client_secret"  # noqa: S105
_CONTENT_TYPES = {"generic": ("application/json",), "hubspot": ("application/json",), "salesforce": ("text/xml",)}


def _soap_fault(status: int, message: str) -> dict[str, Any]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        f"<soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return {"statusCode": status, "headers": {"content-type": "text/xml; charset=utf-8"}, "body": body}


def _error(provider: str, status: int, error: str, **extra: Any) -> dict[str, Any]:
    headers = {"retry-after": RETRY_AFTER_SECONDS} if status == 503 else None
    if provider == "salesforce":
        response = _soap_fault(status, error)
        response["headers"].update(headers or {})
        return response
    return json_response(status, {"error": error, **extra}, headers)


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body, validate=False)
    return body.encode("utf-8")


def handle_crm_request(
    event: dict[str, Any], service: CrmFeedbackService, secret: Callable[[str], str]
) -> tuple[dict[str, Any], dict[str, int]]:
    """Answer one webhook call; also what happened, for the caller's log and metrics (no personal data).

    Args:
        event: the API Gateway (HTTP API, payload 2.0) event.
        service: applies the feedback.
        secret: the value of a named key of the CRM secret (raises ``MissingSecret``).
    """
    provider = str((event.get("pathParameters") or {}).get("provider") or "")
    if provider not in PROVIDERS or not service.config.enabled(provider):
        return json_response(404, {"error": "unknown_provider"}), {}
    try:
        raw = _raw_body(event)
    except (binascii.Error, ValueError):
        return _error(provider, 400, "body is not valid base64"), {}
    if len(raw) > MAX_FEEDBACK_BODY:
        return _error(provider, 413, "body over 256 KB"), {}
    headers = lower_headers(event)
    http = (event.get("requestContext") or {}).get("http") or {}
    now = service.clock.now()
    try:
        body = raw.decode("utf-8")
        if provider == "generic":
            webhook_id = verify(secret(GENERIC_SECRET), headers, raw, now.timestamp())
            _check_type(provider, headers)
            summary = service.apply([parse_generic(body, webhook_id, now)])
            result = summary.results[0]
            if result in ("unknown_lead", "unknown_handoff"):
                return json_response(404, {"error": result}), summary.counts()
            return json_response(200, {"result": result}), summary.counts()
        if provider == "hubspot":
            uri = hubspot_request_uri(
                service.config.hubspot.webhook_url,
                str((event.get("requestContext") or {}).get("domainName") or headers.get("host", "")),
                str(event.get("rawPath") or http.get("path") or ""),
                str(event.get("rawQueryString") or ""),
            )
            method = str(http.get("method") or "POST")
            verify_hubspot_v3(secret(HUBSPOT_SECRET), method, uri, body, headers, int(now.timestamp() * 1000))
            _check_type(provider, headers)
            batch = parse_hubspot(body, service.config)
            summary = service.apply(batch.items, batch.ignored)
            return json_response(200, {"results": summary.counts()}), summary.counts()
        _check_type(provider, headers)
        message = parse_salesforce(body, service.config, now)
        if not service.config.salesforce.organization_allowed(message.organization_id):
            return _soap_fault(403, "organization not allowed"), {}
        summary = service.apply(message.batch.items, message.batch.ignored)
        ack = {"statusCode": 200, "headers": {"content-type": "text/xml; charset=utf-8"}, "body": SALESFORCE_ACK}
        return ack, summary.counts()
    except UnicodeDecodeError:
        return _error(provider, 400, "body is not UTF-8"), {}
    except (InvalidSignature, WebhookSignatureError):
        return _error(provider, 401, "invalid_signature"), {}
    except UnsupportedContentType:
        return _error(provider, 415, "unsupported content type", expected=list(_CONTENT_TYPES[provider])), {}
    except MalformedFeedback as error:
        return _error(provider, 400, "malformed", problems=error.problems), {}
    except (MissingSecret, WebhookSecretError):
        return _error(provider, 503, "not_configured"), {}
    except StorageUnavailable:
        return _error(provider, 503, "unavailable"), {}


def _check_type(provider: str, headers: dict[str, str]) -> None:
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _CONTENT_TYPES[provider] and not (provider == "salesforce" and media == "application/soap+xml"):
        raise UnsupportedContentType(media)
