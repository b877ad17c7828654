"""The ``NurtureStore`` port's promises, checked on both of its implementations: the DynamoDB store
(on the local stack's moto, a table of its own per test) and the in-memory store the unit tests and
the step-logic benchmark use. If the fake drifts from the real store, these fail for one of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.adapters.dynamo_json import serialize
from leadflow.adapters.memory import InMemoryNurtureStore
from leadflow.adapters.nurture import DynamoNurtureStore
from leadflow.domain.events import DomainEvent
from leadflow.domain.nurture import Enrollment, SentEmail
from leadflow.domain.nurture.mail_log import MailLog
from leadflow.ports.nurture import NurtureStore, ProfileChange
from tests.conftest import copy_of_leads_table

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SEQ = "push-discount"
_tables = itertools.count()
AddLead = Callable[[dict[str, Any]], None]


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[NurtureStore, AddLead]]:
    if request.param == "memory":
        memory = InMemoryNurtureStore()
        yield memory, memory.add_lead
        return
    local_stack = request.getfixturevalue("local_stack")
    name = f"nurture-contract-{next(_tables)}"
    client = copy_of_leads_table(local_stack, name)
    dynamo = DynamoNurtureStore(name, client)

    def add_lead(profile: dict[str, Any]) -> None:
        client.put_item(
            TableName=name, Item=serialize({"PK": f"LEAD#{profile['lead_id']}", "SK": "PROFILE", **profile})
        )

    try:
        yield dynamo, add_lead
    finally:
        client.delete_table(TableName=name)


def enrollment(lead_id: str, step_id: str = "discount", due: datetime | None = NOW) -> Enrollment:
    return Enrollment(lead_id, SEQ, 1, 1, step_id, "active", NOW, NOW, due)


def test_enrollment_writes_are_conditional_on_the_rev_read(store: tuple[NurtureStore, AddLead]) -> None:
    nurture, _ = store
    # a new one is written once; over a rev, only the rev read wins
    assert nurture.put_enrollment(enrollment("L1"), 0, new=True)
    assert not nurture.put_enrollment(enrollment("L1"), 0, new=True)
    assert nurture.put_enrollment(enrollment("L1", "wait-discount"), 1)
    assert not nurture.put_enrollment(enrollment("L1", "product"), 1)
    stored = nurture.enrollment("L1", SEQ)
    assert stored is not None and stored[0].step_id == "wait-discount" and stored[1] == 2
    # a broadcast's page: new ones only where there is none
    written = nurture.put_enrollments([(enrollment("L1"), None), (enrollment("L2"), None)])
    assert written == 1 and [e.lead_id for e, _ in nurture.lead_enrollments("L2")] == ["L2"]


def test_the_due_index_and_the_shard_leases(store: tuple[NurtureStore, AddLead]) -> None:
    nurture, _ = store
    nurture.put_enrollment(enrollment("L1", due=NOW), 0, new=True)
    nurture.put_enrollment(enrollment("L2", due=NOW + timedelta(days=7)), 0, new=True)
    nurture.put_enrollment(replace_status(enrollment("L3", due=None), "completed"), 0, new=True)
    due = {pair for shard in nurture.shards_with_due(NOW) for pair in nurture.due(shard, NOW, 10)}
    assert due == {("L1", SEQ)}
    later = NOW + timedelta(days=8)
    assert {pair for shard in nurture.shards_with_due(later) for pair in nurture.due(shard, later, 10)} == {
        ("L1", SEQ),
        ("L2", SEQ),
    }
    # a lease is the holder's until it runs out or is released
    assert nurture.lease_shard(3, "a", NOW, timedelta(seconds=300))
    assert not nurture.lease_shard(3, "b", NOW + timedelta(seconds=60), timedelta(seconds=300))
    nurture.release_shard(3, "a")
    assert nurture.lease_shard(3, "b", NOW + timedelta(seconds=61), timedelta(seconds=300))


def replace_status(e: Enrollment, status: str) -> Enrollment:
    return Enrollment(e.lead_id, e.sequence_id, e.version, e.entry, e.step_id, status, e.entered_at, NOW, None)


def test_mail_log_claims_holds_releases_and_touches(store: tuple[NurtureStore, AddLead]) -> None:
    nurture, _ = store
    read = nurture.mail_log("L1")
    assert read == MailLog()
    held = Enrollment(
        "L1",
        SEQ,
        1,
        1,
        "wait-discount",
        "active",
        NOW,
        NOW,
        NOW + timedelta(days=7),
        (SentEmail("discount", "m_1", NOW),),
    )
    claim, log = nurture.claim_send("L1", "m_1", {"s": SEQ, "p": "discount", "variant": None}, NOW, read, held)
    assert claim == "claimed" and log == nurture.mail_log("L1")
    assert log.holds(SEQ, 1, "wait-discount") and [s["m"] for s in log.sends] == ["m_1"]
    # the same id again is taken; a claim on the old read is refused
    assert nurture.claim_send("L1", "m_1", {"s": SEQ}, NOW, log)[0] == "taken"
    assert nurture.claim_send("L1", "m_2", {"s": SEQ}, NOW, read)[0] == "changed"
    # an open marked on the held enrollment, over the log read
    opened = Enrollment(
        "L1", SEQ, 1, 1, "wait-discount", "active", NOW, NOW, NOW, (SentEmail("discount", "m_1", NOW, opened=True),)
    )
    assert nurture.hold(opened, log) and not nurture.hold(opened, log)
    after_hold = nurture.mail_log("L1")
    held_now = after_hold.held_enrollment("L1", SEQ)
    assert held_now is not None and held_now.emails[0].opened
    # a throttled send gives its claim back; an unsubscribe's touch fails the next claim on an old read
    nurture.release_send("L1", "m_1")
    released = nurture.mail_log("L1")
    assert released.sends == () and released.version == after_hold.version + 1
    nurture.touch_mail("L1")
    assert nurture.claim_send("L1", "m_3", {"s": SEQ}, NOW, released)[0] == "changed"


def test_profile_changes_consents_and_suppressions(store: tuple[NurtureStore, AddLead]) -> None:
    nurture, add_lead = store
    add_lead({"lead_id": "L1", "email": "l1@example.com", "tags": {"old"}})
    event = DomainEvent("e1", "leadflow.nurture", "lead.tagged", NOW.isoformat(), {"lead_id": "L1", "tag": "new"})
    nurture.update_profile("L1", ProfileChange(add_to={"tags": {"new"}}, assign={"stage": "mql"}, events=[event]))
    nurture.update_profile("L1", ProfileChange(remove_from={"tags": {"old"}}))
    nurture.update_profile("gone", ProfileChange(assign={"stage": "sql"}))  # a lead erased meanwhile: nothing
    profile = nurture.get_lead("L1")
    assert profile is not None and set(profile["tags"]) == {"new"} and profile["stage"] == "mql"
    assert nurture.get_lead("gone") is None
    nurture.record_consent("L1", "r1", {"purpose": "marketing_email", "granted": False, "at": NOW.isoformat()})
    # suppressions: listed once (the first reason kept), found by key, listed since a time
    nurture.suppress("k1", "bounced", NOW.isoformat())
    nurture.suppress("k1", "unsubscribe", (NOW + timedelta(hours=1)).isoformat())
    nurture.suppress("k2", "erased", (NOW + timedelta(hours=2)).isoformat())
    assert nurture.suppressed({"k1", "k2", "k3"}) == {"k1", "k2"}
    assert sorted(nurture.suppressions_listed(None, 10) or []) == ["k1", "k2"]
    assert nurture.suppressions_listed((NOW + timedelta(hours=1)).isoformat(), 10) == ["k2"]
    assert nurture.suppressions_listed(None, 1) is None
    reasons = {str(i["PK"]).removeprefix("SUPPRESS#"): i["reason"] for i in nurture.suppression_items({"k1", "k2"})}
    assert reasons == {"k1": "bounced", "k2": "erased"}
    nurture.unsuppress_erased("k1")  # not an erasure's: stays
    nurture.unsuppress_erased("k2")
    assert nurture.suppressed({"k1", "k2"}) == {"k1"}


def test_send_slots_versions_and_broadcast_claims(store: tuple[NurtureStore, AddLead]) -> None:
    nurture, _ = store
    # the shared send rate: what is left of the second, then nothing
    assert nurture.take_send_slots(10, 14, 1_000.2) == 10
    assert nurture.take_send_slots(10, 14, 1_000.7) == 4
    assert nurture.take_send_slots(10, 14, 1_000.9) == 0
    assert nurture.take_send_slots(10, 14, 1_001.0) == 10
    # sequence versions: one number per content
    assert nurture.version_of(SEQ, "h1", {"id": SEQ, "v": 1}) == 1
    assert nurture.version_of(SEQ, "h2", {"id": SEQ, "v": 2}) == 2
    assert nurture.version_of(SEQ, "h1", {"id": SEQ, "v": 1}) == 1
    assert nurture.version_definition(SEQ, 2) == {"id": SEQ, "v": 2}
    assert [v["number"] for v in nurture.versions(SEQ)] == [1, 2]
    # a broadcast run and its claims, each once; a released claim can be taken again
    assert nurture.start_broadcast_run(SEQ, "run-1", NOW.isoformat(), 2)
    assert not nurture.start_broadcast_run(SEQ, "run-1", NOW.isoformat(), 2)
    assert nurture.claim_broadcast(SEQ, "run-1#0#0", NOW.isoformat())
    assert not nurture.claim_broadcast(SEQ, "run-1#0#0", NOW.isoformat())
    nurture.release_broadcast(SEQ, "run-1#0#0")
    assert nurture.claim_broadcast(SEQ, "run-1#0#0", NOW.isoformat())
    nurture.record_broadcast(SEQ, "run-1", {"sent": 3, "enrolled": 3}, 1)
    nurture.record_broadcast(SEQ, "run-1", {"sent": 2}, 1)
    run = nurture.broadcast_run(SEQ, "run-1")
    assert run is not None and (run["sent"], run["enrolled"], run["parts_done"], run["parts"]) == (5, 3, 2, 2)


def test_only_an_erasure_listing_is_lifted(store: tuple[NurtureStore, AddLead]) -> None:
    nurture, _ = store
    # an erased address and a bounced one (keyed hashes in production; any key here)
    nurture.suppress("k-erased", "erased", NOW.isoformat())
    nurture.suppress("k-bounced", "bounced", NOW.isoformat())
    entries = {
        str(e["PK"]): (e["reason"], e["at"]) for e in nurture.suppression_items(["k-erased", "k-bounced", "k-none"])
    }
    assert entries == {
        "SUPPRESS#k-erased": ("erased", NOW.isoformat()),
        "SUPPRESS#k-bounced": ("bounced", NOW.isoformat()),
    }
    # lifting takes the erasure's listing off, never a bounce's
    nurture.unsuppress_erased("k-erased")
    nurture.unsuppress_erased("k-bounced")
    nurture.unsuppress_erased("k-none")
    assert nurture.suppressed(["k-erased", "k-bounced"]) == {"k-bounced"}
