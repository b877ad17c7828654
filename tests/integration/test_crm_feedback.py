"""Sales feedback on the local stack: ``POST /crm/{provider}/webhook`` closes the loop.

Requests are signed the way each CRM signs them (Standard Webhooks with the stack's generic
secret, HubSpot v3 with its client secret, Salesforce by the endpoint URL's token and the
organization id), on the dev clock,
and sent through the gateway. Hand-off records and CRM references are written into the table
as the hand-off delivery stores them (docs/data-model.md), so these tests exercise only the
way back; the whole loop from a form to a won lead is the end-to-end test.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.domain.crm_feedback import hubspot_v3_signature
from leadflow.domain.definitions.handoff import Owner
from leadflow.domain.handoff import Route, new_record, transition
from leadflow.domain.ids import new_id
from leadflow.domain.webhook_signing import new_secret, sign
from tests.conftest import ROOT, StackClient, external, load_json, unique_email

pytestmark = pytest.mark.integration

ORG = "00De0000000pmu1EAA"


# ---------------------------------------------------------------------------- helpers


def dev_now(client: StackClient) -> datetime:
    return datetime.fromisoformat(client.http.get(client.url + "/_dev/clock", timeout=10).json()["now"])


def new_lead(client: StackClient, **fields: str) -> str:
    return client.capture(
        "demo-signup", {"email": unique_email("sales"), "first_name": "Ada", "consent": "yes", **fields}
    )


def table(local_stack: Any) -> tuple[Any, str]:
    return local_stack.client("dynamodb"), local_stack.outputs["LeadsTableName"]


def item(local_stack: Any, pk: str, sk: str) -> dict[str, Any] | None:
    dynamodb, name = table(local_stack)
    found = dynamodb.get_item(TableName=name, Key=serialize({"PK": pk, "SK": sk}), ConsistentRead=True)
    return deserialize(found["Item"]) if "Item" in found else None


def seed_handoff(local_stack: Any, lead_id: str, status: str = "delivered", owner_id: str = "rep-feedback") -> str:
    """A hand-off record as the hand-off delivery leaves it (built by its domain), the lead pointing at it."""
    dynamodb, name = table(local_stack)
    now = local_stack.clock.now()
    handoff_id = new_id(now)
    owner = Owner(id=owner_id, name="Rep Feedback", email="rep.feedback@example.com")
    record = new_record(
        handoff_id, lead_id, "manual", "test", Route("default_team", owner, "smb"), ["crm"], now, "test"
    )
    record = transition(record, status, now, "system", "webhook 200")
    record["rev"] = 2
    dynamodb.put_item(
        TableName=name, Item=serialize({"PK": f"LEAD#{lead_id}", "SK": f"HANDOFF#{handoff_id}", **record})
    )
    dynamodb.update_item(
        TableName=name,
        Key=serialize({"PK": f"LEAD#{lead_id}", "SK": "PROFILE"}),
        UpdateExpression="SET handoff_id = :h",
        ExpressionAttributeValues=serialize({":h": handoff_id}),
    )
    return handoff_id


def seed_crm_ref(local_stack: Any, provider: str, external_id: str, lead_id: str, handoff_id: str) -> None:
    dynamodb, name = table(local_stack)
    ref = {"PK": f"CRMREF#{provider}#{external_id}", "SK": "CRMREF", "lead_id": lead_id, "handoff_id": handoff_id}
    dynamodb.put_item(TableName=name, Item=serialize({**ref, "provider": provider, "external_id": external_id}))


def post_generic(
    client: StackClient,
    body: dict[str, Any] | str,
    *,
    webhook_id: str | None = None,
    secret: str | None = None,
    at: datetime | None = None,
) -> requests.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    headers = sign(
        secret or client.info["inbound_webhook_secrets"]["generic"],
        webhook_id or f"msg_{uuid.uuid4().hex}",
        int((at or dev_now(client)).timestamp()),
        text,
    ).as_dict()
    return client.http.post(
        f"{client.url}/crm/generic/webhook",
        data=text.encode(),
        headers={**headers, "content-type": "application/json"},
        timeout=30,
    )


def post_hubspot(client: StackClient, events: list[dict[str, Any]], *, secret: str | None = None) -> requests.Response:
    body = json.dumps(events)
    timestamp = str(int(dev_now(client).timestamp() * 1000))
    uri = "https://127.0.0.1/crm/hubspot/webhook"  # what API Gateway's domainName and rawPath give
    signature = hubspot_v3_signature(
        secret or client.info["inbound_webhook_secrets"]["hubspot"], "POST", uri, body, timestamp
    )
    headers = {
        "content-type": "application/json",
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-Version": "v3",
    }
    return client.http.post(f"{client.url}/crm/hubspot/webhook", data=body.encode(), headers=headers, timeout=30)


def outbound_message(notifications: list[tuple[str, str, dict[str, str]]], org: str = ORG) -> str:
    """A Salesforce Outbound Message like the shared sample, one Notification per (id, type, fields)."""
    sample = load_json(external("crm/salesforce_outbound_message_soap.json"))["request_xml"]
    head = sample[: sample.index("<Notification>")].replace(ORG, org, 1)
    tail = sample[sample.index("</Notification>") + len("</Notification>") :]
    parts = []
    for notification_id, kind, fields in notifications:
        inner = "".join(f"<sf:{k}>{v}</sf:{k}>" for k, v in fields.items())
        parts.append(
            f"<Notification><Id>{notification_id}</Id>"
            f'<sObject xsi:type="sf:{kind}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{inner}</sObject>'
            "</Notification>"
        )
    return head + "".join(parts) + tail


def post_salesforce(client: StackClient, xml: str, token: str | None = "stack's") -> requests.Response:
    """Post as Salesforce does, to the endpoint URL with the stack's token (``token=None``: the bare URL)."""
    token = client.info["inbound_webhook_secrets"]["salesforce"] if token == "stack's" else token
    return client.http.post(
        f"{client.url}/crm/salesforce/webhook",
        params={"token": token} if token is not None else None,
        data=xml.encode(),
        headers={"content-type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=30,
    )


def lead(client: StackClient, lead_id: str) -> dict[str, Any]:
    response = client.api(f"/leads/{lead_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def crm_events(client: StackClient, lead_id: str) -> list[dict[str, Any]]:
    return [
        e for e in client.bus_events() if e.get("source") == "leadflow.crm" and e["detail"].get("lead_id") == lead_id
    ]


# ---------------------------------------------------------------------------- generic


def test_accepted_feedback_makes_an_sql_and_closes_nurture(client: StackClient, local_stack: Any) -> None:
    # GIVEN a lead in the welcome sequence whose hand-off was delivered
    lead_id = new_lead(client)
    client.tick()
    handoff_id = seed_handoff(local_stack, lead_id)
    # WHEN sales accepts it
    response = post_generic(
        client, {"lead_id": lead_id, "handoff_id": handoff_id, "outcome": "accepted", "owner": "rep-1"}
    )
    # THEN the lead is an SQL, the hand-off says accepted (history appended, version moved on)
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "applied"}
    assert lead(client, lead_id)["stage"] == "sql"
    record = item(local_stack, f"LEAD#{lead_id}", f"HANDOFF#{handoff_id}")
    assert record is not None
    assert record["status"] == "accepted"
    assert record["rev"] == 3
    assert [h["status"] for h in record["history"]] == ["assigned", "delivered", "accepted"]
    assert record["history"][-1]["by"] == "crm:generic"
    # AND the timeline shows it, the bus carries it, and the welcome sequence's goal ends it
    client.tick()
    activities = [a for a in lead(client, lead_id)["activities"] if a["type"] == "sales_feedback"]
    assert [(a["outcome"], a["provider"]) for a in activities] == [("accepted", "generic")]
    kinds = {(e["detail-type"], e["detail"].get("to")) for e in crm_events(client, lead_id)}
    assert kinds == {("handoff.feedback", None), ("lead.stage_changed", "sql")}
    enrollments = client.api(f"/leads/{lead_id}/enrollments").json()["enrollments"]
    welcome = next(e for e in enrollments if e["sequence_id"] == "welcome")
    assert welcome["status"] != "active", welcome


def test_a_replayed_webhook_is_applied_once(client: StackClient, local_stack: Any) -> None:
    lead_id = new_lead(client)
    handoff_id = seed_handoff(local_stack, lead_id)
    body = {"lead_id": lead_id, "outcome": "opportunity", "amount": 5000, "currency": "EUR"}
    # WHEN the same message (same webhook-id) arrives three times, as a retrying sender does
    answers = [post_generic(client, body, webhook_id="msg_replay_" + lead_id) for _ in range(3)]
    # THEN it was applied the first time only
    assert [a.json()["result"] for a in answers] == ["applied", "duplicate", "duplicate"]
    record = item(local_stack, f"LEAD#{lead_id}", f"HANDOFF#{handoff_id}")
    assert record is not None and record["rev"] == 3
    assert [h["status"] for h in record["history"]].count("opportunity") == 1
    client.tick()
    assert len([a for a in lead(client, lead_id)["activities"] if a["type"] == "sales_feedback"]) == 1
    assert len([e for e in crm_events(client, lead_id) if e["detail-type"] == "handoff.feedback"]) == 1


def test_forged_stale_or_altered_requests_change_nothing(client: StackClient, local_stack: Any) -> None:
    lead_id = new_lead(client)
    handoff_id = seed_handoff(local_stack, lead_id)
    client.tick()  # the capture is scored first: nothing else may change the lead below
    before = item(local_stack, f"LEAD#{lead_id}", "PROFILE")
    body = {"lead_id": lead_id, "outcome": "won"}
    now = dev_now(client)
    attempts = {
        "another secret": post_generic(client, body, secret=new_secret(b"x" * 24)),
        "ten minutes old": post_generic(client, body, at=now - timedelta(minutes=10)),
        "from the future": post_generic(client, body, at=now + timedelta(minutes=10)),
        "no signature": client.http.post(
            f"{client.url}/crm/generic/webhook", json=body, headers={"webhook-id": "m", "webhook-timestamp": "1"}
        ),
    }
    text = json.dumps(body)
    headers = sign(client.info["inbound_webhook_secrets"]["generic"], "msg_alter", int(now.timestamp()), text)
    altered = text.replace("won", "accepted")
    attempts["altered body"] = client.http.post(
        f"{client.url}/crm/generic/webhook",
        data=altered,
        headers={**headers.as_dict(), "content-type": "application/json"},
    )
    assert {name: r.status_code for name, r in attempts.items()} == dict.fromkeys(attempts, 401)
    assert all(r.json() == {"error": "invalid_signature"} for r in attempts.values())
    assert item(local_stack, f"LEAD#{lead_id}", "PROFILE") == before
    assert item(local_stack, f"LEAD#{lead_id}", f"HANDOFF#{handoff_id}")["status"] == "delivered"  # type: ignore[index]
    assert item(local_stack, "CRMEVT#generic#msg_alter", "CRMEVT") is None


def test_bad_requests_get_clear_refusals(client: StackClient) -> None:
    lead_id = new_lead(client)
    malformed = post_generic(client, {"lead_id": lead_id, "outcome": "maybe", "amount": -3})
    assert malformed.status_code == 400
    problems = malformed.json()["problems"]
    assert any(p.startswith("outcome") for p in problems) and any(p.startswith("amount") for p in problems)
    unknown = post_generic(client, {"lead_id": "01KB0000000000000000000000", "outcome": "accepted"})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "unknown_lead"})
    unknown_handoff = post_generic(
        client, {"lead_id": lead_id, "handoff_id": "01KB0000000000000000000000", "outcome": "accepted"}
    )
    assert (unknown_handoff.status_code, unknown_handoff.json()) == (404, {"error": "unknown_handoff"})
    assert client.http.post(f"{client.url}/crm/pipedrive/webhook", json={}).status_code == 404
    too_big = client.http.post(
        f"{client.url}/crm/generic/webhook", data=b"x" * (256 * 1024 + 1), headers={"content-type": "application/json"}
    )
    assert too_big.status_code == 413
    text = json.dumps({"lead_id": lead_id, "outcome": "accepted"})
    headers = sign(
        client.info["inbound_webhook_secrets"]["generic"], "msg_form", int(dev_now(client).timestamp()), text
    )
    as_form = client.http.post(
        f"{client.url}/crm/generic/webhook",
        data=text,
        headers={**headers.as_dict(), "content-type": "application/x-www-form-urlencoded"},
    )
    assert as_form.status_code == 415
    assert lead(client, lead_id)["stage"] != "sql"


