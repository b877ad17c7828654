"""Form capture over HTTP on the local stack: the public contract of POST /forms/{form_id}."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime

import pytest

from tests.conftest import replay_intake, unique_email, unique_ip

pytestmark = pytest.mark.integration


def test_new_then_returning_lead_is_one_record_merged(client):
    # GIVEN a first submission with a company and a campaign
    email = unique_email("merge")
    first = client.post_form(
        "demo-signup", {"email": email, "company": "Acme", "utm_campaign": "spring", "consent": True}, as_json=True
    )
    # WHEN the same person comes back with another case, a blank company and a job title
    second = client.post_form(
        "demo-signup", {"email": email.upper(), "company": "", "title": "CMO", "utm_campaign": "autumn"}, as_json=True
    )
    # THEN one lead, and the same answer both times (no lead id: the answer tells nobody who is a lead);
    # the known company kept, the title added (the blank filled), both touches kept
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["status"] == second.json()["status"] == "received"
    assert "lead_id" not in first.json() and "lead_id" not in second.json()
    lead = client.api(f"/leads/{client.lead_by_email(email)['lead_id']}").json()
    assert lead["profile"]["company"] == "Acme"
    assert lead["profile"]["title"] == "CMO"
    assert lead["attribution"]["first_touch"]["utm_campaign"] == "spring"
    assert lead["attribution"]["last_touch"]["utm_campaign"] == "autumn"
    assert lead["submissions"] == 2
    assert [a["type"] for a in lead["activities"]] == ["form_submitted", "form_submitted"]
    # AND consent is the append-only record of the opt-in, with its wording version, IP and agent
    assert len(lead["consent_history"]) == 1
    record = lead["consent_history"][0]
    assert record["granted"] is True
    assert record["version"] == "2026-11-01"
    assert record["ip"].startswith("10.")
    assert lead["consent"]["marketing_email"]["granted"] is True


def test_concurrent_posts_of_one_email_make_one_lead(client):
    # GIVEN 40 posts of one new address, released at once from 40 clients
    email = unique_email("race")
    barrier = threading.Barrier(40)
    answers: list[tuple[int, str]] = []

    def post() -> None:
        barrier.wait()
        response = client.post_form("demo-signup", {"email": email}, as_json=True)
        answers.append((response.status_code, response.json()["status"]))

    threads = [threading.Thread(target=post) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN all got the same answer, and one lead counts 40 submissions
    assert set(answers) == {(200, "received")} and len(answers) == 40
    assert client.lead_by_email(email)["submissions"] == 40


def test_html_post_redirects_and_errors_are_named(client):
    ok = client.post_form("demo-signup", {"email": unique_email("html")})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/thank-you"
    bad = client.post_form("demo-signup", {"email": "not-an-address", "company_size": "huge"})
    assert bad.status_code == 422
    assert "text/html" in bad.headers["content-type"]
    assert "email" in bad.text
    assert "company_size" in bad.text


def test_json_errors_name_each_bad_field(client):
    response = client.post_form("demo-signup", {"email": "x@", "company_size": "huge"}, as_json=True)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"email", "company_size"}
    required = client.post_form("webinar-registration", {"email": unique_email()}, as_json=True)
    assert required.status_code == 422
    assert {e["field"] for e in required.json()["errors"]} == {"first_name", "company", "webinar_id", "consent"}


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status"),
    [
        ("/forms/no-such-form", b"email=a%40example.com", "application/x-www-form-urlencoded", 404),
        ("/forms/demo-signup", b"email=" + b"a" * 70_000, "application/x-www-form-urlencoded", 413),
        ("/forms/demo-signup", b"<lead/>", "application/xml", 415),
        ("/forms/demo-signup", b"email=a@example.com", "", 415),
        ("/forms/demo-signup", b"{not json", "application/json", 400),
        ("/forms/demo-signup", b"[1, 2]", "application/json", 400),
        ("/forms/demo-signup", b'{"email": {"nested": 1}}', "application/json", 400),
        ("/forms/demo-signup", b"email=%FF%FE", "application/x-www-form-urlencoded", 400),
        ("/forms/demo-signup", b"--x\r\nbroken", "multipart/form-data", 400),
        ("/forms/../etc/passwd", b"", "application/json", 404),
    ],
)
def test_bad_requests_get_a_clear_4xx(client, path, body, content_type, status):
    headers = {"X-Forwarded-For": unique_ip(), "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.http.post(client.url + path, data=body, headers=headers, allow_redirects=False, timeout=30)
    assert response.status_code == status


def test_unknown_and_protected_fields_are_ignored(client):
    email = unique_email("protected")
    response = client.post_form(
        "demo-signup",
        {"email": email, "score": 999, "stage": "customer", "owner": "mallory", "is_admin": True},
        as_json=True,
    )
    assert response.status_code == 200
    lead = client.api(f"/leads/{client.lead_by_email(email)['lead_id']}").json()
    assert lead["stage"] == "lead"
    assert "score" not in lead["custom"] and "is_admin" not in lead["custom"]
    assert "owner" not in lead


def test_spam_is_answered_like_success_but_only_counted(local_stack, client):
    today = local_stack.clock.now().date().isoformat()

    def spam_count() -> int:
        from leadflow.adapters.dynamo import DynamoLeadStore

        store = DynamoLeadStore(local_stack.outputs["LeadsTableName"], local_stack.client("dynamodb"))
        return int(store.form_stats(today).get("demo-signup", {}).get("spam", 0))

    before = spam_count()
    # GIVEN a bot that fills the honeypot, and one that posts 0.2 s after the page rendered
    honeypot_email, fast_email = unique_email("bot"), unique_email("fast")
    rendered_ms = int(local_stack.clock.now().timestamp() * 1000)
    bot = client.post_form("demo-signup", {"email": honeypot_email, "website": "http://spam.example"}, as_json=True)
    fast = client.post_form("demo-signup", {"email": fast_email, "_lf_ts": str(rendered_ms)}, as_json=True)
    # THEN both look accepted (the answer of any post), neither is a lead, and both are counted as spam
    assert bot.status_code == fast.status_code == 200
    assert bot.json()["status"] == fast.json()["status"] == "received"
    assert client.lead_by_email(honeypot_email) is None
    assert client.lead_by_email(fast_email) is None
    assert spam_count() == before + 2
    # AND a person who took their time is a lead
    slow = client.post_form("demo-signup", {"email": unique_email(), "_lf_ts": str(rendered_ms - 10_000)}, as_json=True)
    assert slow.status_code == 200


def _dev_minute(client) -> datetime:
    """The local stack's clock, to the minute (the rate limit counts posts per clock minute)."""
    now = datetime.fromisoformat(client.http.get(client.url + "/_dev/clock", timeout=10).json()["now"])
    return now.replace(second=0, microsecond=0)


