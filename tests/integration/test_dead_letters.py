"""Dead letters (issue 13, defect 5): an intake outage of hours strands nothing; every DLQ replays.

The queued post used to be dead-lettered after 5 receives 60 s apart (about 5 minutes of
outage); replays now back off up to an hour apart for about 24 hours.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from leadflow.dev.template import load_template
from leadflow.domain.outage_backoff import RECEIVES_WITHIN_HORIZON, outage_retry_delay
from tests.conftest import EVENTS, ROOT, StackClient, load_json, unique_email

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("queue", ["IntakeQueue", "SesEventsQueue"])
def test_a_queue_that_backs_off_in_an_outage_waits_out_the_documented_horizon(queue: str):
    # GIVEN a queue whose function backs off while the table is down, and the backoff
    template = load_template(ROOT / "template.yaml")
    redrive = template["Resources"][queue]["Properties"]["RedrivePolicy"]
    # THEN the queue keeps a message for as many receives as the backoff needs for 24 hours
    assert redrive["maxReceiveCount"] == RECEIVES_WITHIN_HORIZON
    waited = sum(outage_retry_delay(n) for n in range(1, RECEIVES_WITHIN_HORIZON + 1))
    assert 24 * 3600 <= waited < 25 * 3600
    assert [outage_retry_delay(n) for n in (1, 2, 3, 7, 8, 29)] == [60, 120, 240, 3600, 3600, 3600]


def test_leadflow_replay_brings_back_what_any_dead_letter_queue_holds(local_stack: Any, client: StackClient):
    # GIVEN a post that was dead-lettered after an outage, and a scoring event in the ScoringDLQ
    from leadflow.dev.cli import main

    sqs = local_stack.client("sqs")
    email = unique_email("dead-lettered")
    now = local_stack.clock.now().isoformat()
    queued = {
        "kind": "form_submission",
        "version": 1,
        "submission_id": "01DEADLETTERED000000000000",
        "form_id": "demo-signup",
        "received_at": now,
        "fields": {"email": [email], "first_name": ["Back"]},
        "client": {"ip": "203.0.113.50", "user_agent": "test", "referer": ""},
        "idempotency_key": f"post-{email}",
    }
    sqs.send_message(QueueUrl=local_stack.physical["IntakeDLQ"], MessageBody=json.dumps(queued))
    sqs.send_message(QueueUrl=local_stack.physical["ScoringDLQ"], MessageBody=json.dumps({"not": "an event"}))

    # WHEN the operator replays every DLQ of the template
    assert main(["replay", "all", "--dev", client.url]) == 0
    client.tick()

    # THEN the post is a lead, the intake DLQ is empty, and each DLQ was worked
    lead = client.lead_by_email(email)
    assert lead is not None and lead["profile"]["first_name"] == "Back"
    assert local_stack.queue_depths()["IntakeDLQ"]["visible"] == 0
    # (the scoring message is no event: it went back to its queue and failed there again)


def test_replay_names_every_redrive_dlq_of_the_template():
    from leadflow.dev.replay import redrive_pairs

    pairs = redrive_pairs(load_template(ROOT / "template.yaml"))
    assert {"intake", "scoring", "handoff", "nurture-now", "nurture-events", "ses-events"} <= set(pairs)
    assert pairs["intake"] == ("IntakeDLQ", "IntakeQueue")


def test_the_scheduled_redrive_brings_dead_letters_back_a_bounded_number_of_times(
    local_stack: Any, client: StackClient
):
    # GIVEN a dead-lettered post, and one already redriven as often as allowed (it keeps failing)
    sqs = local_stack.client("sqs")
    email = unique_email("redriven")
    message = {
        "kind": "form_submission",
        "version": 1,
        "submission_id": "01REDRIVEN0000000000000000",
        "form_id": "demo-signup",
        "received_at": local_stack.clock.now().isoformat(),
        "fields": {"email": [email]},
        "client": {"ip": "203.0.113.51", "user_agent": "test", "referer": ""},
        "idempotency_key": f"post-{email}",
    }
    dlq = local_stack.physical["IntakeDLQ"]
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(message))
    poison = {"DataType": "Number", "StringValue": "3"}
    sqs.send_message(QueueUrl=dlq, MessageBody="{}", MessageAttributes={"leadflow_redrives": poison})

    # WHEN the schedule runs the redrive (its sample event), and the queues drain
    summary = local_stack.runner.invoke(
        "DeadLetterRedriveFunction", load_json(EVENTS / "dead_letter_redrive_schedule.json")
    )
    client.tick()

    # THEN the post is a lead; the poison message stays in the DLQ for an operator
    intake = next(v for k, v in summary.items() if "IntakeDLQ" in k)
    assert intake == {"moved": 1, "kept": 1}
    assert client.lead_by_email(email) is not None
    depths = local_stack.queue_depths()["IntakeDLQ"]
    assert depths["visible"] + depths["in_flight"] == 1
    sqs.purge_queue(QueueUrl=dlq)


def test_replay_sends_bus_and_schedule_dead_letters_to_the_target_they_name(
    local_stack: Any, client: StackClient, capsys: pytest.CaptureFixture[str]
):
    # GIVEN an event EventBridge could not deliver to the intake queue (as its DLQ keeps it: the
    # body, and the target in TARGET_ARN), and an AsyncDLQ message from Lambda naming no target
    from leadflow.dev.cli import main

    sqs = local_stack.client("sqs")
    email = unique_email("undelivered")
    message = {
        "kind": "form_submission",
        "version": 1,
        "submission_id": "01UNDELIVERED0000000000000",
        "form_id": "demo-signup",
        "received_at": local_stack.clock.now().isoformat(),
        "fields": {"email": [email]},
        "client": {"ip": "203.0.113.52", "user_agent": "test", "referer": ""},
        "idempotency_key": f"post-{email}",
    }
    intake_arn = sqs.get_queue_attributes(QueueUrl=local_stack.physical["IntakeQueue"], AttributeNames=["QueueArn"])
    target = {"DataType": "String", "StringValue": intake_arn["Attributes"]["QueueArn"]}
    sqs.send_message(
        QueueUrl=local_stack.physical["EventDeliveryDLQ"],
        MessageBody=json.dumps(message),
        MessageAttributes={"TARGET_ARN": target, "ERROR_CODE": {"DataType": "String", "StringValue": "Throttled"}},
    )
    sqs.send_message(QueueUrl=local_stack.physical["AsyncDLQ"], MessageBody='{"sweep": "mql"}')

    # WHEN the operator replays both
    assert main(["replay", "event-delivery", "--dev", client.url]) == 0
    assert main(["replay", "async", "--dev", client.url]) == 0
    client.tick()

    # THEN the event reached its target (the post is a lead); the untargeted one is left, and said so
    assert client.lead_by_email(email) is not None
    out = capsys.readouterr().out
    assert "replayed 1 message(s) from the EventDeliveryDLQ to their targets; 0 name no target" in out
    assert "replayed 0 message(s) from the AsyncDLQ to their targets; 1 name no target (left)" in out
    sqs.purge_queue(QueueUrl=local_stack.physical["AsyncDLQ"])


def dead_letter_an_outbox_batch(local_stack: Any, client: StackClient) -> str:
    """A lead whose captured events the relay gave up on (the bus refused every PutEvents);
    one stream retry here instead of the template's 50, to keep the test short."""
    [relay] = [m for m in local_stack.stream_mappings if m.function.endswith("OutboxRelayFunction")] or [
        local_stack.stream_mappings[0]
    ]
    retries, relay.max_retries = relay.max_retries, 1
    local_stack.faults.clear()
    fault = {"service": "events", "operation": "PutEvents", "error": "InternalException", "status": 500}
    client.http.post(client.url + "/_dev/faults", json=fault, timeout=10).raise_for_status()
    email = unique_email("outbox-replay")
    try:
        client.post_form("demo-signup", {"email": email, "consent": True}, as_json=True).raise_for_status()
        for _ in range(20):  # the relay's retries back off; the tick returns when queues are idle
            client.tick()
            if local_stack.queue_depths()["OutboxDLQ"]["visible"]:
                break
    finally:
        client.http.delete(client.url + "/_dev/faults", timeout=10)
        relay.max_retries = retries
    # the OutboxDLQ names the batch (where it is in the stream, never its records)
    [message] = local_stack.client("sqs").receive_message(
        QueueUrl=local_stack.physical["OutboxDLQ"], VisibilityTimeout=0
    )["Messages"]
    info = json.loads(message["Body"])
    assert set(info["DDBStreamBatchInfo"]) >= {"shardId", "startSequenceNumber", "endSequenceNumber", "streamArn"}
    assert email not in message["Body"]
    lead = client.lead_by_email(email)
    assert lead is not None
    assert lead["lead_id"] not in captured_on_the_bus(client)
    return str(lead["lead_id"])


