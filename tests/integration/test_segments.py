"""Segments you can see (issue 16, part 2) on the local stack: membership kept event by event,
counts from counters, members paged through the index, erasure moves the counts, the CLI."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from leadflow.dev.cli import main
from tests.conftest import StackClient, unique_email

pytestmark = pytest.mark.integration
SEGMENT = "key-account-contacts"  # demo workspace: {field: {name: company_size, one_of: ["201-1000", "1000+"]}}


def call(client: StackClient, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {client.token}"}
    return client.http.request(method, f"{client.url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


def count(client: StackClient) -> int:
    answer = client.api(f"/segments/{SEGMENT}")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["member_count"])


def members(client: StackClient) -> list[str]:
    found, cursor = [], None
    while True:
        page = client.api(f"/segments/{SEGMENT}/members", limit=2, **({"cursor": cursor} if cursor else {})).json()
        found += [lead["lead_id"] for lead in page["leads"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_membership_follows_the_lead_event_by_event_and_counts_need_no_scan(client: StackClient) -> None:
    client.tick()
    before = count(client)
    # WHEN three leads at key accounts and one elsewhere are created, and the system settles
    ids = [
        call(client, "POST", "/leads", json={"email": unique_email("seg"), "custom": {"company_size": size}}).json()[
            "lead_id"
        ]
        for size in ("1000+", "201-1000", "1000+", "1-10")
    ]
    client.tick()
    # THEN the three are members, counted, and listed page by page through the index
    assert count(client) == before + 3
    listed = members(client)
    assert set(ids[:3]) <= set(listed) and ids[3] not in listed
    assert len(listed) == len(set(listed)) == before + 3
    # WHEN one leaves the rule (its field cleared) and one is erased
    assert call(client, "PATCH", f"/leads/{ids[0]}", json={"custom": {"company_size": None}}).status_code == 200
    assert call(client, "DELETE", f"/leads/{ids[1]}").status_code == 200
    client.tick()
    # THEN both left: the count moved with them, the list no longer has them
    assert count(client) == before + 1
    assert ids[2] in members(client) and not {ids[0], ids[1]} & set(members(client))
    # AND a redelivered change counts nothing twice (the events are replayed: same state, no move)
    assert call(client, "POST", f"/leads/{ids[2]}/tags/recount-check").status_code == 200
    client.tick()
    assert count(client) == before + 1


def test_the_segments_answer_with_rules_and_counts(client: StackClient) -> None:
    overview = client.api("/segments").json()["segments"]
    assert {s["segment_id"] for s in overview} >= {SEGMENT, "all-subscribers", "hot-smb", "pricing-visitors"}
    one = client.api(f"/segments/{SEGMENT}").json()
    assert one["definition"] == {"field": {"name": "company_size", "one_of": ["201-1000", "1000+"]}}
    assert client.api("/segments/no-such-segment").status_code == 404
    assert client.api("/segments/no-such-segment/members").status_code == 404


def test_the_cli_counts_lists_exports_and_back_fills(
    client: StackClient, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    lead = call(client, "POST", "/leads", json={"email": unique_email("cli-seg"), "custom": {"company_size": "1000+"}})
    lead_id = lead.json()["lead_id"]
    client.tick()
    # WHEN the segment is back-filled (as after adding or changing it)
    assert main(["segment", "refresh", SEGMENT, "--dev", client.url]) == 0
    # THEN its count is exact and no longer stale
    counted = client.api(f"/segments/{SEGMENT}").json()
    assert counted["stale"] is False and counted["member_count"] == len(members(client))
    capsys.readouterr()
    assert main(["segment", "count", SEGMENT, "--dev", client.url]) == 0
    assert capsys.readouterr().out.strip() == str(counted["member_count"])
    assert main(["segment", "list", SEGMENT, "--dev", client.url]) == 0
    assert lead_id in capsys.readouterr().out
    out = tmp_path / "members.csv"
    assert main(["segment", "export", SEGMENT, "--out", str(out), "--dev", client.url]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("lead_id,email") and len(lines) == counted["member_count"] + 1
    with pytest.raises(SystemExit, match="no segment"):
        main(["segment", "count", "nope", "--dev", client.url])


def test_the_sample_events_run_through_their_handlers(local_stack: Any, client: StackClient) -> None:
    import json

    from tests.conftest import EVENTS, load_json

    def sample(name: str, lead_id: str | None = None) -> dict[str, Any]:
        text = json.dumps(load_json(EVENTS / name)).replace("jane@example.com", email)
        return json.loads(text.replace("01JD3Z8Q4W6Y9V2N5K7M0P1R3S", lead_id)) if lead_id else json.loads(text)

    email = unique_email("sample")
    # WHEN the IAM-signed samples create, change and tag a lead, and list a segment and the segments
    created = local_stack.runner.invoke("LeadApiFunction", sample("lead_api_create_lead.json"))
    assert created["statusCode"] == 201, created["body"]
    lead_id = json.loads(created["body"])["lead_id"]
    # THEN each answers, naming the IAM caller on the activity
    for name in ("lead_api_update_lead.json", "lead_api_tag_lead.json"):
        answer = local_stack.runner.invoke("LeadApiFunction", sample(name, lead_id))
        assert answer["statusCode"] == 200, (name, answer["body"])
    for name in ("lead_api_list_segment.json", "lead_api_segments.json", "lead_api_export_leads.json"):
        assert local_stack.runner.invoke("LeadApiFunction", sample(name))["statusCode"] == 200, name
    imported = local_stack.runner.invoke("LeadApiFunction", sample("lead_api_create_import.json"))
    assert imported["statusCode"] == 201, imported["body"]
    assert json.loads(imported["body"])["format"] == "mailchimp"
    activities = client.api(f"/leads/{lead_id}").json()["activities"]
    assert {a["by"] for a in activities if a.get("via") == "api"} == {
        "Admin"
    }  # the sample's IAM principal (assumed-role/.../Admin)
    # AND the segments function takes its sample (the lead's move to MQL) without a failure
    result = local_stack.runner.invoke("SegmentsFunction", sample("segments_sqs.json", lead_id))
    assert result == {"batchItemFailures": []}
    assert lead_id in members(client)
