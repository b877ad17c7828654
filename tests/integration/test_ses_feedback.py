"""SES feedback end to end on the local stack: default bus -> SesEventsRule -> queue -> SesEventsFunction -> table.

Every sample in ../shared/external/ses goes through the real wiring; malformed ones end in
the DLQ at once without blocking the rest; an event the table cannot take backs off and is
applied after the outage; duplicates change nothing twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import EXTERNAL, dynamodb_outage, suppression_key, unique_email, wait_out_backoff

pytestmark = pytest.mark.integration

SES = EXTERNAL / "ses"


def publish(local_stack, message: str, configuration_set: str | None = None) -> None:
    """What SES does with an event-publishing record of the stack's configuration set (or of
    ``configuration_set``): put it on the default event bus, as an ``aws.ses`` event of its
    detail-type. Anything else (not JSON, a notification, an envelope) cannot come through the bus:
    it is sent into the SES events queue as it is, as another producer might."""
    from leadflow.domain.ses_parsing import _EVENTBRIDGE_TYPES

    detail_types = {kind: detail_type for detail_type, kind in _EVENTBRIDGE_TYPES.items()}
    try:
        record = json.loads(message)
    except ValueError:
        record = None
    kind = record.get("eventType") if isinstance(record, dict) else None
    if kind not in detail_types or not isinstance(record.get("mail"), dict):
        queue = local_stack.physical["SesEventsQueue"]
        local_stack.client("sqs").send_message(QueueUrl=queue, MessageBody=message)
        return
    tags = record["mail"].setdefault("tags", {})
    tags["ses:configuration-set"] = [configuration_set or local_stack.outputs["SesConfigurationSetName"]]
    entry = {"Source": "aws.ses", "DetailType": detail_types[kind], "Detail": json.dumps(record)}
    assert local_stack.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0


def drain(local_stack, client, seconds: float = 15) -> None:
    """Tick until the feedback queue is empty (retries of malformed messages included)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.tick()
        depth = local_stack.queue_depths()["SesEventsQueue"]
        if depth == {"visible": 0, "in_flight": 0, "delayed": 0}:
            return
        time.sleep(0.5)


def suppression(local_stack, address: str) -> dict | None:
    table = local_stack.outputs["LeadsTableName"]
    item = (
        local_stack.client("dynamodb")
        .get_item(
            TableName=table,
            Key={"PK": {"S": f"SUPPRESS#{suppression_key(local_stack, address)}"}, "SK": {"S": "SUPPRESS"}},
        )
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
    assert local_stack.queue_depths()["SesEventsQueue"] == {"visible": 0, "in_flight": 0, "delayed": 0}
    dead = local_stack.queue_depths()["SesEventsDLQ"]["visible"] - dlq_before
    # Kept for inspection, being no SES sending feedback: powertools_snsEvent.json ("Hello from SNS!")
    # and powertools_eventBridgeEvent.json (an EC2 event). The two inbound-receipt Lambda events (SES
    # *receiving*, which never publishes to this queue) are known for what they are and dropped.
    assert dead == 2
    # AND the permanent bounces and complaints suppressed their addresses
    assert suppression(local_stack, "jane@example.com") is not None  # identity bounce with DSN
    assert suppression(local_stack, "richard@example.com") is not None  # complaint
    assert suppression(local_stack, "mary@example.com") is None  # delivered, never bounced
    # AND they are listed where the senders read the whole suppression list (GSI2)
    from leadflow.adapters.nurture import DynamoNurtureStore

    store = DynamoNurtureStore(local_stack.outputs["LeadsTableName"], local_stack.client("dynamodb"))
    listed = set(store.suppressions_listed(None, 100_000) or [])
    jane, richard, mary = (
        suppression_key(local_stack, a) for a in ("jane@example.com", "richard@example.com", "mary@example.com")
    )
    assert {jane, richard} <= listed and mary not in listed
    # AND only as keyed hashes: the list never holds an address
    assert not [key for key in listed if "@" in key]


def test_an_open_a_duplicate_and_a_complaint_for_a_lead(local_stack, client):
    # GIVEN a lead who opted in
    email = unique_email("ses")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})
    # WHEN SES reports an open (twice: EventBridge delivers at least once) and then a complaint
    opened = with_recipient(SES / "awsdocs_eventpublishing_Open.json", email)
    publish(local_stack, opened)
    publish(local_stack, opened)
    publish(local_stack, with_recipient(SES / "awsdocs_eventpublishing_Complaint.json", email))
    drain(local_stack, client)
    lead = client.api(f"/leads/{lead_id}").json()
    kinds = sorted(a["type"] for a in lead["activities"])
    # THEN one complaint (SES's open is leadflow's own pixel seen again: not counted); the address
    # is suppressed and consent is withdrawn, recorded as such
    assert kinds == ["email_complained", "form_submitted"]
    assert lead["consent"]["marketing_email"]["granted"] is False
    assert [c["source"] for c in lead["consent_history"] if not c["granted"]] == ["ses_feedback"]
    assert suppression(local_stack, email)["reason"]["S"] == "complained"
    events = [e for e in client.bus_events() if e["detail"].get("lead_id") == lead_id]
    assert sorted(e["detail"]["type"] for e in events if e["source"] == "leadflow.email") == ["email_complained"]


