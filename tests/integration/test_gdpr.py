"""GDPR on the local stack: export, erasure, the hashed suppression list, resumable erasure.

A rich lead's life runs through the real wiring (site visits as an anonymous visitor, a form
post that stitches them, the welcome email, a tracked click, a hand-off to the fake CRM,
sales feedback back from it); then the whole table is scanned for the lead's id and address.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.adapters.dynamo_json import deserialize
from leadflow.domain.gdpr import public
from tests.conftest import EVENTS, StackClient, external, suppression_key, unique_email, unique_ip

pytestmark = pytest.mark.integration


def admin(client: StackClient, method: str, path: str) -> Any:
    return client.http.request(
        method, f"{client.url}/api/v1{path}", headers={"Authorization": f"Bearer {client.token}"}, timeout=60
    )


def table_items(local_stack: Any, output: str = "LeadsTableName") -> list[dict[str, Any]]:
    """Every item of a table of the stack (a full scan, as a reviewer would do it)."""
    dynamodb = local_stack.client("dynamodb")
    kwargs: dict[str, Any] = {"TableName": local_stack.outputs[output]}
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.scan(**kwargs)
        items += [deserialize(i) for i in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def carrying(items: list[dict[str, Any]], *needles: str) -> list[dict[str, Any]]:
    """The items whose keys or values mention any of ``needles`` (case-insensitive)."""
    wanted = [n.casefold() for n in needles]
    return [i for i in items if any(n in json.dumps(i, default=str).casefold() for n in wanted)]


def canonical(value: Any) -> str:
    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            parts = [norm(x) for x in v]
            return sorted(parts, key=lambda p: json.dumps(p, sort_keys=True, default=str))
        return v

    return json.dumps(norm(value), sort_keys=True, default=str)


def every_dict(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        found.add(canonical(value))
        for v in value.values():
            found |= every_dict(v)
    elif isinstance(value, list):
        for v in value:
            found |= every_dict(v)
    return found


def live_a_rich_life(client: StackClient, email: str) -> str:
    """Site visits, a form post, the welcome email, a click, a hand-off and sales feedback."""
    visitor = "v-" + uuid.uuid4().hex[:16]
    body = {"visitor_id": visitor, "type": "page_view", "url": "https://www.example.com/pricing", "seconds": 40}
    sent = client.http.post(
        client.url + "/t/e",
        data=json.dumps(body),
        headers={"Content-Type": "text/plain", "Origin": "https://www.example.com"},
        timeout=10,
    )
    assert sent.status_code == 204
    fields = {
        "email": email,
        "first_name": "Grace",
        "last_name": "Hopper",
        "company": "Navy",
        "title": "VP Engineering",
        "country": "US",
        "company_size": "201-1000",
        "consent": True,
        "_lf_vid": visitor,
        "_lf_nonce": uuid.uuid4().hex,
    }
    # an autofilled post, too: the honeypot field filled, kept 30 days as spam with its fields
    spam = client.post_form("demo-signup", {"email": email.upper(), "website": "https://x.example"}, as_json=True)
    assert spam.status_code == 200
    lead_id = client.capture("demo-signup", fields, ip=unique_ip())
    client.tick()  # welcome email, scoring, the visit stitched
    token = client.http.post(
        client.url + "/_dev/tokens",
        json={
            "kind": "c",
            "lead_id": lead_id,
            "message_id": "m-1",
            "url": "https://www.example.com/demo",
            "link_id": "demo",
        },
        timeout=10,
    ).json()["token"]
    assert client.http.get(f"{client.url}/t/c/{token}", allow_redirects=False, timeout=10).status_code == 302
    started = client.http.post(
        f"{client.url}/api/v1/leads/{lead_id}/handoff",
        json={"reason": "asked for a demo"},
        headers={"Authorization": f"Bearer {client.token}"},
        timeout=30,
    )
    assert started.status_code in (200, 201), started.text
    client.tick()  # delivered to the fake CRM
    feedback = client.http.post(
        f"{client.url}/_dev/crm/feedback", json={"lead_id": lead_id, "outcome": "accepted"}, timeout=30
    )
    assert feedback.status_code == 200, feedback.text
    client.tick()
    return lead_id


def test_the_export_holds_every_item_of_a_rich_leads_life(client: StackClient, local_stack: Any) -> None:
    # GIVEN a lead who visited, signed up, got the welcome email, clicked, was handed off and accepted
    email = unique_email("export")
    lead_id = live_a_rich_life(client, email)
    # WHEN the person asks for their data
    response = admin(client, "GET", f"/leads/{lead_id}/export")
    # THEN one JSON document answers, with every kind of data the issue names
    assert response.status_code == 200, response.text
    export = response.json()
    assert export["type"] == "leadflow.personal_data_export" and export["lead_id"] == lead_id
    assert export["profile"]["email"] == email and export["custom_fields"]["company_size"] == "201-1000"
    assert export["attribution"]["first_touch"] and export["grade"]["grade"]
    assert [c["granted"] for c in export["consent_history"]] == [True]
    assert {a["type"] for a in export["activities"]} >= {
        "form_submitted",
        "page_viewed",
        "email_clicked",
        "sales_feedback",
    }
    assert export["score_ledger"] and export["enrollments"]
    welcome = [e for e in export["emails_sent"] if e["sequence_id"] == "welcome"]
    sent = [m for m in client.http.get(f"{client.url}/_dev/outbox", timeout=30).json() if email in m["to"]]
    assert welcome and welcome[0]["sent_at"] and [welcome[0]["subject"]] == [m["subject"] for m in sent]
    payload = export["handoffs"][0]["payload"]  # as sent: the JSON document, kept as its text
    assert (json.loads(payload) if isinstance(payload, str) else payload)["lead"]["id"] == lead_id
    assert export["handoffs"][0]["status"] == "accepted"
    assert [f["outcome"] for f in export["crm_feedback"]] == ["accepted"]
    assert export["suppression"]["suppressed"] is False
    assert export["visitor_ids"] and export["visitor_activities"]
    assert [r["reason"] for r in export["spam_records"]] == ["honeypot"]
    # (the reports' markers of the lead, its hand-off and its emails, too)
    ids = {f"LEADRPT#{lead_id}", f"HANDOFFRPT#{export['handoffs'][0]['handoff_id']}"}
    ids |= {f"MSGRPT#{m}" for m in [e["message_id"] for e in export["emails_sent"]]}
    ids |= {f"MSGRPT#{a['message_id']}" for a in export["activities"] if a.get("message_id")}
    reports = [i for i in table_items(local_stack, "ReportsTableName") if i["PK"] in ids]
    assert len(export["report_markers"]) == len(reports) > 1
    # AND walking the whole table, no item with the lead's id or address is missing from it
    in_export = every_dict(export)
    held = carrying(table_items(local_stack), lead_id, email)
    assert held
    missing = [i for i in held if canonical(public(i)) not in in_export]
    assert missing == [], [(i["PK"], i["SK"]) for i in missing]
    # AND the export is in the audit trail, without the person's id or address
    audits = [i for i in table_items(local_stack) if str(i["PK"]).startswith("AUDIT#") and i.get("action") == "export"]
    assert any(a["counts"] == export["counts"] for a in audits)
    assert carrying(audits, lead_id, email) == []


def test_erasure_leaves_only_hashes_and_tells_the_crm(client: StackClient, local_stack: Any) -> None:
    # GIVEN a lead with a full history
    email = unique_email("erase")
    lead_id = live_a_rich_life(client, email)
    handoff_id = admin(client, "GET", f"/leads/{lead_id}/handoffs").json()["handoffs"][0]["handoff_id"]
    # WHEN it is erased
    response = admin(client, "DELETE", f"/leads/{lead_id}")
    # THEN the answer counts what went, per kind, and holds none of the data
    assert response.status_code == 200, response.text
    erasure = response.json()
    assert erasure["status"] == "erased"
    assert erasure["counts"]["profile"] == 1 and erasure["counts"]["activities"] >= 4
    assert erasure["counts"]["email_guard"] == 1 and erasure["counts"]["visitor_links"] == 1
    assert erasure["counts"]["spam_records"] == 1 and erasure["counts"]["report_markers"] >= 1
    assert erasure["notified"] == ["crm-webhook"]
    assert email not in response.text
    # AND the lead is gone for every reader
    assert admin(client, "GET", f"/leads/{lead_id}").status_code == 404
    assert admin(client, "GET", f"/leads/{lead_id}/export").status_code == 404
    client.tick()  # the lead.erased webhook goes out
    # AND scanning the whole table: no item carries its id or address (nor in the reports' table)
    items = table_items(local_stack)
    assert carrying(items, lead_id, email) == []
    assert carrying(table_items(local_stack, "ReportsTableName"), lead_id, email, handoff_id) == []
    # AND only the address's keyed hash is on the suppression list, and the audit record names no one
    key = suppression_key(local_stack, email)
    entry = next(i for i in items if i["PK"] == f"SUPPRESS#{key}")
    assert entry["reason"] == "erased"
    audit = [i for i in items if str(i["PK"]).startswith("AUDIT#") and i.get("erasure_id") == erasure["erasure_id"]]
    assert len(audit) == 1 and audit[0]["counts"] == erasure["counts"] and audit[0]["requested_by"].startswith("api:")
    # AND the CRM webhook got a signed lead.erased event naming the hand-off (ids only)
    received = client.http.get(f"{client.url}/_dev/crm/requests", timeout=30).json()
    notices = [r for r in received if '"lead.erased"' in r["body"] and lead_id in r["body"]]
    assert len(notices) == 1 and notices[0]["signature_valid"] is True
    notice = json.loads(notices[0]["body"])
    assert notice["handoff_ids"] == [handoff_id] and email not in notices[0]["body"]
    # AND asking again answers what the first erasure did, and removes what arrived for the id since
    # (a late SES notice of an email sent before the erasure)
    late = {"PK": {"S": f"LEAD#{lead_id}"}, "SK": {"S": "ACT#2099-01-01T00:00:00+00:00#late"}, "type": {"S": "x"}}
    local_stack.client("dynamodb").put_item(TableName=local_stack.outputs["LeadsTableName"], Item=late)
    again = admin(client, "DELETE", f"/leads/{lead_id}")
    assert carrying(table_items(local_stack), lead_id) == []
    assert again.status_code == 200 and again.json()["status"] == "already_erased"
    assert again.json()["counts"] == erasure["counts"]
    assert admin(client, "DELETE", "/leads/no-such-lead").status_code == 404


def outbox_to(client: StackClient, email: str) -> list[dict[str, Any]]:
    return [m for m in client.http.get(f"{client.url}/_dev/outbox", timeout=30).json() if email in m["to"]]


def test_an_erased_address_is_mailed_again_only_after_new_consent(client: StackClient) -> None:
    # GIVEN two people who were erased
    quiet, consenting = unique_email("erased-quiet"), unique_email("erased-again")
    for email in (quiet, consenting):
        lead_id = client.capture("demo-signup", {"email": email, "consent": True})
        client.tick()
        assert admin(client, "DELETE", f"/leads/{lead_id}").status_code == 200
    # WHEN they post the form again, one without consent and one with it
    client.post_form("demo-signup", {"email": quiet}, as_json=True)
    client.post_form("demo-signup", {"email": consenting, "consent": True}, as_json=True)
    client.tick()
    # THEN only the one who consented again gets the welcome email again
    assert len(outbox_to(client, quiet)) == 1  # the welcome before the erasure
    assert len(outbox_to(client, consenting)) == 2


def test_an_interrupted_erasure_is_finished_by_a_retry(client: StackClient, local_stack: Any) -> None:
    # GIVEN a lead, and a table that refuses the erasure's deletions for a while
    email = unique_email("resume")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})
    client.tick()
    fault = {
        "service": "dynamodb",
        "operation": "BatchWriteItem",
        "error": "InternalServerError",
        "count": 10,
        "status": 500,
    }
    client.http.post(f"{client.url}/_dev/faults", json=fault, timeout=10).raise_for_status()
    try:
        # WHEN the erasure is asked for
        first = admin(client, "DELETE", f"/leads/{lead_id}")
    finally:
        client.http.delete(f"{client.url}/_dev/faults", timeout=10)
    # THEN it says to try again, and the started erasure is recorded on the lead
    assert first.status_code == 503, first.text
    marked = [i for i in table_items(local_stack) if i["PK"] == f"LEAD#{lead_id}" and i["SK"] == "PROFILE"]
    assert marked and marked[0]["erasure"]["requested_by"].startswith("api:")
    # WHEN it is asked again
    second = admin(client, "DELETE", f"/leads/{lead_id}")
    # THEN it finishes what the first started: one erasure, nothing of the lead left
    assert second.status_code == 200 and second.json()["status"] == "erased"
    assert second.json()["erasure_id"] == marked[0]["erasure"]["erasure_id"]
    assert carrying(table_items(local_stack), lead_id, email) == []


def test_erasure_and_export_from_the_command_line(client: StackClient, tmp_path: Any) -> None:
    import subprocess
    import sys

    # GIVEN a lead
    email = unique_email("cli")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})
    leadflow = [sys.executable, "-m", "leadflow.dev.cli"]
    # WHEN the operator exports and then erases it by address
    out = tmp_path / "export.json"
    exported = subprocess.run(
        [*leadflow, "gdpr", "export", email.upper(), "--dev", client.url, "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    erased = subprocess.run(
        [*leadflow, "gdpr", "erase", email, "--dev", client.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # THEN the export is the lead's, the erasure counts what went, and the lead is gone
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["lead_id"] == lead_id
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["counts"]["profile"] == 1
    assert admin(client, "GET", f"/leads/{lead_id}").status_code == 404


def test_gdpr_sample_events_through_their_handlers(client: StackClient, local_stack: Any) -> None:
    from tests.conftest import EVENTS, load_json

    # GIVEN a lead handed off to the fake CRM
    email = unique_email("samples")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})

    def for_lead(name: str) -> dict[str, Any]:
        text = json.dumps(load_json(EVENTS / name)).replace("01JD3Z8Q4W6Y9V2N5K7M0P1R3S", lead_id)
        return dict(json.loads(text))

    # WHEN the export and erase samples run through the admin API's handler
    exported = local_stack.runner.invoke("LeadApiFunction", for_lead("lead_api_export.json"))
    erased = local_stack.runner.invoke("LeadApiFunction", for_lead("lead_api_erase.json"))
    # THEN the export is the lead's, and the erasure counts what went
    assert exported["statusCode"] == 200 and json.loads(exported["body"])["profile"]["email"] == email
    assert erased["statusCode"] == 200 and json.loads(erased["body"])["counts"]["profile"] == 1
    # AND the erasure notice sample is delivered, signed, to the webhook destination
    result = local_stack.runner.invoke("CrmHandoffFunction", for_lead("crm_handoff_erased_sqs.json"))
    assert result == {"batchItemFailures": []}
    received = client.http.get(f"{client.url}/_dev/crm/requests", timeout=30).json()
    notice = [r for r in received if "er_01JD3Z8Q4WERS00000000000000" in r["headers"].get("webhook-id", "")]
    assert notice and notice[-1]["signature_valid"] is True
    # AND the OpenAPI document describes both routes with their exact models
    document = json.loads(
        local_stack.runner.invoke("LeadApiFunction", load_json(EVENTS / "lead_api_openapi.json"))["body"]
    )
    assert "delete" in document["paths"]["/api/v1/leads/{lead_id}"]
    schemas = document["components"]["schemas"]
    assert {"LeadExport", "ErasureView"} <= set(schemas)


@settings(max_examples=25, deadline=None)
@given(lead_id=st.text(min_size=1, max_size=80))
def test_any_lead_id_gets_a_clear_answer_never_a_5xx(client: StackClient, lead_id: str) -> None:
    # GIVEN any path parameter a caller may send (unknown ids, too long, odd characters)
    path = "/leads/" + quote(lead_id, safe="")
    # WHEN it is exported or erased
    for method, route in (("GET", path + "/export"), ("DELETE", path)):
        response = admin(client, method, route)
        # THEN the answer is a plain 4xx: nobody by that id, or a bad id
        assert 400 <= response.status_code < 500, (method, lead_id, response.status_code, response.text)


def test_what_arrives_for_an_erased_person_afterwards_stores_nothing_of_them(
    client: StackClient, local_stack: Any
) -> None:
    # GIVEN a lead with a full history, the links of its welcome email kept, then erased
    from tests.integration.test_nurture import emails_to, pixel_url, tracked_links

    email = unique_email("erase-late")
    lead_id = live_a_rich_life(client, email)
    [welcome] = [m for m in emails_to(client, email) if m["subject"].startswith("Welcome")]
    pixel, links = pixel_url(welcome), tracked_links(welcome)
    assert admin(client, "DELETE", f"/leads/{lead_id}").json()["status"] == "erased"
    client.tick()
    # WHEN the email is opened and clicked afterwards, and SES reports a bounce and a complaint
    # for it late (the SES developer guide's samples, to the erased address)
    assert client.http.get(pixel, timeout=10).status_code == 200
    assert client.http.get(links[0], allow_redirects=False, timeout=10).status_code in (302, 404)
    envelope = json.loads((EVENTS / "ses_events_sqs.json").read_text())
    for kind in ("Bounce", "Complaint"):
        message = external(f"ses/awsdocs_eventpublishing_{kind}.json").read_text()
        body = json.loads(envelope["Records"][0]["body"])
        body["detail"] = json.loads(message.replace("recipient@example.com", email))
        body["detail-type"] = {"Bounce": "Email Bounced", "Complaint": "Email Complaint Received"}[kind]
        record = {**envelope["Records"][0], "body": json.dumps(body), "messageId": str(uuid.uuid4())}
        result = local_stack.runner.invoke("SesEventsFunction", {"Records": [record]})
        assert result == {"batchItemFailures": []}
    client.tick()
    # THEN no item carries the person's id or address: late arrivals are dropped, not stored
    assert carrying(table_items(local_stack), lead_id, email) == []
    assert carrying(table_items(local_stack, "ReportsTableName"), lead_id, email) == []
    # AND the keyed-hash suppression entry still keeps the address from being mailed
    key = suppression_key(local_stack, email)
    assert any(i["PK"] == f"SUPPRESS#{key}" for i in table_items(local_stack))
