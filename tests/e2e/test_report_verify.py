"""`leadflow report verify` on a `leadflow dev` of its own: every report recomputed from the raw
records shows 0 drift after a campaign, and again after every event the reports counted is
delivered twice more; a tampered aggregate is found, in its report, at its key.

A stack of its own because verify reads every record: on the shared test stack other tests seed
leads straight into the table and erase them, which the reports rightly never counted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import unique_email
from tests.e2e.push_reports import record_report_events, recorded, run_verify
from tests.e2e.test_push_campaign import (
    CampaignStack,
    campaign_stack,
    daytime_countries,
    dev_now,
    next_tick,
    pixel_url,
    settle,
    tracked_links,
)
from tests.integration.test_crm_feedback import post_generic
from tests.integration.test_handoff import hand_off
from tests.integration.test_scoring import click

pytestmark = pytest.mark.e2e

REPORTS = ("funnel", "reps", "sequences", "ab", "forms", "handoffs")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[CampaignStack]:
    yield from campaign_stack(tmp_path_factory.mktemp("verify"), 100)


def verify(stack: CampaignStack) -> tuple[int, dict[str, Any]]:
    """``leadflow report verify --dev URL --json``: its exit code and its answer."""
    done = run_verify(stack, "--json")
    return done.returncode, json.loads(done.stdout)


def reports(stack: CampaignStack, period: dict[str, str]) -> dict[str, Any]:
    """Every report of the period as the API answers it."""
    paths = ["funnel", "sequences/welcome", "forms", "reps", "handoffs"]
    answers = {}
    for path in paths:
        response = stack.client.api(f"/reports/{path}", **period, **({"by": "campaign"} if path == "funnel" else {}))
        assert response.status_code == 200, response.text
        answers[path] = response.json()
    return answers


def outbox(stack: CampaignStack) -> dict[str, dict[str, Any]]:
    return {m["to"][0]: m for m in stack.client.http.get(f"{stack.client.url}/_dev/outbox", timeout=30).json()}


def campaign(stack: CampaignStack) -> tuple[dict[str, str], list[str]]:
    """A small campaign through every report: page views, sign-ups (two by a rep's share code),
    opens and a click of the welcome, the A/B nudge three days later for those who did not open
    it, a lead clicking its way to MQL, a hand-off accepted by sales. Returns its period and leads."""
    client = stack.client
    first_day = dev_now(client).date().isoformat()
    country = daytime_countries(dev_now(client))[0]  # no quiet hours in the way
    name = f"verify-{uuid.uuid4().hex[:6]}"
    page = f"https://www.example.com/{name}/signup"
    for visitor in ("visitor-v-1", "visitor-v-1", "visitor-v-2"):
        sent = client.http.post(
            client.url + "/t/e",
            data=json.dumps({"visitor_id": visitor, "type": "page_view", "url": page, "seconds": 5}),
            headers={"Content-Type": "text/plain", "Origin": "https://www.example.com"},
            timeout=10,
        )
        assert sent.status_code == 204
    addresses = [unique_email("verify") for _ in range(6)]
    leads = []
    for i, address in enumerate(addresses):
        body = {
            "email": address,
            "consent": True,
            "country": country,
            "title": "VP Marketing",
            "company_size": "201-1000",
            "utm_source": "linkedin" if i % 2 else "newsletter",
            "utm_campaign": name,
            "page_url": page,
            **({"ref": "tom-r"} if i < 2 else {}),
        }
        leads.append(client.capture("demo-signup", body))
    settle(stack)
    sent = outbox(stack)
    for address in addresses[:3]:  # three open the welcome (twice, once); one clicks in it
        assert client.http.get(pixel_url(sent[address]), timeout=10).status_code == 200
    assert client.http.get(pixel_url(sent[addresses[0]]), timeout=10).status_code == 200
    link = next(iter(tracked_links(sent[addresses[1]]).values()))
    assert client.http.get(link, allow_redirects=False, timeout=10).status_code == 302
    next_tick(stack, days=3)  # the three who did not open get the nudge, variant a or b
    nudged = [
        m for m in outbox(stack).values() if m["to"][0] in addresses[3:] and "welcome" not in m["subject"].lower()
    ]
    assert len(nudged) == 3, [m["subject"] for m in outbox(stack).values() if m["to"][0] in addresses]
    for _ in range(6):  # the scoring rules make the last lead an MQL
        click(client, leads[-1])
    record = hand_off(client, leads[2], "asked for a demo")
    assert record.status_code in (200, 201), record.text
    settle(stack)
    accepted = post_generic(
        client, {"lead_id": leads[2], "handoff_id": record.json()["handoff_id"], "outcome": "accepted", "owner": "x"}
    )
    assert accepted.status_code == 200, accepted.text
    settle(stack)
    return {"from": first_day, "to": dev_now(client).date().isoformat()}, leads


def test_every_report_recomputes_to_0_drift_after_redelivery_and_replay_and_a_tampered_one_is_found(stack):
    # GIVEN a campaign counted by the reports, and a copy of every event they were sent
    recorder = record_report_events(stack)
    period, leads = campaign(stack)
    code, answer = verify(stack)
    # THEN every report recomputed from the raw records equals its aggregates
    assert (code, answer["drift"], answer["missing_stage_records"]) == (0, 0, 0), answer
    assert answer["sends_unlike_sent"] == [], answer  # every email in the mail logs counted as sent
    for name in REPORTS:
        assert answer["reports"][name]["counter_items"] > 0, (name, answer["reports"])
        assert answer["reports"][name]["uncounted"] == 0, (name, answer["reports"])
    table = run_verify(stack).stdout.splitlines()  # as a person reads it: a line per report
    rows = {line.split()[0]: line.split()[1:] for line in table[3:9]}
    assert rows == {n: [str(answer["reports"][n]["counter_items"]), "0", "0"] for n in REPORTS}, table
    before = reports(stack, period)
    # WHEN every event the reports counted is delivered again, then the whole campaign replayed
    bodies = recorded(stack, recorder)
    kinds = {json.loads(b)["detail-type"] for b in bodies}
    assert {"lead.captured", "lead.stage_changed", "nurture.counted", "activity.recorded"} <= kinds, kinds
    assert {"handoff.created", "handoff.feedback"} <= kinds, kinds
    sqs = stack.aws_client("sqs")
    for _ in range(2):
        for first in range(0, len(bodies), 10):
            chunk = bodies[first : first + 10]
            sqs.send_message_batch(
                QueueUrl=recorder.reporting_queue_url,
                Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
            )
        settle(stack)
    # THEN no report moved, and verify still finds 0 drift in every one
    assert reports(stack, period) == before
    code, again = verify(stack)
    assert (code, again["drift"]) == (0, 0), again
    assert {n: r["counter_items"] for n, r in again["reports"].items()} == {
        n: r["counter_items"] for n, r in answer["reports"].items()
    }
    # WHEN two leads are erased (one clicked and came by a share code, one was handed off and accepted)
    for lead_id in leads[1:3]:
        erased = stack.client.http.delete(
            f"{stack.client.url}/api/v1/leads/{lead_id}",
            headers={"Authorization": f"Bearer {stack.client.token}"},
            timeout=60,
        )
        assert erased.status_code == 200, erased.text
    # THEN the reports keep their counts, and verify (their records gone) still finds 0 drift
    assert reports(stack, period) == before
    code, after_erasure = verify(stack)
    assert (code, after_erasure["drift"]) == (0, 0), after_erasure
    # WHEN an A/B row of the sequence report and a team's hand-offs are tampered with
    dynamodb = stack.aws_client("dynamodb")
    table = stack.client.info["outputs"]["ReportsTableName"]
    rows = dynamodb.query(
        TableName=table, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "SEQRPT#welcome"}}
    )["Items"]
    ab_row = next(r for r in rows if not r["SK"]["S"].endswith("#-") and "sent" in r)
    team_row = dynamodb.query(
        TableName=table, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "HANDOFFS#team"}}
    )["Items"][0]
    for row, name in ((ab_row, "sent"), (team_row, "accepted")):
        dynamodb.update_item(
            TableName=table,
            Key={"PK": row["PK"], "SK": row["SK"]},
            UpdateExpression="ADD #f :n",
            ExpressionAttributeNames={"#f": name},
            ExpressionAttributeValues={":n": {"N": "2"}},
        )
    # THEN verify fails and names exactly these two, in their reports
    code, tampered = verify(stack)
    assert code == 1
    found = {(d["report"], d["pk"], d["sk"], d["field"], d["stored"] - d["expected"]) for d in tampered["drifted"]}
    assert found == {
        ("ab", "SEQRPT#welcome", ab_row["SK"]["S"], "sent", 2),
        ("handoffs", "HANDOFFS#team", team_row["SK"]["S"], "accepted", 2),
    }
    assert {n: r["drift"] for n, r in tampered["reports"].items() if r["drift"]} == {"ab": 1, "handoffs": 1}