def test_opens_and_clicks_count_once_when_ses_reports_them_too(local_stack, client):
    # GIVEN a lead, and one open and one click of an email, through leadflow's own pixel and link
    email = unique_email("twice")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})

    def token(**body: str) -> str:
        response = client.http.post(client.url + "/_dev/tokens", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    pixel = token(kind="o", lead_id=lead_id, message_id="twice-1")
    link = token(kind="c", lead_id=lead_id, message_id="twice-1", url="https://www.example.com/pricing")
    assert client.http.get(f"{client.url}/t/o/{pixel}", timeout=10).status_code == 200
    assert client.http.get(f"{client.url}/t/c/{link}", allow_redirects=False, timeout=10).status_code == 302
    # WHEN SES publishes its own Open and Click for the same email too (the real samples, with the
    # lead's address and tag, as a configuration set that still publishes them would)
    for name in ("awsdocs_eventpublishing_Open.json", "awsdocs_eventpublishing_Click.json"):
        message = json.loads(with_recipient(SES / name, email))
        message["mail"]["tags"]["lead_id"] = [lead_id]
        publish(local_stack, json.dumps(message))
    drain(local_stack, client)
    # THEN the open and the click are counted once each (leadflow's), and scored once each
    kinds = [a["type"] for a in client.api(f"/leads/{lead_id}").json()["activities"]]
    assert (kinds.count("email_opened"), kinds.count("email_clicked")) == (1, 1)
    recorded = [e for e in client.bus_events() if e["detail"].get("lead_id") == lead_id]
    opens_and_clicks = [e["source"] for e in recorded if e["detail"].get("type") in ("email_opened", "email_clicked")]
    assert opens_and_clicks == ["leadflow.tracking", "leadflow.tracking"]
    # AND SES's events were consumed, not dead-lettered
    assert local_stack.queue_depths()["SesEventsQueue"] == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_only_the_stacks_configuration_set_reaches_the_queue(local_stack, client):
    # GIVEN a lead, and SES events on the account's default bus: one of another configuration set
    # (another application sending from this account), one of the stack's
    email = unique_email("otherset")
    lead_id = client.capture("demo-signup", {"email": email})
    delayed = with_recipient(SES / "awsdocs_eventpublishing_DeliveryDelay.json", email)
    publish(local_stack, delayed, configuration_set="someone-elses-set")
    drain(local_stack, client)
    kinds = [a["type"] for a in client.api(f"/leads/{lead_id}").json()["activities"]]
    # THEN the other set's event never reaches leadflow (SesEventsRule matches this stack's set only)
    assert "email_delivery_delayed" not in kinds
    # AND the stack's own does
    publish(local_stack, delayed)
    drain(local_stack, client)
    kinds = [a["type"] for a in client.api(f"/leads/{lead_id}").json()["activities"]]
    assert kinds.count("email_delivery_delayed") == 1


def test_a_malformed_message_does_not_block_the_batch(local_stack, client):
    email = unique_email("batch")
    lead_id = client.capture("demo-signup", {"email": email})
    publish(local_stack, "this is not JSON")
    publish(local_stack, json.dumps({"eventType": "Open", "mail": {}}))
    publish(local_stack, with_recipient(SES / "awsdocs_eventpublishing_DeliveryDelay.json", email))
    drain(local_stack, client)
    kinds = [a["type"] for a in client.api(f"/leads/{lead_id}").json()["activities"]]
    assert "email_delivery_delayed" in kinds


def mail_log(local_stack, lead_id: str) -> dict:
    from leadflow.adapters.dynamo_json import deserialize

    item = (
        local_stack.client("dynamodb")
        .get_item(
            TableName=local_stack.outputs["LeadsTableName"],
            Key={"PK": {"S": f"LEAD#{lead_id}"}, "SK": {"S": "MAIL"}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return deserialize(item) if item else {}


def leadflow_email(path: Path, address: str, lead_id: str, message_id: str, at: str) -> dict:
    """An SES event sample about an email leadflow sent: its recipient, the tags and header leadflow
    sends, and every timestamp in it set to ``at``."""
    message = json.loads(with_recipient(path, address))
    message["mail"]["tags"].update({"lead": [lead_id], "sequence": ["welcome"], "step": ["welcome"]})
    message["mail"]["headers"].append({"name": "X-Leadflow-Message", "value": message_id})
    message["mail"]["timestamp"] = at
    for part in message.values():
        if isinstance(part, dict) and "timestamp" in part:
            part["timestamp"] = at
    return message


def test_delivered_is_sent_less_bounces_and_a_delivery_event_changes_nothing(local_stack, client):
    from tests.integration.test_reports import delta, sequence_cell

    # GIVEN a sign-up whose welcome email went out (the welcome step's figures of today before it)
    now = client.tick()["now"]
    day = now[:10]
    before = sequence_cell(client, "welcome", "welcome", day)
    seen = {e["id"] for e in client.bus_events()}
    email = unique_email("delivered")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})
    client.tick()
    send = next(s for s in mail_log(local_stack, lead_id)["sends"] if s.get("s") == "welcome")
    log_before = mail_log(local_stack, lead_id)
    # THEN the report counts it sent and delivered (nothing bounced)
    assert delta(sequence_cell(client, "welcome", "welcome", day), before) == {"enrolled": 1, "sent": 1, "delivered": 1}
    # WHEN SES publishes a Delivery event of it (the template does not subscribe to them; an
    # operator may), redelivered twice
    delivery = leadflow_email(SES / "awsdocs_eventpublishing_Delivery.json", email, lead_id, send["m"], now)
    for _ in range(3):
        publish(local_stack, json.dumps(delivery))
        drain(local_stack, client)
    # THEN nothing changes: the mail log is as it was, the report the same, no activity, no bus event
    assert mail_log(local_stack, lead_id) == log_before
    assert delta(sequence_cell(client, "welcome", "welcome", day), before) == {"enrolled": 1, "sent": 1, "delivered": 1}
    kinds = [a["type"] for a in client.api(f"/leads/{lead_id}").json()["activities"]]
    assert not {"email_delivered", "email_sent"} & set(kinds)
    mine = [e for e in client.bus_events() if e["id"] not in seen and e["detail"].get("lead_id") == lead_id]
    assert [e for e in mine if e["source"] == "leadflow.email"] == []
    # WHEN the email bounces
    bounced_at = client.tick()["now"]
    bounce = leadflow_email(SES / "awsdocs_eventpublishing_Bounce.json", email, lead_id, send["m"], bounced_at)
    publish(local_stack, json.dumps(bounce))
    drain(local_stack, client)
    settle_reports(local_stack, client)
    # THEN it counts as bounced, and no longer as delivered
    assert delta(sequence_cell(client, "welcome", "welcome", day), before) == {"enrolled": 1, "sent": 1, "bounces": 1}
    assert local_stack.queue_depths()["SesEventsQueue"] == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_a_complaint_about_a_sequence_email_reaches_its_step_in_the_report(local_stack, client):
    from tests.integration.test_reports import delta, sequence_cell

    # GIVEN a sign-up whose welcome email went out
    now = client.tick()["now"]
    day = now[:10]
    before = sequence_cell(client, "welcome", "welcome", day)
    email = unique_email("complained")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})
    client.tick()
    send = next(s for s in mail_log(local_stack, lead_id)["sends"] if s.get("s") == "welcome")
    # WHEN its recipient marks it as spam (SES's Complaint event, delivered twice)
    complained_at = client.tick()["now"]
    complaint = leadflow_email(SES / "awsdocs_eventpublishing_Complaint.json", email, lead_id, send["m"], complained_at)
    for _ in range(2):
        publish(local_stack, json.dumps(complaint))
        drain(local_stack, client)
    settle_reports(local_stack, client)
    # THEN the welcome step counts one complaint beside its send (once), and the address is suppressed
    assert delta(sequence_cell(client, "welcome", "welcome", day), before) == {
        "enrolled": 1,
        "sent": 1,
        "delivered": 1,
        "complaints": 1,
    }
    assert suppression(local_stack, email)["reason"]["S"] == "complained"


