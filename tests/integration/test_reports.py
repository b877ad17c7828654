"""Reports on the local stack: the funnel counted from the bus, exact under redelivery and replay."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from leadflow.adapters.reports import DynamoLeadFacts, DynamoReportStore
from leadflow.domain.report_views import days_between
from leadflow.services.report_drift import VerifyResult
from leadflow.services.report_verify import compare, expected_funnel
from tests.conftest import EVENTS, unique_email
from tests.integration.test_scoring import click

pytestmark = pytest.mark.integration


def sqs_batch(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Bus events as the ReportingQueue delivers them (one SQS record each)."""
    return {
        "Records": [
            {
                "messageId": uuid.uuid4().hex,
                "receiptHandle": "r",
                "body": json.dumps(event),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:reporting",
                "awsRegion": "us-east-1",
            }
            for event in events
        ]
    }


def funnel_row(client, key: str, **params: str) -> dict[str, Any]:
    response = client.api("/reports/funnel", **params)
    assert response.status_code == 200, response.text
    rows = [r for r in response.json()["rows"] if r["key"] == key]
    assert len(rows) == 1, response.json()
    return rows[0]


def verify(local_stack, campaign: str) -> VerifyResult:
    """``leadflow report verify`` over one campaign's counters (other tests seed leads directly)."""
    outputs = local_stack.stack_info()["outputs"]
    dynamodb = local_stack.client("dynamodb")
    reports = DynamoReportStore(outputs["ReportsTableName"], client=dynamodb)
    result = VerifyResult()
    expected = expected_funnel(
        DynamoLeadFacts(outputs["LeadsTableName"], client=dynamodb).scan_profiles(),
        reports.scan_prefix("LEADRPT#"),
        lambda form_id: "lead",
        result,
    )
    compare(reports.scan_prefix("FUNNEL#"), expected, result, lambda key: key[1].endswith("#" + campaign))
    return result


@pytest.fixture(scope="module")
def campaign(client) -> dict[str, Any]:
    """Five leads of one campaign (one clicks its way to MQL), counted through the real bus."""
    name = f"rpt-{uuid.uuid4().hex[:8]}"
    lead_ids = []
    for i in range(5):
        body = {
            "email": unique_email("report"),
            "title": "VP Marketing",
            "company_size": "201-1000",
            "country": "US",
            "utm_source": "linkedin" if i < 3 else "newsletter",
            "utm_campaign": name,
            "consent": True,
        }
        lead_ids.append(client.capture("demo-signup", body))
    client.tick()
    for _ in range(6):
        click(client, lead_ids[0])
    client.tick()
    return {"name": name, "lead_ids": lead_ids, "day": client.tick()["now"][:10]}


def test_the_funnel_counts_what_the_bus_carried(client, campaign):
    # GIVEN five leads of one campaign, one of them MQL
    day = campaign["day"]
    # WHEN the funnel is read by campaign, in both views
    for view in ("events", "cohort"):
        row = funnel_row(client, campaign["name"], **{"from": day, "to": day, "by": "campaign", "view": view})
        # THEN it shows exactly them
        assert row["created"] == 5
        assert row["reached"]["lead"] == 5
        assert row["reached"]["mql"] == 1
        assert row["conversion"]["lead_to_mql"] == 0.2
        assert row["time_to_mql"]["count"] == 1
        assert row["time_to_mql"]["p50_hours"] is not None