def test_rate_limit_per_client_ip(client):
    # GIVEN the session stack allows 30 posts per IP per minute, and the posts start a minute
    # (the window is the clock's minute: on a loaded machine 32 posts can take most of one, so a
    # run whose posts crossed into the next minute is done again, from that minute's start)
    for _ in range(3):
        now = datetime.fromisoformat(client.http.get(client.url + "/_dev/clock", timeout=10).json()["now"])
        wait = 60 - now.second - now.microsecond / 1e6 + 0.5
        client.http.post(client.url + "/_dev/clock", json={"advance_seconds": wait}, timeout=10).raise_for_status()
        minute = _dev_minute(client)
        ip = unique_ip()
        statuses = [
            client.post_form("demo-signup", {"email": unique_email()}, as_json=True, ip=ip).status_code
            for _ in range(31)
        ]
        limited = client.post_form("demo-signup", {"email": unique_email()}, as_json=True, ip=ip)
        if _dev_minute(client) == minute:
            break
    # THEN the 31st is refused with Retry-After, and another visitor is not affected
    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert client.post_form("demo-signup", {"email": unique_email()}, as_json=True).status_code == 200


def test_double_click_is_one_submission(client):
    email = unique_email("double")
    key = uuid.uuid4().hex
    first = client.post_form("demo-signup", {"email": email}, as_json=True, headers={"Idempotency-Key": key})
    again = client.post_form("demo-signup", {"email": email}, as_json=True, headers={"Idempotency-Key": key})
    nonce = uuid.uuid4().hex
    html_first = client.post_form("demo-signup", {"email": email, "_lf_nonce": nonce})
    html_again = client.post_form("demo-signup", {"email": email, "_lf_nonce": nonce})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()  # the same submission id: one submission
    assert html_first.status_code == html_again.status_code == 303
    assert client.lead_by_email(email)["submissions"] == 2


