"""Tracking over HTTP on the local stack: the pixel, signed clicks, site events and visitor stitching."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import dynamodb_outage, replay_intake, unique_email

pytestmark = pytest.mark.integration


def new_lead(client) -> str:
    return client.capture("demo-signup", {"email": unique_email("track")})


def token(client, **body) -> str:
    response = client.http.post(client.url + "/_dev/tokens", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def activities(client, lead_id: str, kind: str) -> list[dict]:
    return [a for a in client.api(f"/leads/{lead_id}").json()["activities"] if a["type"] == kind]


def test_open_pixel_is_always_a_gif_and_records_only_genuine_opens(client):
    lead_id = new_lead(client)
    genuine = token(client, kind="o", lead_id=lead_id, message_id="welcome-1")
    for text in (genuine, "forged.token", genuine[:-3] + "abc"):
        response = client.http.get(f"{client.url}/t/o/{text}", timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/gif"
        assert response.content.startswith(b"GIF89a")
        assert "no-store" in response.headers["cache-control"]
    opens = activities(client, lead_id, "email_opened")
    assert len(opens) == 1
    assert opens[0]["message_id"] == "welcome-1"


def test_clicks_redirect_only_where_signed_and_allowed(client):
    lead_id = new_lead(client)
    good = token(
        client, kind="c", lead_id=lead_id, message_id="m", url="https://www.example.com/pricing", link_id="pricing"
    )
    foreign = token(client, kind="c", lead_id=lead_id, message_id="m", url="https://evil.example.net/")
    script = token(client, kind="c", lead_id=lead_id, message_id="m", url="javascript:alert(1)")
    # issue 13, defect 9: a browser reads the backslash as a slash and goes to evil.com
    backslash = token(client, kind="c", lead_id=lead_id, message_id="m", url="https://evil.com\\.example.com/")
    response = client.http.get(f"{client.url}/t/c/{good}", allow_redirects=False, timeout=10)
    assert response.status_code == 302
    assert response.headers["location"] == "https://www.example.com/pricing"
    for text in (foreign, script, backslash, good + "x", "nothing"):
        assert client.http.get(f"{client.url}/t/c/{text}", allow_redirects=False, timeout=10).status_code == 404
    clicks = activities(client, lead_id, "email_clicked")
    assert [(c["url"], c["link_tag"]) for c in clicks] == [("https://www.example.com/pricing", "pricing")]


def test_repeated_hits_of_one_token_are_capped(client):
    lead_id = new_lead(client)
    text = token(client, kind="o", lead_id=lead_id, message_id="m")
    for _ in range(25):
        client.http.get(f"{client.url}/t/o/{text}", timeout=10)
    assert len(activities(client, lead_id, "email_opened")) == 20  # hits_per_token in workspace/tracking.yaml


def test_site_events_from_allowed_origins(client):
    body = {
        "visitor_id": "visitor-abc123",
        "type": "page_view",
        "url": "https://www.example.com/pricing",
        "title": "<b>Pricing</b>",
        "seconds": 30,
    }
    sent = client.http.post(
        client.url + "/t/e",
        data=json.dumps(body),
        timeout=10,
        headers={"Content-Type": "text/plain", "Origin": "https://www.example.com"},
    )
    foreign = client.http.post(
        client.url + "/t/e",
        data=json.dumps(body),
        timeout=10,
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example.net"},
    )
    assert sent.status_code == 204
    assert sent.headers["access-control-allow-origin"] == "https://www.example.com"
    assert "access-control-allow-origin" not in foreign.headers
    too_big = client.http.post(client.url + "/t/e", data="x" * 9000, timeout=10)
    assert too_big.status_code == 413
    assert client.http.post(client.url + "/t/e", data="{", timeout=10).status_code == 400
    assert client.http.post(client.url + "/t/e", json={"type": "x"}, timeout=10).status_code == 422


def test_snippet_is_served(client):
    response = client.http.get(client.url + "/t/lf.js", timeout=10)
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert "sendBeacon" in response.text and "_lf_vid" in response.text


def test_expired_tokens_record_nothing(client):
    # GIVEN a lead and an open pixel and a click link issued now (tokens live token_days: 365)
    lead_id = new_lead(client)
    pixel = token(client, kind="o", lead_id=lead_id, message_id="old-mail")
    link = token(client, kind="c", lead_id=lead_id, message_id="old-mail", url="https://www.example.com/pricing")

    # WHEN both are used after they expired (the local clock moved on 366 days)
    client.http.post(client.url + "/_dev/clock", json={"advance_seconds": 366 * 86400}, timeout=10)
    opened = client.http.get(f"{client.url}/t/o/{pixel}", timeout=10)
    clicked = client.http.get(f"{client.url}/t/c/{link}", allow_redirects=False, timeout=10)

    # THEN the pixel is still a GIF, the link goes nowhere, and nothing is recorded
    assert opened.status_code == 200 and opened.content.startswith(b"GIF89a")
    assert clicked.status_code == 404
    assert activities(client, lead_id, "email_opened") == []
    assert activities(client, lead_id, "email_clicked") == []


def test_user_agent_and_referrer_are_kept_as_data_and_escaped_where_shown(client):
    # GIVEN a lead whose visitor id is known (the form carried the snippet's _lf_vid)
    visitor = "vis-" + uuid.uuid4().hex[:12]
    lead_id = client.capture("demo-signup", {"email": unique_email("ua"), "_lf_vid": visitor})
    hostile_agent = "<script>alert('ua')</script>"
    hostile_referrer = "https://evil.example.net/?q=<img src=x onerror=alert(1)>"

    # WHEN it clicks a tracked link and views a page with a hostile user agent and referrer
    link = token(client, kind="c", lead_id=lead_id, message_id="m", url="https://www.example.com/pricing")
    clicked = client.http.get(
        f"{client.url}/t/c/{link}", allow_redirects=False, timeout=10, headers={"User-Agent": hostile_agent}
    )
    viewed = client.http.post(
        client.url + "/t/e",
        timeout=10,
        headers={"User-Agent": hostile_agent},
        data=json.dumps(
            {
                "visitor_id": visitor,
                "type": "page_view",
                "url": "https://www.example.com/pricing",
                "referrer": hostile_referrer,
            }
        ),
    )
    assert clicked.status_code == 302 and viewed.status_code == 204

    # THEN the API returns them exactly as sent (data, not markup)
    (click,) = activities(client, lead_id, "email_clicked")
    (view,) = activities(client, lead_id, "page_viewed")
    assert click["user_agent"] == hostile_agent
    assert view["user_agent"] == hostile_agent
    assert view["referrer"] == hostile_referrer
    # AND the dev console's lead page shows them escaped, never as markup
    page = client.http.get(f"{client.url}/_dev/leads/{lead_id}", timeout=10)
    assert page.status_code == 200
    assert "<script>alert(" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(" in page.text


TRACKING_CALLS = ("GetItem", "UpdateItem", "PutItem", "TransactWriteItems")


def test_a_table_outage_loses_no_open_click_or_site_event(local_stack, client):
    # GIVEN a lead whose visitor id is known, its pixel and a tracked link
    visitor = "vis-" + uuid.uuid4().hex[:12]
    lead_id = client.capture("demo-signup", {"email": unique_email("outage"), "_lf_vid": visitor})
    pixel = token(client, kind="o", lead_id=lead_id, message_id="outage-1")
    link = token(client, kind="c", lead_id=lead_id, message_id="outage-1", url="https://www.example.com/pricing")
    view = {"visitor_id": visitor, "type": "page_view", "url": "https://www.example.com/pricing"}
    # WHEN DynamoDB answers 500 to everything tracking calls while the lead opens, clicks and views
    with dynamodb_outage(local_stack, client, TRACKING_CALLS):
        opened = client.http.get(f"{client.url}/t/o/{pixel}", timeout=10)
        clicked = client.http.get(f"{client.url}/t/c/{link}", allow_redirects=False, timeout=10)
        viewed = client.http.post(client.url + "/t/e", data=json.dumps(view), timeout=10)
    # THEN each is answered as usual: the GIF, the redirect, 204 (was a 500 for the click and the event)
    assert opened.status_code == 200 and opened.content.startswith(b"GIF89a")
    assert clicked.status_code == 302 and clicked.headers["location"] == "https://www.example.com/pricing"
    assert viewed.status_code == 204
    # AND once the table is back and the intake queue replayed, each is the lead's activity, once
    replay_intake(local_stack, client)
    assert [a["message_id"] for a in activities(client, lead_id, "email_opened")] == ["outage-1"]
    assert [a["url"] for a in activities(client, lead_id, "email_clicked")] == ["https://www.example.com/pricing"]
    assert [a["url"] for a in activities(client, lead_id, "page_viewed")] == ["https://www.example.com/pricing"]
    assert local_stack.queue_depths()["IntakeDLQ"]["visible"] == 0
