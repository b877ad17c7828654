"""The push campaign's reports (used by test_push_campaign.py): exactly the counts the simulation
produced, before and after every event the reports counted is delivered again, twice.

A recorder queue gets a copy of every event the ReportingRule sends to the reports (same
pattern, its own rule), so the test can inject the redelivery and the replay of all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

SEQUENCE = "push-discount"


@dataclass
class Recorder:
    queue_url: str
    reporting_queue_url: str


def record_report_events(stack: Any) -> Recorder:
    """Subscribe a recorder queue to what the ReportingRule matches (before the campaign starts)."""
    events, sqs = stack.aws_client("events"), stack.aws_client("sqs")
    outputs = stack.client.info["outputs"]
    bus = outputs["EventBusName"]
    (rule,) = [r for r in events.list_rules(EventBusName=bus)["Rules"] if "ReportingRule" in r["Name"]]
    url = sqs.create_queue(QueueName="push-report-recorder")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="push-report-recorder", EventBusName=bus, EventPattern=rule["EventPattern"])
    events.put_targets(Rule="push-report-recorder", EventBusName=bus, Targets=[{"Id": "recorder", "Arn": arn}])
    return Recorder(url, outputs["ReportingQueueUrl"])


def recorded(stack: Any, recorder: Recorder) -> list[str]:
    sqs = stack.aws_client("sqs")
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=recorder.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies += [m["Body"] for m in messages]
        sqs.delete_message_batch(
            QueueUrl=recorder.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def step_counts(stack: Any, start: str, end: str) -> dict[str, dict[str, int]]:
    response = stack.client.api(f"/reports/sequences/{SEQUENCE}", **{"from": start, "to": end})
    assert response.status_code == 200, response.text
    return {row["step"]: row["counts"] for row in response.json()["flow"]}


def expected_counts(leads: int, openers: int, clickers: int, redeemers: int) -> dict[str, dict[str, int]]:
    """What the simulation did: every lead enrolled and sent the discount; openers (the pixel) got
    the product; its clickers (a click is an open) the coupon; redeemers clicked the coupon. Nothing
    bounced, so every email sent is delivered (sent less bounces)."""
    return {
        "discount": {"enrolled": leads, "sent": leads, "delivered": leads, "unique_opens": openers, "unique_clicks": 0},
        "product": {"sent": openers, "delivered": openers, "unique_opens": clickers, "unique_clicks": clickers},
        "coupon": {"sent": clickers, "delivered": clickers, "unique_opens": redeemers, "unique_clicks": redeemers},
    }


def check_reports(  # noqa: PLR0917 - the campaign's facts
    stack: Any, recorder: Recorder, start: str, end: str, leads: int, openers: int, clickers: int, redeemers: int
) -> None:
    """The sequence report shows exactly the simulation's counts, also after every counted event is
    delivered again twice (redelivery, then a replay of the whole campaign)."""
    expected = expected_counts(leads, openers, clickers, redeemers)

    def check() -> dict[str, dict[str, int]]:
        counts = step_counts(stack, start, end)
        for step, wanted in expected.items():
            assert {k: counts.get(step, {}).get(k, 0) for k in wanted} == wanted, (step, counts.get(step))
        assert all(c["goal_reached"] == 0 and c["exits"] == 0 and c["bounces"] == 0 for c in counts.values())
        return counts

    before = check()
    bodies = recorded(stack, recorder)
    kinds = {json.loads(b)["detail-type"] for b in bodies}
    assert {"nurture.counted", "activity.recorded"} <= kinds, kinds
    sqs = stack.aws_client("sqs")
    for _ in range(2):  # redelivered, then the whole campaign replayed
        for first in range(0, len(bodies), 10):
            chunk = bodies[first : first + 10]
            sqs.send_message_batch(
                QueueUrl=recorder.reporting_queue_url,
                Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
            )
        stack.client.tick()
    assert check() == before
    dlq = stack.client.info["outputs"]["ReportingDLQUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
    check_verify(stack)


def check_verify(stack: Any) -> None:
    """``leadflow report verify``: the sequence report, its A/B rows and the hand-offs recomputed from
    the raw records equal the aggregates. (The funnel and forms count leads captured through the
    product; this campaign's leads were written straight into the table, so those reports rightly
    never counted them.)"""
    answer = json.loads(run_verify(stack, "--json").stdout)
    for name in ("sequences", "handoffs"):
        assert answer["reports"][name]["counter_items"] > 0, answer["reports"]
    assert answer["sends_unlike_sent"] == [], answer  # every email in the mail logs counted as sent
    for name in ("sequences", "ab", "handoffs"):
        assert (answer["reports"][name]["drift"], answer["reports"][name]["uncounted"]) == (0, 0), answer


def run_verify(stack: Any, *options: str) -> subprocess.CompletedProcess[str]:
    """``leadflow report verify --dev URL`` on the stack's workspace (``stack``: a ``CampaignStack``)."""
    leadflow = Path(sys.executable).parent / "leadflow"
    command = [str(leadflow), "report", "verify", "--dev", stack.client.url, "--workspace", str(stack.workspace)]
    done = subprocess.run([*command, *options], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout, done.stderr
    return done
