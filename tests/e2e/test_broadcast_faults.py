"""A broadcast under faults on `leadflow dev`: exactly one email per lead, nothing dead-lettered.

The small version of ``bench/soak.py`` (issue 17): 300 leads, a send rate of 50 a second, and one
fault of each kind while the broadcast state machine runs its parts: SES throttling
(``SendEmail`` answering 429), a hop crashing mid-run (the broadcast's ``Scan`` failing on every SDK
attempt), a hop dying in the middle of a page just after an email went out (``LambdaCrash``), and a
short DynamoDB outage (every operation answering 500 for 3 s). Then the next tick
sends what throttling left due, and the test checks that every lead got the discount email exactly
once, the broadcast execution succeeded, the run item counts every lead, and no dead-letter queue
holds anything. Its own ``leadflow dev`` process, as the push campaign test has (a broadcast
enrolls every lead in the stack).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import StackClient
from tests.e2e.test_push_campaign import (
    DISCOUNT,
    CampaignStack,
    Outbox,
    broadcast_runs,
    broadcast_through_the_api,
    campaign_stack,
    dev_now,
    next_tick,
    seed,
)

pytestmark = pytest.mark.e2e

LEADS = 300
SEND_RATE = 50
OUTAGE_SECONDS = 3
CRASH_AFTER = 99  # emails sent before the one whose invocation dies (mid-page: pages are larger)
DYNAMODB = ("GetItem", "PutItem", "UpdateItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem", "TransactWriteItems")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[CampaignStack]:
    yield from campaign_stack(tmp_path_factory.mktemp("faults"), SEND_RATE)


def fault(client: StackClient, operation: str, error: str, *, count: int, status: int, skip: int = 0) -> None:
    """``service:Operation`` answers ``error`` (HTTP ``status``) ``count`` times (-1: until cleared),
    after letting ``skip`` calls through (``LambdaCrash``: the call is made, then its invocation dies)."""
    service, name = operation.split(":")
    body = {"service": service, "operation": name, "error": error, "count": count, "status": status, "skip": skip}
    client.http.post(f"{client.url}/_dev/faults", json=body, timeout=10).raise_for_status()


def executions(stack: CampaignStack) -> list[dict[str, Any]]:
    machine = stack.client.info["outputs"]["BroadcastStateMachineArn"]
    return list(stack.aws_client("stepfunctions").list_executions(stateMachineArn=machine)["executions"])


def test_a_broadcast_under_faults_sends_every_email_exactly_once(stack):
    client = stack.client
    leads = seed(stack, LEADS, random.Random(17))
    # GIVEN SES throttling, a Scan that fails on every attempt (a hop dies after some pages), and a hop
    # that dies in the middle of a page, just after an email went out (the 100th after throttling)
    fault(client, "sesv2:SendEmail", "TooManyRequestsException", count=5, status=429)
    fault(client, "sesv2:SendEmail", "LambdaCrash", count=1, status=500, skip=CRASH_AFTER)
    fault(client, "dynamodb:Scan", "InternalServerError", count=3, status=500)
    # WHEN the push campaign is broadcast through the admin API
    broadcast_through_the_api(client)
    # AND, once its parts are under way, DynamoDB is down for a few seconds
    deadline = time.monotonic() + 60
    while not any(e["status"] == "RUNNING" for e in executions(stack)):
        assert time.monotonic() < deadline, "the broadcast state machine did not start"
        time.sleep(0.2)
    for operation in DYNAMODB:
        fault(client, f"dynamodb:{operation}", "InternalServerError", count=-1, status=500)
    time.sleep(OUTAGE_SECONDS)
    client.http.delete(f"{client.url}/_dev/faults", params={"service": "dynamodb"}, timeout=10).raise_for_status()
    # AND the parts finish, and the next tick sends what throttling left due
    deadline = time.monotonic() + 300
    while any(e["status"] == "RUNNING" for e in executions(stack)):
        assert time.monotonic() < deadline, "the broadcast did not finish"
        time.sleep(0.5)
    next_tick(stack)

    # THEN the execution succeeded, and its run counts every lead and a part done for each part
    assert [e["status"] for e in executions(stack)] == ["SUCCEEDED"]
    (run,) = broadcast_runs(stack).values()
    assert run["parts_done"] == run["parts"] >= 1
    assert run["enrolled"] == LEADS
    # AND every lead got the discount email exactly once (no message id twice)
    outbox = Outbox(client, set(leads.values()))
    assert Counter(outbox.subjects(address).count(DISCOUNT) for address in leads.values()) == Counter({1: LEADS})
    ids = outbox.message_ids()
    assert len(ids) == len(set(ids)) == LEADS
    # AND the crash happened, and the sequence report counts every email sent once (the invocation
    # that died published its counts as it ended, and its retry counted only what it sent)
    fired = client.http.get(f"{client.url}/_dev/faults", params={"fired": 1}, timeout=10).json()
    assert fired["sesv2:SendEmail:TooManyRequestsException"] == 5 and fired["sesv2:SendEmail:LambdaCrash"] == 1, fired
    assert fired["dynamodb:Scan:InternalServerError"] >= 3, fired
    now = dev_now(client)
    period = {"from": (now - timedelta(days=1)).date().isoformat(), "to": (now + timedelta(days=1)).date().isoformat()}
    report = client.api("/reports/sequences/push-discount", **period).json()
    discount = next(row["counts"] for row in report["flow"] if row["step"] == "discount")
    assert (discount["enrolled"], discount["sent"]) == (LEADS, LEADS)
    # AND no dead-letter queue holds anything
    depths = client.http.get(f"{client.url}/_dev/queues", timeout=30).json()
    dead = {name: depth for name, depth in depths.items() if "DLQ" in name and any(depth.values())}
    assert dead == {}
