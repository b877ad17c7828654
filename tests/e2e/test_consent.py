"""Consent on every send, as a user meets it: ``leadflow dev`` with the demo workspace, its demo form
posted with the consent box ticked and unticked, the clock moved on until the welcome series'
next email is due. (A broadcast's consent matrix runs on the push campaign's own stack, in
``test_push_campaign.py``.)"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import StackClient, unique_email
from tests.integration.test_nurture import daytime_country

pytestmark = pytest.mark.e2e

WELCOME = "Welcome to Example, Grace"
NUDGES = {"Did you see this, Grace?", "3 minutes to your first campaign"}
THREE_DAYS = 3 * 86400 + 600


def emails_to(dev: StackClient, address: str) -> list[dict[str, Any]]:
    outbox = dev.http.get(f"{dev.url}/_dev/outbox", timeout=30).json()
    return [email for email in outbox if address in email["to"]]


def wait_for_welcome(dev: StackClient, address: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while WELCOME not in [e["subject"] for e in emails_to(dev, address)]:
        assert time.monotonic() < deadline, f"no welcome for {address}"
        dev.tick()


def test_the_demo_form_unticked_gets_the_transactional_reply_only(dev):
    # GIVEN two visitors of the demo page: one ticks the consent box, one does not (an HTML form
    # post, as a browser without JavaScript sends it; a daytime country so quiet hours never hold it)
    ticked, unticked = unique_email("e2e-consent-yes"), unique_email("e2e-consent-no")
    country = daytime_country(dev)
    for address, box in ((ticked, {"consent": "on"}), (unticked, {})):
        fields = {"email": address, "first_name": "Grace", "country": country, **box}
        assert dev.post_form("demo-signup", fields).status_code == 303
    # THEN both get the welcome at once: it answers their request
    for address in (ticked, unticked):
        wait_for_welcome(dev, address)

    # WHEN three days pass without an open, and the nurture tick runs
    dev.http.post(f"{dev.url}/_dev/clock", json={"advance_seconds": THREE_DAYS}, timeout=10).raise_for_status()
    dev.tick()
    dev.tick()
    # THEN the lead who consented gets the nudge; the other got the reply and nothing more
    assert {e["subject"] for e in emails_to(dev, ticked)} & NUDGES
    assert [e["subject"] for e in emails_to(dev, unticked)] == [WELCOME]
    # AND its enrollment says why the series ended, and its consent history is empty
    lead = dev.lead_by_email(unticked)
    assert lead is not None
    enrollments = dev.api(f"/leads/{lead['lead_id']}/enrollments").json()["enrollments"]
    welcome = next(e for e in enrollments if e["sequence_id"] == "welcome")
    assert (welcome["status"], welcome["exit_reason"], welcome["step_id"]) == ("exited", "no_consent", "nudge")
    assert dev.api(f"/leads/{lead['lead_id']}").json()["consent_history"] == []
