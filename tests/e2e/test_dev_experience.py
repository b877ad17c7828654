"""The local stack without surprises (issue 18, part 4): looking changes nothing, acting is a button,
the stack's outputs are whole, the outbox reads in a terminal."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import StackClient, unique_email

pytestmark = pytest.mark.e2e


def _activity_types(dev: StackClient, lead_id: str) -> list[str]:
    """The lead's activity types, oldest first (the API lists the newest first)."""
    return [a["type"] for a in reversed(dev.api(f"/leads/{lead_id}").json()["activities"])]


def test_viewing_a_lead_records_nothing_and_the_buttons_record_what_they_say(dev: StackClient):
    # GIVEN a lead
    lead_id = dev.capture("demo-signup", {"email": unique_email("viewer"), "first_name": "Vi", "country": "DE"})
    dev.tick()
    before = _activity_types(dev, lead_id)
    # WHEN the developer looks at the lead's page, twice
    for _ in range(2):
        page = dev.http.get(f"{dev.url}/_dev/leads/{lead_id}", timeout=30)
        assert page.status_code == 200
        assert "/t/o/" not in page.text  # no open pixel on the page
    dev.tick()
    # THEN nothing was recorded
    assert _activity_types(dev, lead_id) == before
    # WHEN they press "Open an email" (the console's form post, as the browser sends it)
    opened = dev.http.post(
        f"{dev.url}/_dev/leads/{lead_id}/simulate",
        data={"kind": "open"},
        headers={"Origin": dev.url},
        allow_redirects=False,
        timeout=30,
    )
    assert opened.status_code == 303 and opened.headers["location"].endswith("?simulated=open")
    # THEN one open is recorded, and the page says so
    assert _activity_types(dev, lead_id) == [*before, "email_opened"]
    assert "Recorded:" in dev.http.get(f"{dev.url}{opened.headers['location']}", timeout=30).text
    # WHEN they press a click button THEN it goes through the signed tracked link to the landing page
    clicked = dev.http.post(
        f"{dev.url}/_dev/leads/{lead_id}/simulate",
        data={"kind": "click", "link": "pricing"},
        headers={"Origin": dev.url},
        timeout=30,
    )
    assert clicked.status_code == 200 and "utm_content=pricing" in clicked.url
    assert _activity_types(dev, lead_id)[-1] == "email_clicked"
    # AND anything else is a clear 400
    wrong = dev.http.post(f"{dev.url}/_dev/leads/{lead_id}/simulate", json={"kind": "forward"}, timeout=30)
    assert wrong.status_code == 400 and "kind=open" in wrong.json()["message"]


def test_stack_outputs_have_no_unresolved_placeholders(dev: StackClient):
    outputs = dev.http.get(f"{dev.url}/_dev/stack", timeout=10).json()["outputs"]
    assert [k for k, v in outputs.items() if "${" in v] == []
    assert outputs["CrmWebhookUrlTemplate"] == f"{dev.url}/crm/{{provider}}/webhook"


def test_the_outbox_in_a_terminal_and_acting_on_an_email_as_its_recipient(dev: StackClient):
    # GIVEN a sign-up, whose welcome email goes out at once
    email = unique_email("outbox")
    lead_id = dev.capture("demo-signup", {"email": email, "first_name": "Ola", "country": "DE", "consent": True})
    dev.tick()
    # WHEN the outbox is read as text for that address
    listing = dev.http.get(f"{dev.url}/_dev/mail", params={"format": "text", "to": email}, timeout=30)
    # THEN one line: number, time, recipient, subject
    assert listing.headers["content-type"].startswith("text/plain")
    (line,) = listing.text.splitlines()
    number, _sent_at, recipient, subject = line.split("  ", 3)
    assert recipient == email and subject == "Welcome to Example, Ola"
    # WHEN that email is opened and its first link clicked, as the recipient would
    opened = dev.http.post(f"{dev.url}/_dev/mail/{number}/open", timeout=30)
    clicked = dev.http.post(f"{dev.url}/_dev/mail/{number}/click", json={"link": 0}, timeout=30)
    # THEN both went through the email's own pixel and link
    assert opened.json() == {"email": int(number), "subject": subject, "did": "opened", "status": 200}
    assert clicked.json()["did"] == "clicked" and clicked.json()["status"] == 302
    assert _activity_types(dev, lead_id)[-2:] == ["email_opened", "email_clicked"]
    # AND a number that is no email, or a link the email has not, is a 404
    assert dev.http.post(f"{dev.url}/_dev/mail/99999/open", timeout=30).status_code == 404
    assert dev.http.post(f"{dev.url}/_dev/mail/{number}/click", json={"link": 99}, timeout=30).status_code == 404