def test_rejected_leads_are_recycled_into_nurture(client: StackClient, local_stack: Any) -> None:
    # GIVEN two handed-off leads
    recycled, disqualified = new_lead(client), new_lead(client)
    for lead_id in (recycled, disqualified):
        seed_handoff(local_stack, lead_id)
    # WHEN sales rejects one for timing and one as a competitor
    assert post_generic(client, {"lead_id": recycled, "outcome": "rejected", "reason": "bad timing"}).ok
    assert post_generic(client, {"lead_id": disqualified, "outcome": "rejected", "reason": "Competitor"}).ok
    client.tick()
    # THEN the first is recycled and nurtured again by the recycle sequence, the second is out
    assert lead(client, recycled)["stage"] == "recycled"
    assert lead(client, disqualified)["stage"] == "disqualified"
    sequences = {e["sequence_id"] for e in client.api(f"/leads/{recycled}/enrollments").json()["enrollments"]}
    assert "recycle" in sequences
    sequences = {e["sequence_id"] for e in client.api(f"/leads/{disqualified}/enrollments").json()["enrollments"]}
    assert "recycle" not in sequences


def test_older_feedback_arriving_late_changes_nothing(client: StackClient, local_stack: Any) -> None:
    lead_id = new_lead(client)
    handoff_id = seed_handoff(local_stack, lead_id)
    now = dev_now(client)
    won = {"lead_id": lead_id, "outcome": "won", "occurred_at": now.isoformat()}
    accepted = {"lead_id": lead_id, "outcome": "accepted", "occurred_at": (now - timedelta(days=2)).isoformat()}
    assert post_generic(client, won).json() == {"result": "applied"}
    assert post_generic(client, accepted).json() == {"result": "stale"}
    assert lead(client, lead_id)["stage"] == "customer"
    record = item(local_stack, f"LEAD#{lead_id}", f"HANDOFF#{handoff_id}")
    assert record is not None and record["status"] == "won"


