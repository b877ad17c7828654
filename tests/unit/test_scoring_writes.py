"""Scoring's two plain writes (issue 17): the ledger item first, then the summary under its version.

A store that keeps one lead the way DynamoDB would (a conditional ledger put, a versioned summary,
a transaction for outbox events and replaced items) lets a test put another scoring, or a crash,
between the two writes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.adapters.memory import FakeClock
from leadflow.config.workspace import Workspace
from leadflow.domain.events import DomainEvent
from leadflow.ports.scoring import ScoreState, ScoreWrite
from leadflow.services.scoring import ScoringService
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

LEAD = "01KLEAD"
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # a Wednesday: the week's caps began on Monday


class Crash(Exception):
    """The scoring function dies between its two writes."""


class OneLeadStore:
    """One lead's profile, score version and ledger items, written as ``DynamoLeadStore`` writes them."""

    def __init__(self) -> None:
        self.profile: dict[str, Any] = {"lead_id": LEAD, "stage": "lead", "title": "VP Marketing"}
        self.version = 0
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.published: list[DomainEvent] = []
        self.writes: list[ScoreWrite] = []
        self.between: Callable[[], None] | None = None
        """Run once after the next plain ledger put, before its summary is written."""
        self.stale: ScoreState | None = None
        """Returned once by the next ``score_state`` (a read made before other writes landed)."""

    def snapshot(self) -> ScoreState:
        ledger = [{**e, "ledger_item": sk} for sk, entries in sorted(self.items.items()) for e in entries]
        return ScoreState({**self.profile, "score_version": self.version}, ledger, self.version)

    def score_state(self, lead_id: str) -> ScoreState:
        if self.stale is not None:
            state, self.stale = self.stale, None
            return state
        return self.snapshot()

    def apply_score(self, write: ScoreWrite) -> bool:
        self.writes.append(write)
        first = min(write.entries, key=lambda e: (e["at"], e["entry_id"])) if write.entries else None
        sk = f"LEDGER#{first['at']}#{first['entry_id']}" if first else None
        replaced = {str(e["ledger_item"]) for e in write.replaced}
        if write.events or replaced:  # one transaction
            if write.expected_version != self.version or (sk in self.items and sk not in replaced):
                return False
            for old in replaced:
                del self.items[old]
            if sk:
                self.items[sk] = write.entries
            self._summary(write)
            self.published += write.events
            return True
        if sk:
            if sk in self.items:
                return False
            self.items[sk] = write.entries
            if write.announced is not None:
                self.published.append(write.announced)
            if self.between is not None:
                hook, self.between = self.between, None
                hook()
        if write.expected_version != self.version:
            return False
        self._summary(write)
        return True

    def _summary(self, write: ScoreWrite) -> None:
        self.profile.update(write.summary)
        self.version += 1

    def entries(self, model: str | None = None) -> list[dict[str, Any]]:
        return [e for items in self.items.values() for e in items if model is None or e["model"] == model]

    def leads_in_stage(self, stage: str) -> list[str]:
        return []

    def account_leads(self, domain: str) -> list[dict[str, Any]]:
        return []


def opened(n: int) -> dict[str, Any]:
    return {"activity_id": f"01KOPEN{n:02d}", "type": "email_opened", "at": (NOW + timedelta(minutes=n)).isoformat()}


@pytest.fixture
def store() -> OneLeadStore:
    return OneLeadStore()


@pytest.fixture
def service(store: OneLeadStore) -> ScoringService:
    return ScoringService(Workspace(WORKSPACE), store, FakeClock(NOW + timedelta(hours=1)))


def scored(store: OneLeadStore) -> list[dict[str, Any]]:
    return [e.detail for e in store.published if e.detail_type == "lead.scored"]


def meanwhile(store: OneLeadStore, service: ScoringService, *opens: dict[str, Any]) -> None:
    """Between the next scoring's ledger item and its summary, score ``opens``: the first from the
    lead as it was read before that item (a scoring that read the lead at the same time), the rest
    as they come (reading everything)."""
    before = store.snapshot()

    def other_scorings() -> None:
        store.stale = before
        for activity in opens:
            service.score(LEAD, activity)

    store.between = other_scorings


def smb_points(store: OneLeadStore) -> int:
    return sum(int(e["points"]) for e in store.entries("smb"))


def test_a_scored_activity_is_a_ledger_put_then_a_summary_without_a_transaction(
    store: OneLeadStore, service: ScoringService
):
    # WHEN an open is scored
    service.score(LEAD, opened(1))
    # THEN one write: its ledger item (carrying its lead.scored) and the summary, no outbox event,
    # nothing replaced (the store writes these as two plain writes)
    (write,) = store.writes
    assert write.entries and write.announced is not None and not write.events and not write.replaced
    # AND the summary counts the ledger entries it was worked out from
    assert store.profile["scored_entries"] == len(store.entries()) > 0