def settle_reports(local_stack, client, seconds: float = 15) -> None:
    """Tick until the reporting queue is empty (the bounce's activity counted)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.tick()
        if local_stack.queue_depths()["ReportingQueue"] == {"visible": 0, "in_flight": 0, "delayed": 0}:
            return
        time.sleep(0.5)


def test_a_send_event_writes_the_mail_log_only_for_an_uncertain_send(local_stack, client):
    from datetime import datetime, timedelta

    from leadflow.adapters.nurture.store import DynamoNurtureStore

    # GIVEN a sign-up whose welcome email went out plainly (not uncertain)
    email = unique_email("sendevent")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})
    now = datetime.fromisoformat(client.tick()["now"])
    send = next(s for s in mail_log(local_stack, lead_id)["sends"] if s.get("s") == "welcome")
    log_before = mail_log(local_stack, lead_id)
    # WHEN its Send event arrives 75 s after SES took the email (the SES events queue's delay in AWS)
    took = (now - timedelta(seconds=75)).isoformat().replace("+00:00", "Z")
    event = leadflow_email(SES / "awsdocs_eventpublishing_Send.json", email, lead_id, send["m"], took)
    publish(local_stack, json.dumps(event))
    drain(local_stack, client)
    # THEN the mail log is only read: nothing written
    assert mail_log(local_stack, lead_id) == log_before
    # WHEN the send is marked uncertain (its SendEmail failed ambiguously) and the event comes again
    store = DynamoNurtureStore(local_stack.outputs["LeadsTableName"], local_stack.client("dynamodb"))
    assert store.mark_uncertain(lead_id, send["m"], now, float("inf"))
    publish(local_stack, json.dumps(event))
    drain(local_stack, client)
    # THEN it is confirmed: never sent again
    marked = next(s for s in mail_log(local_stack, lead_id)["sends"] if s["m"] == send["m"])
    assert marked.get("c") is True and "u" in marked
    assert local_stack.queue_depths()["SesEventsQueue"] == {"visible": 0, "in_flight": 0, "delayed": 0}


EMPTY = {"visible": 0, "in_flight": 0, "delayed": 0}
FEEDBACK_CALLS = ("GetItem", "PutItem", "UpdateItem", "Query", "TransactWriteItems")


def test_an_event_in_a_table_outage_backs_off_and_is_applied_after_it(local_stack, client):
    # GIVEN a sign-up whose welcome email went out
    email = unique_email("outagebounce")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})
    now = client.tick()["now"]
    send = next(s for s in mail_log(local_stack, lead_id)["sends"] if s.get("s") == "welcome")
    dead_before = local_stack.queue_depths()["SesEventsDLQ"]
    # WHEN its bounce arrives while the table is down, for longer than the local stack's 2 s retries
    # of three receives (the queue's maxReceiveCount was 3: the 100,000-lead soak lost 20 events so)
    bounce = leadflow_email(SES / "awsdocs_eventpublishing_Bounce.json", email, lead_id, send["m"], now)
    with dynamodb_outage(local_stack, client, FEEDBACK_CALLS):
        publish(local_stack, json.dumps(bounce))
        drain(local_stack, client, seconds=12)
        # THEN it waits in its queue, backed off (a minute on the stack's clock), not dead-lettered
        assert local_stack.queue_depths()["SesEventsQueue"]["in_flight"] == 1
        assert local_stack.queue_depths()["SesEventsDLQ"] == dead_before
    assert suppression(local_stack, email) is None  # (read once the table answers again)
    # WHEN the outage is over and the clock passes the backoff
    wait_out_backoff(local_stack, client, "SesEventsQueue")
    # THEN the bounce is applied: the address suppressed, its activity recorded, nothing dead-lettered
    assert local_stack.queue_depths()["SesEventsQueue"] == EMPTY
    assert local_stack.queue_depths()["SesEventsDLQ"] == dead_before
    assert suppression(local_stack, email) is not None
    kinds = [a["type"] for a in client.api(f"/leads/{lead_id}").json()["activities"]]
    assert kinds.count("email_bounced") == 1


def test_a_malformed_message_is_dead_lettered_at_once_with_its_redrive_count(local_stack):
    # GIVEN a malformed message the scheduled redrive has already brought back twice
    sqs = local_stack.client("sqs")
    dlq = local_stack.physical["SesEventsDLQ"]
    queue = local_stack.physical["SesEventsQueue"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    body = json.dumps({"eventType": "Bounce", "mail": {}, "note": unique_email("malformed")})
    record = {
        "messageId": "0c6b5a4e-malformed",
        "receiptHandle": "handle-malformed",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764000000000"},
        "messageAttributes": {"leadflow_redrives": {"stringValue": "2", "dataType": "Number"}},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }
    # WHEN the function receives it (its first receive)
    result = local_stack.runner.invoke("SesEventsFunction", {"Records": [record]})
    # THEN the batch succeeds (nothing is retried) and the DLQ holds it, its redrive count kept: the
    # redrive's limit still ends a poison message's round trips
    assert result == {"batchItemFailures": []}
    kept = []
    while batch := sqs.receive_message(
        QueueUrl=dlq, MessageAttributeNames=["All"], MaxNumberOfMessages=10, VisibilityTimeout=30
    ).get("Messages"):
        kept += [m for m in batch if m["Body"] == body]
    assert len(kept) == 1
    assert kept[0]["MessageAttributes"]["leadflow_redrives"] == {"StringValue": "2", "DataType": "Number"}
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=kept[0]["ReceiptHandle"])