def test_concurrent_feedback_and_scoring_lose_no_update(client: StackClient, local_stack: Any) -> None:
    # GIVEN a lead being scored while several feedback messages for it arrive at once
    lead_id = new_lead(client)
    handoff_id = seed_handoff(local_stack, lead_id)
    now = dev_now(client)
    outcomes = ["accepted", "opportunity", "won"]
    bodies = [
        {"lead_id": lead_id, "outcome": o, "occurred_at": (now + timedelta(seconds=i)).isoformat()}
        for i, o in enumerate(outcomes)
    ]
    answers: list[requests.Response] = []
    barrier = threading.Barrier(len(bodies))

    def send(body: dict[str, Any]) -> None:
        barrier.wait()
        answers.append(post_generic(client, body))

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    client.tick()  # scoring of the lead's capture runs meanwhile
    for thread in threads:
        thread.join()
    # THEN every message was answered, none lost: each applied one, or stale (an older one after a newer)
    assert sorted(a.status_code for a in answers) == [200, 200, 200]
    results = [a.json()["result"] for a in answers]
    assert set(results) <= {"applied", "stale"} and "applied" in results
    record = item(local_stack, f"LEAD#{lead_id}", f"HANDOFF#{handoff_id}")
    assert record is not None
    applied = [h for h in record["history"] if h["by"] == "crm:generic"]
    assert len(applied) == results.count("applied") == record["rev"] - 2
    assert record["status"] == "won" and lead(client, lead_id)["stage"] == "customer"