def test_the_loser_of_a_race_writes_the_summary_with_both_and_corrects_its_lead_scored(
    store: OneLeadStore, service: ScoringService
):
    # GIVEN open 1 scored from a read made before open 2's ledger item, its summary landing
    # between open 2's two writes (open 2's summary is then refused: the version moved)
    meanwhile(store, service, opened(1))
    # WHEN open 2 is scored
    service.score(LEAD, opened(2))
    # THEN the summary has both opens' points and counts every entry
    total = sum(int(e["points"]) for e in store.entries("smb"))
    assert store.profile["scores"]["smb"] == pytest.approx(total, abs=0.05) and total > 0
    assert store.profile["scored_entries"] == len(store.entries())
    # AND open 2's lead.scored from its ledger item lacked open 1's points; a correcting one, in the
    # summary's transaction, gives the scores with both and open 2's own points
    announced_2, announced_1, correction = scored(store)
    assert announced_2["activity_id"] == correction["activity_id"] == "01KOPEN02"
    assert announced_1["activity_id"] == "01KOPEN01"
    assert announced_2["scores"]["smb"] < correction["scores"]["smb"] == store.profile["scores"]["smb"]
    assert correction["points_added"] == announced_2["points_added"]
    assert store.writes[-1].events and not store.writes[-1].replaced


def test_a_cap_two_racing_activities_shared_is_given_once(store: OneLeadStore, service: ScoringService):
    # GIVEN four opens this week (the demo's smb open rule: +2, at most 10 a week: 2 points left)
    for n in range(1, 5):
        service.score(LEAD, opened(n))
    assert smb_points(store) == 8
    meanwhile(store, service, opened(5))
    # WHEN opens 5 and 6 are scored at once, each from a ledger of four opens
    service.score(LEAD, opened(6))
    # THEN the cap holds: open 6 (the loser) gives up what open 5 took, its ledger item written anew
    assert smb_points(store) == 10
    assert [e["points"] for e in store.entries("smb") if e["activity_id"] == "01KOPEN06"] == []
    assert store.writes[-1].replaced and store.writes[-1].events
    # AND its correction says so: no smb points of its own, the scores the capped ledger gives
    correction = scored(store)[-1]
    assert correction["activity_id"] == "01KOPEN06"
    assert correction["scores"]["smb"] == store.profile["scores"]["smb"] == pytest.approx(10, abs=0.05)
    assert correction["points_added"] == 0 and correction["rules"] == []  # every model's cap was spent


def test_a_crash_between_the_writes_is_repaired_by_the_redelivery(store: OneLeadStore, service: ScoringService):
    # GIVEN an open scored once; a second one whose function dies after its ledger item
    service.score(LEAD, opened(1))

    def crash() -> None:
        raise Crash

    store.between = crash
    with pytest.raises(Crash):
        service.score(LEAD, opened(2))
    assert store.profile["scored_entries"] < len(store.entries())  # the summary lags the ledger
    # WHEN the event is delivered again
    service.score(LEAD, opened(2))
    # THEN the summary catches up, and a correcting lead.scored says so (the first was announced
    # with the ledger item, before the summary had its points)
    assert store.profile["scored_entries"] == len(store.entries())
    assert store.profile["scores"]["smb"] == pytest.approx(smb_points(store), abs=0.05)
    assert [d["activity_id"] for d in scored(store)] == ["01KOPEN01", "01KOPEN02", "01KOPEN02"]


def test_a_redelivery_of_a_scored_activity_corrects_nothing(store: OneLeadStore, service: ScoringService):
    service.score(LEAD, opened(1))
    published = len(store.published)
    # WHEN the same event comes again
    service.score(LEAD, opened(1))
    # THEN the summary is written again (decay, grade) with no entry, no event and nothing replaced
    last = store.writes[-1]
    assert not last.entries and not last.events and not last.replaced and last.announced is None
    assert len(store.published) == published


def test_the_loser_looks_again_even_when_a_third_scoring_counted_its_entries(
    store: OneLeadStore, service: ScoringService
):
    # GIVEN four opens this week (smb: 2 points left of the cap)
    for n in range(1, 5):
        service.score(LEAD, opened(n))
    # open 5 read the lead with open 6, and its summary landed; open 7 read both items after
    meanwhile(store, service, opened(5), opened(7))
    # WHEN open 6, scored from that same read, finds its summary refused and the summary current
    service.score(LEAD, opened(6))
    # THEN it looks again all the same: the cap is given once (to open 5), open 6's item taken back
    assert smb_points(store) == 10
    assert not [e for e in store.entries() if e["activity_id"] == "01KOPEN06"]
    assert store.profile["scored_entries"] == len(store.entries())
    assert scored(store)[-1]["activity_id"] == "01KOPEN06" and scored(store)[-1]["points_added"] == 0