def test_state_dir_keeps_the_stack_data_between_runs(tmp_path):
    from tests.e2e.conftest import start_dev, stop_dev

    state = tmp_path / "state"
    # GIVEN a stack started with --state, a sign-up, its welcome email, and the clock on to noon
    # in Germany the next day (out of quiet hours, whenever the test runs: the tips wait for them)
    first = start_dev("--state", str(state))
    try:
        dev = StackClient(first.url)
        email = unique_email("kept")
        lead_id = dev.capture("demo-signup", {"email": email, "first_name": "Kim", "country": "DE", "consent": True})
        dev.tick()
        started = datetime.fromisoformat(dev.http.get(f"{dev.url}/_dev/clock", timeout=10).json()["now"])
        noon = (started + timedelta(days=1)).astimezone(ZoneInfo("Europe/Berlin")).replace(hour=12, minute=0)
        seconds = (noon - started).total_seconds()
        dev.http.post(f"{dev.url}/_dev/clock", json={"advance_seconds": seconds}, timeout=10).raise_for_status()
        clock = dev.http.get(f"{dev.url}/_dev/clock", timeout=10).json()["now"]
        token = dev.token
    finally:
        stop_dev(first)
    # THEN stopping saved it, and said so
    assert (state / "leadflow-dev-state.json").is_file()
    assert first.printed(f"saved to {state}:"), "".join(first.output)
    # WHEN the stack starts again on the same folder
    second = start_dev("--state", str(state))
    try:
        dev = StackClient(second.url)
        assert second.printed(f"restored from {state}:"), "".join(second.output)
        # THEN the lead, the admin token, the outbox and the clock are as they were
        assert dev.token == token
        assert dev.api(f"/leads/{lead_id}").json()["profile"]["email"] == email
        listing = dev.http.get(f"{dev.url}/_dev/mail", params={"format": "text", "to": email}, timeout=10).text
        assert listing.splitlines()[0].endswith("Welcome to Example, Kim")
        assert dev.http.get(f"{dev.url}/_dev/clock", timeout=10).json()["now"] >= clock
        # AND the restored email's signed pixel still works (the tracking keys were kept)
        number = listing.split("  ", 1)[0]
        assert dev.http.post(f"{dev.url}/_dev/mail/{number}/open", timeout=30).json()["status"] == 200
        # AND the sequence goes on from where it was (the open sends the tips), with no second welcome
        dev.tick()
        again = dev.http.get(f"{dev.url}/_dev/mail", params={"format": "text", "to": email}, timeout=10).text
        subjects = [line.split("  ", 3)[3] for line in again.splitlines()]
        assert subjects == ["Welcome to Example, Kim", "Five tips to get more from Example"]
        # AND the same address lands on the same lead
        dev.post_form("demo-signup", {"email": email, "first_name": "Kim"}, as_json=True)
        assert [lead["lead_id"] for lead in dev.api("/leads", email=email).json()["leads"]] == [lead_id]
    finally:
        stop_dev(second)


def test_a_broadcast_is_sent_by_the_next_tick_without_moving_the_clock():
    import re

    from tests.e2e.conftest import run_leadflow, start_dev, stop_dev
    from tests.e2e.test_try_it import to_mid_morning_in_germany

    # GIVEN a fresh stack (a broadcast enrolls every lead it has) with three subscribers, in daytime
    server = start_dev()
    try:
        dev = StackClient(server.url)
        to_mid_morning_in_germany(dev.url)
        emails = [unique_email(f"push{n}") for n in range(3)]
        for email in emails:
            dev.capture("demo-signup", {"email": email, "first_name": "Pat", "country": "DE", "consent": True})
        dev.tick()
        # WHEN the push campaign is broadcast from the command line, then one tick runs
        done = run_leadflow("broadcast", "push-discount", "--dev", dev.url)
        assert done.returncode == 0, done.stderr
        dev.tick()
        # THEN every subscriber got the discount email, the clock untouched
        for email in emails:
            listing = dev.http.get(f"{dev.url}/_dev/mail", params={"format": "text", "to": email}, timeout=10).text
            assert listing.rstrip().endswith("This week only: 20% off Example"), listing
        # AND the progress line only ever went forward
        scanned = [int(n) for n in re.findall(r"scanned (\d+) leads", done.stderr)]
        assert scanned and scanned == sorted(scanned) and scanned[-1] == 3
    finally:
        stop_dev(server)
