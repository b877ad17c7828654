"""Sales hand-off on the local stack: triggers, assignment, the record in the API, signed
delivery to the fake CRM, retries on the dev clock, 410 / 429 / SSRF, the SLA, replay.

The session stack is shared, so every test makes its own leads and reads only the fake CRM
requests of its own hand-offs; tests that switch the fake CRM's mode put it back to 200.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks

from tests.conftest import StackClient, unique_email

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------------- helpers


def new_lead(client: StackClient, **fields: Any) -> str:
    email = fields.pop("email", None) or unique_email("handoff")
    data = {"email": email, "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical", **fields}
    return client.capture("demo-signup", data)


def hand_off(client: StackClient, lead_id: str, reason: str = "test") -> Any:
    return client.http.post(
        f"{client.url}/api/v1/leads/{lead_id}/handoff",
        json={"reason": reason},
        headers={"Authorization": f"Bearer {client.token}"},
        timeout=30,
    )


def handoffs(client: StackClient, lead_id: str) -> list[dict[str, Any]]:
    response = client.api(f"/leads/{lead_id}/handoffs")
    assert response.status_code == 200, response.text
    return list(response.json()["handoffs"])


def crm_requests(client: StackClient, handoff_ids: set[str]) -> list[dict[str, Any]]:
    """Webhook requests the fake CRM received for these hand-offs."""
    found = []
    for request in client.http.get(f"{client.url}/_dev/crm/requests", timeout=30).json():
        if request["path"] != "/_dev/crm/hook":
            continue
        try:
            body = json.loads(request["body"])
        except ValueError:
            continue
        if body.get("handoff_id") in handoff_ids:
            found.append(request)
    return found


def set_mode(client: StackClient, **mode: Any) -> None:
    response = client.http.post(f"{client.url}/_dev/crm/mode", json=mode, timeout=10)
    assert response.status_code == 200, response.text


def advance(client: StackClient, seconds: float) -> None:
    client.http.post(client.url + "/_dev/clock", json={"advance_seconds": seconds}, timeout=10).raise_for_status()


def dev_now(client: StackClient) -> datetime:
    return datetime.fromisoformat(client.http.get(client.url + "/_dev/clock", timeout=10).json()["now"])


@pytest.fixture
def crm(client: StackClient) -> Iterator[StackClient]:
    """The fake CRM answering 200 before and after the test."""
    set_mode(client, status=200, delay_seconds=0, retry_after=60)
    yield client
    set_mode(client, status=200, delay_seconds=0, retry_after=60)


# ---------------------------------------------------------------------------- tests


def test_a_manual_handoff_is_assigned_signed_and_delivered(crm: StackClient) -> None:
    # GIVEN a lead
    lead_id = new_lead(crm, country="US")
    # WHEN a person hands it off
    response = hand_off(crm, lead_id, "asked for a demo")
    # THEN it is assigned round-robin in the default team and queued for delivery
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["status"] == "assigned"
    assert record["trigger"] == "manual"
    assert record["owner"]["team"] == "inbound"
    assert record["history"][0]["by"].startswith("api:")
    crm.tick()
    # AND the fake CRM got it once, signed with the stack's secret (the reference library agrees)
    requests = crm_requests(crm, {record["handoff_id"]})
    assert len(requests) == 1
    request = requests[0]
    assert request["signature_valid"] is True
    secret = crm.info["handoff_webhook_secret"]
    # The stack signs on its dev clock, which other tests move on by days: the reference library
    # computes the same signature for the header's time (its verify() would compare with wall time).
    headers = request["headers"]
    sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    expected = standardwebhooks.Webhook(secret).sign(headers["webhook-id"], sent_at, request["body"])
    assert expected in headers["webhook-signature"].split()
    payload = json.loads(request["body"])
    assert request["headers"]["webhook-id"] == f"msg_{record['handoff_id']}_crm-webhook"
    assert payload["lead"]["id"] == lead_id
    assert payload["owner"]["id"] == record["owner"]["id"]
    assert payload["reason"] == "asked for a demo"
    # AND the record shows the delivery, in the API and with the lead
    stored = handoffs(crm, lead_id)[0]
    assert stored["status"] == "delivered"
    assert stored["destinations"]["crm-webhook"]["status"] == "delivered"
    assert [h["status"] for h in stored["history"]] == ["assigned", "delivered"]
    lead = crm.api(f"/leads/{lead_id}").json()
    assert lead["handoffs"][0]["handoff_id"] == record["handoff_id"]
    # AND asking again returns the open hand-off instead of a second one
    again = hand_off(crm, lead_id)
    assert again.status_code == 200
    assert again.json()["handoff_id"] == record["handoff_id"]


def test_handoff_of_an_unknown_lead_is_404(client: StackClient) -> None:
    assert hand_off(client, "01JDQ0Z8W6S9X2V3T4R5P6N7M8").status_code == 404
    response = client.http.post(
        f"{client.url}/api/v1/leads/x/handoff",
        data="{not json",
        headers={"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500


def put_bus_event(local_stack: Any, source: str, detail_type: str, detail: dict[str, Any]) -> None:
    """An event on the stack's bus, as scoring or nurture publish it (through the outbox relay)."""
    bus = local_stack.outputs["EventBusName"]
    entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus}
    response = local_stack.client("events").put_events(Entries=[entry])
    assert response["FailedEntryCount"] == 0


