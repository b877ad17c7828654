"""Every sample event in events/ through its handler, on the local stack (moto, real template)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import EVENTS, load_json, unique_email, unique_ip

pytestmark = pytest.mark.integration


def event(name: str) -> dict[str, Any]:
    return load_json(EVENTS / name)


def with_email(sample: dict[str, Any], email: str) -> dict[str, Any]:
    """The sample with another address (so tests do not share leads) and a fresh client IP."""
    copy = json.loads(json.dumps(sample))
    copy["requestContext"]["http"]["sourceIp"] = unique_ip()
    body = base64.b64decode(copy["body"]).decode() if copy.get("isBase64Encoded") else copy["body"]
    for old in ("jane%40example.com", "jane.doe@example.com", "jane@example.com"):
        body = body.replace(old, email)
    copy["body"] = base64.b64encode(body.encode()).decode() if copy.get("isBase64Encoded") else body
    return copy


def test_urlencoded_sample_redirects_to_thank_you_and_stores_the_lead(local_stack, client):
    # GIVEN the SAM CLI's urlencoded HTTP API event, posted to the demo form
    email = unique_email("sam")
    # WHEN the form capture handler runs on it
    response = local_stack.runner.invoke(
        "FormCaptureFunction", with_email(event("form_capture_post_urlencoded.json"), email)
    )
    # THEN the browser is sent to the thank-you page, with CORS for the allowed origin
    assert response["statusCode"] == 303
    assert response["headers"]["location"] == "/thank-you"
    lead = client.lead_by_email(email)
    assert lead is not None
    assert lead["profile"]["first_name"] == "Jane"
    assert lead["attribution"]["first_touch"]["utm_source"] == "newsletter"
    assert lead["attribution"]["first_touch"]["utm_campaign"] == "spring launch"


def test_json_sample_answers_the_same_for_a_new_and_a_known_address(local_stack, client):
    email = unique_email("json")
    sample = with_email(event("form_capture_post_json.json"), email)
    first = local_stack.runner.invoke("FormCaptureFunction", sample)
    sample["requestContext"]["http"]["sourceIp"] = unique_ip()
    second = local_stack.runner.invoke("FormCaptureFunction", sample)
    # THEN the same status and shape, never a lead id; one lead with two submissions
    assert first["statusCode"] == second["statusCode"] == 200
    assert json.loads(first["body"]).keys() == json.loads(second["body"]).keys() == {"status", "submission_id"}
    assert client.lead_by_email(email)["submissions"] == 2


def test_real_mautic_form_post_maps_bracketed_fields(local_stack, client):
    # GIVEN every field of a real Mautic form, multipart with bracketed names
    email = unique_email("mautic")
    response = local_stack.runner.invoke(
        "FormCaptureFunction", with_email(event("form_capture_post_multipart_mautic.json"), email)
    )
    # THEN the aliases map them onto the lead
    assert response["statusCode"] == 303
    lead = client.lead_by_email(email)
    assert lead["profile"]["company"] == "Sunny Shores Resort"
    assert lead["profile"]["phone"] == "+1 (555) 010-7788"
    assert lead["custom"]["full_name"] == "Jane Doe"
    assert lead["custom"]["lead_source"] == "RESORT RELEASE"
    assert lead["attribution"]["first_touch"]["utm_medium"] == "cpc"


def test_preflight_allows_only_configured_origins(local_stack):
    allowed = local_stack.runner.invoke("FormCaptureFunction", event("form_capture_options.json"))
    assert allowed["statusCode"] == 204
    assert allowed["headers"]["access-control-allow-origin"] == "https://www.example.com"
    foreign = event("form_capture_options.json")
    foreign["headers"]["origin"] = "https://evil.example.net"
    refused = local_stack.runner.invoke("FormCaptureFunction", foreign)
    assert "access-control-allow-origin" not in refused["headers"]


def test_lead_api_samples(local_stack, client):
    # GIVEN a lead
    email = unique_email("api")
    created = {"lead_id": client.capture("demo-signup", {"email": email, "first_name": "Ada"})}
    # WHEN the IAM-authorized samples ask for it
    get_event = event("lead_api_get_lead.json")
    get_event["pathParameters"]["lead_id"] = created["lead_id"]
    get_event["rawPath"] = get_event["requestContext"]["http"]["path"] = f"/api/v1/leads/{created['lead_id']}"
    found = local_stack.runner.invoke("LeadApiFunction", get_event)
    find_event = event("lead_api_find_by_email.json")
    find_event["queryStringParameters"] = {"email": email}
    by_email = local_stack.runner.invoke("LeadApiFunction", find_event)
    # THEN both answer with the lead
    assert found["statusCode"] == 200
    assert json.loads(found["body"])["profile"]["first_name"] == "Ada"
    assert [lead["lead_id"] for lead in json.loads(by_email["body"])["leads"]] == [created["lead_id"]]
    # AND a lead that does not exist is a 404
    get_event["pathParameters"]["lead_id"] = "01JD3Z8Q4W6Y9V2N5K7M0P1R3S"
    get_event["rawPath"] = get_event["requestContext"]["http"]["path"] = "/api/v1/leads/01JD3Z8Q4W6Y9V2N5K7M0P1R3S"
    assert local_stack.runner.invoke("LeadApiFunction", get_event)["statusCode"] == 404


def test_lead_api_refuses_unauthenticated_events(local_stack):
    # GIVEN the sample without its authorizer context (as if the gateway were misconfigured)
    unsigned = event("lead_api_find_by_email.json")
    unsigned["requestContext"].pop("authorizer")
    assert local_stack.runner.invoke("LeadApiFunction", unsigned)["statusCode"] == 401


def test_openapi_sample_serves_the_document(local_stack):
    response = local_stack.runner.invoke("LeadApiFunction", event("lead_api_openapi.json"))
    document = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert document["openapi"].startswith("3.")
    assert "/api/v1/leads/{lead_id}" in document["paths"]
    assert "/api/v1/leads" in document["paths"]


def test_console_and_explorer_samples(local_stack):
    # The console's home without a session is its sign-in page; the explorer is a page of its own
    home = local_stack.runner.invoke("ConsoleFunction", event("console_home.json"))
    assert home["statusCode"] == 401 and 'action="/console/sign-in"' in home["body"]
    docs = local_stack.runner.invoke("LeadApiFunction", event("lead_api_docs.json"))
    assert docs["statusCode"] == 200 and "swagger-ui-bundle.js" in docs["body"]
    # The hosted sign-in's redirect back, in a browser that did not start that sign-in: refused, not signed in
    refused = local_stack.runner.invoke("ConsoleFunction", event("console_oauth_callback.json"))
    assert refused["statusCode"] == 400 and "started elsewhere" in refused["body"]
    assert not any(c.startswith("lf_console=") for c in refused.get("cookies", []))


def test_unknown_url_sample_is_a_page_for_people_and_json_for_programs(local_stack):
    # GIVEN a browser's request no route takes (the $default route's sample)
    sample = event("not_found_page.json")
    page = local_stack.runner.invoke("NotFoundFunction", sample)
    # THEN a styled page saying where to go
    assert page["statusCode"] == 404 and page["headers"]["Content-Type"].startswith("text/html")
    assert "Nothing here" in page["body"] and "/pricing" in page["body"] and 'href="/console/"' in page["body"]
    # AND JSON for a program, and for an /api/ path asked for JSON, even by a browser
    sample["headers"]["accept"] = "application/json"
    assert local_stack.runner.invoke("NotFoundFunction", sample)["body"] == '{"message": "Not Found"}'
    sample["rawPath"], sample["headers"]["accept"] = "/api/v2/leads", "text/html, application/json"
    assert local_stack.runner.invoke("NotFoundFunction", sample)["headers"]["Content-Type"] == "application/json"


def test_people_api_sample_goes_by_the_persons_role(local_stack):
    # GIVEN the JWT-authorizer sample: a marketer asks for a lead that does not exist
    sample = event("lead_api_people_get_lead.json")
    assert local_stack.runner.invoke("LeadApiFunction", sample)["statusCode"] == 404  # reached the route
    # WHEN a sales viewer tries a change THEN 403 before the route runs
    sample["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = "[sales-viewer]"
    sample["requestContext"]["http"]["method"] = "POST"
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = sample["rawPath"] + "/handoff"
    sample["headers"]["content-type"] = "application/json"
    sample["body"] = "{}"
    assert local_stack.runner.invoke("LeadApiFunction", sample)["statusCode"] == 403
    # AND a person in no console group may not even read
    sample["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = "[]"
    sample["requestContext"]["http"]["method"] = "GET"
    assert local_stack.runner.invoke("LeadApiFunction", sample)["statusCode"] == 403


def test_intake_sample_is_replayed_once(local_stack, client):
    sample = event("intake_replay_sqs.json")
    first = local_stack.runner.invoke("IntakeReplayFunction", sample)
    second = local_stack.runner.invoke("IntakeReplayFunction", sample)
    assert first == {"batchItemFailures": []}
    assert second == {"batchItemFailures": []}
    lead = client.lead_by_email("queued.jane@example.com")
    assert lead["submissions"] == 1
    assert lead["created_at"] == "2026-11-20T09:15:02.120000+00:00"


def test_outbox_sample_publishes_both_events(local_stack, client):
    result = local_stack.runner.invoke("OutboxRelayFunction", event("outbox_relay_stream.json"))
    assert result == {"batchItemFailures": []}
    published = {e["detail"].get("event_id") for e in client.bus_events()}  # other tests put raw events too
    assert {"01JD3Z8Q4WEVT00000000000000", "01JD3Z8Q4WEVT00000000000001"} <= published
    # AND the click's activity item is published as its own activity.recorded (id: the activity's)
    click = next(e for e in client.bus_events() if e["detail"].get("event_id") == "01JD3Z8Q4WACT00000000000001")
    assert (click["source"], click["detail-type"], click["detail"]["type"]) == (
        "leadflow.tracking",
        "activity.recorded",
        "email_clicked",
    )
    assert click["detail"]["link_tag"] == "pricing" and "user_agent" not in click["detail"]


def test_nurture_samples_run_through_their_handlers(local_stack):
    # GIVEN the nurture samples (their lead does not exist in this stack)
    # WHEN each runs through its handler
    due = local_stack.runner.invoke("NurtureDueFunction", event("nurture_due_plan.json"))
    page = local_stack.runner.invoke("NurtureStepFunction", event("nurture_step_shard.json"))
    now = local_stack.runner.invoke("NurtureStepFunction", event("nurture_step_sqs.json"))
    lead_event = local_stack.runner.invoke("NurtureEventsFunction", event("nurture_events_sqs.json"))
    # THEN the tick plan lists shards, a shard page says whether more is due, queue batches succeed
    assert due["count"] == len(due["shards"])
    assert all({"shard", "now", "limit", "round"} <= set(item) for item in due["shards"])
    assert page["shard"] == 3 and page["more"] is False and page["round"] == 1
    assert now == {"batchItemFailures": []}
    assert lead_event == {"batchItemFailures": []}


def test_preferences_samples_refuse_an_unsigned_token(local_stack):
    # GIVEN the preference page samples, whose TOKEN is not a signed token
    page = local_stack.runner.invoke("PreferencesFunction", event("preferences_get.json"))
    one_click = local_stack.runner.invoke("PreferencesFunction", event("preferences_one_click.json"))
    # THEN both answer 404 and change nothing
    assert page["statusCode"] == 404
    assert one_click["statusCode"] == 404


def signed(client, **body: Any) -> str:
    response = client.http.post(client.url + "/_dev/tokens", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def with_token(sample: dict[str, Any], token: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(sample).replace("TOKEN", token))
    copy["requestContext"]["http"]["sourceIp"] = unique_ip()
    return copy


def lead_activities(client, lead_id: str, kind: str) -> list[dict[str, Any]]:
    return [a for a in client.api(f"/leads/{lead_id}").json()["activities"] if a["type"] == kind]


def test_tracking_samples(local_stack, client):
    # GIVEN a lead, and the tracking samples with real signed tokens in place of TOKEN
    lead_id = client.capture("demo-signup", {"email": unique_email("events")})
    pixel = signed(client, kind="o", lead_id=lead_id, message_id="welcome-1")
    link = signed(client, kind="c", lead_id=lead_id, message_id="welcome-1", url="https://www.example.com/pricing")
    # WHEN each runs through the tracking handler
    opened = local_stack.runner.invoke("TrackFunction", with_token(event("track_open_pixel.json"), pixel))
    clicked = local_stack.runner.invoke("TrackFunction", with_token(event("track_click.json"), link))
    unsigned = local_stack.runner.invoke("TrackFunction", event("track_click.json"))
    site = local_stack.runner.invoke("TrackFunction", event("track_site_event.json"))
    snippet = local_stack.runner.invoke("TrackFunction", event("track_snippet.json"))
    # THEN the pixel is a GIF, the click redirects where it was signed to, and both are recorded
    assert opened["statusCode"] == 200 and opened["headers"]["content-type"] == "image/gif"
    assert clicked["statusCode"] == 302 and clicked["headers"]["location"] == "https://www.example.com/pricing"
    assert unsigned["statusCode"] == 404
    assert len(lead_activities(client, lead_id, "email_opened")) == 1
    assert len(lead_activities(client, lead_id, "email_clicked")) == 1
    # AND the snippet's page view is taken (from an allowed origin), and the snippet is served
    assert site["statusCode"] == 204
    assert site["headers"]["access-control-allow-origin"] == "https://www.example.com"
    assert snippet["statusCode"] == 200 and "javascript" in snippet["headers"]["content-type"]
    # AND the render time a form carries is signed, and a click sets the signed visitor cookie
    rendered = local_stack.runner.invoke("TrackFunction", event("track_render_time.json"))
    assert rendered["statusCode"] == 200 and "." in json.loads(rendered["body"])["ts"]
    assert clicked["cookies"][0].startswith("lf_id=")


def test_ses_feedback_sample_open_is_not_counted_a_second_time(local_stack, client):
    # GIVEN a lead, and the SNS-to-SQS sample carrying an SES Open event for its address
    email = unique_email("sesevent")
    lead_id = client.capture("demo-signup", {"email": email})
    sample = json.loads(json.dumps(event("ses_events_sqs.json")).replace("recipient@example.com", email))
    # WHEN the SES events handler runs on it, twice (SQS delivers at least once)
    first = local_stack.runner.invoke("SesEventsFunction", sample)
    second = local_stack.runner.invoke("SesEventsFunction", sample)
    # THEN the batch succeeds, and the open records nothing: leadflow's own pixel already counts
    # opens, so an SES Open event is the same open seen a second time (issue 13, defect 4)
    assert first == second == {"batchItemFailures": []}
    assert lead_activities(client, lead_id, "email_opened") == []


def test_ses_feedback_sample_delivery_changes_nothing_and_records_no_activity(local_stack, client):
    from tests.integration.test_ses_feedback import mail_log

    # GIVEN a sign-up whose welcome email went out, and the Delivery sample retargeted at it
    email = unique_email("sesdelivery")
    lead_id = client.capture("demo-signup", {"email": email})
    client.tick()
    send = next(s for s in mail_log(local_stack, lead_id)["sends"] if s.get("s") == "welcome")
    text = json.dumps(event("ses_events_delivery_sqs.json")).replace("recipient@example.com", email)
    sample = json.loads(text.replace("01JD3Z8Q4W6Y9V2N5K7M0P1R3S", lead_id).replace("welcome-1", send["m"]))
    # WHEN the SES events handler runs on it, twice (SQS delivers at least once)
    first = local_stack.runner.invoke("SesEventsFunction", sample)
    second = local_stack.runner.invoke("SesEventsFunction", sample)
    # THEN the batch succeeds, and nothing is written: no mark in the mail log, no activity (the
    # template does not publish Delivery events; a report's delivered is its sent less its bounces)
    assert first == second == {"batchItemFailures": []}
    assert "d" not in next(s for s in mail_log(local_stack, lead_id)["sends"] if s["m"] == send["m"])
    assert lead_activities(client, lead_id, "email_delivered") == []


def test_scoring_sample_scores_the_click_once(local_stack, client):
    # GIVEN a lead, and the scoring queue sample (a tracked pricing click) for it
    lead_id = client.capture("demo-signup", {"email": unique_email("scoreevent")})
    client.tick()
    before = client.api(f"/leads/{lead_id}/score").json()["models"]["smb"]["score"]
    sample = json.loads(
        json.dumps(event("scoring_sqs.json"))
        .replace("01JD3Z8Q4W6Y9V2N5K7M0P1R3S", lead_id)
        # the click happened now on the stack's clock (earlier tests move it on: an old click decays)
        .replace("2026-11-20T10:02:11.500000+00:00", local_stack.clock.now().isoformat())
    )
    # WHEN the scoring handler runs on it, twice (a redelivery)
    first = local_stack.runner.invoke("ScoringFunction", sample)
    second = local_stack.runner.invoke("ScoringFunction", sample)
    # THEN the click scored once: email_clicked (+5) and pricing_link_clicked (+10) in smb
    assert first == second == {"batchItemFailures": []}
    score = client.api(f"/leads/{lead_id}/score").json()
    reasons = {r["rule_id"]: r for r in score["models"]["smb"]["reasons"]}
    assert reasons["pricing_link_clicked"]["activities"] == 1
    assert reasons["email_clicked"]["activities"] == 1
    assert score["models"]["smb"]["score"] > before


def test_decay_sweep_and_score_api_samples(local_stack, client):
    # GIVEN a lead at a company domain
    lead_id = client.capture("demo-signup", {"email": unique_email("acct"), "title": "CFO"})
    domain = client.api(f"/leads/{lead_id}").json()["profile"]["email"].rsplit("@", 1)[1]
    client.tick()
    # WHEN the scheduled sweep and the score and account samples run through their handlers
    swept = local_stack.runner.invoke("DecaySweepFunction", event("decay_sweep_schedule.json"))
    score_event = json.loads(json.dumps(event("lead_api_score.json")).replace("01JD3Z8Q4W6Y9V2N5K7M0P1R3S", lead_id))
    account_event = json.loads(json.dumps(event("lead_api_account.json")).replace("example.com", domain))
    scored = local_stack.runner.invoke("LeadApiFunction", score_event)
    account = local_stack.runner.invoke("LeadApiFunction", account_event)
    # THEN the sweep reports what it checked, and the API answers with the score and the account
    assert set(swept) == {"checked", "moved", "erasures_resumed", "erased"} and swept["checked"] >= 0
    assert scored["statusCode"] == 200
    assert {"models", "grade", "stage"} <= set(json.loads(scored["body"]))
    assert account["statusCode"] == 200
    rolled_up = json.loads(account["body"])
    assert rolled_up["account_domain"] == domain
    assert rolled_up["leads"] >= 1 and 0 <= rolled_up["coverage"] <= 1