def test_the_funnel_as_csv(client, campaign):
    day = campaign["day"]
    response = client.http.get(
        f"{client.url}/api/v1/reports/funnel",
        params={"from": day, "to": day, "by": "campaign"},
        headers={"Authorization": f"Bearer {client.token}", "Accept": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    header, *lines = response.text.splitlines()
    assert header.startswith("campaign,created,lead,mql,sql")
    ours = [line for line in lines if line.startswith(campaign["name"] + ",")]
    assert ours and ours[0].split(",")[1:4] == ["5", "5", "1"]
    assert lines[-1].startswith("(total),")


def test_redelivered_and_replayed_events_count_once(local_stack, client, campaign):
    # GIVEN every bus event of the campaign's leads, as the reporting queue received them
    ours = set(campaign["lead_ids"])
    events = [
        e
        for e in client.bus_events()
        if e["detail-type"] in ("lead.captured", "lead.stage_changed") and e["detail"].get("lead_id") in ours
    ]
    assert len(events) >= 6
    day = campaign["day"]
    params = {"from": day, "to": day, "by": "campaign"}
    before = funnel_row(client, campaign["name"], **params)
    # WHEN each is redelivered one by one, then all replayed in one batch, twice over
    for event in events:
        assert local_stack.runner.invoke("ReportingFunction", sqs_batch([event])) == {"batchItemFailures": []}
    assert local_stack.runner.invoke("ReportingFunction", sqs_batch(events + events)) == {"batchItemFailures": []}
    # THEN the report has not moved, and recomputing from the raw records shows no drift
    assert funnel_row(client, campaign["name"], **params) == before
    result = verify(local_stack, campaign["name"])
    assert result.drift == [], result.summary()
    assert result.counters == 2  # the campaign dimension in both views, one day
    assert not [m for m in result.missing_stage_records if m[0] in ours]


def test_a_malformed_record_fails_alone(local_stack):
    # GIVEN a batch of a returning lead's capture (a submission without a page), a new lead's capture without
    # its lead id and time, and a body that is not JSON
    batch = sqs_batch(
        [
            {
                "detail-type": "lead.captured",
                "detail": {"event_id": uuid.uuid4().hex, "lead_id": "L", "new": False, "occurred_at": "2026-12-01"},
            },
            {"detail-type": "lead.captured", "detail": {"schema_version": 1, "new": True}},
        ]
    )
    batch["Records"].append({**batch["Records"][0], "messageId": "not-json", "body": "{"})
    # WHEN the reporting function gets it
    failures = local_stack.runner.invoke("ReportingFunction", batch)["batchItemFailures"]
    # THEN only the two bad records fail (to be retried, then the DLQ)
    assert {f["itemIdentifier"] for f in failures} == {"not-json", batch["Records"][1]["messageId"]}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": "2026-12-02", "to": "2026-12-01"}, 400),
        ({"from": "2026-02-30", "to": "2026-03-01"}, 400),
        ({"from": "2020-01-01", "to": "2026-01-01"}, 400),
        ({"from": "yesterday"}, 422),
        ({"by": "country"}, 422),
        ({"view": "all"}, 422),
    ],
)
def test_bad_report_parameters_are_4xx(client, params, status):
    assert client.api("/reports/funnel", **params).status_code == status


