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
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any

MAC_BYTES = 16
MAX_TOKEN_LENGTH = 2048


class TokenKind(StrEnum):
    OPEN = "o"
    CLICK = "c"
    UNSUBSCRIBE = "u"
    CONFIRM = "d"  # double opt-in confirmation
    IDENTITY = "i"  # the visitor cookie a tracked click sets: this browser is the lead's


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


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.digest(key, payload.encode("ascii"), "sha256")[:MAC_BYTES])


def payload_json(  # noqa: PLR0917 - the token's fields, in their JSON order
    kind: TokenKind,
    lead_id: str,
    message_id: str,
    expires_at: int,
    link_id: str | None = None,
    url: str | None = None,
    campaign: str | None = None,
) -> str:
    """The token's payload as compact JSON: exactly ``json.dumps(TrackingToken(...).payload(),
    separators=(",", ":"), ensure_ascii=False)`` (tested), without building the dict and an encoder
    for each of the three tokens of every email."""
    text = (
        f'{{"t":{encode_basestring(kind.value)},"l":{encode_basestring(lead_id)},'
        f'"m":{encode_basestring(message_id)},"x":{expires_at:d}'
    )
    if link_id is not None:
        text += f',"k":{encode_basestring(link_id)}'
    if url is not None:
        text += f',"u":{encode_basestring(url)}'
    if campaign is not None:
        text += f',"c":{encode_basestring(campaign)}'
    return text + "}"


def sign_payload(key: bytes, payload: str) -> str:
    """A token from its payload JSON (``payload_json``) and the key: what ``sign`` does, for the
    email hot path, which signs three tokens per email without making ``TrackingToken`` objects."""
    encoded = _b64(payload.encode("utf-8"))
    return f"{encoded}.{_mac(key, encoded)}"


_HMAC_BLOCK = 64  # SHA-256's block size
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


@lru_cache(maxsize=16)
def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states of HMAC's inner and outer padded key (RFC 2104), hashed once per key: an HMAC is
    then a copy of each, two updates and two digests (``hmac.digest`` starts from the key each time)."""
    if len(key) > _HMAC_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_HMAC_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_INNER_PAD)), hashlib.sha256(key.translate(_OUTER_PAD))


_KIND_HEADS = {kind: f'{{"t":{encode_basestring(kind.value)}' for kind in TokenKind}


class MessageTokens:
    """The tokens of one message to one lead, all signed with one key.

    Every token of a message has the same lead, message id, expiry and campaign: their part of the
    payload JSON is written once, the key's HMAC pads are hashed once per key. Each token is exactly
    ``sign(TrackingToken(kind, lead_id, message_id, expires_at, link_id, url, campaign), key)``
    (tested): the email hot path signs three per email.
    """

    __slots__ = ("_inner", "_middle", "_outer", "_tail")

    def __init__(self, key: bytes, lead_id: str, message_id: str, expires_at: int, campaign: str | None = None) -> None:
        self._middle = f',"l":{encode_basestring(lead_id)},"m":{encode_basestring(message_id)},"x":{expires_at:d}'
        self._tail = "}" if campaign is None else f',"c":{encode_basestring(campaign)}}}'
        self._inner, self._outer = _hmac_pads(key)

    def token(self, kind: TokenKind, link_id: str | None = None, url: str | None = None) -> str:
        """The signed token of this kind (and link) for the message."""
        payload = _KIND_HEADS[kind] + self._middle
        if link_id is not None:
            payload += f',"k":{encode_basestring(link_id)}'
        if url is not None:
            payload += f',"u":{encode_basestring(url)}'
        encoded = binascii.b2a_base64((payload + self._tail).encode("utf-8"), newline=False)
        encoded = encoded.translate(_URLSAFE).rstrip(b"=")
        inner = self._inner.copy()
        inner.update(encoded)
        outer = self._outer.copy()
        outer.update(inner.digest())
        mac = binascii.b2a_base64(outer.digest()[:MAC_BYTES], newline=False).translate(_URLSAFE).rstrip(b"=")
        return (encoded + b"." + mac).decode("ascii")


def sign(token: TrackingToken, key: bytes) -> str:
    """The token as a URL-safe string signed with ``key``."""
    return sign_payload(
        key,
        payload_json(
            token.kind, token.lead_id, token.message_id, token.expires_at, token.link_id, token.url, token.campaign
        ),
    )


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


RENDER_TIME_CONTEXT = "lf_ts."


def sign_render_time(rendered_ms: int, key: bytes) -> str:
    """A form's render time (epoch ms) signed by leadflow: ``<ms>.<mac>``, the ``_lf_ts`` the
    snippet puts in forms, so that the minimum fill time cannot be dodged by writing a time."""
    return f"{rendered_ms:d}.{_mac(key, RENDER_TIME_CONTEXT + str(rendered_ms))}"


def verify_render_time(text: str, keys: list[bytes]) -> int:
    """The render time (epoch ms) a signed ``_lf_ts`` stands for.

    Raises:
        InvalidToken: malformed or signed with no key we hold.
    """
    rendered, sep, mac = text.partition(".")
    if not sep or not rendered.isascii() or not rendered.isdigit() or len(rendered) > 15 or not mac.isascii():
        raise InvalidToken("malformed")
    if not any(hmac.compare_digest(_mac(key, RENDER_TIME_CONTEXT + rendered), mac) for key in keys):
        raise InvalidToken("bad signature")
    return int(rendered)


def token_digest(text: str) -> str:
    """A short stable id of a token (for hit counters), never the token itself."""
    return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()[:32]
