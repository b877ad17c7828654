"""Leads through the admin API (issue 16, part 3) on the local stack, from the real template.

Create or merge with the rules of capture, PATCH with explicit nulls, tags, lists paged by
stage / tag / segment, the CSV export; every change an activity naming who made it, with its
events on the bus.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import requests

from tests.conftest import StackClient, unique_email

pytestmark = pytest.mark.integration


def call(client: StackClient, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {client.token}", **kwargs.pop("headers", {})}
    return client.http.request(method, f"{client.url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


def test_a_lead_created_through_the_api_is_merged_by_address_and_records_who_did_it(client: StackClient) -> None:
    email = unique_email("api")
    # WHEN an admin creates a lead with a custom field and no consent
    created = call(client, "POST", "/leads", json={"email": email, "first_name": "Ada", "custom": {"seats": 12}})
    # THEN it is created, with no consent implied
    assert created.status_code == 201, created.text
    lead = created.json()
    assert lead["profile"]["first_name"] == "Ada" and lead["custom"] == {"seats": 12.0}
    assert lead["consent"] == {} and lead["submissions"] == 0
    # WHEN the same address (other case) is posted again with a blank and a new value
    again = call(client, "POST", "/leads", json={"email": email.upper(), "first_name": "", "company": "Acme"})
    # THEN it merges into the same lead: the blank never erases, the new value lands
    assert again.status_code == 200, again.text
    assert again.json()["lead_id"] == lead["lead_id"]
    merged = again.json()["profile"]
    assert merged == {**lead["profile"], "company": "Acme", "email": merged["email"]}
    assert merged["email"].casefold() == email.casefold()
    # AND each change is an activity naming the caller and the API
    detail = client.api(f"/leads/{lead['lead_id']}").json()
    saved = [a for a in detail["activities"] if a["type"] == "lead_saved"]
    assert len(saved) == 2 and all(a["via"] == "api" and a["by"] for a in saved)


def test_consent_is_recorded_only_with_a_lawful_basis_and_a_source(client: StackClient) -> None:
    email = unique_email("api-consent")
    # WHEN consent is stated without its basis
    refused = call(client, "POST", "/leads", json={"email": email, "consent": {"source": "trade show"}})
    # THEN it is a 422 naming the field, and nothing is stored
    assert refused.status_code == 422, refused.text
    assert ["body", "consent", "basis"] in [d["loc"] for d in refused.json()["detail"]]
    assert client.lead_by_email(email) is None
    # WHEN it is stated with a basis and a source
    body = {"email": email, "consent": {"basis": "consent", "source": "trade show 2026", "text": "Yes, email me"}}
    stored = call(client, "POST", "/leads", json=body)
    assert stored.status_code == 201, stored.text
    # THEN the consent history holds it with both, and the profile's state says where it came from
    detail = client.api(f"/leads/{stored.json()['lead_id']}").json()
    record = detail["consent_history"][0]
    assert (record["basis"], record["source"], record["granted"]) == ("consent", "trade show 2026", True)
    assert detail["consent"]["marketing_email"]["source"] == "trade show 2026"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not an address"},
        {"email": "a@b.example", "custom": {"Bad Name": "x"}},
        {"email": "a@b.example", "custom": {"stage": "customer"}},
        {"email": "a@b.example", "phone": "call me maybe"},
        {"email": "a@b.example", "custom": {"n": 1e200}},
        {"email": "a@b.example", "consent": {"purpose": "no_such_purpose", "basis": "consent", "source": "x"}},
    ],
)
def test_bad_values_are_a_422_naming_the_field(client: StackClient, body: dict[str, Any]) -> None:
    answer = call(client, "POST", "/leads", json=body)
    assert answer.status_code == 422, answer.text
    assert all(d["loc"][0] == "body" for d in answer.json()["detail"])


def test_patch_sets_clears_and_moves_the_address(client: StackClient) -> None:
    email, other = unique_email("patch"), unique_email("patch-other")
    lead = call(client, "POST", "/leads", json={"email": email, "title": "CTO", "custom": {"plan": "pro"}}).json()
    taken = call(client, "POST", "/leads", json={"email": other}).json()
    # WHEN a PATCH sets one field and clears another with an explicit null
    patched = call(
        client, "PATCH", f"/leads/{lead['lead_id']}", json={"company": "Acme", "title": None, "custom": {"plan": None}}
    )
    # THEN the one is set, the other gone, and the unnamed fields untouched
    assert patched.status_code == 200, patched.text
    assert patched.json()["profile"] == {"email": email, "company": "Acme"} and patched.json()["custom"] == {}
    # WHEN the address changes to one another lead has: 409, nothing changes
    assert call(client, "PATCH", f"/leads/{lead['lead_id']}", json={"email": other}).status_code == 409
    # WHEN it changes to a new address: the lead is found by the new one, not the old one
    new = unique_email("patch-new")
    assert call(client, "PATCH", f"/leads/{lead['lead_id']}", json={"email": new}).status_code == 200
    assert client.lead_by_email(new)["lead_id"] == lead["lead_id"]  # type: ignore[index]
    assert client.lead_by_email(email) is None
    assert taken["lead_id"] != lead["lead_id"]
    # AND the email cannot be cleared; an unknown lead is a 404
    assert call(client, "PATCH", f"/leads/{lead['lead_id']}", json={"email": None}).status_code == 422
    assert call(client, "PATCH", "/leads/01JD3Z8Q4W6Y9V2N5K7M0P1R3S", json={"company": "x"}).status_code == 404
    activity = next(
        a for a in client.api(f"/leads/{lead['lead_id']}").json()["activities"] if a["type"] == "lead_updated"
    )
    assert activity["by"] and activity["via"] == "api"


def test_tags_list_and_export_page_through_an_index(client: StackClient) -> None:
    tag = "vip-" + unique_email("t").split("@")[0][-8:].lower().replace("_", "-")
    ids = []
    for i in range(5):
        lead = call(client, "POST", "/leads", json={"email": unique_email(f"tag{i}"), "first_name": f"=cmd{i}"}).json()
        added = call(client, "POST", f"/leads/{lead['lead_id']}/tags/{tag}")
        assert added.status_code == 200 and tag in added.json()["tags"]
        ids.append(lead["lead_id"])
    # WHEN a tag is added twice and removed from one lead
    assert call(client, "POST", f"/leads/{ids[0]}/tags/{tag}").status_code == 200
    removed = call(client, "DELETE", f"/leads/{ids[0]}/tags/{tag}")
    assert removed.status_code == 200 and tag not in removed.json()["tags"]
    # THEN the tag's list pages through the other four, two at a time
    seen, cursor = [], None
    while True:
        params = {"tag": tag, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.api("/leads", **params).json()
        seen += [lead["lead_id"] for lead in page["leads"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids[1:])
    # AND a cursor of another list, or a forged one, is a 400
    assert client.api("/leads", tag="other", cursor=page_cursor(client, tag)).status_code == 400
    assert client.api("/leads", stage="lead", cursor="bm9wZQ").status_code == 400
    # AND the CSV export has the same leads, formulas neutralized
    exported = call(client, "GET", "/leads/export", params={"tag": tag})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["lead_id"] for r in rows) == sorted(ids[1:])
    assert all(r["first_name"].startswith("'=") for r in rows)
    # AND an unknown segment is a 404; an unknown lead's tag a 404
    assert client.api("/leads", segment="no-such-segment").status_code == 404
    assert call(client, "POST", "/leads/01JD3Z8Q4W6Y9V2N5K7M0P1R3S/tags/x").status_code == 404


def page_cursor(client: StackClient, tag: str) -> str:
    return str(client.api("/leads", tag=tag, limit=1).json()["next_cursor"])


def test_api_changes_are_announced_on_the_bus_and_fire_no_form_trigger(client: StackClient) -> None:
    email = unique_email("bus")
    lead = call(client, "POST", "/leads", json={"email": email}).json()
    call(client, "POST", f"/leads/{lead['lead_id']}/tags/api-bus")
    client.tick()
    events = [e for e in client.bus_events() if (e.get("detail") or {}).get("lead_id") == lead["lead_id"]]
    kinds = {(e["source"], e["detail-type"]) for e in events}
    assert ("leadflow.api", "lead.captured") in kinds and ("leadflow.api", "lead.tagged") in kinds, kinds
    captured = next(e for e in events if e["detail-type"] == "lead.captured")
    assert captured["detail"]["via"] == "api"
    # AND no sequence enrolled it on a form trigger (it submitted no form)
    enrollments = client.api(f"/leads/{lead['lead_id']}/enrollments").json()["enrollments"]
    assert all(e["sequence_id"] != "welcome" for e in enrollments)
