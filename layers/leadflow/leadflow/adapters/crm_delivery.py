"""Sending hand-offs: the generic Standard Webhooks endpoint, HubSpot and Salesforce.

Every request goes through ``SafeHttp``: the host is resolved once, every address is checked
against the SSRF rules (``domain.handoff_delivery.check_destination``), and the connection goes to a
checked address (no second lookup an attacker's DNS could answer differently). Redirects
are never followed (``http.client`` does not), answers are read up to 64 KiB, and every
attempt has a timeout.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from leadflow.domain.handoff import DestinationRefused, webhook_id
from leadflow.domain.handoff_delivery import (
    Outcome,
    Target,
    check_destination,
    classify,
    jwt_bearer_claims,
    parse_target,
)
from leadflow.domain.handoff_payload import payload_value
from leadflow.domain.webhook_signing import sign
from leadflow.ports.handoff import Delivery, DeliverySender

MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "leadflow-handoff/1"


class Secrets(Protocol):
    def get(self, key: str) -> str: ...


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (empty when it does not)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedHttps(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the certificate and SNI of the host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHttp(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class SafeHttp:
    """HTTP for destinations: SSRF-checked, pinned to the checked address, no redirects, timeouts."""

    def __init__(self, local_mode: bool, resolver: Callable[[str, int], list[str]] = resolve) -> None:
        self.local_mode = local_mode
        self.resolver = resolver

    def request(  # noqa: PLR0917 - one HTTP request
        self,
        method: str,
        url: str,
        body: str,
        headers: dict[str, str],
        timeout: float,
        allow_private: bool = False,
    ) -> Answer:
        """Send one request.

        Raises:
            DestinationRefused: the URL or an address it resolves to is not allowed.
            OSError: connection refused, reset or timed out (the caller retries).
        """
        parsed = parse_target(url)
        addresses = self.resolver(parsed.host, parsed.port)
        target = check_destination(url, addresses, self.local_mode, allow_private)
        return self._send(target, addresses[0], method, body, headers, timeout)

    def _send(  # noqa: PLR0917
        self, target: Target, address: str, method: str, body: str, headers: dict[str, str], timeout: float
    ) -> Answer:
        kind = _PinnedHttps if target.scheme == "https" else _PinnedHttp
        connection = kind(target.host, address, target.port, timeout)
        try:
            connection.request(method, target.path, body=body.encode(), headers={"User-Agent": USER_AGENT, **headers})
            response = connection.getresponse()
            data = response.read(MAX_ANSWER_BYTES)
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            return Answer(response.status, answer_headers, data.decode("utf-8", "replace"))
        except http.client.HTTPException as error:
            raise OSError(f"bad HTTP answer: {type(error).__name__}") from error
        finally:
            connection.close()


def _attempt(call: Callable[[], Outcome]) -> Outcome:
    """Network trouble retries; an SSRF refusal is final."""
    try:
        return call()
    except DestinationRefused as error:
        return Outcome("final", None, f"refused: {error}")
    except OSError as error:
        return Outcome("retry", None, f"{type(error).__name__}: {error}"[:300])


class WebhookSender:
    """Standard Webhooks: ``webhook-id`` (stable across retries), ``webhook-timestamp``, ``webhook-signature``."""

    def __init__(self, http: SafeHttp, secrets: Secrets) -> None:
        self.http = http
        self.secrets = secrets

    def send(self, delivery: Delivery, now: datetime) -> Outcome:
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
        message_id = webhook_id(delivery.handoff_id, delivery.destination.name)
        signed = sign(self.secrets.get("handoff_webhook_secret"), message_id, int(now.timestamp()), body)
        headers = {"Content-Type": "application/json", **signed.as_dict()}

        def call() -> Outcome:
            answer = self.http.request(
                "POST", delivery.url, body, headers, delivery.destination.timeout_seconds, delivery.allow_private
            )
            return classify(answer.status, answer.headers, now)

        return _attempt(call)


def mapped_properties(delivery: Delivery, defaults: dict[str, str]) -> dict[str, Any]:
    mapping = delivery.destination.property_mapping or defaults
    values = {target: payload_value(delivery.payload, source) for target, source in mapping.items()}
    return {k: v for k, v in values.items() if v not in (None, "")}


HUBSPOT_DEFAULT_MAPPING = {
    "email": "email",
    "firstname": "first_name",
    "lastname": "last_name",
    "company": "company",
    "jobtitle": "title",
    "phone": "phone",
    "country": "country",
}


class HubSpotSender:
    """CRM v3 contact upsert by email (``POST /crm/v3/objects/contacts/batch/upsert``), private-app token."""

    def __init__(self, http: SafeHttp, secrets: Secrets) -> None:
        self.http = http
        self.secrets = secrets

    def send(self, delivery: Delivery, now: datetime) -> Outcome:
        email = payload_value(delivery.payload, "email")
        if not email:
            return Outcome("final", None, "the lead has no email address to upsert on")
        properties = mapped_properties(delivery, HUBSPOT_DEFAULT_MAPPING)
        properties.pop("email", None)  # the id of the upsert
        body = json.dumps({"inputs": [{"idProperty": "email", "id": email, "properties": properties}]})
        url = delivery.url.rstrip("/") + "/crm/v3/objects/contacts/batch/upsert"
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.secrets.get('hubspot_private_app_token')}",
        }

        def call() -> Outcome:
            answer = self.http.request(
                "POST", url, body, headers, delivery.destination.timeout_seconds, delivery.allow_private
            )
            outcome = classify(answer.status, answer.headers, now)
            if outcome.kind != "delivered":
                error = f"{outcome.error}: {_hubspot_error(answer.body)}".strip(": ")
                return Outcome(outcome.kind, answer.status, error, outcome.retry_after_seconds)
            try:
                results = json.loads(answer.body).get("results") or []
                contact_id = str(results[0]["id"])
            except (ValueError, AttributeError, LookupError, TypeError):
                return Outcome("retry", answer.status, "HubSpot answered without a contact id")
            return Outcome("delivered", answer.status, external_id=contact_id)

        return _attempt(call)


def _hubspot_error(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    return str(data.get("category") or data.get("message") or "")[:200] if isinstance(data, dict) else ""


SALESFORCE_DEFAULT_MAPPING = {
    "Email": "email",
    "FirstName": "first_name",
    "LastName": "last_name",
    "Company": "company",
    "Title": "title",
    "Phone": "phone",
    "Country": "country",
}


class SalesforceSender:
    """OAuth2 client credentials, then a Lead upsert on an external id field (PATCH): a retry never duplicates.

    ``DUPLICATES_DETECTED`` (a duplicate rule blocked the Lead) and ``300`` (the external id
    matches several records) are final outcomes, not retries.
    """

    def __init__(self, http: SafeHttp, secrets: Secrets) -> None:
        self.http = http
        self.secrets = secrets
        self._tokens: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def _token(self, delivery: Delivery, refresh: bool, now: datetime) -> tuple[str, str]:
        """(access token, instance URL), cached per destination until Salesforce refuses it."""
        name = delivery.destination.name
        with self._lock:
            if not refresh and name in self._tokens:
                return self._tokens[name]
        destination = delivery.destination
        token_url = destination.token_url or delivery.url.rstrip("/") + "/services/oauth2/token"
        if destination.auth == "jwt_bearer":
            claims = jwt_bearer_claims(
                self.secrets.get("salesforce_client_id"),
                self.secrets.get("salesforce_username"),
                destination.audience,
                now,
            )
            grant = {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": rs256_jwt(claims, self.secrets.get("salesforce_private_key")),
            }
        else:
            grant = {
                "grant_type": "client_credentials",
                "client_id": self.secrets.get("salesforce_client_id"),
                "client_secret": self.secrets.get("salesforce_client_secret"),
            }
        form = urlencode(grant)
        answer = self.http.request(
            "POST",
            token_url,
            form,
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            delivery.destination.timeout_seconds,
            delivery.allow_private,
        )
        if answer.status != 200:
            raise _TokenRefused(answer.status, answer.body[:200])
        data = json.loads(answer.body)
        instance = delivery.url if delivery.allow_private else str(data.get("instance_url") or delivery.url)
        token = (str(data["access_token"]), instance)
        with self._lock:
            self._tokens[name] = token
        return token

    def send(self, delivery: Delivery, now: datetime) -> Outcome:
        destination = delivery.destination
        fields = mapped_properties(delivery, SALESFORCE_DEFAULT_MAPPING)
        fields.setdefault("LastName", payload_value(delivery.payload, "last_name") or "[not provided]")
        fields.setdefault("Company", payload_value(delivery.payload, "company") or "[not provided]")
        fields.pop(destination.external_id_field, None)  # the key is in the URL, never in the body
        body = json.dumps(fields)

        def call() -> Outcome:
            for refresh in (False, True):
                try:
                    token, instance = self._token(delivery, refresh, now)
                except _TokenRefused as error:
                    retry = error.status in (429, 500, 502, 503, 504)
                    return Outcome("retry" if retry else "final", error.status, f"OAuth2 token refused: {error.body}")
                except (ValueError, KeyError):
                    return Outcome("retry", None, "OAuth2 token answer unreadable")
                url = (
                    f"{instance.rstrip('/')}/services/data/{destination.api_version}/sobjects/Lead/"
                    f"{destination.external_id_field}/{quote(delivery.lead_id, safe='')}"
                )
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
                answer = self.http.request(
                    "PATCH", url, body, headers, destination.timeout_seconds, delivery.allow_private
                )
                if answer.status == 401 and not refresh:
                    continue  # the session expired: one new token, then the same upsert
                return _salesforce_outcome(answer, now)
            return Outcome("final", 401, "Salesforce refused a fresh token")

        return _attempt(call)


def rs256_jwt(claims: dict[str, Any], private_key_pem: str) -> str:
    """A compact JWS (RS256) of ``claims``; cryptography is imported only for this flow."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("salesforce_private_key is not an RSA private key")
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = key.sign(f"{header}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{body}.{b64(signature)}"


class _TokenRefused(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _salesforce_outcome(answer: Answer, now: datetime) -> Outcome:
    if answer.status == 300:
        return Outcome("final", 300, "the external id matches several Leads (300 Multiple Choices)")
    try:
        data: Any = json.loads(answer.body) if answer.body.strip() else {}
    except ValueError:
        data = {}
    if 200 <= answer.status < 300:
        record_id = data.get("id") if isinstance(data, dict) else None
        return Outcome("delivered", answer.status, external_id=str(record_id) if record_id else None)
    codes = [e.get("errorCode", "") for e in data if isinstance(e, dict)] if isinstance(data, list) else []
    if "DUPLICATES_DETECTED" in codes:
        return Outcome("final", answer.status, "DUPLICATES_DETECTED: a Salesforce duplicate rule blocked the Lead")
    outcome = classify(answer.status, answer.headers, now)
    detail = ", ".join(c for c in codes if c)
    return Outcome(outcome.kind, answer.status, f"{outcome.error} {detail}".strip(), outcome.retry_after_seconds)


class Senders:
    """The sender of each destination type."""

    def __init__(self, http: SafeHttp, secrets: Secrets) -> None:
        self.by_type: dict[str, DeliverySender] = {
            "webhook": WebhookSender(http, secrets),
            "hubspot": HubSpotSender(http, secrets),
            "salesforce": SalesforceSender(http, secrets),
        }

    def send(self, delivery: Delivery, now: datetime) -> Outcome:
        return self.by_type[delivery.destination.type].send(delivery, now)
