"""The whole loop, clicked through in a browser on ``leadflow dev``: form -> score -> MQL ->
hand-off to the fake CRM (signed, verified with the ``standardwebhooks`` library) -> sales
accepts -> sales wins the deal; nurture stops once sales has the lead.

Chromium and ChromeDriver come from Debian's packages (``.ci/run`` installs them).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from leadflow.domain.webhook_signing import verify
from tests.conftest import StackClient, unique_email
from tests.e2e.test_browser import _wait_for, browser  # noqa: F401 - the fixture is used by name

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def handoff_requests(dev: StackClient, lead_id: str) -> list[dict[str, Any]]:
    requests = dev.http.get(f"{dev.url}/_dev/crm/requests", timeout=30).json()
    return [r for r in requests if r["method"] == "POST" and lead_id in r["body"]]


def test_form_to_won_in_the_dev_console(dev: StackClient, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    # GIVEN a lead who fits well (a VP at a mid-size company) and signed up on the demo form
    lead_id = dev.capture(
        "demo-signup",
        {"email": unique_email("loop"), "first_name": "Lin", "title": "VP Sales", "company_size": "201-1000",
         "country": "US", "consent": True},
    )  # fmt: skip
    dev.tick()
    # WHEN, in the dev console, they click tracked links until scoring makes them an MQL
    for _ in range(6):
        browser.get(f"{dev.url}/_dev/leads/{lead_id}")
        browser.find_element(By.ID, "tracked-pricing").click()
        _wait_for(browser, "utm_content=pricing")
    dev.tick()
    # THEN the MQL was handed off: the fake CRM got one signed request the reference library accepts
    lead = dev.api(f"/leads/{lead_id}").json()
    assert lead["stage"] == "mql"
    received = handoff_requests(dev, lead_id)
    assert len(received) == 1, received
    request = received[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    secret = dev.info["handoff_webhook_secret"]
    # The stack signs on its dev clock (other tests move it on by days): the reference library
    # computes the same signature for that time, and ours verifies it at the stack's now.
    sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    expected = Webhook(secret).sign(headers["webhook-id"], sent_at, request["body"])
    assert expected in headers["webhook-signature"].split()
    now = datetime.fromisoformat(dev.http.get(f"{dev.url}/_dev/clock", timeout=10).json()["now"])
    assert verify(secret, headers, request["body"], now.timestamp()) == headers["webhook-id"]
    payload = json.loads(request["body"])
    assert payload["type"] == "lead.handoff" and payload["lead"]["id"] == lead_id
    assert payload["stage"] == "mql" and payload["scores"]["smb"]["reasons"]  # why sales should call
    browser.get(f"{dev.url}/_dev/leads/{lead_id}")
    assert "delivered" in browser.find_element(By.CLASS_NAME, "handoff").text
    # WHEN sales accepts the lead in the CRM (the console's fake CRM form)
    Select(browser.find_element(By.NAME, "outcome")).select_by_visible_text("accepted")
    browser.find_element(By.CSS_SELECTOR, "#crm-feedback button").click()
    _wait_for(browser, f"/_dev/leads/{lead_id}")
    dev.tick()
    # THEN the lead is an SQL, the hand-off says accepted, and the welcome series stopped
    browser.get(f"{dev.url}/_dev/leads/{lead_id}")
    assert browser.find_element(By.ID, "stage").text == "sql"
    assert "accepted" in browser.find_element(By.CLASS_NAME, "handoff").text
    enrollments = dev.api(f"/leads/{lead_id}/enrollments").json()["enrollments"]
    assert all(e["status"] != "active" for e in enrollments if e["sequence_id"] == "welcome")
    # WHEN sales wins the deal (reported by Salesforce this time)
    Select(browser.find_element(By.NAME, "outcome")).select_by_visible_text("won")
    Select(browser.find_element(By.NAME, "provider")).select_by_visible_text("salesforce")
    browser.find_element(By.CSS_SELECTOR, "#crm-feedback button").click()
    _wait_for(browser, f"/_dev/leads/{lead_id}")
    dev.tick()
    # THEN the lead is a customer and the hand-off's history tells the whole story
    browser.get(f"{dev.url}/_dev/leads/{lead_id}")
    assert browser.find_element(By.ID, "stage").text == "customer"
    handoffs = dev.api(f"/leads/{lead_id}/handoffs").json()["handoffs"]
    history = [(h["status"], h["by"]) for h in handoffs[0]["history"]]
    assert history[-2:] == [("accepted", "crm:generic"), ("won", "crm:salesforce")]
    assert handoffs[0]["status"] == "won"
    # AND the hand-off was delivered exactly once
    assert len(handoff_requests(dev, lead_id)) == 1