def test_an_unknown_sequence_is_404_and_a_known_one_answers_as_csv(client):
    assert client.api("/reports/sequences/no-such-sequence").status_code == 404
    assert client.api("/reports/sequences/welcome", **{"from": "2026-12-02", "to": "2026-12-01"}).status_code == 400
    response = client.http.get(
        f"{client.url}/api/v1/reports/sequences/welcome",
        headers={"Authorization": f"Bearer {client.token}", "Accept": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.text.splitlines()[0].startswith("version,step,variant,enrolled,sent,delivered")


def test_reports_need_authentication(client):
    assert client.http.get(f"{client.url}/api/v1/reports/funnel", timeout=10).status_code in (401, 403)


def test_the_report_samples_run_through_their_handlers(local_stack, client):
    # GIVEN a new lead, and the reporting sample carrying its capture and its move to MQL
    lead_id = client.capture("demo-signup", {"email": unique_email("sample")})
    client.tick()
    sample = json.loads((EVENTS / "reporting_sqs.json").read_text().replace("01JD3Z8Q4W6Y9V2N5K7M0P1R3S", lead_id))
    # WHEN it runs twice: the capture was counted already (the bus delivered it), the MQL once
    for _ in range(2):
        assert local_stack.runner.invoke("ReportingFunction", sample) == {"batchItemFailures": []}
    # THEN the funnel sample answers, and the OpenAPI document describes the report exactly
    answer = local_stack.runner.invoke(
        "LeadApiFunction", json.loads((EVENTS / "lead_api_report_funnel.json").read_text())
    )
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["view"] == "cohort"
    document = json.loads(
        local_stack.runner.invoke("LeadApiFunction", json.loads((EVENTS / "lead_api_openapi.json").read_text()))["body"]
    )
    content = document["paths"]["/api/v1/reports/funnel"]["get"]["responses"]["200"]["content"]
    assert content["application/json"]["schema"]["$ref"].endswith("/FunnelReport")
    assert "text/csv" in content
    sequence = document["paths"]["/api/v1/reports/sequences/{sequence_id}"]["get"]["responses"]
    assert sequence["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SequenceReport")
    assert "404" in sequence


# ---------------------------------------------------------------------------- sequences


def sequence_cell(client, sequence_id: str, step: str, day: str) -> dict[str, int]:
    """A step's counts (all versions and variants) in the sequence report of one day."""
    response = client.api(f"/reports/sequences/{sequence_id}", **{"from": day, "to": day})
    assert response.status_code == 200, response.text
    flow = {row["step"]: row["counts"] for row in response.json()["flow"]}
    return flow.get(step, {})


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def test_the_sequence_report_counts_sends_and_unique_engagement_once(local_stack, client):
    from tests.e2e.test_push_campaign import pixel_url, tracked_links

    # GIVEN the welcome step's figures so far today
    day = client.tick()["now"][:10]
    before = sequence_cell(client, "welcome", "welcome", day)
    seen = {e["id"] for e in client.bus_events()}  # the tap keeps the last 1,000: compare ids, not counts
    # WHEN three leads sign up (the welcome goes out at once), one opens it twice, one clicks in it
    addresses = [unique_email("seqrpt") for _ in range(3)]
    for address in addresses:
        assert client.post_form("demo-signup", {"email": address, "consent": True}, as_json=True).status_code == 200
    client.tick()
    outbox = {m["to"][0]: m for m in client.http.get(f"{client.url}/_dev/outbox", timeout=30).json()}
    for _ in range(2):
        assert client.http.get(pixel_url(outbox[addresses[0]]), timeout=10).status_code == 200
    link = next(iter(tracked_links(outbox[addresses[1]]).values()))
    assert client.http.get(link, allow_redirects=False, timeout=10).status_code == 302
    client.tick()
    # THEN the report shows three enrolled and sent, two unique opens (a click is an open), one click
    after = sequence_cell(client, "welcome", "welcome", day)
    assert delta(after, before) == {"enrolled": 3, "sent": 3, "delivered": 3, "unique_opens": 2, "unique_clicks": 1}
    # AND every event of it redelivered, twice, in one batch and one by one, changes nothing
    events = [
        e
        for e in client.bus_events()
        if e["id"] not in seen and e["detail-type"] in ("nurture.counted", "activity.recorded", "lead.captured")
    ]
    assert any(e["detail-type"] == "nurture.counted" for e in events)
    assert local_stack.runner.invoke("ReportingFunction", sqs_batch(events + events)) == {"batchItemFailures": []}
    for event in events:
        local_stack.runner.invoke("ReportingFunction", sqs_batch([event]))
    assert sequence_cell(client, "welcome", "welcome", day) == after


# ---------------------------------------------------------------------------- forms, reps, hand-offs


def report(client, name: str, **params: str) -> dict[str, Any]:
    response = client.api(f"/reports/{name}", **params)
    assert response.status_code == 200, response.text
    return response.json()


def test_forms_and_pages_count_tracked_views_and_the_posts_from_them(client):
    # GIVEN a landing page viewed three times (two visitors), then one visitor signs up from it
    day = client.tick()["now"][:10]
    page = f"https://www.example.com/rpt-{uuid.uuid4().hex[:8]}/signup"
    for visitor in ("visitor-rpt-1", "visitor-rpt-1", "visitor-rpt-2"):
        sent = client.http.post(
            client.url + "/t/e",
            data=json.dumps({"visitor_id": visitor, "type": "page_view", "url": page + "?utm_source=x", "seconds": 5}),
            headers={"Content-Type": "text/plain", "Origin": "https://www.example.com"},
            timeout=10,
        )
        assert sent.status_code == 204
    body = {"email": unique_email("pages"), "page_url": page, "consent": True}
    assert client.post_form("demo-signup", body, as_json=True).status_code == 200
    client.tick()
    # WHEN the forms report is read
    answer = report(client, "forms", **{"from": day, "to": day})
    # THEN the page shows its views (query strings do not split it), the post, and the conversion
    path = page.removeprefix("https://")
    (row,) = [p for p in answer["pages"] if p["page"] == path]
    assert row == {"page": path, "views": 3, "submissions": 1, "new_leads": 1, "conversion_rate": round(1 / 3, 4)}
    form = next(f for f in answer["forms"] if f["form_id"] == "demo-signup")
    assert path in form["pages"]
    assert form["views"] >= 3 and form["submissions"] >= 1


def test_a_quarters_forms_report_adds_up_every_days_counters(local_stack, client):
    # GIVEN the capture transaction's day counters of a form on 90 days of a quarter no other test writes
    outputs = local_stack.stack_info()["outputs"]
    dynamodb = local_stack.client("dynamodb")
    form_id = f"rpt-form-{uuid.uuid4().hex[:8]}"
    days = days_between("2031-01-01", "2031-03-31")
    assert len(days) == 90
    for n, day in enumerate(days):
        dynamodb.put_item(
            TableName=outputs["LeadsTableName"],
            Item={
                "PK": {"S": f"STATS#{day}"},
                "SK": {"S": f"FORM#{form_id}"},
                "submissions": {"N": str(n + 2)},
                "new_leads": {"N": str(n + 1)},
                "spam": {"N": str(n % 3)},
            },
        )
    # WHEN the days are read (READ_WORKERS at a time) and the report asked for the quarter
    rows = DynamoLeadFacts(outputs["LeadsTableName"], client=dynamodb).form_stats(days)
    answer = report(client, "forms", **{"from": days[0], "to": days[-1]})
    # THEN every day is read once, in the order asked, and the report adds them all up
    assert [int(stats["submissions"]) for found, stats in rows if found == form_id] == [n + 2 for n in range(len(days))]
    (row,) = [f for f in answer["forms"] if f["form_id"] == form_id]
    assert (row["submissions"], row["new_leads"], row["spam"]) == (
        sum(n + 2 for n in range(len(days))),
        sum(n + 1 for n in range(len(days))),
        sum(n % 3 for n in range(len(days))),
    )


def test_reps_get_the_leads_their_share_code_brought(client):
    day = client.tick()["now"][:10]
    before = {r["ref"]: r for r in report(client, "reps", **{"from": day, "to": day})["reps"]}
    for _ in range(2):
        body = {"email": unique_email("rep"), "ref": "tom-r", "consent": True}
        assert client.post_form("demo-signup", body, as_json=True).status_code == 200
    client.tick()
    after = {r["ref"]: r for r in report(client, "reps", **{"from": day, "to": day})["reps"]}
    tom = after["tom-r"]
    assert (tom["name"], tom["kind"]) == ("Tom Reyes", "rep")
    assert tom["leads"] - before.get("tom-r", {"leads": 0})["leads"] == 2


def test_handoffs_per_owner_and_team_with_acceptance(client):
    from tests.integration.test_crm_feedback import post_generic
    from tests.integration.test_handoff import hand_off, new_lead

    # GIVEN a lead handed to sales by a person (round-robin in the inbound team)
    day = client.tick()["now"][:10]
    before = {t["name"]: t for t in report(client, "handoffs", **{"from": day, "to": day})["teams"]}
    lead_id = new_lead(client, country="US")
    record = hand_off(client, lead_id, "asked for a demo").json()
    client.tick()
    # WHEN sales accepts it
    accepted = post_generic(
        client, {"lead_id": lead_id, "handoff_id": record["handoff_id"], "outcome": "accepted", "owner": "x"}
    )
    assert accepted.status_code == 200, accepted.text
    client.tick()
    # THEN its team and owner show it assigned and accepted, with a time to accept
    answer = report(client, "handoffs", **{"from": day, "to": day})
    team = {t["name"]: t for t in answer["teams"]}["inbound"]
    old = before.get("inbound", {"assigned": 0, "accepted": 0})
    assert (team["assigned"] - old["assigned"], team["accepted"] - old["accepted"]) == (1, 1)
    owner = {o["name"]: o for o in answer["owners"]}[record["owner"]["id"]]
    assert owner["accepted"] >= 1
    assert owner["time_to_accept"]["count"] >= 1
    csv_answer = client.http.get(
        f"{client.url}/api/v1/reports/handoffs",
        headers={"Authorization": f"Bearer {client.token}", "Accept": "text/csv"},
        timeout=30,
    )
    assert csv_answer.text.splitlines()[0].startswith("kind,name,assigned,accepted,rejected")

    # WHEN two more are handed off: sales rejects one (no budget), and accepts and wins the other
    rejected_lead, won_lead = new_lead(client, country="US"), new_lead(client, country="US")
    rejected = hand_off(client, rejected_lead, "asked for pricing").json()
    won = hand_off(client, won_lead, "asked for a quote").json()
    client.tick()
    for lead, handoff, outcome, reason in (
        (rejected_lead, rejected, "rejected", "no budget this year"),
        (won_lead, won, "accepted", None),
        (won_lead, won, "won", None),
    ):
        body = {"lead_id": lead, "handoff_id": handoff["handoff_id"], "outcome": outcome, "owner": "x"}
        answer = post_generic(client, {**body, "reason": reason} if reason else body)
        assert answer.status_code == 200, answer.text
        client.tick()
    # THEN the team counts the three hand-offs: two accepted, one rejected with its reason, one won
    after = {t["name"]: t for t in report(client, "handoffs", **{"from": day, "to": day})["teams"]}["inbound"]
    base = before.get("inbound", {})
    changed = {k: after[k] - base.get(k, 0) for k in ("assigned", "accepted", "rejected", "won", "lost")}
    assert changed == {"assigned": 3, "accepted": 2, "rejected": 1, "won": 1, "lost": 0}
    reasons = {k: n - (base.get("rejection_reasons") or {}).get(k, 0) for k, n in after["rejection_reasons"].items()}
    assert {k: n for k, n in reasons.items() if n} == {"no-budget-this-year": 1}, after["rejection_reasons"]  # as a key


def test_an_erasures_kept_counts_are_added_once_however_often_it_resumes(local_stack):
    from leadflow.adapters.gdpr import DynamoReportMarkers

    # GIVEN what an erased person had counted, on more counters than one transaction holds
    outputs = local_stack.stack_info()["outputs"]
    dynamodb = local_stack.client("dynamodb")
    keeper = DynamoReportMarkers(outputs["ReportsTableName"], client=dynamodb)
    erasure_id = f"er_{uuid.uuid4().hex}"
    counts = {
        ("FUNNEL#events#campaign", f"2026-12-01#{erasure_id}-{i:03d}"): {"created": 1, "reached_lead": 1}
        for i in range(150)
    }
    # WHEN the erasure keeps them, then a resumed run of it keeps them again
    keeper.keep_counts(erasure_id, counts)
    keeper.keep_counts(erasure_id, counts)
    # THEN each is there once, and the erasure's two parts are marked
    reports = DynamoReportStore(outputs["ReportsTableName"], client=dynamodb)
    kept = [i for i in reports.scan_prefix("ERASED#FUNNEL#events#campaign") if erasure_id in i["SK"]]
    assert len(kept) == 150
    assert {(i["created"], i["reached_lead"]) for i in kept} == {(1, 1)}
    assert [i["SK"] for i in reports.scan_prefix(f"ERASEDRPT#{erasure_id}")] == ["0000", "0001"]
