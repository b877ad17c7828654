"""Builds the sample events in this folder from the real ones in ../shared/external.

Run from the repository root: ``python events/make_events.py``. Each output keeps the
shape of its source (see README.md for provenance) and changes only what a route needs:
route key, path, path parameters, headers and body.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = ROOT.parent / "shared" / "external"
OUT = ROOT / "events"


def read(relative: str) -> dict[str, Any]:
    return json.loads((EXTERNAL / relative).read_text(encoding="utf-8"))


def write(name: str, event: dict[str, Any]) -> None:
    (OUT / name).write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def http_event(
    source: dict[str, Any], method: str, route: str, path: str, params: dict[str, str] | None
) -> dict[str, Any]:
    event = copy.deepcopy(source)
    event["routeKey"] = route
    event["rawPath"] = path
    event["requestContext"]["routeKey"] = route
    event["requestContext"]["http"].update(
        method=method, path=path, sourceIp="203.0.113.10", userAgent="Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"
    )
    event.pop("stageVariables", None)
    if params:
        event["pathParameters"] = params
    else:
        event.pop("pathParameters", None)
    return event


def queue_record(source: dict[str, Any], body: str, queue: str) -> dict[str, Any]:
    """An SQS record of ``source`` (a sample record) with ``body``, as ``queue`` of the stack delivers it."""
    record = copy.deepcopy(source)
    record["body"] = body
    record["eventSourceARN"] = f"arn:aws:sqs:us-east-1:123456789012:leadflow-{queue}"
    record["awsRegion"] = "us-east-1"
    return record


def main() -> None:
    # --- POST /forms/{form_id}: the SAM CLI's own HTTP API sample, urlencoded body base64-encoded.
    form = http_event(
        read("apigw/sam_HttpApi_v2_POST_form-urlencoded_base64.json"),
        "POST",
        "POST /forms/{form_id}",
        "/forms/demo-signup",
        {"form_id": "demo-signup"},
    )
    form["rawQueryString"] = ""
    form.pop("queryStringParameters", None)
    form["requestContext"].pop("authorizer", None)
    form["requestContext"].pop("authentication", None)
    form["headers"] = {
        "content-type": "application/x-www-form-urlencoded",
        "origin": "https://www.example.com",
        "referer": "https://www.example.com/pricing?utm_source=newsletter&utm_medium=email",
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
        "accept": "text/html,application/xhtml+xml",
    }
    form.pop("cookies", None)
    write("form_capture_post_urlencoded.json", form)

    as_json = copy.deepcopy(form)
    as_json["headers"].update({"content-type": "application/json", "accept": "application/json"})
    as_json["isBase64Encoded"] = False
    as_json["body"] = json.dumps(
        {
            "email": "jane@example.com",
            "first_name": "Jane",
            "company": "Example Inc",
            "title": "Head of Marketing",
            "company_size": "51-200",
            "consent": True,
            "utm_source": "linkedin",
            "utm_campaign": "spring launch",
            "ref": "ana-k",
        }
    )
    write("form_capture_post_json.json", as_json)

    # The real Mautic form's fields, posted as Mautic posts them: multipart with bracketed names.
    fields = json.loads((EXTERNAL / "forms/mautic_form_fields.json").read_text(encoding="utf-8"))["fields"]
    values = {
        "mauticform[full_name]": "Jane Doe",
        "mauticform[email_address]": "jane.doe@example.com",
        "mauticform[phonenumber]": "+1 (555) 010-7788",
        "mauticform[resortname]": "Sunny Shores Resort",
        "mauticform[comments]": "We would like a demo.",
        "mauticform[utm_source]": "google",
        "mauticform[utm_medium]": "cpc",
        "mauticform[utm_campaign]": "resorts-q4",
        "mauticform[crmleadsource]": "RESORT RELEASE",
        "mauticform[formId]": "12",
    }
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    parts = []
    for field in fields:
        name = field["name"]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{values.get(name, "")}\r\n')
    body = "".join(parts) + f"--{boundary}--\r\n"
    mautic = http_event(
        form, "POST", "POST /forms/{form_id}", "/forms/mautic-resort-enquiry", {"form_id": "mautic-resort-enquiry"}
    )
    mautic["headers"]["content-type"] = f"multipart/form-data; boundary={boundary}"
    mautic["headers"]["origin"] = "https://www.example.com"
    mautic["body"] = base64.b64encode(body.encode()).decode()
    mautic["isBase64Encoded"] = True
    write("form_capture_post_multipart_mautic.json", mautic)

    preflight = http_event(
        form, "OPTIONS", "OPTIONS /forms/{form_id}", "/forms/demo-signup", {"form_id": "demo-signup"}
    )
    preflight["headers"] = {
        "origin": "https://www.example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    preflight.pop("body", None)
    preflight["isBase64Encoded"] = False
    write("form_capture_options.json", preflight)

    # --- Admin API: Powertools' HTTP API event with an IAM authorizer.
    iam = read("apigw/powertools_apiGatewayProxyV2IamEvent.json")
    get_lead = http_event(
        iam,
        "GET",
        "GET /api/v1/leads/{lead_id}",
        "/api/v1/leads/01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
        {"lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S"},
    )
    get_lead.update(rawQueryString="", body=None, isBase64Encoded=False, headers={"accept": "application/json"})
    get_lead.pop("queryStringParameters", None)
    get_lead.pop("cookies", None)
    write("lead_api_get_lead.json", get_lead)

    find = http_event(iam, "GET", "GET /api/v1/leads", "/api/v1/leads", None)
    find.update(
        rawQueryString="email=jane%40example.com",
        queryStringParameters={"email": "jane@example.com"},
        body=None,
        isBase64Encoded=False,
        headers={"accept": "application/json"},
    )
    find.pop("cookies", None)
    write("lead_api_find_by_email.json", find)

    openapi = http_event(
        read("apigw/aws-lambda-go_apigw-v2-request-no-authorizer.json"),
        "GET",
        "GET /api/v1/openapi.json",
        "/api/v1/openapi.json",
        None,
    )
    openapi.update(rawQueryString="", body=None, isBase64Encoded=False)
    openapi.pop("queryStringParameters", None)
    write("lead_api_openapi.json", openapi)

    docs = copy.deepcopy(openapi)
    docs.update(routeKey="GET /api/v1/docs", rawPath="/api/v1/docs")
    docs["requestContext"].update(routeKey="GET /api/v1/docs")
    docs["requestContext"]["http"]["path"] = "/api/v1/docs"
    write("lead_api_docs.json", docs)

    # --- /console/api/v1/{proxy+}: the admin API for people, with the JWT authorizer's context
    # (aws-lambda-go's sample; claims as API Gateway passes them: strings, groups as "[a b]").
    people = http_event(
        read("apigw/aws-lambda-go_apigw-v2-request-jwt-authorizer.json"),
        "GET",
        "ANY /console/api/v1/{proxy+}",
        "/console/api/v1/leads/01JD3Z9A1B2C3D4E5F6G7H8J9K",
        {"proxy": "leads/01JD3Z9A1B2C3D4E5F6G7H8J9K"},
    )
    people.update(rawQueryString="", body=None, isBase64Encoded=False)
    people.pop("queryStringParameters", None)
    people.pop("cookies", None)
    people["requestContext"]["authorizer"] = {
        "jwt": {
            "claims": {
                "sub": "8f1c3a52-6f9e-4d1a-9b55-2f4b1e7c9d10",
                "email": "marketer@example.com",
                "cognito:groups": "[marketer]",
                "token_use": "id",
                "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI",
                "aud": "4l5h1d8c7n2q3r9s0t6u1v2w3x",
            },
            "scopes": None,
        }
    }
    write("lead_api_people_get_lead.json", people)

    # --- GET /console/ and POST /console/sign-in: the console function (no authorizer: it checks
    # the cookie's ID token itself).
    page = http_event(
        read("apigw/aws-lambda-go_apigw-v2-request-no-authorizer.json"), "GET", "GET /console", "/console/", None
    )
    page.update(rawQueryString="", body=None, isBase64Encoded=False)
    page.pop("queryStringParameters", None)
    page.pop("cookies", None)
    page["headers"]["accept"] = "text/html"
    write("console_home.json", page)
    sign_in = http_event(
        read("apigw/sam_HttpApi_v2_POST_form-urlencoded_base64.json"),
        "POST",
        "ANY /console/{proxy+}",
        "/console/sign-in",
        {"proxy": "sign-in"},
    )
    sign_in.update(
        body=base64.b64encode(b"email=admin%40example.com&password=Correct-Horse-9").decode(), isBase64Encoded=True
    )
    sign_in.pop("cookies", None)
    write("console_sign_in.json", sign_in)

    # --- IntakeQueue -> IntakeReplayFunction: Powertools' SQS event with a queued submission.
    sqs = read("aws-events/powertools_sqsEvent.json")
    record = copy.deepcopy(sqs["Records"][0])
    record["body"] = json.dumps(
        {
            "kind": "form_submission",
            "version": 1,
            "submission_id": "01JD3Z9A1B2C3D4E5F6G7H8J9K",
            "form_id": "demo-signup",
            "received_at": "2026-11-20T09:15:02.120000+00:00",
            "fields": {"email": ["queued.jane@example.com"], "first_name": ["Jane"], "utm_source": ["newsletter"]},
            "client": {"ip": "203.0.113.10", "user_agent": "Mozilla/5.0", "referer": "https://www.example.com/"},
            "idempotency_key": "intake-01JD3Z9A1B2C3D4E5F6G7H8J9K",
        }
    )
    record["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:leadflow-IntakeQueue"
    record["awsRegion"] = "us-east-1"
    write("intake_replay_sqs.json", {"Records": [record]})

    # --- LeadsTable stream -> OutboxRelayFunction: Powertools' DynamoDB stream event, outbox items.
    stream = read("aws-events/powertools_dynamoStreamEvent.json")
    records = []
    for i, (detail_type, detail) in enumerate(
        [
            (
                "lead.captured",
                {
                    "lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
                    "new": True,
                    "form_id": "demo-signup",
                    "touch": {"channel": "form", "form_id": "demo-signup", "utm_source": "newsletter"},
                    "account_domain": "example.com",
                },
            ),
            (
                "activity.recorded",
                {
                    "lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
                    "activity_id": "01JD3Z8Q4WACT00000000000000",
                    "type": "form_submitted",
                    "form_id": "demo-signup",
                    "touch": {"channel": "form"},
                },
            ),
        ]
    ):
        event_id = f"01JD3Z8Q4WEVT0000000000000{i}"
        envelope = {
            "schema_version": 1,
            "event_id": event_id,
            "occurred_at": "2026-11-20T09:15:02.120000+00:00",
            **detail,
        }
        record = copy.deepcopy(stream["Records"][0])
        record["eventID"] = str(i + 1)
        record["eventSourceARN"] = (
            "arn:aws:dynamodb:us-east-1:123456789012:table/leadflow-LeadsTable/stream/2026-11-20T00:00:00.000"
        )
        record["awsRegion"] = "us-east-1"
        record["dynamodb"]["Keys"] = {"PK": {"S": f"OUTBOX#{event_id}"}, "SK": {"S": "EVENT"}}
        record["dynamodb"]["NewImage"] = {
            "PK": {"S": f"OUTBOX#{event_id}"},
            "SK": {"S": "EVENT"},
            "source": {"S": "leadflow.forms"},
            "detail_type": {"S": detail_type},
            "detail": {"S": json.dumps(envelope, separators=(",", ":"))},
            "expires_at": {"N": "1764234902"},
        }
        record["dynamodb"]["SequenceNumber"] = str(111 + i)
        records.append(record)
    # A tracked click: the activity item is its own event (event_source; issue 17), no outbox item.
    record = copy.deepcopy(records[-1])
    record["eventID"] = "3"
    activity = {
        "PK": {"S": "LEAD#01JD3Z8Q4W6Y9V2N5K7M0P1R3S"},
        "SK": {"S": "ACT#2026-11-20T10:02:11.500000+00:00#01JD3Z8Q4WACT00000000000001"},
    }
    record["dynamodb"]["Keys"] = copy.deepcopy(activity)
    activity.update(
        {
            "activity_id": {"S": "01JD3Z8Q4WACT00000000000001"},
            "lead_id": {"S": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S"},
            "type": {"S": "email_clicked"},
            "at": {"S": "2026-11-20T10:02:11.500000+00:00"},
            "message_id": {"S": "welcome-1"},
            "url": {"S": "https://www.example.com/pricing"},
            "link_id": {"S": "pricing"},
            "link_tag": {"S": "pricing"},
            "user_agent": {"S": "Mozilla/5.0"},
            "event_source": {"S": "leadflow.tracking"},
        }
    )
    record["dynamodb"]["NewImage"] = activity
    record["dynamodb"]["SequenceNumber"] = "113"
    records.append(record)
    write("outbox_relay_stream.json", {"Records": records})

    # --- Nurture. NurtureNowQueue -> NurtureStepFunction: the SQS sample with due-now pairs.
    due_now = copy.deepcopy(sqs["Records"][0])
    due_now["body"] = json.dumps({"pairs": [["01JD3Z8Q4W6Y9V2N5K7M0P1R3S", "welcome"]]})
    due_now["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:leadflow-NurtureNowQueue"
    due_now["awsRegion"] = "us-east-1"
    write("nurture_step_sqs.json", {"Records": [due_now]})
    # The tick's Distributed Map item (what PlanShards answers per shard).
    write(
        "nurture_step_shard.json",
        {
            "shard": 3,
            "now": "2026-11-23T09:00:00+00:00",
            "limit": 200,
            "round": 0,
            "tick": "arn:aws:states:us-east-1:123456789012:execution:leadflow-nurture-tick:tick-1",
        },
    )
    # The tick's first state gets the execution id (the state machine's own Payload).
    write(
        "nurture_due_plan.json",
        {"execution": "arn:aws:states:us-east-1:123456789012:execution:leadflow-nurture-tick:tick-1"},
    )
    write("nurture_due_broadcast.json", {"broadcast": "push-discount", "run": "01JD3Z8Q4WBROADCAST0000001"})
    # NurtureEventsQueue -> NurtureEventsFunction: the SQS sample carrying Powertools' EventBridge
    # event, as the bus rule delivers it, with a lead.captured detail.
    bridge = read("aws-events/powertools_eventBridgeEvent.json")
    bridge.update(source="leadflow.forms", **{"detail-type": "lead.captured"})
    bridge["detail"] = {
        "schema_version": 1,
        "event_id": "01JD3Z8Q4WEVT00000000000000",
        "occurred_at": "2026-11-20T09:15:02.120000+00:00",
        "lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
        "new": True,
        "form_id": "demo-signup",
        "touch": {"channel": "form", "form_id": "demo-signup"},
        "consent": {"purpose": "marketing_email", "granted": True},
    }
    lead_event = copy.deepcopy(sqs["Records"][0])
    lead_event["body"] = json.dumps(bridge)
    lead_event["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:leadflow-NurtureEventsQueue"
    lead_event["awsRegion"] = "us-east-1"
    # and an open of a push email (the pixel's activity): a held lead's next step runs at once.
    opened = copy.deepcopy(bridge)
    opened.update(source="leadflow.tracking", **{"detail-type": "activity.recorded"})
    opened["detail"] = {
        "schema_version": 1,
        "event_id": "01JD3Z8Q4WEVT00000000000010",
        "occurred_at": "2026-11-21T10:02:11.500000+00:00",
        "lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
        "activity_id": "01JD3Z8Q4WACT0000000000010",
        "type": "email_opened",
        "at": "2026-11-21T10:02:11.500000+00:00",
        "campaign": "push-discount",
        "message_id": "m-4b1d3c0f2a9e7d65",
    }
    open_event = copy.deepcopy(lead_event)
    open_event["messageId"] = "2e1424d4-f796-459a-8184-9c92662be6da"
    open_event["body"] = json.dumps(opened)
    write("nurture_events_sqs.json", {"Records": [lead_event, open_event]})
    # --- Sales hand-off. HandoffQueue -> CrmHandoffFunction: the SQS sample carrying Powertools'
    # EventBridge event as the HandoffRule delivers it (lead.stage_changed to mql from scoring),
    # and a delivery message (one per hand-off and destination).
    staged = read("aws-events/powertools_eventBridgeEvent.json")
    staged.update(source="leadflow.scoring", **{"detail-type": "lead.stage_changed"})
    staged["detail"] = {
        "schema_version": 1,
        "event_id": "01JD3Z8Q4WEVT00000000000009",
        "occurred_at": "2026-11-20T09:15:02.120000+00:00",
        "lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
        "from": "lead",
        "to": "mql",
        "scores": {"smb": 52.0},
        "grade": "B",
    }
    stage_record = copy.deepcopy(sqs["Records"][0])
    stage_record["body"] = json.dumps(staged)
    stage_record["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:leadflow-HandoffQueue"
    stage_record["awsRegion"] = "us-east-1"
    write("crm_handoff_stage_changed_sqs.json", {"Records": [stage_record]})
    delivery = copy.deepcopy(stage_record)
    delivery["body"] = json.dumps(
        {
            "kind": "deliver",
            "lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
            "handoff_id": "01JD3Z8Q4WHND00000000000000",
            "destination": "crm-webhook",
            "webhook_id": "msg_01JD3Z8Q4WHND00000000000000_crm-webhook",
        }
    )
    write("crm_handoff_delivery_sqs.json", {"Records": [delivery]})
    # A GDPR erasure's notice to a webhook destination (queued by DELETE /api/v1/leads/{lead_id}).
    notice = copy.deepcopy(stage_record)
    notice["body"] = json.dumps(
        {
            "kind": "erased",
            "destination": "crm-webhook",
            "erasure_id": "er_01JD3Z8Q4WERS00000000000000",
            "payload": {
                "type": "lead.erased",
                "schema_version": 1,
                "erasure_id": "er_01JD3Z8Q4WERS00000000000000",
                "lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
                "handoff_ids": ["01JD3Z8Q4WHND00000000000000"],
                "crm_records": [],
                "erased_at": "2026-11-20T09:15:02.120000+00:00",
            },
        }
    )
    write("crm_handoff_erased_sqs.json", {"Records": [notice]})
    # HandoffSlaFunction: the schedule's Input, as EventBridge Scheduler passes it.
    write("handoff_sla_schedule.json", {})
    # POST /api/v1/leads/{lead_id}/handoff: the IAM-authorized sample.
    handoff = http_event(
        iam,
        "POST",
        "POST /api/v1/leads/{lead_id}/handoff",
        "/api/v1/leads/01JD3Z8Q4W6Y9V2N5K7M0P1R3S/handoff",
        {"lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S"},
    )
    handoff.update(
        body=json.dumps({"reason": "asked for a call"}),
        isBase64Encoded=False,
        headers={"content-type": "application/json", "accept": "application/json"},
    )
    handoff.pop("cookies", None)
    write("lead_api_handoff.json", handoff)
    # --- GET|POST /u/{token}: the SAM HTTP API sample (tokens are placeholders: a real one is signed).
    page = http_event(form, "GET", "GET /u/{token}", "/u/TOKEN", {"token": "TOKEN"})
    page.update(body=None, isBase64Encoded=False, headers={"accept": "text/html"})
    write("preferences_get.json", page)
    one_click = http_event(form, "POST", "POST /u/{token}", "/u/TOKEN", {"token": "TOKEN"})
    one_click.update(
        body="List-Unsubscribe=One-Click",
        isBase64Encoded=False,
        headers={"content-type": "application/x-www-form-urlencoded", "user-agent": "Mail-Provider-Unsubscribe/1.0"},
    )
    write("preferences_one_click.json", one_click)
    # --- Tracking (TrackFunction): the SAM HTTP API sample on each /t/ route. TOKEN stands for
    # a signed token (tests sign real ones); the site event is what the snippet's sendBeacon posts.
    for kind, name in (("o", "track_open_pixel.json"), ("c", "track_click.json")):
        hit = http_event(form, "GET", f"GET /t/{kind}/{{token}}", f"/t/{kind}/TOKEN", {"token": "TOKEN"})
        hit.update(
            body=None,
            isBase64Encoded=False,
            headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0", "accept": "*/*"},
        )
        write(name, hit)
    site_event = http_event(form, "POST", "POST /t/e", "/t/e", None)
    site_event.update(
        isBase64Encoded=False,
        headers={
            "content-type": "text/plain;charset=UTF-8",
            "origin": "https://www.example.com",
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
        },
        body=json.dumps(
            {
                "visitor_id": "lfv-3f9a1c2e7b4d4e0f",
                "type": "page_view",
                "url": "https://www.example.com/pricing",
                "title": "Pricing",
                "referrer": "https://www.google.com/",
                "seconds": 42,
            }
        ),
    )
    write("track_site_event.json", site_event)
    snippet = http_event(form, "GET", "GET /t/lf.js", "/t/lf.js", None)
    snippet.update(body=None, isBase64Encoded=False, headers={"accept": "*/*"})
    write("track_snippet.json", snippet)
    render_time = http_event(form, "GET", "GET /t/ts", "/t/ts", None)
    render_time.update(body=None, isBase64Encoded=False, headers={"accept": "application/json"})
    write("track_render_time.json", render_time)

    # --- default event bus -> SesEventsRule -> SesEventsQueue -> SesEventsFunction: Powertools' SQS
    # event carrying Powertools' EventBridge event, as SES puts it on the bus (source aws.ses, the
    # detail-type of the event type), its detail the AWS docs' SES event-publishing Open sample.
    def ses_on_the_bus(detail_type: str, record: dict[str, Any]) -> str:
        bridged = read("aws-events/powertools_eventBridgeEvent.json")
        bridged.update(source="aws.ses", resources=[], **{"detail-type": detail_type})
        bridged.pop("replay-name", None)
        bridged["detail"] = record
        return json.dumps(bridged)

    opened = ses_on_the_bus("Email Opened", read("ses/awsdocs_eventpublishing_Open.json"))
    write("ses_events_sqs.json", {"Records": [queue_record(sqs["Records"][0], opened, "SesEventsQueue")]})
    # The AWS docs' Delivery sample of an email leadflow sent, the same way: the tags and header
    # leadflow's nurture step puts on every email (adapters.ses, services.nurture.stepping). The
    # configuration set does not publish Delivery; one that arrives changes nothing.
    delivery = read("ses/awsdocs_eventpublishing_Delivery.json")
    delivery["mail"]["tags"].update(
        {"lead": ["01JD3Z8Q4W6Y9V2N5K7M0P1R3S"], "sequence": ["welcome"], "step": ["welcome"]}
    )
    delivery["mail"]["headers"].append({"name": "X-Leadflow-Message", "value": "welcome-1"})
    delivered = ses_on_the_bus("Email Delivered", delivery)
    write("ses_events_delivery_sqs.json", {"Records": [queue_record(sqs["Records"][0], delivered, "SesEventsQueue")]})

    # --- The bus rule -> ScoringQueue -> ScoringFunction: the SQS sample carrying Powertools'
    # EventBridge event with an activity.recorded detail (a tracked click).
    clicked = read("aws-events/powertools_eventBridgeEvent.json")
    clicked.update(source="leadflow.tracking", **{"detail-type": "activity.recorded"})
    clicked["detail"] = {
        "schema_version": 1,
        "event_id": "01JD3Z8Q4WEVT00000000000002",
        "occurred_at": "2026-11-20T10:02:11.500000+00:00",
        "lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
        "activity_id": "01JD3Z8Q4WACT00000000000001",
        "type": "email_clicked",
        "at": "2026-11-20T10:02:11.500000+00:00",
        "message_id": "welcome-1",
        "link_tag": "pricing",
        "url": "https://www.example.com/pricing",
    }
    write("scoring_sqs.json", {"Records": [queue_record(sqs["Records"][0], json.dumps(clicked), "ScoringQueue")]})

    # --- DecaySweepFunction: EventBridge Scheduler delivers the schedule's Input as the event
    # (template.yaml, DecaySweepFunction Events.Daily.Input).
    write("decay_sweep_schedule.json", {"sweep": "mql"})
    write("dead_letter_redrive_schedule.json", {})  # the schedule sends no input

    # --- Admin API: a lead's score, and a key account, with the IAM authorizer context.
    for name, route, path, params in (
        (
            "lead_api_score.json",
            "GET /api/v1/leads/{lead_id}/score",
            "/api/v1/leads/01JD3Z8Q4W6Y9V2N5K7M0P1R3S/score",
            {"lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S"},
        ),
        (
            "lead_api_account.json",
            "GET /api/v1/accounts/{domain}",
            "/api/v1/accounts/example.com",
            {"domain": "example.com"},
        ),
    ):
        request = http_event(iam, "GET", route, path, params)
        request.update(rawQueryString="", body=None, isBase64Encoded=False, headers={"accept": "application/json"})
        request.pop("queryStringParameters", None)
        request.pop("cookies", None)
        write(name, request)
    # --- GDPR: a lead's export, and its erasure (IAM-authorized).
    for name, method, route, path in (
        (
            "lead_api_export.json",
            "GET",
            "GET /api/v1/leads/{lead_id}/export",
            "/api/v1/leads/01JD3Z8Q4W6Y9V2N5K7M0P1R3S/export",
        ),
        ("lead_api_erase.json", "DELETE", "DELETE /api/v1/leads/{lead_id}", "/api/v1/leads/01JD3Z8Q4W6Y9V2N5K7M0P1R3S"),
    ):
        request = http_event(iam, method, route, path, {"lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S"})
        request.update(rawQueryString="", body=None, isBase64Encoded=False, headers={"accept": "application/json"})
        request.pop("queryStringParameters", None)
        request.pop("cookies", None)
        write(name, request)
    crm_inbound_events(form)
    report_events(iam, sqs)
    audience_events(iam, sqs)
    import_engine_events(iam)


def report_events(iam: dict[str, Any], sqs: dict[str, Any]) -> None:
    """ReportingQueue -> ReportingFunction (a new lead and its move to MQL, as the ReportingRule
    delivers them), and ``GET /api/v1/reports/funnel`` with the IAM authorizer context."""
    records = []
    for index, (source, detail_type, detail) in enumerate(
        (
            (
                "leadflow.forms",
                "lead.captured",
                {
                    "lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S",
                    "new": True,
                    "form_id": "demo-signup",
                    "touch": {"channel": "form", "form_id": "demo-signup", "utm_source": "linkedin", "ref": "ana-k"},
                    "account_domain": "example.com",
                },
            ),
            (
                "leadflow.scoring",
                "lead.stage_changed",
                {"lead_id": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S", "from": "lead", "to": "mql"},
            ),
        )
    ):
        event = read("aws-events/powertools_eventBridgeEvent.json")
        event.update(source=source, **{"detail-type": detail_type})
        event["detail"] = {
            "schema_version": 1,
            "event_id": f"01JD3Z8Q4WEVT0000000000R{index:03d}",
            "occurred_at": f"2026-11-2{index}T09:15:02.120000+00:00",
            **detail,
        }
        record = queue_record(sqs["Records"][0], json.dumps(event), "ReportingQueue")
        record["messageId"] = f"059f36b4-87a3-44ab-83d2-66197530310{index}"
        records.append(record)
    write("reporting_sqs.json", {"Records": records})
    query = {"from": "2026-11-01", "to": "2026-11-30", "by": "source", "view": "cohort"}
    request = http_event(iam, "GET", "GET /api/v1/reports/funnel", "/api/v1/reports/funnel", None)
    request.update(
        rawQueryString="&".join(f"{k}={v}" for k, v in query.items()),
        queryStringParameters=query,
        body=None,
        isBase64Encoded=False,
        headers={"accept": "application/json"},
    )
    request.pop("cookies", None)
    write("lead_api_report_funnel.json", request)


def _api_request(iam: dict[str, Any], method: str, route: str, path: str, **parts: Any) -> dict[str, Any]:
    """An admin API request with the IAM authorizer context (``parts``: path parameters, query, body)."""
    request = http_event(iam, method, f"{method} {route}", path, parts.get("params"))
    query = parts.get("query") or {}
    body = parts.get("body")
    request.update(
        rawQueryString="&".join(f"{k}={v}" for k, v in query.items()),
        body=json.dumps(body) if body is not None else None,
        isBase64Encoded=False,
        headers={"accept": "application/json", **({"content-type": "application/json"} if body is not None else {})},
    )
    if query:
        request["queryStringParameters"] = query
    else:
        request.pop("queryStringParameters", None)
    request.pop("cookies", None)
    return request


def audience_events(iam: dict[str, Any], sqs: dict[str, Any]) -> None:
    """Lead writes, lists and segments through the admin API (issue 16), and SegmentsQueue ->
    SegmentsFunction (a lead's move to MQL, as the SegmentsRule delivers it)."""
    lead = "01JD3Z8Q4W6Y9V2N5K7M0P1R3S"
    body = {
        "email": "jane@example.com",
        "first_name": "Jane",
        "company": "Example Corp",
        "custom": {"company_size": "201-1000"},
        "consent": {"basis": "consent", "source": "Web Summit 2026 badge scan", "text": "Email me product news"},
    }
    write("lead_api_create_lead.json", _api_request(iam, "POST", "/api/v1/leads", "/api/v1/leads", body=body))
    patch = {"title": "VP Marketing", "phone": None, "custom": {"company_size": "1000+"}}
    write(
        "lead_api_update_lead.json",
        _api_request(
            iam, "PATCH", "/api/v1/leads/{lead_id}", f"/api/v1/leads/{lead}", params={"lead_id": lead}, body=patch
        ),
    )
    write(
        "lead_api_tag_lead.json",
        _api_request(
            iam,
            "POST",
            "/api/v1/leads/{lead_id}/tags/{tag}",
            f"/api/v1/leads/{lead}/tags/webinar-2026",
            params={"lead_id": lead, "tag": "webinar-2026"},
        ),
    )
    write(
        "lead_api_list_segment.json",
        _api_request(
            iam, "GET", "/api/v1/leads", "/api/v1/leads", query={"segment": "key-account-contacts", "limit": "25"}
        ),
    )
    write(
        "lead_api_export_leads.json",
        _api_request(iam, "GET", "/api/v1/leads/export", "/api/v1/leads/export", query={"tag": "webinar-2026"}),
    )
    write("lead_api_segments.json", _api_request(iam, "GET", "/api/v1/segments", "/api/v1/segments"))
    # A small Mailchimp export in the body (its real header; tests/fixtures/imports/README.md).
    export = (ROOT / "tests" / "fixtures" / "imports" / "mailchimp_members.csv").read_text(encoding="utf-8-sig")
    body = {"csv": export, "file_name": "mailchimp_members.csv", "consent_basis": "consent", "tags": ["mailchimp"]}
    write("lead_api_create_import.json", _api_request(iam, "POST", "/api/v1/imports", "/api/v1/imports", body=body))
    event = read("aws-events/powertools_eventBridgeEvent.json")
    event.update(source="leadflow.scoring", **{"detail-type": "lead.stage_changed"})
    event["detail"] = {
        "schema_version": 1,
        "event_id": "01JD3Z8Q4WEVT0000000000S001",
        "occurred_at": "2026-11-21T09:15:02.120000+00:00",
        "lead_id": lead,
        "from": "lead",
        "to": "mql",
    }
    write("segments_sqs.json", {"Records": [queue_record(sqs["Records"][0], json.dumps(event), "SegmentsQueue")]})


def import_engine_events(iam: dict[str, Any]) -> None:
    """A large import (issue 16): the admin API's upload and start, and the import state machine's
    Lambda tasks as ``lambda:invoke`` hands them their ``Payload`` (the plan, one chunk's worker,
    the finish)."""
    import_id = "hubspot-contacts-sample-01"
    body = {
        "upload": True,
        "import_id": import_id,
        "file_name": "hubspot_contacts.csv",
        "mapping": "auto",
        "tags": ["hubspot"],
    }
    write("lead_api_upload_import.json", _api_request(iam, "POST", "/api/v1/imports", "/api/v1/imports", body=body))
    start = f"/api/v1/imports/{import_id}/start"
    params = {"import_id": import_id}
    write(
        "lead_api_start_import.json",
        _api_request(iam, "POST", "/api/v1/imports/{import_id}/start", start, params=params),
    )
    write("imports_plan.json", {"action": "plan", "import_id": import_id})
    # What Plan answers for tests/fixtures/imports/hubspot_contacts.csv, as the Map's ItemSelector
    # hands it to a worker with a line of the manifest (the CSV ItemReader's values are text).
    from leadflow.domain.import_chunks import split

    found, chunks = split(
        io.BytesIO((ROOT / "tests" / "fixtures" / "imports" / "hubspot_contacts.csv").read_bytes()), False
    )
    chunk = next(chunks)
    columns = found.header
    job = {
        "import_id": import_id,
        "bucket": "leadflow-importsbucket-example",
        "manifest": f"work/{import_id}/chunks.csv",
        "data": f"uploads/{import_id}/hubspot_contacts.csv",
        "ndjson": False,
        "header": columns,
        "mapping": "auto",
        "file": "hubspot_contacts.csv",
        "consent_basis": None,
        "tags": ["hubspot"],
    }
    item = dict(zip(("first_row", "start", "end", "rows"), chunk.as_row(), strict=True))
    write("imports_chunk.json", {"action": "chunk", "job": job, "chunk": item})
    write("imports_finish.json", {"action": "finish", "import_id": import_id})


def crm_inbound_events(form: dict[str, Any]) -> None:
    """``POST /crm/{provider}/webhook`` as each CRM sends it, signed with the published test secrets.

    The generic sample is signed with the Standard Webhooks vectors' secret, the HubSpot one with
    HubSpot's documented client secret, both at a fixed time (so, as shipped, they are stale and
    refused; a test re-signs them). The Salesforce one is the shared Outbound Message as is, posted
    to an endpoint URL with a published sample token (refused by any stack, whose
    ``salesforce_endpoint_token`` is its own; a test sends it with the stack's).
    """
    import hashlib
    import hmac

    webhooks = read("crm/standard-webhooks_test_vectors.json")["positive_vectors"][0]
    timestamp = 1764590400  # 2025-12-01T12:00:00Z
    body = json.dumps(
        {
            "type": "handoff.feedback",
            "lead_id": "01KB6Z4M7Q2X9R3T5V7W9Y1A3C",
            "outcome": "accepted",
            "owner": "rep-ana",
            "occurred_at": "2025-12-01T11:59:00+00:00",
        }
    )
    digest = hmac.new(
        base64.b64decode(webhooks["secret"].removeprefix("whsec_")),
        f"msg_2Kx9.{timestamp}.{body}".encode(),
        hashlib.sha256,
    )
    generic = http_event(form, "POST", "POST /crm/{provider}/webhook", "/crm/generic/webhook", {"provider": "generic"})
    generic.update(
        body=body,
        isBase64Encoded=False,
        headers={
            "content-type": "application/json",
            "user-agent": "Svix-Webhooks/1.24",
            "webhook-id": "msg_2Kx9",
            "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode(),
        },
    )
    write("crm_inbound_generic.json", generic)

    hubspot_vectors = read("crm/hubspot_signature_vectors.json")
    documented = json.loads(hubspot_vectors["docs_v1_example"]["request_body"])
    change = {
        **documented[0],
        "eventId": 2,
        "subscriptionType": "contact.propertyChange",
        "propertyName": "hs_lead_status",
        "propertyValue": "IN_PROGRESS",
        "changeFlag": None,
    }
    change.pop("changeFlag")
    body = json.dumps([*documented, change])
    millis = str(timestamp * 1000)
    secret = hubspot_vectors["docs_v1_example"]["client_secret"]
    uri = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/crm/hubspot/webhook"
    message = f"POST{uri}{body}{millis}".encode()
    hubspot = http_event(form, "POST", "POST /crm/{provider}/webhook", "/crm/hubspot/webhook", {"provider": "hubspot"})
    hubspot["requestContext"]["domainName"] = "abcdef1234.execute-api.us-east-1.amazonaws.com"
    hubspot.update(
        body=body,
        isBase64Encoded=False,
        headers={
            "content-type": "application/json",
            "user-agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
            "x-hubspot-signature-v3": base64.b64encode(
                hmac.new(secret.encode(), message, hashlib.sha256).digest()
            ).decode(),
            "x-hubspot-request-timestamp": millis,
            "x-hubspot-signature-version": "v3",
        },
    )
    write("crm_inbound_hubspot.json", hubspot)

    outbound = read("crm/salesforce_outbound_message_soap.json")
    salesforce = http_event(
        form, "POST", "POST /crm/{provider}/webhook", "/crm/salesforce/webhook", {"provider": "salesforce"}
    )
    sample_token = "sample-endpoint-token-not-a-secret-0001"  # noqa: S105 - published in the sample
    salesforce.update(
        rawQueryString=f"token={sample_token}",
        queryStringParameters={"token": sample_token},
        body=outbound["request_xml"],
        isBase64Encoded=False,
        headers={
            "content-type": outbound["content_type"],
            "soapaction": '""',
            "user-agent": "Jakarta Commons-HttpClient/3.1",
        },
    )
    write("crm_inbound_salesforce.json", salesforce)


if __name__ == "__main__":
    main()
