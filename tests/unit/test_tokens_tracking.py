"""Signed tracking tokens, safe click redirects and site events from the snippet (pure)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.domain.definitions.tracking import TrackingConfig
from leadflow.domain.errors import InvalidSubmission
from leadflow.domain.tokens import InvalidToken, TokenKind, TrackingToken, sign, verify
from leadflow.domain.tracking import parse_site_event, safe_redirect

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY, OLD_KEY, OTHER_KEY = b"k" * 64, b"o" * 64, b"x" * 64
CONFIG = TrackingConfig(link_hosts=("www.example.com", "*.example.org"), site_origins=("https://www.example.com",))


def click_token(
    url: str = "https://www.example.com/pricing", expires: datetime = NOW + timedelta(days=1)
) -> TrackingToken:
    return TrackingToken(TokenKind.CLICK, "L1", "M1", int(expires.timestamp()), "pricing", url, "spring")


def test_a_signed_token_verifies_to_what_was_signed():
    token = click_token()
    assert verify(sign(token, KEY), [KEY], TokenKind.CLICK, NOW) == token


def test_rotation_verifies_tokens_of_the_previous_key():
    assert verify(sign(click_token(), OLD_KEY), [KEY, OLD_KEY], TokenKind.CLICK, NOW).lead_id == "L1"


@pytest.mark.parametrize(
    ("text", "kind", "now"),
    [
        (sign(click_token(), OTHER_KEY), TokenKind.CLICK, NOW),  # signed with a key we do not hold
        (sign(click_token(), KEY), TokenKind.OPEN, NOW),  # a click token used as an open pixel
        (sign(click_token(expires=NOW - timedelta(seconds=1)), KEY), TokenKind.CLICK, NOW),  # expired
        ("", TokenKind.CLICK, NOW),
        ("no-dot", TokenKind.CLICK, NOW),
        ("a.b.c", TokenKind.CLICK, NOW),
        ("é.é", TokenKind.CLICK, NOW),
        ("x" * 5000 + ".y", TokenKind.CLICK, NOW),
    ],
)
def test_forged_foreign_or_expired_tokens_are_refused(text, kind, now):
    with pytest.raises(InvalidToken):
        verify(text, [KEY], kind, now)


def test_a_token_whose_payload_was_altered_is_refused():
    # GIVEN a genuine click token whose payload is swapped for another lead's (same key, no new mac)
    genuine = sign(click_token(), KEY)
    other = sign(TrackingToken(TokenKind.CLICK, "L2", "M1", int(NOW.timestamp()) + 60, "x", "https://evil.test/"), KEY)
    forged = other.split(".")[0] + "." + genuine.split(".")[1]
    with pytest.raises(InvalidToken):
        verify(forged, [KEY], TokenKind.CLICK, NOW)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_no_text_is_ever_anything_but_a_token_or_invalid(text):
    with contextlib.suppress(InvalidToken):
        verify(text, [KEY], TokenKind.CLICK, NOW)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://www.example.com/pricing?utm=1", True),
        ("http://www.example.com:8080/x", True),
        ("https://docs.example.org/guide", True),
        ("https://example.org/", False),  # *.example.org is for subdomains
        ("https://evil.example.net/", False),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//www.example.com/x", False),
        ("https://user:pass@www.example.com/", False),
        ("https://www.example.com.evil.net/", False),
        ("https://www.example.com\\@evil.net/", False),
        ("https://www.example.com/\n", False),
        ("http://[", False),
        (None, False),
    ],
)
def test_clicks_redirect_only_to_allowed_hosts(url, allowed):
    assert safe_redirect(url, CONFIG) == (url if allowed else None)


def test_a_page_view_becomes_an_activity():
    event = parse_site_event(
        {
            "visitor_id": "v-12345678",
            "type": "page_view",
            "url": "https://www.example.com/pricing",
            "title": "Pricing",
            "seconds": 42,
            "unknown": "ignored",
        }
    )
    assert event.activity_type == "page_viewed"
    assert event.attributes == {"url": "https://www.example.com/pricing", "title": "Pricing", "seconds": 42}


def test_downloads_and_video_milestones():
    download = parse_site_event(
        {"visitor_id": "v-12345678", "type": "download", "url": "https://www.example.com/files/whitepaper.pdf"}
    )
    video = parse_site_event(
        {
            "visitor_id": "v-12345678",
            "type": "video_progress",
            "url": "https://www.example.com/",
            "percent": 50,
            "asset": "demo.mp4",
        }
    )
    assert download.attributes["asset"] == "whitepaper.pdf"
    assert (video.activity_type, video.attributes["percent"]) == ("video_progress", 50)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ([], {"body"}),
        ({"visitor_id": "short", "type": "page_view", "url": "https://x.example/"}, {"visitor_id"}),
        ({"visitor_id": "v-12345678", "type": "hack", "url": "https://x.example/"}, {"type"}),
        ({"visitor_id": "v-12345678", "type": "page_view", "url": "javascript:alert(1)"}, {"url"}),
        ({"visitor_id": "v-12345678", "type": "page_view"}, {"url"}),
        ({"visitor_id": "v-12345678", "type": "page_view", "url": "https://x.example/", "seconds": -1}, {"seconds"}),
        ({"visitor_id": "v-12345678", "type": "page_view", "url": "https://x.example/", "seconds": True}, {"seconds"}),
        (
            {"visitor_id": "v-12345678", "type": "video_progress", "url": "https://x.example/", "percent": 33},
            {"percent"},
        ),
        ({"visitor_id": "v-12345678", "type": "custom", "url": "https://x.example/"}, {"name"}),
        ({"visitor_id": "v-12345678", "type": "page_view", "url": "https://x.example/", "title": "\ud800"}, {"title"}),
    ],
)
def test_bad_site_events_name_each_bad_field(body, fields):
    with pytest.raises(InvalidSubmission) as refused:
        parse_site_event(body)
    assert {e.field for e in refused.value.errors} == fields


@settings(max_examples=300, deadline=None)
@given(
    body=st.dictionaries(
        st.sampled_from(["visitor_id", "type", "url", "title", "seconds", "percent", "asset", "name", "referrer"]),
        st.one_of(st.text(max_size=50), st.integers(), st.floats(), st.booleans(), st.none()),
    )
)
def test_any_site_event_is_an_event_or_a_named_refusal(body):
    try:
        parse_site_event(body)
    except InvalidSubmission as error:
        assert error.errors


@pytest.mark.parametrize("kind", [{}, [], ["page_view"], {"page_view": 1}, 1, None, True])
def test_a_site_event_type_that_is_not_text_is_a_named_refusal(kind):
    # found by schemathesis on POST /t/e: {"type": {}} was a TypeError (500)
    with pytest.raises(InvalidSubmission) as refused:
        parse_site_event({"visitor_id": "v-12345678", "type": kind, "url": "https://www.example.com/"})
    assert [e.field for e in refused.value.errors] == ["type"]
