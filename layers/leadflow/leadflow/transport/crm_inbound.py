"""``POST /crm/{provider}/webhook``: sales feedback from the CRM (generic, HubSpot, Salesforce).

The order matters: size, then the signature over the raw body (HubSpot v3, Standard Webhooks),
then parsing, then applying. Salesforce Outbound Messages carry no signature: the endpoint URL's
``token`` query parameter must be the secret ``salesforce_endpoint_token`` (constant-time
comparison), then the body is parsed with defusedxml and refused unless its OrganizationId is
allowed; its answer is the SOAP ``<Ack>true</Ack>`` (anything else makes Salesforce retry).

Answers: ``200`` applied, unchanged, stale or a replay (with what happened per item); ``401`` a
missing, forged or stale signature (or Salesforce endpoint token); ``403`` another Salesforce
organization; ``400`` a body the provider would not send (each bad field named), or feedback
dated more than five minutes ahead of our clock; ``404`` an unknown or disabled provider, or a
generic feedback about a lead or hand-off leadflow does not know; ``413`` over 256 KB; ``415`` a
content type the provider does not use; ``503`` (with ``retry-after``) when the table cannot
take it now or a secret is not set (or the Salesforce token is too short): every CRM retries
those, so nothing is lost.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from html import escape
from typing import Any

from leadflow.domain.crm_feedback import (
    PROVIDERS,
    SALESFORCE_ACK,
    SALESFORCE_TOKEN_PARAMETER,
    InvalidSignature,
    MalformedFeedback,
    WeakEndpointToken,
    hubspot_request_uri,
    parse_generic,
    parse_hubspot,
    parse_salesforce,
    verify_hubspot_v3,
    verify_salesforce_token,
)
from leadflow.domain.errors import StorageUnavailable, UnsupportedContentType
from leadflow.domain.webhook_signing import WebhookSecretError, WebhookSignatureError, verify
from leadflow.ports.secrets import MissingSecret
from leadflow.services.crm_feedback import CrmFeedbackService
from leadflow.transport.errors import answer_for
from leadflow.transport.http import json_response, lower_headers

MAX_FEEDBACK_BODY = 256 * 1024
RETRY_AFTER_SECONDS = "30"
# Names of keys in the CRM secret (their values live in Secrets Manager).
GENERIC_SECRET = "inbound_generic_secret"  # noqa: S105  # nosec B105 # key names in the CRM secret, not secrets
HUBSPOT_SECRET = "hubspot_client_secret"  # noqa: S105  # nosec B105
SALESFORCE_SECRET = "salesforce_endpoint_token"  # noqa: S105  # nosec B105
CRM_ERRORS = (
    UnicodeDecodeError,
    InvalidSignature,
    WebhookSignatureError,
    UnsupportedContentType,
    MalformedFeedback,
    MissingSecret,
    WebhookSecretError,
    WeakEndpointToken,
    StorageUnavailable,
)
"""What a webhook call can run into; each is answered as the errors table says (every 503 with
``Retry-After: 30``: the CRMs retry on their own schedules)."""
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
        # Salesforce shows the fault string in its outbound message queue: name what was wrong.
        problems = "; ".join(extra.get("problems") or ())
        response = _soap_fault(status, f"{error}: {problems}" if problems else error)
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
    call = _Call(event, service, secret, raw)
    try:
        return _PROVIDER_HANDLERS[provider](call, raw.decode("utf-8"))
    except CRM_ERRORS as error:
        return _answer(provider, error), {}


Answer = tuple[dict[str, Any], dict[str, int]]


class _Call:
    """One webhook call, as each provider's handler reads it."""

    def __init__(
        self, event: dict[str, Any], service: CrmFeedbackService, secret: Callable[[str], str], raw: bytes
    ) -> None:
        self.event, self.service, self.secret, self.raw = event, service, secret, raw
        self.headers = lower_headers(event)
        self.http: dict[str, Any] = (event.get("requestContext") or {}).get("http") or {}
        self.now = service.clock.now()


def _generic(call: _Call, body: str) -> Answer:
    """leadflow's generic JSON, signed as Standard Webhooks sign."""
    webhook_id = verify(call.secret(GENERIC_SECRET), call.headers, call.raw, call.now.timestamp())
    _check_type("generic", call.headers)
    summary = call.service.apply([parse_generic(body, webhook_id, call.now)])
    result = summary.results[0]
    if result in ("unknown_lead", "unknown_handoff"):
        return json_response(404, {"error": result}), summary.counts()
    return json_response(200, {"result": result}), summary.counts()


def _hubspot(call: _Call, body: str) -> Answer:
    """HubSpot's webhooks, v3 signatures over the request's URI."""
    event, headers = call.event, call.headers
    uri = hubspot_request_uri(
        call.service.config.hubspot.webhook_url,
        str((event.get("requestContext") or {}).get("domainName") or headers.get("host", "")),
        str(event.get("rawPath") or call.http.get("path") or ""),
        str(event.get("rawQueryString") or ""),
    )
    method = str(call.http.get("method") or "POST")
    verify_hubspot_v3(call.secret(HUBSPOT_SECRET), method, uri, body, headers, int(call.now.timestamp() * 1000))
    _check_type("hubspot", headers)
    batch = parse_hubspot(body, call.service.config)
    summary = call.service.apply(batch.items, batch.ignored)
    return json_response(200, {"results": summary.counts()}), summary.counts()


def _salesforce(call: _Call, body: str) -> Answer:
    """Salesforce Outbound Messages: the endpoint token, the organization, a SOAP Ack."""
    query = call.event.get("queryStringParameters") or {}
    verify_salesforce_token(call.secret(SALESFORCE_SECRET), query.get(SALESFORCE_TOKEN_PARAMETER))
    _check_type("salesforce", call.headers)
    message = parse_salesforce(body, call.service.config, call.now)
    if not call.service.config.salesforce.organization_allowed(message.organization_id):
        return _soap_fault(403, "organization not allowed"), {}
    summary = call.service.apply(message.batch.items, message.batch.ignored)
    ack = {"statusCode": 200, "headers": {"content-type": "text/xml; charset=utf-8"}, "body": SALESFORCE_ACK}
    return ack, summary.counts()


_PROVIDER_HANDLERS: dict[str, Callable[[_Call, str], Answer]] = {
    "generic": _generic,
    "hubspot": _hubspot,
    "salesforce": _salesforce,
}


def _answer(provider: str, error: Exception) -> dict[str, Any]:
    """The webhook's answer to ``error``: its status and code from the errors table."""
    answer = answer_for(error)
    extra: dict[str, Any] = {}
    if isinstance(error, UnsupportedContentType):
        extra["expected"] = list(_CONTENT_TYPES[provider])
    if isinstance(error, MalformedFeedback):
        extra["problems"] = error.problems
    return _error(provider, answer.status, answer.code, **extra)


def _check_type(provider: str, headers: dict[str, str]) -> None:
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _CONTENT_TYPES[provider] and not (provider == "salesforce" and media == "application/soap+xml"):
        raise UnsupportedContentType(media)
