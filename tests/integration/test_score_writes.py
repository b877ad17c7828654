"""Scoring's writes on the table (issue 17): a scored activity is a conditional ``PutItem`` of its
ledger item and a versioned ``UpdateItem`` of the summary, no transaction; the loser of a race on a
shared cap gives back what the winner took, in one transaction with its correcting lead.scored."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from leadflow.adapters.dynamo import DynamoLeadStore
from leadflow.adapters.dynamo_json import deserialize
from leadflow.adapters.memory import FakeClock
from leadflow.config.workspace import Workspace
from leadflow.ports.scoring import ScoreState
from leadflow.services.scoring import ScoringService
from tests.conftest import WORKSPACE, unique_email

pytestmark = pytest.mark.integration


class StaleOnce(DynamoLeadStore):
    """The lead store, its first ``score_state`` answered from a read made earlier (a scoring that
    read the lead before another one's writes landed)."""

    def __init__(self, table: str, client: Any, stale: ScoreState) -> None:
        super().__init__(table, client)
        self.stale: ScoreState | None = stale

    def score_state(self, lead_id: str) -> ScoreState:
        if self.stale is not None:
            state, self.stale = self.stale, None
            return state
        return super().score_state(lead_id)


def dynamodb_client(local_stack: Any, calls: list[str]) -> Any:
    """A DynamoDB client of the local stack that notes each operation it calls."""
    client = local_stack.client("dynamodb")
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return client


def opened(n: int, now: datetime) -> dict[str, Any]:
    return {
        "activity_id": f"{uuid.uuid4().hex[:8]}-{n}",
        "type": "email_opened",
        "at": (now + timedelta(minutes=n)).isoformat(),
    }


def items(local_stack: Any, lead_id: str, prefix: str) -> list[dict[str, Any]]:
    answer = local_stack.client("dynamodb").query(
        TableName=local_stack.outputs["LeadsTableName"],
        KeyConditionExpression="PK = :p AND begins_with(SK, :l)",
        ExpressionAttributeValues={":p": {"S": f"LEAD#{lead_id}"}, ":l": {"S": prefix}},
        ConsistentRead=True,
    )
    return [deserialize(i) for i in answer["Items"]]


def test_a_scored_activity_writes_its_ledger_item_and_summary_without_a_transaction(local_stack, client):
    lead_id = client.capture("demo-signup", {"email": unique_email("score-writes")})
    client.tick()
    calls: list[str] = []
    store = DynamoLeadStore(local_stack.outputs["LeadsTableName"], dynamodb_client(local_stack, calls))
    now = local_stack.clock.now()
    service = ScoringService(Workspace(WORKSPACE), store, FakeClock(now))
    # WHEN an open is scored
    outcome = service.score(lead_id, opened(1, now))
    # THEN it read the lead and its ledger, then wrote the ledger item and the summary: two plain
    # writes (1 write unit each; a transaction bills each of its items twice)
    assert outcome is not None and outcome.points_added > 0
    assert [c for c in calls if c not in ("GetItem", "Query")] == ["PutItem", "UpdateItem"]
    profile = items(local_stack, lead_id, "PROFILE")[0]
    assert profile["scored_entries"] == sum(
        len(i.get("entries") or [i]) for i in items(local_stack, lead_id, "LEDGER#")
    )


def test_the_loser_of_a_race_on_a_shared_cap_gives_back_what_the_winner_took(local_stack, client):
    table = local_stack.outputs["LeadsTableName"]
    lead_id = client.capture("demo-signup", {"email": unique_email("score-race")})
    client.tick()
    now = local_stack.clock.now()
    store = DynamoLeadStore(table, local_stack.client("dynamodb"))
    service = ScoringService(Workspace(WORKSPACE), store, FakeClock(now))
    # GIVEN four opens this week (smb: +2 an open, at most 10 a week; the others +1, at most 5)
    for n in range(1, 5):
        service.score(lead_id, opened(n, now))
    before = store.score_state(lead_id)
    # AND a fifth scored after a sixth's scoring read the lead
    service.score(lead_id, opened(5, now))
    late = opened(6, now)
    # WHEN the sixth is scored from that read: its ledger item lands, its summary is refused
    racing = ScoringService(
        Workspace(WORKSPACE), StaleOnce(table, local_stack.client("dynamodb"), before), FakeClock(now)
    )
    outcome = racing.score(lead_id, late)
    # THEN, reading again, it found the summary lagging and its entries over the caps: its ledger
    # item is gone (every cap was spent by the fifth) and each model kept its cap
    assert outcome is not None and outcome.points_added == 0
    ledger = [e for i in items(local_stack, lead_id, "LEDGER#") for e in (i.get("entries") or [i])]
    opens = [i for i in items(local_stack, lead_id, "LEDGER#") if i.get("activity_type") == "email_opened"]
    assert late["activity_id"] not in {i.get("activity_id") for i in opens}
    smb = sum(int(e["points"]) for e in ledger if e["model"] == "smb" and e.get("rule_id") == "email_opened")
    assert smb == 10
    profile = items(local_stack, lead_id, "PROFILE")[0]
    assert profile["scored_entries"] == len(ledger)
    # AND a correcting lead.scored went to the outbox in that transaction: no points of its own
    corrections = [
        json.loads(i["detail"])
        for i in items(local_stack, lead_id, "EVENT#")
        if i["detail_type"] == "lead.scored" and late["activity_id"] in i["detail"]
    ]
    assert [c["points_added"] for c in corrections] == [0]
    assert corrections[0]["scores"] == {k: float(v) for k, v in profile["scores"].items()}
