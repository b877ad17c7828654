"""Retention and the suppression list's migration on moto, each on a table of its own (the
template's key schema): the daily sweep erases only the leads inactive past the retention and
finishes interrupted erasures; plain addresses on an old suppression list become keyed hashes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.gdpr import DynamoGdprStore
from leadflow.config.workspace import Workspace
from leadflow.domain.errors import LeadNotFound
from leadflow.domain.gdpr import address_hash, is_hashed
from leadflow.services.gdpr import GdprService, migrate_suppressions
from tests.conftest import WORKSPACE, copy_of_leads_table

pytestmark = pytest.mark.integration
KEY = b"retention-test-key"
NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
_tables = itertools.count()


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
def table(local_stack: Any) -> Iterator[tuple[str, Any]]:
    name = f"gdpr-test-{next(_tables)}"
    dynamodb = copy_of_leads_table(local_stack, name)
    yield name, dynamodb
    dynamodb.delete_table(TableName=name)


def put(dynamodb: Any, name: str, item: dict[str, Any]) -> None:
    dynamodb.put_item(TableName=name, Item=serialize(item))


def a_lead(dynamodb: Any, name: str, lead_id: str, created: str, activities: list[str]) -> None:
    email = f"{lead_id}@example.com"
    put(
        dynamodb,
        name,
        {
            "PK": f"LEAD#{lead_id}", "SK": "PROFILE", "lead_id": lead_id, "email": email,
            "created_at": created, "updated_at": created,
            "GSI2PK": f"LEADS#{created[:7]}", "GSI2SK": f"{created}#{lead_id}",
            "GSI3PK": "STAGE#lead", "GSI3SK": lead_id,
        },
    )  # fmt: skip
    put(dynamodb, name, {"PK": f"EMAIL#{email}", "SK": "EMAIL", "lead_id": lead_id})
    for i, at in enumerate(activities):
        put(dynamodb, name, {"PK": f"LEAD#{lead_id}", "SK": f"ACT#{at}#a{i}", "type": "page_viewed", "at": at})


def items(dynamodb: Any, name: str) -> list[dict[str, Any]]:
    return [deserialize(i) for i in dynamodb.scan(TableName=name)["Items"]]


def test_the_daily_sweep_erases_only_leads_inactive_past_the_retention(table: tuple[str, Any]) -> None:
    name, dynamodb = table
    # GIVEN (36 months of retention in the demo workspace, today 2026-12-04) leads of every kind
    a_lead(dynamodb, name, "quiet", "2022-01-10T09:00:00+00:00", ["2022-02-01T10:00:00+00:00"])
    a_lead(dynamodb, name, "never-acted", "2023-06-01T09:00:00+00:00", [])
    a_lead(dynamodb, name, "old-but-active", "2022-01-15T09:00:00+00:00", ["2026-10-01T10:00:00+00:00"])
    a_lead(dynamodb, name, "recent", "2025-05-01T09:00:00+00:00", [])
    a_lead(dynamodb, name, "interrupted", "2026-11-01T09:00:00+00:00", ["2026-11-02T10:00:00+00:00"])
    store = DynamoGdprStore(name, dynamodb)
    assert store.mark_erasing("interrupted", {"erasure_id": "er_x", "started_at": "2026-12-01T00:00:00+00:00"})
    service = GdprService(Workspace(WORKSPACE), store, lambda: KEY, FixedClock(), None)
    assert service.workspace.retention.enabled and service.workspace.retention.erase_inactive_after_months == 36
    # WHEN the daily sweep runs
    result = service.sweep()
    # THEN the interrupted erasure is finished and the two inactive leads are erased, nothing else
    assert (result.resumed, result.erased) == (1, 3)
    left = {str(i["PK"]) for i in items(dynamodb, name)}
    for gone in ("quiet", "never-acted", "interrupted"):
        assert f"LEAD#{gone}" not in left and f"EMAIL#{gone}@example.com" not in left
        assert f"SUPPRESS#{address_hash(KEY, f'{gone}@example.com')}" in left
    for kept in ("old-but-active", "recent"):
        assert f"LEAD#{kept}" in left and f"EMAIL#{kept}@example.com" in left
    audits = [i for i in items(dynamodb, name) if str(i["PK"]).startswith("AUDIT#")]
    assert sorted(a["via"] for a in audits) == ["resume", "retention", "retention"]
    assert {a["requested_by"] for a in audits} == {"system:retention"}
    # AND a second run finds nothing more to do
    again = service.sweep()
    assert (again.resumed, again.erased) == (0, 0)


def test_the_migration_hashes_plain_suppression_entries_once(table: tuple[str, Any]) -> None:
    name, dynamodb = table
    # GIVEN a suppression list written before it was hashed, and one entry already hashed
    for address, reason in (("bounced@example.com", "bounced"), ("left@example.com", "unsubscribe")):
        put(
            dynamodb,
            name,
            {
                "PK": f"SUPPRESS#{address}", "SK": "SUPPRESS", "reason": reason, "at": "2026-01-02T03:04:05+00:00",
                "GSI2PK": "SUPPRESSED", "GSI2SK": f"2026-01-02T03:04:05+00:00#{address}", "last_feedback": "fb-1",
            },
        )  # fmt: skip
    hashed = address_hash(KEY, "new@example.com")
    put(dynamodb, name, {"PK": f"SUPPRESS#{hashed}", "SK": "SUPPRESS", "reason": "complained", "at": "x"})
    store = DynamoGdprStore(name, dynamodb)
    # WHEN the migration runs, twice
    first = migrate_suppressions(store, lambda: KEY)
    second = migrate_suppressions(store, lambda: KEY)
    # THEN every entry is a keyed hash, with its reason, first listing and details kept
    assert (first.hashed, first.already_hashed) == (2, 1)
    assert (second.hashed, second.already_hashed) == (0, 3)
    entries = {str(i["PK"]).removeprefix("SUPPRESS#"): i for i in items(dynamodb, name)}
    assert all(is_hashed(key) for key in entries)
    bounced = entries[address_hash(KEY, "bounced@example.com")]
    assert bounced["reason"] == "bounced" and bounced["last_feedback"] == "fb-1"
    assert bounced["GSI2SK"] == f"2026-01-02T03:04:05+00:00#{address_hash(KEY, 'bounced@example.com')}"
    assert "@" not in str(list(entries.values()))


def test_erasures_are_applied_again_after_a_restore(table: tuple[str, Any]) -> None:
    name, dynamodb = table
    # GIVEN a lead erased, then the table restored from a backup taken before the erasure
    a_lead(dynamodb, name, "restored", "2026-10-01T09:00:00+00:00", ["2026-10-02T10:00:00+00:00"])
    a_lead(dynamodb, name, "bystander", "2026-10-01T09:00:00+00:00", [])
    store = DynamoGdprStore(name, dynamodb)
    service = GdprService(Workspace(WORKSPACE), store, lambda: KEY, FixedClock(), None)
    assert service.erase("restored", "api:dpo", "api").status == "erased"
    a_lead(dynamodb, name, "restored", "2026-10-01T09:00:00+00:00", ["2026-10-02T10:00:00+00:00"])
    # (an address nobody has, or no address at all, finds no one: `leadflow gdpr erase` says so)
    for unknown in ("nobody@example.com", "not an address"):
        with pytest.raises(LeadNotFound):
            service.lead_for_email(unknown)
    assert service.lead_for_email("BYSTANDER@example.com") == "bystander"
    # WHEN the erasures are applied again
    again = service.reapply_erasures("cli:ops")
    # THEN the restored lead is gone again, and nobody else
    assert [(e.lead_id, e.status) for e in again] == [("restored", "erased")]
    left = {str(i["PK"]) for i in items(dynamodb, name)}
    assert "LEAD#restored" not in left and "LEAD#bystander" in left
