"""A six-hour table outage (issue 13, defect 5) on a ``leadflow dev`` of its own.

Six hours of refused transactions and seven of clock make every schedule of the stack run dozens
of times against a failing table: on the suite's shared stack that retried, at each tick, whatever
earlier tests had left due, and left the next tests' welcome emails behind a backlog. Its own
stack holds only this test's post.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import StackClient, unique_email
from tests.e2e.conftest import start_dev, stop_dev

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client() -> Iterator[StackClient]:
    server = start_dev(ready_within=90)
    try:
        yield StackClient(server.url)
    finally:
        stop_dev(server)


def queue_depths(client: StackClient) -> dict[str, Any]:
    return dict(client.http.get(f"{client.url}/_dev/queues", timeout=30).json())


def test_a_six_hour_table_outage_loses_no_accepted_post(client: StackClient):
    # GIVEN the table refuses every transaction, and a post is accepted into the intake queue
    fault = {
        "service": "dynamodb",
        "operation": "TransactWriteItems",
        "error": "ProvisionedThroughputExceededException",
    }
    client.http.post(client.url + "/_dev/faults", json=fault, timeout=10).raise_for_status()
    email = unique_email("long-outage")
    try:
        assert client.post_form("demo-signup", {"email": email}, as_json=True).status_code == 202
        # WHEN six hours pass with the table still down (replays keep failing)
        for _ in range(36):
            client.http.post(client.url + "/_dev/clock", json={"advance_seconds": 600}, timeout=10)
            client.tick()
        # THEN the post is still waiting in the intake queue, not dead-lettered
        depths = queue_depths(client)
        assert depths["IntakeDLQ"]["visible"] == 0
        assert depths["IntakeQueue"]["visible"] + depths["IntakeQueue"]["in_flight"] >= 1
    finally:
        client.http.delete(client.url + "/_dev/faults", timeout=10)
    # WHEN the table is back and the backoff's next replay comes (at most an hour)
    client.http.post(client.url + "/_dev/clock", json={"advance_seconds": 3600}, timeout=10)
    client.tick()
    # THEN the post is a lead, and the queues are empty
    assert client.lead_by_email(email) is not None
    depths = queue_depths(client)
    assert depths["IntakeQueue"]["visible"] == depths["IntakeDLQ"]["visible"] == 0
