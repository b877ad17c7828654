"""The account index (GSI5, INCLUDE ``lead_id`` and ``title``): capture keys a company's leads there,
not in GSI1 (projection ALL, rewritten at every scoring); the account view still finds profiles written
before GSI5, and ``leadflow migrate account-index`` moves them, once."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from leadflow.adapters.account_index import AccountIndexMigration, DynamoAccountIndexMigration
from leadflow.adapters.dynamo import DynamoLeadStore
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.dev.cli import main
from tests.conftest import StackClient, copy_of_leads_table

pytestmark = pytest.mark.integration

_tables = itertools.count()


def company_domain() -> str:
    return f"acct-{uuid.uuid4().hex[:8]}.example.com"


def profile(local_stack: Any, lead_id: str, table: str | None = None) -> dict[str, Any]:
    answer = local_stack.client("dynamodb").get_item(
        TableName=table or local_stack.outputs["LeadsTableName"],
        Key=serialize({"PK": f"LEAD#{lead_id}", "SK": "PROFILE"}),
        ConsistentRead=True,
    )
    return deserialize(answer["Item"])


def to_legacy_keys(local_stack: Any, lead_id: str) -> None:
    """The profile as versions before GSI5 wrote it: its account keys in GSI1."""
    local_stack.client("dynamodb").update_item(
        TableName=local_stack.outputs["LeadsTableName"],
        Key=serialize({"PK": f"LEAD#{lead_id}", "SK": "PROFILE"}),
        UpdateExpression="SET GSI1PK = GSI5PK, GSI1SK = GSI5SK REMOVE GSI5PK, GSI5SK",
    )


def test_a_captured_lead_of_a_company_is_keyed_in_the_account_index_only(local_stack: Any, client: StackClient):
    # GIVEN a lead of a company, captured by the demo form
    domain = company_domain()
    lead_id = client.capture("demo-signup", {"email": f"ana@{domain}", "title": "CFO"})
    # THEN its profile carries the account keys for GSI5, none for GSI1
    stored = profile(local_stack, lead_id)
    assert (stored["GSI5PK"], stored["GSI5SK"]) == (f"ACCOUNT#{domain}", f"LEAD#{lead_id}")
    assert "GSI1PK" not in stored and "GSI1SK" not in stored
    # AND GSI5 keeps only the keys, lead_id and title of it
    (entry,) = local_stack.client("dynamodb").query(
        TableName=local_stack.outputs["LeadsTableName"],
        IndexName="GSI5",
        KeyConditionExpression="GSI5PK = :p",
        ExpressionAttributeValues=serialize({":p": f"ACCOUNT#{domain}"}),
    )["Items"]
    assert set(entry) == {"PK", "SK", "GSI5PK", "GSI5SK", "lead_id", "title"}
    # AND the account view finds the lead through it, its department read from the title (CFO: finance)
    client.tick()
    account = client.api(f"/accounts/{domain}").json()
    assert (account["leads"], account["top_leads"], account["departments"]) == (1, [lead_id], ["finance"])


def test_a_profile_keyed_in_gsi1_is_found_until_the_migration_moves_it(local_stack: Any, client: StackClient, capsys):
    # GIVEN two leads of a company, one of them written before GSI5 (its account keys in GSI1)
    domain = company_domain()
    old = client.capture("demo-signup", {"email": f"old@{domain}", "title": "VP Marketing"})
    new = client.capture("demo-signup", {"email": f"new@{domain}", "title": "Head of IT"})
    client.tick()
    to_legacy_keys(local_stack, old)
    # THEN the account view finds both
    assert client.api(f"/accounts/{domain}").json()["leads"] == 2
    # WHEN an operator runs the migration on the stack, then again
    assert main(["migrate", "account-index", "--dev", client.url]) == 0
    first = capsys.readouterr().out
    assert main(["migrate", "account-index", "--dev", client.url]) == 0
    second = capsys.readouterr().out
    # THEN the first moved the old profile's keys to GSI5, the second had nothing left to move
    assert "profile(s) moved from GSI1 to GSI5" in first and not first.startswith("account index: 0 ")
    assert second.startswith("account index: 0 profile(s) moved")
    stored = profile(local_stack, old)
    assert (stored["GSI5PK"], stored["GSI5SK"]) == (f"ACCOUNT#{domain}", f"LEAD#{old}")
    assert "GSI1PK" not in stored and "GSI1SK" not in stored
    # AND the account view still finds both
    account = client.api(f"/accounts/{domain}").json()
    assert account["leads"] == 2 and set(account["top_leads"]) == {old, new}


@pytest.fixture
def table(local_stack: Any) -> Iterator[tuple[str, Any]]:
    name = f"account-index-test-{next(_tables)}"
    dynamodb = copy_of_leads_table(local_stack, name)
    yield name, dynamodb
    dynamodb.delete_table(TableName=name)


def test_account_leads_merge_both_indexes_and_the_migration_moves_only_account_profiles(
    local_stack: Any, table: tuple[str, Any]
):
    name, dynamodb = table
    domain = company_domain()

    def put(item: dict[str, Any]) -> None:
        dynamodb.put_item(TableName=name, Item=serialize(item))

    def lead(lead_id: str, title: str, **keys: str) -> None:
        put({"PK": f"LEAD#{lead_id}", "SK": "PROFILE", "lead_id": lead_id, "title": title, "scores": {}, **keys})

    # GIVEN a lead keyed in GSI5, one in GSI1 (written before GSI5), one in both (captured again before
    # the migration), a lead of another company in GSI1, and tag and segment members (GSI1 too)
    lead("L1", "CFO", GSI5PK=f"ACCOUNT#{domain}", GSI5SK="LEAD#L1")
    lead("L2", "CTO", GSI1PK=f"ACCOUNT#{domain}", GSI1SK="LEAD#L2")
    lead("L3", "CMO", GSI1PK=f"ACCOUNT#{domain}", GSI1SK="LEAD#L3", GSI5PK=f"ACCOUNT#{domain}", GSI5SK="LEAD#L3")
    lead("L4", "COO", GSI1PK="ACCOUNT#other.example.org", GSI1SK="LEAD#L4")
    put({"PK": "LEAD#L1", "SK": "MEMBER#TAG#vip", "GSI1PK": "TAG#vip", "GSI1SK": "L1"})
    put({"PK": "LEAD#L2", "SK": "MEMBER#SEG#all", "GSI1PK": "SEGMENT#all", "GSI1SK": "L2"})
    store = DynamoLeadStore(name, dynamodb)
    expected = [{"lead_id": "L1", "title": "CFO"}, {"lead_id": "L2", "title": "CTO"}, {"lead_id": "L3", "title": "CMO"}]
    # THEN the account's leads are read from both indexes, each once
    assert store.account_leads(domain) == expected
    # WHEN the migration runs, then again
    migration = DynamoAccountIndexMigration(name, dynamodb)
    seen: list[int] = []
    first = migration.migrate(seen.append)
    second = migration.migrate()
    # THEN the three profiles with GSI1 account keys moved, once; the members were left alone
    assert (first, second, sum(seen)) == (AccountIndexMigration(moved=3), AccountIndexMigration(), 3)
    for lead_id, account, title in (("L2", domain, "CTO"), ("L3", domain, "CMO"), ("L4", "other.example.org", "COO")):
        stored = profile(local_stack, lead_id, name)
        assert (stored["GSI5PK"], stored["GSI5SK"]) == (f"ACCOUNT#{account}", f"LEAD#{lead_id}")
        assert "GSI1PK" not in stored and "GSI1SK" not in stored
        assert (stored["title"], stored["scores"]) == (title, {})
    members = dynamodb.scan(
        TableName=name, FilterExpression="begins_with(SK, :m)", ExpressionAttributeValues=serialize({":m": "MEMBER#"})
    )["Items"]
    assert sorted(deserialize(m)["GSI1PK"] for m in members) == ["SEGMENT#all", "TAG#vip"]
    # AND the account view reads the same leads
    assert store.account_leads(domain) == expected
    assert store.account_leads("other.example.org") == [{"lead_id": "L4", "title": "COO"}]


def test_a_profile_that_lost_its_gsi1_keys_meanwhile_is_not_written(table: tuple[str, Any]):
    # GIVEN a profile found with GSI1 account keys, which another run moved (or an erasure deleted) since
    name, dynamodb = table
    found = {"PK": "LEAD#L9", "SK": "PROFILE", "GSI1PK": "ACCOUNT#gone.example.org", "GSI1SK": "LEAD#L9"}
    migration = DynamoAccountIndexMigration(name, dynamodb)
    # WHEN its move is tried THEN nothing is written (no profile made up from the keys)
    assert migration.move(found) is False
    assert "Item" not in dynamodb.get_item(TableName=name, Key=serialize({"PK": "LEAD#L9", "SK": "PROFILE"}))