def test_the_trigger_stage_or_a_sequence_request_starts_one_handoff(crm: StackClient, local_stack: Any) -> None:
    # GIVEN two leads
    staged, requested = new_lead(crm, country="US"), new_lead(crm, country="US")
    # WHEN scoring moves one to MQL (twice: a redelivery) and to SQL, and nurture asks for the other
    for event_id in ("01JDQ0Z8W6S9X2V3T4R5P6N7AA", "01JDQ0Z8W6S9X2V3T4R5P6N7AA"):
        put_bus_event(
            local_stack,
            "leadflow.scoring",
            "lead.stage_changed",
            {"schema_version": 1, "event_id": event_id, "lead_id": staged, "from": "lead", "to": "mql"},
        )
    put_bus_event(local_stack, "leadflow.scoring", "lead.stage_changed", {"lead_id": requested, "to": "sql"})
    put_bus_event(
        local_stack,
        "leadflow.nurture",
        "lead.handoff_requested",
        {"schema_version": 1, "lead_id": requested, "reason": "clicked pricing twice", "sequence_id": "welcome"},
    )
    crm.tick()
    # THEN each lead has exactly one hand-off, with the trigger that started it, delivered once
    [by_stage] = handoffs(crm, staged)
    [by_sequence] = handoffs(crm, requested)
    assert (by_stage["trigger"], by_stage["reason"]) == ("stage", "reached stage mql")
    assert (by_sequence["trigger"], by_sequence["reason"]) == ("sequence", "clicked pricing twice")
    assert len(crm_requests(crm, {by_stage["handoff_id"], by_sequence["handoff_id"]})) == 2


def test_round_robin_spreads_concurrent_handoffs_evenly(crm: StackClient) -> None:
    # GIVEN 9 leads handed off at once from 9 threads
    from concurrent.futures import ThreadPoolExecutor

    leads = [new_lead(crm, country="US") for _ in range(9)]
    with ThreadPoolExecutor(max_workers=9) as pool:
        records = [r.json() for r in pool.map(lambda lead: hand_off(crm, lead), leads)]
    # THEN the inbound team's three members got three each
    owners = sorted(r["owner"]["id"] for r in records)
    assert owners == ["ana"] * 3 + ["ben"] * 3 + ["chloe"] * 3


def test_named_accounts_and_territories_route_to_their_owner_or_team(crm: StackClient) -> None:
    key_account = hand_off(crm, new_lead(crm, email=unique_email("vip").replace("example.com", "bigcorp.example")))
    enterprise = hand_off(crm, new_lead(crm, country="US", company_size="1000+"))
    assert key_account.json()["owner"]["id"] == "maria"
    assert key_account.json()["assigned_by"] == "named_account"
    assert enterprise.json()["owner"]["team"] == "enterprise"


