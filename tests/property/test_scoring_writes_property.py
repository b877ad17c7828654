"""Scoring's two plain writes under any interleaving (issue 17): opens of one lead scored one after
the other, two at once from one read, or with the function dying between its ledger item and its
summary (then delivered again), and every event delivered once more at the end. Whatever the
order, the ledger gives each capped rule exactly what one scoring after the other would (the cap
once, never twice), and the summary counts and sums every entry."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.adapters.memory import FakeClock
from leadflow.config.workspace import Workspace
from leadflow.services.scoring import ScoringService
from tests.conftest import WORKSPACE
from tests.unit.test_scoring_writes import LEAD, NOW, Crash, OneLeadStore, opened

pytestmark = pytest.mark.unit

# The demo's open rule per model: (points, cap a week); every open of a test falls in one week.
OPEN_RULES = {"smb": (2, 10), "key_account": (1, 5), "customer": (1, 5)}
STEPS = st.lists(st.sampled_from(["alone", "race", "crash"]), min_size=1, max_size=9)


def run(plan: list[str]) -> tuple[OneLeadStore, int]:
    """Score one new open per step of ``plan`` (a race takes two), then deliver every one again."""
    from datetime import timedelta

    store = OneLeadStore()
    service = ScoringService(Workspace(WORKSPACE), store, FakeClock(NOW + timedelta(days=1)))
    opens: list[dict[str, Any]] = []
    crashed: list[dict[str, Any]] = []

    def new_open() -> dict[str, Any]:
        opens.append(opened(len(opens) + 1))
        return opens[-1]

    def crash() -> None:
        raise Crash

    for step in plan:
        first = new_open()
        if step == "race":
            second, before = new_open(), store.snapshot()

            def other(second: dict[str, Any] = second, before: Any = before) -> None:
                store.stale = before
                service.score(LEAD, second)

            store.between = other
        elif step == "crash":
            store.between = crash
        try:
            service.score(LEAD, first)
        except Crash:
            crashed.append(first)
        store.between = None
    for activity in [*crashed, *opens]:  # the redeliveries
        service.score(LEAD, activity)
    return store, len(opens)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_any_interleaving_gives_each_cap_once_and_a_summary_of_every_entry(plan: list[str]):
    store, opens = run(plan)
    entries = store.entries()
    # THEN each model's open rule holds what scoring one open after the other gives: the cap, once
    for model, (points, cap) in OPEN_RULES.items():
        given_points = sum(int(e["points"]) for e in entries if e["model"] == model and e["rule_id"] == "email_opened")
        assert given_points == min(cap, points * opens), (model, plan)
    # AND each open is in the ledger once at most, per model
    ids = [e["entry_id"] for e in entries]
    assert len(ids) == len(set(ids))
    # AND the summary was worked out from every entry
    assert store.profile["scored_entries"] == len(entries)
    smb = sum(int(e["points"]) for e in entries if e["model"] == "smb")
    assert store.profile["scores"]["smb"] == pytest.approx(smb, rel=0.05)
