"""SES feedback end to end on the local stack: SNS topic -> queue -> SesEventsFunction -> table.

Every sample in ../shared/external/ses goes through the real wiring; malformed ones end in
the DLQ without blocking the rest; duplicates change nothing twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import EXTERNAL, unique_email

pytestmark = pytest.mark.integration

SES = EXTERNAL / "ses"


def publish(local_stack, message: str) -> None:
    local_stack.client("sns").publish(TopicArn=local_stack.outputs["SesFeedbackTopicArn"], Message=message)


def drain(local_stack, client, seconds: float = 15) -> None:
    """Tick until the feedback queue is empty (retries of malformed messages included)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.tick()
        depth = local_stack.queue_depths()["SesEventsQueue"]
        if depth == {"visible": 0, "in_flight": 0}:
            return
        time.sleep(0.5)


def suppression(local_stack, address: str) -> dict | None:
    table = local_stack.outputs["LeadsTableName"]
    item = (
        local_stack.client("dynamodb")
        .get_item(TableName=table, Key={"PK": {"S": f"SUPPRESS#{address}"}, "SK": {"S": "SUPPRESS"}})
        .get("Item")
    )
    return item


def as_published(path: Path) -> str | None:
    """What SES would have published to the topic for this sample (envelopes unwrapped)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("Type") == "SubscriptionConfirmation":
        return None  # SNS confirms SQS subscriptions itself: never delivered to the queue
    if document.get("Type") == "Notification":
        return str(document["Message"])  # an SNS HTTPS body: its message
    records = document.get("Records") or [{}]
    if "Sns" in records[0]:
        return str(records[0]["Sns"]["Message"])  # a Lambda SNS event: its message
    if "detail-type" in document:
        return json.dumps(document["detail"])  # an EventBridge event: its detail
    return path.read_text(encoding="utf-8")


def with_recipient(path: Path, address: str) -> str:
    """The sample with its recipient replaced (so tests do not share leads)."""
    return path.read_text(encoding="utf-8").replace("recipient@example.com", address)


def test_every_shared_sample_is_applied_or_dead_lettered(local_stack, client):
    if not SES.is_dir():
        pytest.skip("../shared/external/ses not beside the repository")
    samples = sorted(SES.glob("*.json"))
    dlq_before = local_stack.queue_depths()["SesEventsDLQ"]["visible"]
    for path in samples:
        message = as_published(path)
        if message is not None:
            publish(local_stack, message)
    drain(local_stack, client, seconds=30)
    # THEN nothing is stuck, and only messages that are not SES feedback at all are kept in the DLQ
    assert local_stack.queue_depths()["SesEventsQueue"] == {"visible": 0, "in_flight": 0}
    dead = local_stack.queue_depths()["SesEventsDLQ"]["visible"] - dlq_before
    # Kept for inspection, being no SES sending feedback: powertools_snsEvent.json ("Hello from SNS!"),
    # powertools_eventBridgeEvent.json (an EC2 event) and the two inbound-receipt Lambda events
    # (SES *receiving*, which never publishes to this topic).
    assert dead == 4
    # AND the permanent bounces and complaints suppressed their addresses
    assert suppression(local_stack, "jane@example.com") is not None  # identity bounce with DSN
    assert suppression(local_stack, "richard@example.com") is not None  # complaint
    assert suppression(local_stack, "mary@example.com") is None  # delivered, never bounced
    # AND they are listed where the senders read the whole suppression list (GSI2)
    from leadflow.adapters.nurture import DynamoNurtureStore

    store = DynamoNurtureStore(local_stack.outputs["LeadsTableName"], local_stack.client("dynamodb"))
    listed = store.suppressions_listed(None, 100_000) or []
    assert {"jane@example.com", "richard@example.com"} <= set(listed) and "mary@example.com" not in listed


def test_an_open_a_duplicate_and_a_complaint_for_a_lead(local_stack, client):
    # GIVEN a lead who opted in
    email = unique_email("ses")
    lead_id = client.post_form("demo-signup", {"email": email, "consent": True}, as_json=True).json()["lead_id"]
    # WHEN SES reports an open (twice: SNS delivers at least once) and then a complaint
    opened = with_recipient(SES / "awsdocs_eventpublishing_Open.json", email)
    publish(local_stack, opened)
    publish(local_stack, opened)
    publish(local_stack, with_recipient(SES / "awsdocs_eventpublishing_Complaint.json", email))
    drain(local_stack, client)
    lead = client.api(f"/leads/{lead_id}").json()
    kinds = sorted(a["type"] for a in lead["activities"])
    # THEN one open, one complaint; the address is suppressed and consent is withdrawn, recorded as such
    assert kinds == ["email_complained", "email_opened", "form_submitted"]
    assert lead["consent"]["marketing_email"]["granted"] is False
    assert [c["source"] for c in lead["consent_history"] if not c["granted"]] == ["ses_feedback"]
    assert suppression(local_stack, email)["reason"]["S"] == "complained"
    events = [e for e in client.bus_events() if e["detail"].get("lead_id") == lead_id]
    assert sorted(e["detail"]["type"] for e in events if e["source"] == "leadflow.email") == [
        "email_complained",
        "email_opened",
    ]


def test_a_malformed_message_does_not_block_the_batch(local_stack, client):
    email = unique_email("batch")
    lead_id = client.post_form("demo-signup", {"email": email}, as_json=True).json()["lead_id"]
    publish(local_stack, "this is not JSON")
    publish(local_stack, json.dumps({"eventType": "Open", "mail": {}}))
    publish(local_stack, with_recipient(SES / "awsdocs_eventpublishing_Delivery.json", email))
    drain(local_stack, client)
    kinds = [a["type"] for a in client.api(f"/leads/{lead_id}").json()["activities"]]
    assert "email_delivered" in kinds
