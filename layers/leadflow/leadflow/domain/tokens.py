"""Signed tracking tokens: who opened or clicked which message, and where a click may go.

A token is ``<payload>.<mac>``: the payload is compact JSON, base64url, naming the lead,
the message and the link (and, for clicks, the URL), with an expiry; the mac is the first
16 bytes of HMAC-SHA256 over the payload. Forged, altered or expired tokens verify to
nothing. Keys rotate: tokens are signed with the first key and verified with any.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

MAC_BYTES = 16
MAX_TOKEN_LENGTH = 2048


class TokenKind(StrEnum):
    OPEN = "o"
    CLICK = "c"
    UNSUBSCRIBE = "u"
    CONFIRM = "d"  # double opt-in confirmation


class InvalidToken(ValueError):
    """The token is malformed, forged, of another kind, or expired."""


@dataclass(frozen=True)
class TrackingToken:
    kind: TokenKind
    lead_id: str
    message_id: str
    expires_at: int
    link_id: str | None = None
    url: str | None = None
    campaign: str | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"t": self.kind.value, "l": self.lead_id, "m": self.message_id, "x": self.expires_at}
        for short, value in (("k", self.link_id), ("u", self.url), ("c", self.campaign)):
            if value is not None:
                data[short] = value
        return data


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES])


def sign(token: TrackingToken, key: bytes) -> str:
    """The token as a URL-safe string signed with ``key``."""
    payload = _b64(json.dumps(token.payload(), separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_mac(key, payload)}"


def verify(text: str, keys: list[bytes], kind: TokenKind, now: datetime) -> TrackingToken:
    """The token ``text`` stands for.

    Raises:
        InvalidToken: malformed, signed with no key we hold, of another kind, or expired.
    """
    if not text or len(text) > MAX_TOKEN_LENGTH or text.count(".") != 1:
        raise InvalidToken("malformed")
    payload, mac = text.split(".")
    try:
        payload.encode("ascii")
        mac.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken("malformed") from None
    if not any(hmac.compare_digest(_mac(key, payload), mac) for key in keys):
        raise InvalidToken("bad signature")
    try:
        data = json.loads(_unb64(payload))
        token = TrackingToken(
            kind=TokenKind(data["t"]),
            lead_id=str(data["l"]),
            message_id=str(data["m"]),
            expires_at=int(data["x"]),
            link_id=data.get("k"),
            url=data.get("u"),
            campaign=data.get("c"),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidToken("malformed") from None
    if token.kind is not kind:
        raise InvalidToken("wrong kind")
    if token.expires_at < now.timestamp():
        raise InvalidToken("expired")
    return token


def token_digest(text: str) -> str:
    """A short stable id of a token (for hit counters), never the token itself."""
    return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()[:32]