# ---------------------------------------------------------------------------- HubSpot


def change(object_id: int, event_id: int, name: str, value: str, at: datetime) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionId": 777,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": int(at.timestamp() * 1000),
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": name,
        "propertyValue": value,
        "changeSource": "CRM",
    }


def test_hubspot_property_changes_close_the_loop(client: StackClient, local_stack: Any) -> None:
    # GIVEN a lead handed off to HubSpot as contact 5001
    lead_id = new_lead(client)
    handoff_id = seed_handoff(local_stack, lead_id)
    object_id = int(uuid.uuid4().int % 10**9)
    seed_crm_ref(local_stack, "hubspot", str(object_id), lead_id, handoff_id)
    now = dev_now(client)
    batch = [
        change(object_id, 1, "hs_lead_status", "IN_PROGRESS", now),
        change(object_id, 2, "firstname", "Ada", now),  # not feedback
        change(object_id + 1, 3, "hs_lead_status", "IN_PROGRESS", now),  # a contact leadflow never sent
    ]
    # WHEN HubSpot posts its signed batch (and retries it)
    first = post_hubspot(client, batch)
    retry = post_hubspot(client, [{**e, "attemptNumber": 1} for e in batch])
    # THEN the mapped change is applied once; the rest is acknowledged and counted
    assert first.status_code == 200, first.text
    assert first.json() == {"results": {"applied": 1, "unknown_lead": 1, "ignored": 1}}
    assert retry.json() == {"results": {"duplicate": 1, "unknown_lead": 1, "ignored": 1}}
    assert lead(client, lead_id)["stage"] == "sql"
    record = item(local_stack, f"LEAD#{lead_id}", f"HANDOFF#{handoff_id}")
    assert record is not None and record["history"][-1]["by"] == "crm:hubspot"
    assert record["history"][-1]["detail"] == "property=hs_lead_status, value=IN_PROGRESS"


