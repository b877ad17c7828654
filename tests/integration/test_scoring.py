"""Scoring on the local stack: activities raise the score, the stage moves, decay recycles, explained."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from tests.conftest import unique_email

pytestmark = pytest.mark.integration


def new_lead(client, **fields) -> str:
    body = {
        "email": unique_email("score"),
        "title": "VP Marketing",
        "company_size": "201-1000",
        "country": "US",
        **fields,
    }
    lead_id = client.capture("demo-signup", body)
    client.tick()
    return lead_id


def click(client, lead_id: str, link: str = "pricing") -> None:
    token = client.http.post(
        client.url + "/_dev/tokens",
        json={
            "kind": "c",
            "lead_id": lead_id,
            "message_id": uuid.uuid4().hex,
            "link_id": link,
            "url": "https://www.example.com/pricing",
        },
        timeout=10,
    ).json()["token"]
    assert client.http.get(f"{client.url}/t/c/{token}", allow_redirects=False, timeout=10).status_code == 302


def score(client, lead_id: str) -> dict:
    response = client.api(f"/leads/{lead_id}/score")
    assert response.status_code == 200, response.text
    return response.json()


def sqs_event(detail_type: str, detail: dict) -> dict:
    body = {
        "version": "0",
        "id": uuid.uuid4().hex,
        "detail-type": detail_type,
        "source": "leadflow.tracking",
        "account": "123456789012",
        "time": detail["at"],
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }
    return {
        "Records": [
            {
                "messageId": uuid.uuid4().hex,
                "receiptHandle": "r",
                "body": json.dumps(body),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:scoring",
                "awsRegion": "us-east-1",
            }
        ]
    }


def test_clicks_raise_the_score_and_move_the_lead_to_mql_with_reasons(client):
    # GIVEN a well-fitting lead fresh from the demo form
    lead_id = new_lead(client)
    first = score(client, lead_id)
    assert first["grade"]["letter"] in ("A", "B")
    assert first["stage"] == "lead"
    # WHEN they click pricing links in six emails
    for _ in range(6):
        click(client, lead_id)
    client.tick()
    # THEN the score rose past the MQL threshold, the stage moved, and the reasons say why
    after = score(client, lead_id)
    assert after["models"]["smb"]["score"] > first["models"]["smb"]["score"]
    assert after["stage"] == "mql"
    assert "pricing_link_clicked" in [r["rule_id"] for r in after["models"]["smb"]["reasons"]]
    changed = [
        e for e in client.bus_events() if e["detail-type"] == "lead.stage_changed" and e["detail"]["lead_id"] == lead_id
    ]
    assert [(e["detail"]["from"], e["detail"]["to"]) for e in changed] == [("lead", "mql")]
    # AND each scored click was announced with the points it added, the rules and the new scores
    scored = [
        e["detail"]
        for e in client.bus_events()
        if e["detail-type"] == "lead.scored" and e["detail"]["lead_id"] == lead_id
    ]
    clicks = [d for d in scored if "pricing_link_clicked" in d["rules"]]
    assert len(clicks) == 6
    assert all(d["points_added"] > 0 and d["grade"] == after["grade"]["letter"] for d in clicks)
    # AND marked as of no interest to nurture: no demo sequence reads scores (the nurture bus rule
    # takes only the marked ones)
    assert all(d["nurture"] is False for d in scored)
    assert abs(max(d["scores"]["smb"] for d in clicks) - after["models"]["smb"]["score"]) < 0.5  # decay since


def scored_download(local_stack, lead_id: str) -> dict:
    """A download of the guide, scored by ScoringFunction (as its queue delivers it): its detail."""
    detail = {
        "lead_id": lead_id,
        "activity_id": uuid.uuid4().hex,
        "type": "download",
        "at": local_stack.clock.now().isoformat(),
        "url": "https://www.example.com/files/guide.pdf",
        "asset": "guide.pdf",
    }
    assert local_stack.runner.invoke("ScoringFunction", sqs_event("activity.recorded", detail)) == {
        "batchItemFailures": []
    }
    return detail


def test_a_redelivered_activity_scores_once(local_stack, client):
    # GIVEN a download event, delivered once
    lead_id = new_lead(client)
    before = score(client, lead_id)
    detail = scored_download(local_stack, lead_id)
    once = score(client, lead_id)
    # WHEN the queue delivers it twice more
    for _ in range(2):
        local_stack.runner.invoke("ScoringFunction", sqs_event("activity.recorded", detail))
    # THEN it counted once
    again = score(client, lead_id)
    assert once["ledger_entries"] > before["ledger_entries"]
    assert again["ledger_entries"] == once["ledger_entries"]
    assert again["models"]["smb"]["score"] == pytest.approx(once["models"]["smb"]["score"], abs=0.5)


def test_concurrent_activities_of_one_lead_both_count(local_stack, client):
    lead_id = new_lead(client)
    before = score(client, lead_id)["models"]["smb"]["score"]
    now = local_stack.clock.now().isoformat()
    details = [
        {"lead_id": lead_id, "activity_id": uuid.uuid4().hex, "type": "webinar_attended", "at": now},
        {
            "lead_id": lead_id,
            "activity_id": uuid.uuid4().hex,
            "type": "download",
            "at": now,
            "url": "https://www.example.com/files/other.pdf",
            "asset": "other.pdf",
        },
    ]
    barrier = threading.Barrier(2)
    results = []

    def run(detail):
        barrier.wait()
        results.append(local_stack.runner.invoke("ScoringFunction", sqs_event("activity.recorded", detail)))

    threads = [threading.Thread(target=run, args=(d,)) for d in details]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [{"batchItemFailures": []}] * 2
    # THEN neither update was lost: webinar +25 and download +15 (workspace/scoring.yaml, model smb)
    after = score(client, lead_id)
    reasons = {r["rule_id"] for r in after["models"]["smb"]["reasons"]}
    assert after["models"]["smb"]["score"] == pytest.approx(before + 25 + 15, abs=0.5)
    assert {"webinar_attended", "download"} <= reasons


def test_anonymous_visits_count_once_the_visitor_fills_a_form(client):
    # GIVEN a visitor who read the pricing page twice before giving their email
    visitor = "vis-" + uuid.uuid4().hex[:12]
    for seconds in (40, 90):
        sent = client.http.post(
            client.url + "/t/e",
            timeout=10,
            data=json.dumps(
                {
                    "visitor_id": visitor,
                    "type": "page_view",
                    "url": "https://www.example.com/pricing",
                    "seconds": seconds,
                }
            ),
        )
        assert sent.status_code == 204
    # WHEN they submit the form from a page with the snippet (which adds _lf_vid)
    lead_id = new_lead(client, _lf_vid=visitor)
    client.tick()
    # THEN their earlier page views are the lead's, and scored
    lead = client.api(f"/leads/{lead_id}").json()
    views = [a for a in lead["activities"] if a["type"] == "page_viewed"]
    assert len(views) == 2
    # AND a later visit goes straight to the lead
    client.http.post(
        client.url + "/t/e",
        timeout=10,
        data=json.dumps({"visitor_id": visitor, "type": "page_view", "url": "https://www.example.com/docs"}),
    )
    lead = client.api(f"/leads/{lead_id}").json()
    assert len([a for a in lead["activities"] if a["type"] == "page_viewed"]) == 3


def test_score_and_account_api(client):
    domain = f"acct-{uuid.uuid4().hex[:8]}.example.com"
    for title in ("VP Marketing", "CFO", "Head of IT"):
        new_lead(client, email=f"{uuid.uuid4().hex[:6]}@{domain}", title=title)
    account = client.api(f"/accounts/{domain}").json()
    assert account["leads"] == 3
    assert {"marketing", "finance", "it"} <= set(account["departments"])
    assert 0 < account["coverage"] <= 1
    assert client.api("/accounts/nobody.example.org").status_code == 404
    assert client.api("/leads/01JD3Z8Q4W6Y9V2N5K7M0P1R3S/score").status_code == 404
    assert client.http.get(client.url + "/api/v1/leads/x/score", timeout=10).status_code == 401


def test_a_quiet_mql_decays_and_is_recycled(local_stack, client):
    # GIVEN an MQL
    lead_id = new_lead(client)
    for _ in range(6):
        click(client, lead_id)
    client.tick()
    assert score(client, lead_id)["stage"] == "mql"
    # WHEN nothing happens for half a year (the daily decay sweep runs on the local clock)
    client.http.post(client.url + "/_dev/clock", json={"advance_seconds": 180 * 86400}, timeout=10)
    result = client.tick()
    # THEN the decayed score fell below the threshold and the stage rules recycled the lead
    assert result["fired_schedules"] >= 1
    after = score(client, lead_id)
    assert after["stage"] == "recycled"
    assert after["models"]["smb"]["score"] < 80
