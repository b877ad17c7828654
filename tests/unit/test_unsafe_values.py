"""Stored unsafe values (issue 13, defect 11): a page or referrer that is not an http(s) URL is
never stored or forwarded; it is dropped, and the drop is flagged on the activity and counted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadflow.config.workspace import Workspace
from leadflow.domain.leads import CapturePlan
from leadflow.domain.submissions import ClientInfo, FormPost, is_web_url, validate_submission
from leadflow.domain.tracking import parse_site_event
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
UNSAFE = [
    "javascript:alert(document.domain)",
    " JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "http:javascript:alert(1)",
    "//evil.example/path",
    "https://exa mple.com/",
]


def post(fields: dict[str, str], referer: str = "") -> FormPost:
    return FormPost(fields={k: [v] for k, v in fields.items()}, client=ClientInfo(ip="203.0.113.9", referer=referer))


@pytest.mark.parametrize("url", UNSAFE)
@pytest.mark.parametrize("field", ["page_url", "referrer"])
def test_an_unsafe_page_or_referrer_is_dropped_and_flagged(field: str, url: str):
    # GIVEN a post whose page URL or referrer is not an http(s) address
    form = Workspace(WORKSPACE).form("demo-signup")

    # WHEN it is validated and planned for storage
    submission = validate_submission(form, post({"email": "ada@example.com", field: url}), NOW)
    write = CapturePlan(submission, "act1", "lead1", ("e1", "e2"), None).for_lead("lead1", is_new=True)

    # THEN the value is nowhere in the touch (what CRMs get), and the activity says why
    assert field not in submission.touch
    assert url.strip() not in str(write.changes.set_always) + str(write.changes.set_if_absent)
    assert write.activity["flags"] == [f"unsafe_{field}"]


@pytest.mark.parametrize("url", UNSAFE[:4])
def test_an_unsafe_referer_header_is_not_the_page(url: str):
    # GIVEN a post without page_url whose Referer header is not an http(s) address
    form = Workspace(WORKSPACE).form("demo-signup")

    # WHEN it is validated
    submission = validate_submission(form, post({"email": "ada@example.com"}, referer=url), NOW)

    # THEN no page is recorded, and the drop is flagged
    assert "page_url" not in submission.touch
    assert submission.flags == ["unsafe_page_url"]


@pytest.mark.parametrize(
    "url", ["https://www.example.com/pricing?utm_source=x", "http://localhost:8000/", "https://[2001:db8::1]/a"]
)
def test_http_and_https_pages_are_kept(url: str):
    # GIVEN a post from an ordinary web page
    form = Workspace(WORKSPACE).form("demo-signup")

    # WHEN it is validated
    submission = validate_submission(form, post({"email": "ada@example.com", "page_url": url, "referrer": url}), NOW)

    # THEN page and referrer are kept, with no flag
    assert submission.touch["page_url"] == url
    assert submission.touch["referrer"] == url
    assert submission.flags == []
    assert is_web_url(url)


@pytest.mark.parametrize("url", UNSAFE[:4])
def test_a_site_event_with_an_unsafe_referrer_keeps_the_event_without_it(url: str):
    # GIVEN a page view from the snippet whose referrer is a javascript: or data: URL
    data = {"visitor_id": "v_12345678", "type": "page_view", "url": "https://www.example.com/", "referrer": url}

    # WHEN it is parsed
    event = parse_site_event(data)

    # THEN the page view counts, the referrer is dropped and flagged
    assert "referrer" not in event.attributes
    assert event.attributes["flags"] == ["unsafe_referrer"]
