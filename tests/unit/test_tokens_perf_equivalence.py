"""The email hot path's token signing gives exactly the tokens it gave before, and they verify.

``payload_json`` writes the payload without ``json.dumps``; ``sign_payload`` signs it without a
``TrackingToken``; ``EmailLinks`` takes the key and the expiry once per message (the expiry once per
batch's ``now``), and its ``MessageTokens`` writes the fields a message's tokens share once and
hashes the key's HMAC pads once per key. A link signed
before this change and after must be the same string (links in sent emails keep working).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.domain.tokens import (
    MessageTokens,
    TokenKind,
    TrackingToken,
    payload_json,
    sign,
    sign_payload,
    verify,
)
from leadflow.services.nurture import TokenIssuer

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
KEY = b"k" * 32


def reference_sign(token: TrackingToken, key: bytes) -> str:
    """``domain.tokens.sign`` up to 6c25ec4."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    payload = b64(json.dumps(token.payload(), separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    mac = b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()[:16])
    return f"{payload}.{mac}"


texts = st.text(max_size=40)
optional = st.none() | texts
TOKEN_FIELDS = {
    "kind": st.sampled_from(list(TokenKind)),
    "lead": texts,
    "message": texts,
    "expires": st.integers(min_value=0, max_value=2**40),
    "link": optional,
    "url": optional,
    "campaign": optional,
}


@settings(max_examples=300, deadline=None)
@given(
    **TOKEN_FIELDS,
    key=st.binary(min_size=1, max_size=80),
)
def test_tokens_are_the_ones_signed_before(  # noqa: PLR0917 - hypothesis passes them by name
    kind: TokenKind,
    lead: str,
    message: str,
    expires: int,
    link: str | None,
    url: str | None,
    campaign: str | None,
    key: bytes,
) -> None:
    token = TrackingToken(kind, lead, message, expires, link, url, campaign)
    assert payload_json(kind, lead, message, expires, link, url, campaign) == json.dumps(
        token.payload(), separators=(",", ":"), ensure_ascii=False
    )
    signed = reference_sign(token, key)
    assert sign(token, key) == signed
    assert sign_payload(key, payload_json(kind, lead, message, expires, link, url, campaign)) == signed


def test_email_links_sign_as_the_issuer_did_and_verify() -> None:
    issuer = TokenIssuer(lambda: [KEY, b"old" * 11], "https://t.example.com/", 30)
    links = issuer.links("01LEAD", "m_1", "push-discount", NOW)
    expires = int((NOW + timedelta(days=30)).timestamp())
    click = links.click_url("https://www.example.com/offer?a=1&b=ü", "discount")
    assert click == "https://t.example.com/t/c/" + reference_sign(
        TrackingToken(
            TokenKind.CLICK,
            "01LEAD",
            "m_1",
            expires,
            "discount",
            "https://www.example.com/offer?a=1&b=ü",
            "push-discount",
        ),
        KEY,
    )
    assert links.click_url("https://www.example.com/offer?a=1&b=ü", "discount") is click  # signed once
    assert links.open_pixel_url() == "https://t.example.com/t/o/" + reference_sign(
        TrackingToken(TokenKind.OPEN, "01LEAD", "m_1", expires, campaign="push-discount"), KEY
    )
    unsubscribe = links.unsubscribe_url()
    assert unsubscribe == links.preferences_url()
    token = verify(unsubscribe.rsplit("/", 1)[1], [b"old" * 11, KEY], TokenKind.UNSUBSCRIBE, NOW)
    assert (token.lead_id, token.message_id, token.campaign, token.expires_at) == (
        "01LEAD",
        "m_1",
        "push-discount",
        expires,
    )
    assert issuer.token(TokenKind.CONFIRM, "01LEAD", "m_2", NOW) == reference_sign(
        TrackingToken(TokenKind.CONFIRM, "01LEAD", "m_2", expires), KEY
    )


def test_the_key_is_read_once_per_message() -> None:
    reads: list[int] = []

    def keys() -> list[bytes]:
        reads.append(1)
        return [KEY]

    links = TokenIssuer(keys, "https://t.example.com", 30).links("01LEAD", "m_1", "c", NOW)
    links.unsubscribe_url()
    links.open_pixel_url()
    links.click_url("https://www.example.com/", "a")
    links.click_url("https://www.example.com/b", "b")
    assert len(reads) == 1


@settings(max_examples=300, deadline=None)
@given(
    **TOKEN_FIELDS,
    key=st.binary(max_size=150),  # empty, shorter and longer than SHA-256's 64-byte block
)
def test_a_message_signs_each_token_as_sign_does(  # noqa: PLR0917 - hypothesis passes them by name
    kind: TokenKind,
    lead: str,
    message: str,
    expires: int,
    link: str | None,
    url: str | None,
    campaign: str | None,
    key: bytes,
) -> None:
    tokens = MessageTokens(key, lead, message, expires, campaign)
    expected = reference_sign(TrackingToken(kind, lead, message, expires, link, url, campaign), key)
    assert tokens.token(kind, link, url) == expected
    assert tokens.token(kind, link, url) == expected  # the key's pads are copied, never changed


def test_the_expiry_is_worked_out_per_now_and_zone() -> None:
    issuer = TokenIssuer(lambda: [KEY], "https://t.example.com", 30)
    berlin = NOW.astimezone(ZoneInfo("Europe/Berlin"))  # the same instant; 30 days later crosses no DST here
    late_october = datetime(2026, 10, 20, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 30 days later: DST ended
    for now in (NOW, NOW, berlin, late_october, late_october.astimezone(UTC), NOW + timedelta(seconds=1)):
        assert issuer.expires(now) == int((now + timedelta(days=30)).timestamp())
