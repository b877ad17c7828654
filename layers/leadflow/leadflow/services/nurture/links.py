"""Signed links of one email: open pixel, tracked clicks, unsubscribe and preferences."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from leadflow.domain.tokens import MessageTokens, TokenKind, TrackingToken, sign


class TokenIssuer:
    """Signed links of one email: open pixel, tracked clicks, unsubscribe and preferences."""

    def __init__(self, keys: Callable[[], list[bytes]], base_url: str, token_days: int) -> None:
        self.keys = keys
        self.base_url = base_url.rstrip("/")
        self.token_days = token_days
        self._expiry: tuple[datetime, int] | None = None  # the last ``now`` and its expiry

    def token(self, kind: TokenKind, lead_id: str, message_id: str, now: datetime, **extra: Any) -> str:
        return sign(TrackingToken(kind, lead_id, message_id, self.expires(now), **extra), self.keys()[0])

    def expires(self, now: datetime) -> int:
        """When a token issued ``now`` expires (epoch seconds).

        A batch's emails share one ``now`` (the same object): the last one's answer is kept."""
        last = self._expiry
        if last is not None and last[0] is now:
            return last[1]
        expires = int((now + timedelta(days=self.token_days)).timestamp())
        self._expiry = (now, expires)
        return expires

    def links(self, lead_id: str, message_id: str, campaign: str, now: datetime) -> EmailLinks:
        return EmailLinks(self, lead_id, message_id, campaign, now)


class EmailLinks:
    """``LinkSigner`` for one message (the renderer calls it).

    Each distinct link is signed once per message: the text part repeats the HTML part's links
    and the preferences link is the unsubscribe link, and signing is a good part of rendering.
    The signing key and the expiry are looked up once per message, not once per link, and the
    payload fields the message's tokens share are written once (``MessageTokens``)."""

    __slots__ = ("_signed", "_tokens", "campaign", "issuer", "lead_id", "message_id", "now")

    def __init__(self, issuer: TokenIssuer, lead_id: str, message_id: str, campaign: str, now: datetime) -> None:
        self.issuer = issuer
        self.lead_id = lead_id
        self.message_id = message_id
        self.campaign = campaign
        self.now = now
        self._signed: dict[tuple[str, str], str] = {}
        self._tokens = MessageTokens(issuer.keys()[0], lead_id, message_id, issuer.expires(now), campaign)

    def click_url(self, url: str, tag: str) -> str:
        key = (url, tag)
        signed = self._signed.get(key)
        if signed is None:
            signed = self._signed[key] = f"{self.issuer.base_url}/t/c/{self._tokens.token(TokenKind.CLICK, tag, url)}"
        return signed

    def open_pixel_url(self) -> str:
        return f"{self.issuer.base_url}/t/o/{self._tokens.token(TokenKind.OPEN)}"

    def unsubscribe_url(self) -> str:
        key = ("", "unsubscribe")
        signed = self._signed.get(key)
        if signed is None:
            signed = self._signed[key] = f"{self.issuer.base_url}/u/{self._tokens.token(TokenKind.UNSUBSCRIBE)}"
        return signed

    def preferences_url(self) -> str:
        return self.unsubscribe_url()


class UntrackedLinks:
    """``LinkSigner`` for an email that must not be tracked (``domain.consent.may_track``): links
    go straight to their targets and there is no open pixel (layouts show it only when set); the
    unsubscribe and preferences links stay signed, as every email needs them."""

    __slots__ = ("signed",)

    def __init__(self, signed: EmailLinks) -> None:
        self.signed = signed

    def click_url(self, url: str, tag: str) -> str:
        return url

    def open_pixel_url(self) -> str:
        return ""

    def unsubscribe_url(self) -> str:
        return self.signed.unsubscribe_url()

    def preferences_url(self) -> str:
        return self.signed.preferences_url()