def test_cors_only_for_allowed_origins(client):
    allowed = client.post_form(
        "demo-signup", {"email": unique_email()}, as_json=True, headers={"Origin": "https://shop.example.com"}
    )
    foreign = client.post_form(
        "demo-signup", {"email": unique_email()}, as_json=True, headers={"Origin": "https://evil.example.net"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "access-control-allow-origin" not in foreign.headers
    preflight = client.http.options(
        client.url + "/forms/demo-signup",
        headers={"Origin": "http://localhost:8000", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_events_are_published_versioned_without_contact_details(client):
    email = unique_email("events")
    lead_id = client.capture("demo-signup", {"email": email, "utm_source": "ads"})
    client.tick()
    mine = [e for e in client.bus_events() if e["detail"].get("lead_id") == lead_id and e["source"] == "leadflow.forms"]
    assert sorted(e["detail-type"] for e in mine) == ["activity.recorded", "lead.captured"]
    for published in mine:
        assert published["source"] == "leadflow.forms"
        assert published["detail"]["schema_version"] == 1
        assert email not in str(published)
    captured = next(e for e in mine if e["detail-type"] == "lead.captured")
    assert captured["detail"]["new"] is True
    assert captured["detail"]["touch"]["utm_source"] == "ads"


def test_table_outage_queues_the_post_and_replay_stores_it(local_stack, client):
    # GIVEN DynamoDB refuses every transaction (throttled)
    local_stack.faults.clear()
    client.http.post(
        client.url + "/_dev/faults",
        json={
            "service": "dynamodb",
            "operation": "TransactWriteItems",
            "error": "ProvisionedThroughputExceededException",
        },
        timeout=10,
    )
    email, html_email = unique_email("outage"), unique_email("outage-html")
    try:
        # WHEN a JSON post and an HTML post arrive
        queued = client.post_form("demo-signup", {"email": email, "first_name": "Queued"}, as_json=True)
        html = client.post_form("demo-signup", {"email": html_email})
        # THEN the JSON client gets 202 with a submission id, the visitor the thank-you page
        assert queued.status_code == 202
        assert queued.json()["status"] == "queued"
        assert html.status_code == 303
        assert client.lead_by_email(email) is None
    finally:
        client.http.delete(client.url + "/_dev/faults", timeout=10)
    # WHEN the table is back and the intake queue is drained
    replay_intake(local_stack, client)
    # THEN both posts are leads, nothing is left in the queue or its DLQ
    lead = client.lead_by_email(email)
    assert lead is not None and lead["profile"]["first_name"] == "Queued"
    assert client.lead_by_email(html_email) is not None
    depths = local_stack.queue_depths()
    assert depths["IntakeQueue"]["visible"] == 0
    assert depths["IntakeDLQ"]["visible"] == 0


def test_table_and_queue_down_is_503_not_a_silent_loss(local_stack, client):
    for service, operation, error in [
        ("dynamodb", "TransactWriteItems", "InternalServerError"),
        ("sqs", "SendMessage", "AWS.SimpleQueueService.ServiceUnavailable"),
    ]:
        client.http.post(
            client.url + "/_dev/faults",
            json={"service": service, "operation": operation, "error": error, "status": 500},
            timeout=10,
        )
    try:
        response = client.post_form("demo-signup", {"email": unique_email()}, as_json=True)
    finally:
        client.http.delete(client.url + "/_dev/faults", timeout=10)
    assert response.status_code == 503
    assert response.headers["retry-after"]


def test_admin_api_requires_the_token_and_serves_openapi(client):
    assert client.http.get(client.url + "/api/v1/leads", timeout=10).status_code == 401
    assert (
        client.http.get(client.url + "/api/v1/leads", headers={"Authorization": "Bearer nope"}, timeout=10).status_code
        == 401
    )
    assert client.api("/leads", limit=5).status_code == 200
    assert client.api("/leads/does-not-exist").status_code == 404
    assert client.api("/leads", limit=0).status_code == 422
    document = client.http.get(client.url + "/api/v1/openapi.json", timeout=10).json()
    assert "/api/v1/leads/{lead_id}" in document["paths"]


def test_a_write_that_landed_but_answered_an_error_is_stored_once(local_stack, client):
    # GIVEN DynamoDB carries out the transaction and then answers an error, on every retry
    # (botocore retries with the same ClientRequestToken, which DynamoDB applies once)
    email = unique_email("ambiguous")
    client.http.post(
        client.url + "/_dev/faults",
        json={
            "service": "dynamodb",
            "operation": "TransactWriteItems",
            "error": "InternalServerError",
            "status": 500,
            "after": True,
        },
        timeout=10,
    )
    try:
        # WHEN a post arrives (no Idempotency-Key, no nonce)
        response = client.post_form("demo-signup", {"email": email, "first_name": "Once"}, as_json=True)
    finally:
        client.http.delete(client.url + "/_dev/faults", timeout=10)
    # THEN the client was told it is queued, and after the replay the post is stored exactly once
    assert response.status_code == 202
    replay_intake(local_stack, client)
    lead = client.lead_by_email(email)
    assert lead["submissions"] == 1
    detail = client.api(f"/leads/{lead['lead_id']}").json()
    # (the welcome reply's email_sent may be there too: one submission is what counts)
    assert [a["type"] for a in detail["activities"]].count("form_submitted") == 1
    assert local_stack.queue_depths()["IntakeQueue"] == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_a_retried_transaction_is_applied_once(client):
    # GIVEN the first two attempts land but answer an error; botocore retries with the same token
    email = unique_email("retried")
    client.http.post(
        client.url + "/_dev/faults",
        json={
            "service": "dynamodb",
            "operation": "TransactWriteItems",
            "error": "InternalServerError",
            "status": 500,
            "after": True,
            "count": 2,
        },
        timeout=10,
    )
    try:
        response = client.post_form("demo-signup", {"email": email}, as_json=True)
    finally:
        client.http.delete(client.url + "/_dev/faults", timeout=10)
    # THEN the third attempt succeeds, and the submission counted once
    assert response.status_code == 200
    assert client.lead_by_email(email)["submissions"] == 1