def test_hubspot_requests_signed_otherwise_are_refused(client: StackClient, local_stack: Any) -> None:
    lead_id = new_lead(client)
    handoff_id = seed_handoff(local_stack, lead_id)
    seed_crm_ref(local_stack, "hubspot", "424242", lead_id, handoff_id)
    batch = [change(424242, 9, "lifecyclestage", "customer", dev_now(client))]
    assert post_hubspot(client, batch, secret="not-the-client-secret").status_code == 401
    unsigned = client.http.post(f"{client.url}/crm/hubspot/webhook", json=batch)
    assert unsigned.status_code == 401
    assert lead(client, lead_id)["stage"] != "customer"


# ---------------------------------------------------------------------------- Salesforce


def test_salesforce_outbound_messages_are_acknowledged_once(client: StackClient) -> None:
    converted, contacted = new_lead(client), new_lead(client)
    notification = f"04l{uuid.uuid4().hex[:15]}"
    converted_fields = {"Id": "00Q5e00000Aa001", "Status": "Closed - Converted", "Leadflow_Id__c": converted}
    contacted_fields = {"Id": "00Q5e00000Aa002", "Status": "Working - Contacted", "Leadflow_Id__c": contacted}
    untouched_fields = {"Id": "00Q5e00000Aa003", "Status": "Open - Not Contacted"}
    xml = outbound_message(
        [
            (notification, "Lead", converted_fields),
            (notification + "b", "Lead", contacted_fields),
            (notification + "c", "Lead", untouched_fields),
        ]
    )
    first = post_salesforce(client, xml)
    again = post_salesforce(client, xml)  # Salesforce resends until it gets the Ack
    for response in (first, again):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert "<Ack>true</Ack>" in response.text
    assert lead(client, converted)["stage"] == "customer"
    assert lead(client, contacted)["stage"] == "sql"
    timeline = [a for a in lead(client, converted)["activities"] if a["type"] == "sales_feedback"]
    assert [a["outcome"] for a in timeline] == ["won"]


def test_salesforce_messages_from_another_org_or_malformed_are_refused(client: StackClient) -> None:
    lead_id = new_lead(client)
    fields = {"Id": "00Q5e00000Aa009", "Status": "Closed - Converted", "Leadflow_Id__c": lead_id}
    foreign = post_salesforce(client, outbound_message([("04lforeign", "Lead", fields)], org="00Dx0000000AbCdEAA"))
    assert foreign.status_code == 403
    assert "<Ack>" not in foreign.text and "Fault" in foreign.text
    broken = post_salesforce(client, "<soapenv:Envelope")
    assert broken.status_code == 400
    bomb = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>'
    assert post_salesforce(client, bomb).status_code == 400
    assert lead(client, lead_id)["stage"] != "customer"


