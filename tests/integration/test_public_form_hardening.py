"""Public form posts over HTTP on the local stack: what a hostile review found (issue 13).

Defect 6: the answer reveals nobody, an anonymous post overwrites nobody.
Defect 7: idempotency keys cover their payload; the minimum fill time holds on any site.
Defect 11: unsafe page URLs and bodies in a declared charset.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from leadflow.adapters.dynamo import DynamoLeadStore
from tests.conftest import StackClient, unique_email, unique_ip

pytestmark = pytest.mark.integration


def form_stats(local_stack: Any, form_id: str) -> dict[str, int]:
    store = DynamoLeadStore(local_stack.outputs["LeadsTableName"], local_stack.client("dynamodb"))
    return store.form_stats(local_stack.clock.now().date().isoformat()).get(form_id, {})


def test_a_latin1_json_body_is_stored_as_written(client: StackClient):
    # GIVEN a JSON post whose bytes are Latin-1, declared charset=latin-1
    email = unique_email("latin1")
    body = f'{{"email": "{email}", "first_name": "Zoë", "company": "Société Générale"}}'.encode("latin-1")

    # WHEN it is posted
    response = client.http.post(
        f"{client.url}/forms/demo-signup",
        data=body,
        headers={"Content-Type": "application/json; charset=latin-1", "X-Forwarded-For": unique_ip()},
        timeout=30,
    )

    # THEN it is accepted and stored as the visitor wrote it, not garbled
    assert response.status_code < 300, response.text
    lead = client.lead_by_email(email)
    assert lead is not None
    profile = client.api(f"/leads/{lead['lead_id']}").json()["profile"]
    assert (profile["first_name"], profile["company"]) == ("Zoë", "Société Générale")


def test_an_urlencoded_latin1_form_is_stored_as_written(client: StackClient):
    # GIVEN an HTML form of a Latin-1 page (percent-escapes are Latin-1 bytes)
    email = unique_email("latin1form")
    body = f"email={email}&first_name=Zo%EB&company=Caf%E9".encode("ascii")

    # WHEN it is posted
    response = client.http.post(
        f"{client.url}/forms/demo-signup",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=ISO-8859-1",
            "X-Forwarded-For": unique_ip(),
        },
        allow_redirects=False,
        timeout=30,
    )

    # THEN the thank-you page, and the profile as written
    assert response.status_code == 303
    lead = client.lead_by_email(email)
    assert lead is not None
    profile = client.api(f"/leads/{lead['lead_id']}").json()["profile"]
    assert (profile["first_name"], profile["company"]) == ("Zoë", "Café")


def test_unsafe_page_and_referrer_are_dropped_flagged_and_counted(client: StackClient, local_stack: Any):
    # GIVEN a post whose page and referrer are javascript: and data: URLs
    email = unique_email("unsafe")
    before = form_stats(local_stack, "demo-signup")
    response = client.post_form(
        "demo-signup",
        {
            "email": email,
            "page_url": "javascript:alert(document.cookie)",
            "referrer": "data:text/html,<script>x</script>",
        },
    )
    assert response.status_code == 303

    # THEN the lead's touches carry neither, the activity is flagged, and the day's form counters count them
    lead = client.lead_by_email(email)
    assert lead is not None
    detail = client.api(f"/leads/{lead['lead_id']}").json()
    touch = detail["attribution"]["first_touch"]
    assert "page_url" not in touch and "referrer" not in touch
    assert "javascript:" not in str(detail) and "data:text" not in str(detail)
    assert {"unsafe_page_url", "unsafe_referrer"} <= set(detail["activities"][0]["flags"])
    after = form_stats(local_stack, "demo-signup")
    for flag in ("flag_unsafe_page_url", "flag_unsafe_referrer"):
        assert after.get(flag, 0) == before.get(flag, 0) + 1


# ---------------------------------------------------------------------------- defect 6


def lead_detail(client: StackClient, email: str) -> dict[str, Any]:
    lead = client.lead_by_email(email)
    assert lead is not None
    return dict(client.api(f"/leads/{lead['lead_id']}").json())


def test_the_answer_is_the_same_for_a_new_and_a_known_address(client: StackClient):
    # GIVEN a known lead and an address nobody used
    known, new = unique_email("known"), unique_email("new")
    client.capture("demo-signup", {"email": known})

    # WHEN a stranger posts each, as JSON and as an HTML form
    answers = [client.post_form("demo-signup", {"email": email}, as_json=True) for email in (known, new)]
    pages = [client.post_form("demo-signup", {"email": email}) for email in (known, new)]

    # THEN the answers cannot be told apart: status, shape, headers; no lead id anywhere
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["status"] for a in answers] == ["received", "received"]
    assert [set(a.json()) for a in answers] == [{"status", "submission_id"}] * 2
    assert sorted(answers[0].headers) == sorted(answers[1].headers)
    for answer in answers:
        assert client.lead_by_email(known)["lead_id"] not in answer.text
    assert [(p.status_code, p.headers["location"]) for p in pages] == [(303, "/thank-you")] * 2


def test_a_strangers_post_fills_blanks_but_never_overwrites(client: StackClient):
    # GIVEN a lead who told us their first name and company
    email = unique_email("victim")
    client.capture("demo-signup", {"email": email, "first_name": "Ada", "company": "Analytical Engines"})

    # WHEN a stranger posts the address with other values (and a title the lead never gave)
    answer = client.post_form(
        "demo-signup", {"email": email, "first_name": "Mallory", "company": "Evil Corp", "title": "CEO"}, as_json=True
    )
    assert answer.status_code == 200

    # THEN what the person told us stands, the blank was filled, and the activity keeps the values for review
    detail = lead_detail(client, email)
    assert (detail["profile"]["first_name"], detail["profile"]["company"]) == ("Ada", "Analytical Engines")
    assert detail["profile"]["title"] == "CEO"
    latest = detail["activities"][0]
    assert latest["unverified"] is True
    assert latest["fields"]["first_name"] == ["Mallory"] and latest["fields"]["company"] == ["Evil Corp"]


def test_a_visitor_identified_by_a_tracked_click_may_update(client: StackClient):
    # GIVEN a lead who clicked a tracked link in one of our emails (leadflow's signed visitor cookie)
    email = unique_email("mover")
    lead_id = client.capture("demo-signup", {"email": email, "company": "Old Co"})
    link = client.http.post(
        client.url + "/_dev/tokens",
        json={"kind": "c", "lead_id": lead_id, "message_id": "m1", "url": "https://www.example.com/pricing"},
        timeout=10,
    ).json()["token"]
    browser = requests.Session()
    clicked = browser.get(f"{client.url}/t/c/{link}", allow_redirects=False, timeout=10)
    assert clicked.status_code == 302
    cookie = clicked.headers["set-cookie"]
    assert cookie.startswith("lf_id=") and "HttpOnly" in cookie

    # WHEN that browser posts the form with a new company
    answer = browser.post(
        f"{client.url}/forms/demo-signup",
        json={"email": email, "company": "New Co"},
        headers={"X-Forwarded-For": unique_ip()},
        timeout=30,
    )

    # THEN the same public answer, and the lead is updated
    assert answer.status_code == 200 and set(answer.json()) == {"status", "submission_id"}
    detail = lead_detail(client, email)
    assert detail["profile"]["company"] == "New Co"
    assert "unverified" not in detail["activities"][0]
    # AND the cookie names only its own lead: another lead's address is only filled, not overwritten
    other = unique_email("other")
    client.capture("demo-signup", {"email": other, "company": "Kept"})
    browser.post(
        f"{client.url}/forms/demo-signup",
        json={"email": other, "company": "Changed"},
        headers={"X-Forwarded-For": unique_ip()},
        timeout=30,
    )
    assert lead_detail(client, other)["profile"]["company"] == "Kept"


def test_a_forged_visitor_cookie_identifies_nobody(client: StackClient):
    email = unique_email("forged")
    client.capture("demo-signup", {"email": email, "company": "Real"})
    answer = client.post_form(
        "demo-signup", {"email": email, "company": "Forged"}, as_json=True, headers={"Cookie": "lf_id=abc.def"}
    )
    assert answer.status_code == 200
    assert lead_detail(client, email)["profile"]["company"] == "Real"


# ---------------------------------------------------------------------------- defect 7


@pytest.mark.parametrize("carrier", ["header", "nonce"])
def test_a_used_key_with_another_payload_is_a_conflict_never_a_silent_drop(client: StackClient, carrier: str):
    # GIVEN a post under a key
    key = uuid.uuid4().hex
    first_email, second_email = unique_email("key1"), unique_email("key2")

    def post(email: str) -> requests.Response:
        if carrier == "header":
            return client.post_form("demo-signup", {"email": email}, as_json=True, headers={"Idempotency-Key": key})
        return client.post_form("demo-signup", {"email": email, "_lf_nonce": key}, as_json=True)

    first = post(first_email)
    again = post(first_email)

    # WHEN another payload comes under the same key
    second = post(second_email)

    # THEN the repeat is the same submission, the other payload is a 409, and nothing was dropped unseen
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert second.status_code == 409, second.text
    assert client.lead_by_email(first_email)["submissions"] == 1
    assert client.lead_by_email(second_email) is None


def test_min_fill_seconds_works_with_the_signed_render_time_and_counts_what_cannot_be_judged(
    client: StackClient, local_stack: Any
):
    # GIVEN a signed render time from GET /t/ts (what lf.js fetches for a form on any site)
    answer = client.http.get(client.url + "/t/ts", headers={"Origin": "https://www.other-site.example"}, timeout=10)
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"
    signed = answer.json()["ts"]
    before = form_stats(local_stack, "demo-signup")

    # WHEN a bot posts at once with it, one forges a time, and one sends none
    fast, forged, missing = unique_email("fast"), unique_email("forged"), unique_email("missing")
    forged_ts = f"{int(signed.split('.')[0]) - 60_000}.{signed.split('.')[1]}"
    for email, ts in ((fast, signed), (forged, forged_ts), (missing, None)):
        body = {"email": email, **({"_lf_ts": ts} if ts else {})}
        assert client.post_form("demo-signup", body, as_json=True).status_code == 200

    # THEN the fast one is spam (no lead), the others are stored, flagged on the activity and counted
    assert client.lead_by_email(fast) is None
    assert lead_detail(client, forged)["activities"][0]["flags"] == ["forged_render_time"]
    assert lead_detail(client, missing)["activities"][0]["flags"] == ["missing_render_time"]
    after = form_stats(local_stack, "demo-signup")
    assert after.get("spam_too_fast", 0) == before.get("spam_too_fast", 0) + 1
    for flag in ("flag_forged_render_time", "flag_missing_render_time"):
        assert after.get(flag, 0) == before.get(flag, 0) + 1
