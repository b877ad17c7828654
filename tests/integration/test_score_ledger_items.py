"""The score ledger on the table: the entries one activity earns are one item (issue 17: a
transaction bills every item twice), its activity kept once on the item, read back entry by entry
like the one-entry items written before; a rescore takes entries out of such an item and keeps the
rest; the item carries the activity's lead.scored event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leadflow.adapters.dynamo import DynamoLeadStore
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.dynamo_scoring import ledger_entries
from tests.conftest import unique_email
from tests.integration.test_scoring import score, scored_download

pytestmark = pytest.mark.integration


def ledger_items(local_stack: Any, lead_id: str) -> list[dict[str, Any]]:
    answer = local_stack.client("dynamodb").query(
        TableName=local_stack.outputs["LeadsTableName"],
        KeyConditionExpression="PK = :p AND begins_with(SK, :l)",
        ExpressionAttributeValues={":p": {"S": f"LEAD#{lead_id}"}, ":l": {"S": "LEDGER#"}},
        ConsistentRead=True,
    )
    return [deserialize(i) for i in answer["Items"]]


def entry(n: int, points: int, at: str = "2026-11-02T10:00:00+00:00") -> dict[str, Any]:
    return {
        "entry_id": f"act{n // 10}:model{n % 10}:rule",
        "model": f"model{n % 10}",
        "rule_id": "rule",
        "activity_id": f"act{n // 10}",
        "activity_type": "download",
        "at": at,
        "points": points,
        "reason": "Downloaded a guide",
    }


def test_one_activity_writes_one_ledger_item_with_all_its_entries(local_stack, client):
    # GIVEN a lead, and a download that every model scores
    lead_id = client.capture("demo-signup", {"email": unique_email("ledger-item"), "title": "VP Marketing"})
    client.tick()
    before = ledger_items(local_stack, lead_id)
    detail = scored_download(local_stack, lead_id)
    # THEN one new item holds the activity's entries, one per model that scores it
    added = [i for i in ledger_items(local_stack, lead_id) if i not in before]
    assert len(added) == 1 and len(added[0]["entries"]) >= 2
    # AND the activity's id, type and time are on the item once, not on each entry (an item of
    # three models' entries and its lead.scored stays under the 1 KB of one write unit)
    assert (added[0]["activity_id"], added[0]["activity_type"]) == (detail["activity_id"], "download")
    assert not any({"activity_id", "activity_type", "at", "entry_id"} & set(e) for e in added[0]["entries"])
    assert len(json.dumps(added[0], separators=(",", ":"), default=str)) < 1024
    assert {e["activity_id"] for e in ledger_entries(added)} == {detail["activity_id"]}
    # AND the score's explanation counts entries, not items
    assert score(client, lead_id)["ledger_entries"] == sum(len(i.get("entries") or [i]) for i in before + added)


def test_a_rescore_takes_entries_out_of_an_item_and_keeps_the_rest(local_stack, client):
    store = DynamoLeadStore(local_stack.outputs["LeadsTableName"], local_stack.client("dynamodb"))
    lead_id = client.capture("demo-signup", {"email": unique_email("ledger-rescore")})
    pk = f"LEAD#{lead_id}"
    client.tick()
    for item in ledger_items(local_stack, lead_id):  # start from a ledger of this test's own
        local_stack.client("dynamodb").delete_item(
            TableName=local_stack.outputs["LeadsTableName"], Key={"PK": {"S": pk}, "SK": {"S": item["SK"]}}
        )
    # GIVEN an item of one entry (as written before) and an item of three entries (one activity)
    old = entry(10, 5, at="2026-11-01T09:00:00+00:00")
    trio = [entry(20, 3), entry(21, 4), entry(22, 6)]
    table = local_stack.client("dynamodb")
    table.put_item(
        TableName=store.table, Item=serialize({"PK": pk, "SK": f"LEDGER#{old['at']}#{old['entry_id']}", **old})
    )
    table.put_item(
        TableName=store.table,
        Item=serialize({"PK": pk, "SK": f"LEDGER#{trio[0]['at']}#{trio[0]['entry_id']}", "entries": trio}),
    )
    # THEN both read as entries, oldest first
    read = store.score_state(lead_id).ledger
    assert [e["entry_id"] for e in read] == [old["entry_id"], *(e["entry_id"] for e in trio)]
    by_id = {e["entry_id"]: e for e in read}
    # WHEN a rescore removes the old entry and the trio's first, changes its second and adds one
    changed = {**trio[1], "points": 9}
    new = entry(30, 2, at="2026-11-03T10:00:00+00:00")
    store.rewrite_ledger(
        lead_id,
        [by_id[old["entry_id"]], by_id[trio[0]["entry_id"]], by_id[trio[1]["entry_id"]]],
        [changed, new],
        {"scores": {}, "grade": "C", "grade_points": 0, "scored_at": "2026-11-03T10:00:00+00:00"},
        None,
    )
    # THEN the ledger holds exactly the kept, the changed and the new entry, each once
    after = {e["entry_id"]: e["points"] for e in store.score_state(lead_id).ledger}
    assert after == {trio[1]["entry_id"]: 9, trio[2]["entry_id"]: 6, new["entry_id"]: 2}
    # AND the trio's item still holds its remaining entry (it was the first entry's key: kept, not deleted)
    items = {i["SK"]: i for i in ledger_items(local_stack, lead_id)}
    trio_item = items[f"LEDGER#{trio[0]['at']}#{trio[0]['entry_id']}"]
    assert [e["entry_id"] for e in ledger_entries([trio_item])] == [trio[2]["entry_id"]]
    assert trio_item["activity_id"] == "act2" and "scored" not in trio_item


def test_a_scored_activitys_ledger_item_is_its_lead_scored_event(local_stack, client):
    # GIVEN a lead
    lead_id = client.capture("demo-signup", {"email": unique_email("ledger-event"), "title": "VP Marketing"})
    client.tick()
    before = ledger_items(local_stack, lead_id)
    # WHEN a download is scored
    detail = scored_download(local_stack, lead_id)
    client.tick()
    # THEN its new ledger item carries the lead.scored event (issue 17), and no outbox item was
    # written for it: the transaction is the profile and the ledger item
    added = [i for i in ledger_items(local_stack, lead_id) if i not in before]
    assert len(added) == 1 and added[0].get("scored")
    carried = json.loads(added[0]["scored"])
    outbox = local_stack.client("dynamodb").query(
        TableName=local_stack.outputs["LeadsTableName"],
        KeyConditionExpression="PK = :p AND begins_with(SK, :e)",
        ExpressionAttributeValues={":p": {"S": f"LEAD#{lead_id}"}, ":e": {"S": "EVENT#"}},
        ConsistentRead=True,
    )["Items"]
    assert all(json.loads(i["detail"]["S"]).get("activity_id") != detail["activity_id"] for i in outbox)
    # AND the outbox relay published it from the item's stream record: once, with the carried id,
    # naming the activity and the points of its entries
    published = [
        e["detail"]
        for e in client.bus_events()
        if e["detail-type"] == "lead.scored" and e["detail"]["activity_id"] == detail["activity_id"]
    ]
    assert [d["event_id"] for d in published] == [carried["event_id"]]
    assert published[0]["lead_id"] == lead_id
    assert published[0]["points_added"] == sum(e["points"] for e in added[0]["entries"]) > 0
    assert published[0]["scores"] == carried["scores"] and published[0]["grade"] == carried["grade"]