def test_forged_salesforce_messages_without_the_endpoint_token_are_refused(client: StackClient) -> None:
    # GIVEN a lead, and a forged Outbound Message naming the allowed (public) organization id
    lead_id = new_lead(client)
    fields = {
        "Id": "00Q5e00000Aa010",
        "Status": "Closed - Not Converted",
        "Leadflow_Id__c": lead_id,
        "Rejection_Reason__c": "spam",
        "LastModifiedDate": "2099-01-01T00:00:00.000Z",
    }
    forged = outbound_message([(f"04l{uuid.uuid4().hex[:15]}", "Lead", fields)])
    # WHEN it is posted to the bare URL, or with a guessed token
    for token in (None, "", "00De0000000pmu1EAA", client.info["inbound_webhook_secrets"]["salesforce"][:-1]):
        answer = post_salesforce(client, forged, token=token)
        # THEN it is refused as unauthenticated (a SOAP fault, no Ack) and the lead is untouched
        assert answer.status_code == 401, (token, answer.text)
        assert "<Ack>" not in answer.text and "Fault" in answer.text
    assert lead(client, lead_id)["stage"] != "disqualified"


def test_salesforce_feedback_dated_in_the_future_cannot_make_later_feedback_stale(client: StackClient) -> None:
    # GIVEN a lead and an authenticated message whose LastModifiedDate is far ahead (a clock gone wrong)
    lead_id = new_lead(client)
    now = dev_now(client)

    def message(status: str, at: datetime) -> str:
        fields = {"Id": "00Q5e00000Aa011", "Status": status, "Leadflow_Id__c": lead_id}
        fields["LastModifiedDate"] = at.isoformat().replace("+00:00", "Z")
        return outbound_message([(f"04l{uuid.uuid4().hex[:15]}", "Lead", fields)])

    future = post_salesforce(client, message("Closed - Not Converted", datetime(2099, 1, 1, tzinfo=now.tzinfo)))
    # THEN it is refused (Salesforce keeps retrying a fault; nothing is applied)
    assert future.status_code == 400 and "in the future" in future.text
    # AND a message a little ahead (clock skew) and the next real one still apply
    assert post_salesforce(client, message("Working - Contacted", now + timedelta(minutes=4))).status_code == 200
    assert lead(client, lead_id)["stage"] == "sql"
    assert post_salesforce(client, message("Closed - Converted", now + timedelta(minutes=5))).status_code == 200
    assert lead(client, lead_id)["stage"] == "customer"


def test_closing_feedback_frees_the_owner(client: StackClient, local_stack: Any) -> None:
    # GIVEN an owner carrying two open hand-offs (capacity counts them)
    first, second = new_lead(client), new_lead(client)
    owner_id = f"rep-{uuid.uuid4().hex[:8]}"
    seed_handoff(local_stack, first, owner_id=owner_id)
    seed_handoff(local_stack, second, owner_id=owner_id)
    dynamodb, name = table(local_stack)
    key = serialize({"PK": f"OWNER#{owner_id}", "SK": "LOAD"})
    dynamodb.put_item(TableName=name, Item={**key, "open_handoffs": {"N": "2"}})
    # WHEN sales accepts one (still open) and loses the other (closed)
    assert post_generic(client, {"lead_id": first, "outcome": "accepted"}).json() == {"result": "applied"}
    assert post_generic(client, {"lead_id": second, "outcome": "lost"}).json() == {"result": "applied"}
    # THEN only the closed one frees capacity
    assert item(local_stack, f"OWNER#{owner_id}", "LOAD")["open_handoffs"] == 1  # type: ignore[index]


# ---------------------------------------------------------------------------- the fake CRM talking back