def test_receiver_down_for_two_simulated_hours_then_every_handoff_arrives_once(crm: StackClient) -> None:
    # GIVEN the receiver answering 500 and five hand-offs
    set_mode(crm, status=500)
    ids = {hand_off(crm, new_lead(crm, country="US")).json()["handoff_id"] for _ in range(5)}
    crm.tick()
    # WHEN it stays down for two hours of the dev clock
    for _ in range(24):
        advance(crm, 300)
        crm.tick()
    down = crm_requests(crm, ids)
    per_id = {r["headers"]["webhook-id"] for r in down}
    assert len(per_id) == 5
    assert all(r["answered"] == 500 for r in down)
    assert len(down) >= 5 * 8  # retried with backoff throughout, not given up
    # AND then recovers
    set_mode(crm, status=200)
    for _ in range(36):
        advance(crm, 600)
        crm.tick()
        if all(h["status"] == "delivered" for h in (handoff_of(crm, i) for i in ids)):
            break
    # THEN every hand-off arrived, exactly once per webhook-id, each signed
    delivered = [r for r in crm_requests(crm, ids) if r["answered"] == 200]
    assert sorted(r["headers"]["webhook-id"] for r in delivered) == sorted(per_id)
    assert all(r["signature_valid"] for r in delivered)
    # AND the attempts each took are on the records, and nothing is in the DLQ
    records = [handoff_of(crm, i) for i in ids]
    assert all(r["destinations"]["crm-webhook"]["attempts"] >= 9 for r in records)
    assert not dlq_messages(crm, ids)


_LEAD_OF: dict[str, str] = {}


def handoff_of(client: StackClient, handoff_id: str) -> dict[str, Any]:
    lead_id = _LEAD_OF.get(handoff_id)
    if lead_id is None:
        for request in client.http.get(f"{client.url}/_dev/crm/requests", timeout=30).json():
            try:
                body = json.loads(request["body"])
            except ValueError:
                continue
            if body.get("handoff_id") == handoff_id:
                lead_id = _LEAD_OF[handoff_id] = body["lead"]["id"]
                break
    assert lead_id, handoff_id
    return next(h for h in handoffs(client, lead_id) if h["handoff_id"] == handoff_id)


