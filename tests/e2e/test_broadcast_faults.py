"""A broadcast under faults on `leadflow dev`: exactly one email per lead, nothing dead-lettered.

The small version of ``bench/soak.py`` (issue 17): 300 leads, a send rate of 50 a second, and one
fault of each kind while the broadcast state machine runs its parts: SES throttling
(``SendEmail`` answering 429), a hop crashing mid-run (the broadcast's ``Scan`` failing on every SDK
attempt), and a short DynamoDB outage (every operation answering 500 for 3 s). Then the next tick
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
    next_tick,
    seed,
)

pytestmark = pytest.mark.e2e

LEADS = 300
SEND_RATE = 50
OUTAGE_SECONDS = 3
DYNAMODB = ("GetItem", "PutItem", "UpdateItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem", "TransactWriteItems")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[CampaignStack]:
    yield from campaign_stack(tmp_path_factory.mktemp("faults"), SEND_RATE)


def fault(client: StackClient, operation: str, error: str, *, count: int, status: int) -> None:
    """``service:Operation`` answers ``error`` (HTTP ``status``) ``count`` times (-1: until cleared)."""
    service, name = operation.split(":")
    body = {"service": service, "operation": name, "error": error, "count": count, "status": status}
    client.http.post(f"{client.url}/_dev/faults", json=body, timeout=10).raise_for_status()


def executions(stack: CampaignStack) -> list[dict[str, Any]]:
    machine = stack.client.info["outputs"]["BroadcastStateMachineArn"]
    return list(stack.aws_client("stepfunctions").list_executions(stateMachineArn=machine)["executions"])


def test_a_broadcast_under_faults_sends_every_email_exactly_once(stack):
    client = stack.client
    leads = seed(stack, LEADS, random.Random(17))
    # GIVEN SES throttling and a Scan that fails on every attempt (a hop dies after some pages)
    fault(client, "sesv2:SendEmail", "TooManyRequestsException", count=5, status=429)
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
    client.http.delete(f"{client.url}/_dev/faults", timeout=10).raise_for_status()
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
    # AND no dead-letter queue holds anything
    depths = client.http.get(f"{client.url}/_dev/queues", timeout=30).json()
    dead = {name: depth for name, depth in depths.items() if "DLQ" in name and any(depth.values())}
    assert dead == {}