def captured_on_the_bus(client: StackClient) -> set[str]:
    return {
        (e.get("detail") or {}).get("lead_id", "")
        for e in client.bus_events()
        if e.get("detail-type") == "lead.captured"
    }


def test_replay_outbox_publishes_again_what_the_relay_gave_up_on(
    local_stack: Any, client: StackClient, capsys: pytest.CaptureFixture[str]
):
    # GIVEN a lead whose captured event the outbox relay gave up on
    from leadflow.dev.cli import main

    lead_id = dead_letter_an_outbox_batch(local_stack, client)
    # WHEN the operator replays the outbox's DLQ
    assert main(["replay", "outbox", "--dev", client.url]) == 0
    client.tick()
    # THEN the lead's events are on the bus, the DLQ is empty, and the command said what it did
    assert lead_id in captured_on_the_bus(client)
    depths = local_stack.queue_depths()["OutboxDLQ"]
    assert depths["visible"] + depths["in_flight"] == 0
    out = capsys.readouterr().out
    assert "replayed 1 batch(es) of the OutboxDLQ" in out
    assert "left: 0 older than the stream's 24 hours, 0 refused by the bus again" in out


def test_the_scheduled_redrive_publishes_dead_lettered_outbox_batches(local_stack: Any, client: StackClient):
    # GIVEN a lead whose captured event the outbox relay gave up on
    lead_id = dead_letter_an_outbox_batch(local_stack, client)
    # WHEN the 6-hourly redrive runs (its sample event)
    summary = local_stack.runner.invoke(
        "DeadLetterRedriveFunction", load_json(EVENTS / "dead_letter_redrive_schedule.json")
    )
    client.tick()
    # THEN the batch's events are on the bus and the DLQ is empty
    assert summary["OutboxDLQ"] == {"moved": 1, "kept": 0}
    assert lead_id in captured_on_the_bus(client)
    depths = local_stack.queue_depths()["OutboxDLQ"]
    assert depths["visible"] + depths["in_flight"] == 0
