"""Standard Webhooks signatures (https://www.standardwebhooks.com), both ways.

Outgoing hand-offs are signed with it and the generic CRM feedback webhook is verified with
it: ``webhook-id``, ``webhook-timestamp`` (Unix seconds), ``webhook-signature`` =
space-separated ``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`` entries, where the
key is the base64 part of a ``whsec_...`` secret. Pure: the time is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret  # nosec B105
TOLERANCE_SECONDS = 5 * 60


class WebhookSignatureError(ValueError):
    """The request is not signed by the secret: missing headers, stale timestamp or no matching signature."""


class WebhookSecretError(ValueError):
    """A secret that is not ``whsec_`` + base64 (or is empty)."""


@dataclass(frozen=True)
class SignedHeaders:
    webhook_id: str
    webhook_timestamp: str
    webhook_signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            "webhook-id": self.webhook_id,
            "webhook-timestamp": self.webhook_timestamp,
            "webhook-signature": self.webhook_signature,
        }


def secret_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (with or without the ``whsec_`` prefix).

    Raises:
        WebhookSecretError: empty, or not base64.
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    if not encoded:
        raise WebhookSecretError("empty webhook secret")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookSecretError("webhook secret is not base64 after whsec_") from exc
    if not key:
        raise WebhookSecretError("empty webhook secret")
    return key


def signature(secret: str, webhook_id: str, timestamp: int, body: str | bytes) -> str:
    """The ``v1,<base64>`` signature of a message."""
    payload = body.encode() if isinstance(body, str) else body
    content = f"{webhook_id}.{timestamp}.".encode() + payload
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(secret: str, webhook_id: str, timestamp: int, body: str | bytes) -> SignedHeaders:
    """The three headers of a signed message. ``webhook_id`` must stay the same across retries."""
    return SignedHeaders(webhook_id, str(timestamp), signature(secret, webhook_id, timestamp, body))


def verify(secret: str, headers: dict[str, str], body: str | bytes, now_epoch: float) -> str:
    """Check a received message; returns its ``webhook-id`` (the key to de-duplicate on).

    Args:
        secret: the shared ``whsec_`` secret (several accepted during rotation: try each).
        headers: request headers, names lower-cased.
        body: the raw body exactly as received.
        now_epoch: the current time, Unix seconds.

    Raises:
        WebhookSignatureError: a header is missing, the timestamp is not a number or is more
            than 5 minutes off, or no ``v1`` signature matches.
    """
    webhook_id = headers.get("webhook-id", "").strip()
    raw_timestamp = headers.get("webhook-timestamp", "").strip()
    received = headers.get("webhook-signature", "").strip()
    if not webhook_id or not raw_timestamp or not received:
        raise WebhookSignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not raw_timestamp.isdigit():
        raise WebhookSignatureError("webhook-timestamp is not a number")
    timestamp = int(raw_timestamp)
    if abs(now_epoch - timestamp) > TOLERANCE_SECONDS:
        raise WebhookSignatureError("webhook-timestamp is outside the 5-minute tolerance")
    expected = signature(secret, webhook_id, timestamp, body).encode()
    for entry in received.split():
        version, _, _value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(entry.encode(), expected):
            return webhook_id
    raise WebhookSignatureError("no matching v1 signature")


def new_secret(random_bytes: bytes) -> str:
    """A ``whsec_`` secret from random bytes (24 or more; the caller supplies them)."""
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode()
