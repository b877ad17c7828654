"""Consent on every send, on the local stack with the demo workspace: the consent matrix of the
welcome series (step emails) from the form to the outbox.

The demo form's consent box ticked or not, a consent withdrawn between two steps, a double
opt-in pending then confirmed, and the transactional reply that needs no consent. Broadcasts are
covered end to end in ``tests/e2e/test_push_campaign.py`` (a broadcast reaches every lead of a
stack, so it runs on its own); the broadcast's matrix runs here on a table of its own, with
the nurture store tests' fixture.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest

from leadflow.adapters.dynamo_json import serialize
from leadflow.adapters.memory import FakeBroadcastRunner
from leadflow.ports.nurture import ProfileChange
from tests.conftest import WORKSPACE, unique_email
from tests.integration.test_nurture import (
    DAY,
    advance,
    api_post,
    daytime_country,
    emails_to,
    enrollment,
    now,
    settle,
    stored_profile,
    subjects,
    unsubscribe_url,
    wait_for_emails,
)
from tests.integration.test_nurture_store import (
    SEQUENCE,
    Nurture,
    nurture,
    opened,
    service_on,
)

__all__ = ["nurture"]  # the per-test table fixture of the nurture store tests, used here too

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("caught_up")]  # welcomes waited for in seconds

WELCOME = "Welcome to Example, Ada"
NUDGES = {"Did you see this, Ada?", "3 minutes to your first campaign"}
DISCOUNT = "This week only: 20% off Example"


def sign_up(client, prefix: str, consent: bool) -> tuple[str, str]:
    """A demo-form sign-up in daytime, the consent box ticked or not; its lead id and address."""
    address = unique_email(prefix)
    fields = {"email": address, "first_name": "Ada", "country": daytime_country(client)}
    if consent:
        fields["consent"] = "on"
    return client.capture("demo-signup", fields), address


def welcome_series(client, address: str) -> list[str]:
    """The subjects of the welcome series' emails the address got (a broadcast's may come too)."""
    return [s for s in subjects(emails_to(client, address)) if s == WELCOME or s in NUDGES]


def test_the_consent_matrix_of_the_welcome_series(local_stack, client):
    # GIVEN four sign-ups: box ticked, box unticked, ticked then withdrawn by unsubscribing, and
    # ticked then withdrawn by another system writing the lead (a CRM sync) between the two steps
    granted = sign_up(client, "consent-granted", consent=True)
    never = sign_up(client, "consent-never", consent=False)
    unsubscribed = sign_up(client, "consent-unsub", consent=True)
    synced = sign_up(client, "consent-synced", consent=True)
    # THEN each gets the welcome at once: the transactional reply to the request needs no consent
    for _, address in (granted, never, unsubscribed, synced):
        assert subjects(wait_for_emails(client, address, 1)) == [WELCOME]
    welcome_of_never = emails_to(client, never[1])[0]
    assert "One short email a week" not in welcome_of_never["text"]  # promised only with consent
    assert "One short email a week" in emails_to(client, granted[1])[0]["text"]
    # AND the reply to the one without consent is not tracked (no pixel, links straight to their
    # targets) while the unsubscribe link stays; the one with consent is tracked
    untracked, tracked = welcome_of_never["html"], emails_to(client, granted[1])[0]["html"]
    assert "/t/o/" not in untracked and "/t/c/" not in untracked and "/u/" in untracked
    assert "/t/o/" in tracked and "/t/c/" in tracked

    # WHEN two of them withdraw before the nudge is due
    link = unsubscribe_url(emails_to(client, unsubscribed[1])[0])
    one_click = client.http.post(
        link,
        data="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert one_click.status_code == 200
    dynamodb = local_stack.client("dynamodb")
    dynamodb.update_item(
        TableName=local_stack.outputs["LeadsTableName"],
        Key={"PK": {"S": f"LEAD#{synced[0]}"}, "SK": {"S": "PROFILE"}},
        UpdateExpression="SET consent_marketing_email = :c",
        ExpressionAttributeValues={
            ":c": {"M": {"granted": {"BOOL": False}, "at": {"S": "2026-11-05T10:00:00+00:00"}, "source": {"S": "crm"}}}
        },
    )
    # AND the nudge falls due (three days, the welcome unopened)
    advance(client, 3 * DAY + 300)
    settle(local_stack, client)

    # THEN only the lead whose consent stands gets the nudge
    assert len(welcome_series(client, granted[1])) == 2 and set(welcome_series(client, granted[1])) & NUDGES
    for _, address in (never, unsubscribed, synced):
        assert welcome_series(client, address) == [WELCOME]
    # AND the enrollments say why they ended, at the step they did not get
    state = {name: enrollment(client, lead[0], "welcome") for name, lead in [("never", never), ("synced", synced)]}
    assert {name: (e["status"], e["exit_reason"], e["step_id"]) for name, e in state.items()} == {
        "never": ("exited", "no_consent", "nudge"),
        "synced": ("exited", "no_consent", "nudge"),
    }
    left = enrollment(client, unsubscribed[0], "welcome")
    assert (left["status"], left["exit_reason"]) == ("exited", "unsubscribed")
    assert enrollment(client, granted[0], "welcome")["status"] == "active"
    # AND the nudge's figures in the sequence report count them (other tests' sign-ups without
    # consent may add to it), and the listing names each email's purpose
    settle(local_stack, client)
    day = now(client).date().isoformat()
    report = client.api("/reports/sequences/welcome", **{"from": day, "to": day}).json()
    flow = {row["step"]: row["counts"] for row in report["flow"]}
    assert flow["nudge"]["skipped_no_consent"] >= 2
    listed = {seq["id"]: seq for seq in client.api("/sequences").json()["sequences"]}["welcome"]
    steps = {step["id"]: step for step in listed["steps"]}
    assert steps["nudge"]["purpose"] == "marketing_email"
    assert steps["welcome"]["transactional"] is True and steps["welcome"]["purpose"] is None
    # AND the sign-up without consent has no consent record, only its submission
    lead = client.api(f"/leads/{never[0]}").json()
    assert lead["consent"] == {} and lead["consent_history"] == []
    assert stored_profile(local_stack, never[0])["forms_submitted"] == {"demo-signup"}


def test_a_pending_double_opt_in_holds_marketing_email_until_confirmed(local_stack, client):
    # GIVEN a webinar registration with consent (the form asks for double opt-in), enrolled in the
    # push campaign through the API
    address = unique_email("consent-doi")
    fields = {
        "email": address,
        "first_name": "Dora",
        "company": "Example Corp",
        "webinar_id": "w-2026-12",
        "consent": True,
    }
    # (a country where it is about 9:00: the clock moves on six hours below, still daytime there)
    lead_id = client.capture("webinar-registration", {**fields, "country": daytime_country(client, hour=9)})
    confirmation = wait_for_emails(client, address, 1)[0]
    assert api_post(client, "/sequences/push-discount/enrollments", {"lead_id": lead_id}).status_code == 201
    settle(local_stack, client)
    # THEN the discount waits for the confirmation
    assert DISCOUNT not in subjects(emails_to(client, address))
    waiting = enrollment(client, lead_id, "push-discount")
    assert (waiting["status"], waiting["step_id"]) == ("active", "discount")

    # WHEN the link is confirmed and the enrollment falls due again
    confirm = re.findall(r"(http://[^\s\"<>]+/u/[^\s\"<>?]+\?confirm=1)", confirmation["text"])[0]
    assert client.http.post(confirm, data={"action": "confirm"}, timeout=10).status_code == 200
    advance(client, 6 * 3600 + 60)
    settle(local_stack, client)
    # THEN the discount goes out, once
    assert subjects(emails_to(client, address)).count(DISCOUNT) == 1


# ---------------------------------------------------------------------------- broadcasts


def put_profile(nurture: Nurture, lead: str, **consent: Any) -> None:
    """A lead profile (in daytime GB) with the consent fields given."""
    item = {
        "PK": f"LEAD#{lead}",
        "SK": "PROFILE",
        "lead_id": lead,
        "email": f"{lead.lower()}@example.com",
        "first_name": "Ada",
        "country": "GB",
        "stage": "lead",
        **consent,
    }
    nurture.store.client.put_item(TableName=nurture.store.table, Item=serialize(item))


def step_figures(nurture: Nurture) -> dict[tuple[str, str], int]:
    """What the service counted for the sequence report since the last look: (step, metric) -> n."""
    return {
        (step, metric): n for sequence, _, step, _, metric, n in nurture.service.counts.take() if sequence == SEQUENCE
    }


def test_the_consent_matrix_of_a_broadcast(nurture):
    # GIVEN the push campaign's segment: three leads with consent, two who never gave it, one who
    # withdrew it, one whose double opt-in is pending
    granted = nurture.add_leads(3)
    never = ["01CONSENTNEVER000000000001", "01CONSENTNEVER000000000002"]
    withdrawn, pending = "01CONSENTWITHDRAWN00000001", "01CONSENTPENDING0000000001"
    for lead in never:
        put_profile(nurture, lead)
    put_profile(nurture, withdrawn, consent_marketing_email={"granted": False, "source": "unsubscribe_link"})
    put_profile(nurture, pending, consent_marketing_email={"granted": True}, consent_pending=True)
    # WHEN the broadcast's part runs (as in AWS: each lead taken through its first email at once)
    runner = FakeBroadcastRunner()
    nurture.service.start_broadcast(SEQUENCE, "consent", runner, segments=1)
    runner.run(f"{SEQUENCE}-consent", lambda part: nurture.service.broadcast_hop(part, lambda: False))
    # THEN only the leads with consent got the discount
    assert {to for to, _ in nurture.sender.sent} == {f"{lead.lower()}@example.com" for lead in granted}
    # AND the skipped ones are counted in the run record and in the step's figures, never silently
    run = nurture.store.broadcast_run(SEQUENCE, "consent")
    assert run is not None
    assert (run["scanned"], run["enrolled"], run["sent"], run["no_consent"]) == (7, 4, 3, 3)
    assert run["no_consent"] == 3 and run["awaiting_confirmation"] == 1
    assert step_figures(nurture)[("discount", "skipped_no_consent")] == 3
    listed = {s["id"]: s for s in nurture.service.overview()}[SEQUENCE]
    assert listed["steps"][0] == {
        "id": "discount",
        "type": "email",
        "purpose": "marketing_email",
        "transactional": False,
    }
    # AND a skipped lead has no enrollment written (the next broadcast looks at it again); the
    # pending one waits at the discount for its confirmation
    assert all(nurture.service.enrollment(lead, SEQUENCE) is None for lead in [*never, withdrawn])
    assert nurture.status(pending) == ("active", "discount", None)

    # WHEN one lead with consent withdraws it before opening the discount, and then opens it
    withdrawal = ProfileChange(assign={"consent_marketing_email": {"granted": False, "source": "crm"}})
    nurture.store.update_profile(granted[0], withdrawal)
    opened(nurture, granted[0])
    opened(nurture, granted[1])
    # THEN the product email goes only to the one whose consent stands; the other's enrollment ends
    products = [to for to, message in nurture.sender.sent[3:]]
    assert products == [f"{granted[1].lower()}@example.com"]
    assert nurture.status(granted[0]) == ("exited", "product", "no_consent")
    assert step_figures(nurture)[("product", "skipped_no_consent")] == 1


# ---------------------------------------------------------------------------- consent.yaml's double opt-in


def test_a_region_that_requires_double_opt_in_gets_the_confirmation_and_a_withdrawal_takes_it_back(nurture, tmp_path):
    # GIVEN consent.yaml requiring double opt-in in GB (the demo form itself does not ask for it)
    workspace = tmp_path / "workspace"
    shutil.copytree(WORKSPACE, workspace)
    (workspace / "consent.yaml").write_text(
        "purposes: [{id: marketing_email, name: Marketing email}]\n"
        "regions: [{countries: [GB], basis: opt_in, double_opt_in: true}]\n"
    )
    service = service_on(nurture, workspace)
    british, french = "01CONSENTDOIGB000000000001", "01CONSENTDOIFR000000000001"
    given = {"granted": True, "form_id": "demo-signup", "at": "2026-11-23T09:00:00+00:00"}
    put_profile(nurture, british, consent_marketing_email=given)
    put_profile(nurture, french, consent_marketing_email=given, country="FR")
    # WHEN both are captured with the box ticked
    for lead in (british, french):
        captured = {
            "lead_id": lead,
            "form_id": "demo-signup",
            "consent": {"purpose": "marketing_email", "granted": True},
        }
        service.handle_event("lead.captured", captured)
    # THEN only the British lead is asked to confirm, and its marketing email waits for it
    asked = [to for to, message in nurture.sender.sent if message.startswith("optin_")]
    assert asked == [f"{british.lower()}@example.com"]
    assert service.store.get_lead(british)["consent_pending"] is True
    assert service.enroll_lead(british, SEQUENCE, push=False) is not None
    service.process([(british, SEQUENCE)])
    assert nurture.status(british) == ("active", "discount", None)
    # WHEN the link is confirmed
    service.confirm(british)
    # THEN the waiting discount is due at once, and goes out
    assert service.due_now.pushed[-1] == (british, SEQUENCE)
    service.process([(british, SEQUENCE)])
    assert f"{british.lower()}@example.com" in {to for to, m in nurture.sender.sent if not m.startswith("optin_")}

    # WHEN the lead unsubscribes from everything
    service.unsubscribe(british, None, "preferences_page")
    # THEN its consent and its confirmation are withdrawn, and the history says so
    profile = service.store.get_lead(british)
    assert profile["consent_marketing_email"]["granted"] is False and profile.get("consent_confirmed_at") is None
    history = nurture.store.client.query(
        TableName=nurture.store.table,
        KeyConditionExpression="PK = :p AND begins_with(SK, :s)",
        ExpressionAttributeValues={":p": {"S": f"LEAD#{british}"}, ":s": {"S": "CONSENT#"}},
    )["Items"]
    assert sorted((i["granted"]["BOOL"], i["source"]["S"]) for i in history) == [
        (False, "preferences_page"),
        (True, "double_opt_in"),
    ]  # (the test's clock stands still: both at the same time)
