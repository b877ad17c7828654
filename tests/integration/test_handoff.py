"""Sales hand-off on the local stack: triggers, assignment, the record in the API, signed
delivery to the fake CRM, retries on the dev clock, 410 / 429 / SSRF, the SLA, replay.

The session stack is shared, so every test makes its own leads and reads only the fake CRM
requests of its own hand-offs; tests that switch the fake CRM's mode put it back to 200.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import standardwebhooks

from tests.conftest import StackClient, unique_email

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------------- helpers


def new_lead(client: StackClient, **fields: Any) -> str:
    email = fields.pop("email", None) or unique_email("handoff")
    data = {"email": email, "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical", **fields}
    response = client.post_form("demo-signup", data, as_json=True)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["lead_id"])


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
    payload = standardwebhooks.Webhook(secret).verify(request["body"], request["headers"])
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