def test_the_fake_crm_reports_back_through_the_real_webhook(client: StackClient) -> None:
    # GIVEN two leads
    generic, salesforce = new_lead(client), new_lead(client)
    # WHEN the dev console's fake CRM says sales accepted one (generic) and won the other (Salesforce)
    accepted = client.http.post(
        f"{client.url}/_dev/crm/feedback", json={"lead_id": generic, "outcome": "accepted"}, timeout=30
    )
    won = client.http.post(
        f"{client.url}/_dev/crm/feedback",
        json={"lead_id": salesforce, "outcome": "won", "provider": "salesforce"},
        timeout=30,
    )
    # THEN each went through POST /crm/{provider}/webhook, signed or acknowledged as the CRM expects
    assert accepted.json() == {"provider": "generic", "status": 200, "response": '{"result":"applied"}'}
    assert won.json()["status"] == 200 and "<Ack>true</Ack>" in won.json()["response"]
    assert lead(client, generic)["stage"] == "sql"
    assert lead(client, salesforce)["stage"] == "customer"
    # AND what cannot be sent is refused plainly
    refused = client.http.post(
        f"{client.url}/_dev/crm/feedback", json={"lead_id": generic, "outcome": "won", "provider": "hubspot"}
    )
    assert refused.status_code == 400 and "HubSpot" in refused.json()["message"]
    form = client.http.post(
        f"{client.url}/_dev/crm/feedback",
        data={"lead_id": generic, "outcome": "maybe", "return_to": "lead"},
        headers={"Origin": client.url},  # the console's own form, as a browser posts it
        allow_redirects=False,
    )
    assert form.status_code == 400


# ---------------------------------------------------------------------------- sample events


def sample(name: str) -> dict[str, Any]:
    return dict(load_json(ROOT / "events" / name))


def test_sample_events_run_through_the_handler(client: StackClient, local_stack: Any) -> None:
    # GIVEN the shipped samples (signed with the published test secrets at a fixed past time)
    generic, hubspot, salesforce = (sample(f"crm_inbound_{p}.json") for p in ("generic", "hubspot", "salesforce"))
    invoke = local_stack.runner.invoke
    # THEN the signed ones are refused as shipped: another secret, and stale
    assert invoke("CrmInboundFunction", generic)["statusCode"] == 401
    assert invoke("CrmInboundFunction", hubspot)["statusCode"] == 401
    # AND so is the Salesforce message: its endpoint URL has the published sample token, not the stack's
    assert invoke("CrmInboundFunction", salesforce)["statusCode"] == 401
    # WHEN it is sent to the URL with the stack's token THEN (an object no mapping names) it is acknowledged
    salesforce["queryStringParameters"] = {"token": client.info["inbound_webhook_secrets"]["salesforce"]}
    answer = invoke("CrmInboundFunction", salesforce)
    assert answer["statusCode"] == 200 and "<Ack>true</Ack>" in answer["body"]
    # WHEN they are signed again with the stack's secrets, now, for a real lead
    lead_id = new_lead(client)
    now = dev_now(client)
    body = json.loads(generic["body"]) | {"lead_id": lead_id, "occurred_at": now.isoformat()}
    generic["body"] = json.dumps(body)
    generic["headers"].update(
        sign(
            client.info["inbound_webhook_secrets"]["generic"], "msg_sample", int(now.timestamp()), generic["body"]
        ).as_dict()
    )
    millis = str(int(now.timestamp() * 1000))
    uri = f"https://{hubspot['requestContext']['domainName']}{hubspot['rawPath']}"
    hubspot["headers"]["x-hubspot-request-timestamp"] = millis
    hubspot["headers"]["x-hubspot-signature-v3"] = hubspot_v3_signature(
        client.info["inbound_webhook_secrets"]["hubspot"], "POST", uri, hubspot["body"], millis
    )
    # THEN they are applied, or acknowledged for what leadflow does not know
    answer = invoke("CrmInboundFunction", generic)
    assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"result": "applied"})
    answer = invoke("CrmInboundFunction", hubspot)
    assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"results": {"unknown_lead": 1, "ignored": 1}})
    assert lead(client, lead_id)["stage"] == "sql"