def dlq_messages(client: StackClient, handoff_ids: set[str]) -> list[dict[str, Any]]:
    """HandoffDLQ messages of these hand-offs (read without hiding them from others)."""
    import boto3

    info = client.http.get(f"{client.url}/_dev/stack", timeout=10).json()
    sqs = boto3.client("sqs", endpoint_url=info["aws_endpoint_url"], region_name=info["region"])
    found: dict[str, dict[str, Any]] = {}
    for _ in range(5):
        messages = sqs.receive_message(
            QueueUrl=info["outputs"]["HandoffDLQUrl"], MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("handoff_id") in handoff_ids:
                found[message["MessageId"]] = body
    return list(found.values())


def test_429_honours_retry_after(crm: StackClient) -> None:
    # GIVEN a receiver asking to wait ten minutes
    set_mode(crm, status=429, retry_after=600)
    record = hand_off(crm, new_lead(crm, country="US")).json()
    crm.tick()
    started = dev_now(crm)
    state = handoffs(crm, record["lead_id"])[0]["destinations"]["crm-webhook"]
    assert state["status"] == "retrying"
    assert state["last_status_code"] == 429
    assert (datetime.fromisoformat(state["next_attempt_at"]) - started).total_seconds() >= 590
    # WHEN five minutes pass THEN it has not tried again
    set_mode(crm, status=200)
    advance(crm, 300)
    crm.tick()
    assert len(crm_requests(crm, {record["handoff_id"]})) == 1
    # WHEN the ten minutes are over THEN it is delivered
    advance(crm, 320)
    crm.tick()
    answers = [r["answered"] for r in crm_requests(crm, {record["handoff_id"]})]
    assert answers == [429, 200]


def test_410_disables_the_destination_until_replayed(crm: StackClient, local_stack: Any) -> None:
    from leadflow.adapters.handoff import DynamoHandoffStore
    from leadflow.dev.cli import main

    store = DynamoHandoffStore(local_stack.outputs["LeadsTableName"], local_stack.client("dynamodb"))
    try:
        # GIVEN a receiver that answers 410 Gone
        set_mode(crm, status=410)
        first = hand_off(crm, new_lead(crm, country="US")).json()
        crm.tick()
        # THEN the destination is disabled, the hand-off failed for good and sits in the DLQ
        assert "crm-webhook" in store.disabled_destinations()
        state = handoffs(crm, first["lead_id"])[0]
        assert state["status"] == "failed"
        assert state["destinations"]["crm-webhook"]["last_status_code"] == 410
        # AND a later hand-off is not even sent (even though the receiver would now answer)
        set_mode(crm, status=200)
        second = hand_off(crm, new_lead(crm, country="US")).json()
        crm.tick()
        ids = {first["handoff_id"], second["handoff_id"]}
        assert len(crm_requests(crm, ids)) == 1
        assert len(dlq_messages(crm, ids)) == 2
        # WHEN the operator enables it again and replays the DLQ
        assert main(["replay", "handoff", "--dev", crm.url, "--enable-destinations"]) == 0
        crm.tick()
        # THEN both arrive, once each
        delivered = [r["headers"]["webhook-id"] for r in crm_requests(crm, ids) if r["answered"] == 200]
        assert sorted(delivered) == sorted(f"msg_{i}_crm-webhook" for i in ids)
        assert not dlq_messages(crm, ids)
        assert handoffs(crm, second["lead_id"])[0]["status"] == "delivered"
    finally:
        store.enable_destination("crm-webhook")


def test_sla_reminds_escalates_and_recycles(crm: StackClient) -> None:
    # GIVEN a delivered hand-off nobody accepts
    record = hand_off(crm, new_lead(crm, country="US")).json()
    crm.tick()
    # WHEN 4, then 8 hours pass THEN the owner is reminded, then it is escalated
    advance(crm, 4 * 3600 + 60)
    crm.tick()
    details = [h["detail"] for h in handoffs(crm, record["lead_id"])[0]["history"] if h["by"] == "sla"]
    assert any(d.startswith("reminded") for d in details)
    advance(crm, 4 * 3600)
    crm.tick()
    details = [h["detail"] for h in handoffs(crm, record["lead_id"])[0]["history"] if h["by"] == "sla"]
    assert any(d.startswith("escalated to maria") for d in details)
    # WHEN 14 days pass without sales action THEN the lead is recycled into nurture
    advance(crm, 14 * 86400)
    crm.tick()
    recycled = handoffs(crm, record["lead_id"])[0]
    assert recycled["status"] == "recycled"
    assert recycled["history"][-1]["by"] == "sla"
    assert crm.api(f"/leads/{record['lead_id']}").json()["stage"] == "recycled"
    kinds = {e["detail-type"] for e in crm.bus_events() if e["detail"].get("handoff_id") == record["handoff_id"]}
    assert {"handoff.created", "handoff.reminder", "handoff.escalated", "handoff.recycled"} <= kinds
    # AND the owner was reminded and the escalation owner told, by email
    outbox = crm.http.get(f"{crm.url}/_dev/outbox", timeout=30).json()
    mine = [m for m in outbox if record["handoff_id"] in m["text"]]
    assert {(m["to"][0], m["subject"].split(":")[0]) for m in mine} == {
        (record["owner"]["email"], "Reminder"),
        ("maria@example.com", "Escalated"),
    }


def test_fake_crm_mode_refuses_bad_modes(client: StackClient) -> None:
    bad_modes: list[Any] = [{"status": 302}, {"delay_seconds": -1}, {"colour": "red"}, ["status", 200]]
    for bad in bad_modes:
        response = client.http.post(f"{client.url}/_dev/crm/mode", json=bad, timeout=10)
        assert response.status_code == 400, bad


def _sample(name: str, lead_id: str, handoff_id: str = "") -> dict[str, Any]:
    from tests.conftest import EVENTS

    text = (EVENTS / name).read_text(encoding="utf-8").replace("01JD3Z8Q4W6Y9V2N5K7M0P1R3S", lead_id)
    return dict(json.loads(text.replace("01JD3Z8Q4WHND00000000000000", handoff_id) if handoff_id else text))


def test_the_sample_events_run_through_their_handlers(crm: StackClient, local_stack: Any) -> None:
    # GIVEN a real lead in the samples
    lead_id = new_lead(crm, country="US")
    # WHEN the API sample hands it off THEN it is created
    api = local_stack.runner.invoke("LeadApiFunction", _sample("lead_api_handoff.json", lead_id))
    assert api["statusCode"] == 201, api
    handoff_id = json.loads(api["body"])["handoff_id"]
    # WHEN the delivery sample (that hand-off, the demo destination) runs THEN nothing fails and it is delivered once
    result = local_stack.runner.invoke(
        "CrmHandoffFunction", _sample("crm_handoff_delivery_sqs.json", lead_id, handoff_id)
    )
    assert result == {"batchItemFailures": []}
    assert handoffs(crm, lead_id)[0]["destinations"]["crm-webhook"]["status"] == "delivered"
    # WHEN the stage-changed sample arrives for the same lead THEN the open hand-off is kept
    result = local_stack.runner.invoke("CrmHandoffFunction", _sample("crm_handoff_stage_changed_sqs.json", lead_id))
    assert result == {"batchItemFailures": []}
    assert [h["handoff_id"] for h in handoffs(crm, lead_id)] == [handoff_id]
    # AND the SLA sweep sample runs
    sweep = local_stack.runner.invoke("HandoffSlaFunction", _sample("handoff_sla_schedule.json", lead_id))
    assert set(sweep) == {"checked", "reminded", "escalated", "recycled"}
    crm.tick()
    assert len(crm_requests(crm, {handoff_id})) == 1


def test_the_dev_console_hands_off_shows_the_record_and_switches_the_fake_crm(crm: StackClient) -> None:
    # GIVEN a lead WHEN the console's button hands it off
    lead_id = new_lead(crm, country="US")
    button = crm.http.post(
        f"{crm.url}/_dev/handoffs/{lead_id}",
        data={"return_to": "lead"},
        headers={"Origin": crm.url},  # the console's own page, as a browser posts it
        allow_redirects=False,
        timeout=30,
    )
    assert button.status_code == 303
    crm.tick()
    # THEN the lead page shows the hand-off, its history and its delivery
    [record] = handoffs(crm, lead_id)
    page = crm.http.get(f"{crm.url}/_dev/leads/{lead_id}", timeout=30).text
    assert f'id="handoff-{record["handoff_id"]}"' in page
    assert "handed off from the dev console" in page
    assert "crm-webhook" in page
    # WHEN the console's form switches the fake CRM to 503 THEN the console says so
    form = crm.http.post(
        f"{crm.url}/_dev/crm/mode",
        data={"status": "503", "delay_seconds": "0", "return_to": "/_dev/"},
        headers={"Origin": crm.url},
        allow_redirects=False,
        timeout=10,
    )
    assert form.status_code == 303
    console = crm.http.get(f"{crm.url}/_dev/", timeout=30).text
    assert 'id="fake-crm"' in console
    assert "Answers <b>503</b>" in console


def test_leadflow_handoff_hands_a_lead_off_from_the_command_line(crm: StackClient, capsys: Any) -> None:
    from leadflow.dev.cli import main

    lead_id = new_lead(crm, country="US")
    assert main(["handoff", lead_id, "--dev", crm.url, "--reason", "called us"]) == 0
    first = capsys.readouterr().out
    assert main(["handoff", lead_id, "--dev", crm.url]) == 0
    second = capsys.readouterr().out
    [record] = handoffs(crm, lead_id)
    assert f"handed off as {record['handoff_id']}" in first
    assert "already handed off" in second
    assert (record["reason"], record["history"][0]["by"][:8]) == ("called us", "api:cli-")
    with pytest.raises(SystemExit, match="no lead"):
        main(["handoff", "01JDQ0Z8W6S9X2V3T4R5P6N7M8", "--dev", crm.url])
    crm.tick()
    assert len(crm_requests(crm, {record["handoff_id"]})) == 1
