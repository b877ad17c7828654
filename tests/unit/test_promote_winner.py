"""A/B winners promoted to the remaining leads (``variants: {promote_winner: {after, confidence}}``)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadflow.adapters.memory import FakeClock, FakeEmailSender, InMemoryDueNowQueue, InMemoryNurtureStore
from leadflow.config.workspace import Workspace
from leadflow.domain.definitions.models import ConfigProblem
from leadflow.domain.definitions.sequences import PromoteWinner, Sequence
from leadflow.domain.gdpr import AddressHasher
from leadflow.domain.nurture import choose_variant
from leadflow.domain.sequence_reports import winner_to_promote
from leadflow.services.nurture import NurtureService, TokenIssuer
from leadflow.services.nurture.winners import ReportedWinners
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
AB = """id: ab-push
name: A/B subject test
triggers: [{api: true}]
purpose: marketing_email
variants: {confidence: 0.95, metric: click, promote_winner: {after: 2d, confidence: 0.95}}
steps:
  - id: offer
    type: email
    template: push_discount
    subject: "Offer"
    variants: [{id: a, subject: "Subject A"}, {id: b, subject: "Subject B"}]
"""


def counters(days: list[str], a: tuple[int, int], b: tuple[int, int]) -> list[dict[str, Any]]:
    """Per day, variant a and b: (unique clicks, sent)."""
    return [
        {"SK": f"{day}#1#offer#{arm}", "sent": sent, "unique_clicks": clicks}
        for day in days
        for arm, (clicks, sent) in (("a", a), ("b", b))
    ]


def test_a_winner_is_promoted_only_after_the_wait_and_at_the_confidence():
    items = counters(["2026-11-20", "2026-11-21"], (40, 1000), (90, 1000))
    ask = {"version": 1, "step_id": "offer", "metric": "click", "confidence": 0.95, "after_seconds": 2 * 86400}
    assert winner_to_promote(items, now=datetime(2026, 11, 21, 23, tzinfo=UTC), **ask) is None  # 47 h in
    assert winner_to_promote(items, now=datetime(2026, 11, 22, 0, 1, tzinfo=UTC), **ask) == "b"
    close = counters(["2026-11-20"], (50, 1000), (52, 1000))
    assert winner_to_promote(close, now=NOW, **ask) is None  # not yet: no significant difference
    assert winner_to_promote(items, now=NOW, **{**ask, "version": 2}) is None  # another version's test


def test_promote_winner_needs_a_duration():
    assert PromoteWinner(after="12h").after_seconds == 43200
    with pytest.raises(ConfigProblem):
        PromoteWinner(after="two days")


class Counters:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.queries = 0

    def query(self, pk: str, sk_from: str, sk_to: str) -> list[dict[str, Any]]:
        self.queries += 1
        return self.items if pk == "SEQRPT#ab-push" else []


def test_the_remaining_leads_get_the_winning_variant(tmp_path: Path):
    # GIVEN a sequence whose A/B test b has won (b's clicks far ahead, started three days ago)
    root = tmp_path / "workspace"
    shutil.copytree(WORKSPACE, root)
    (root / "sequences" / "ab-push.yaml").write_text(AB)
    workspace = Workspace(root)
    started = (NOW - timedelta(days=3)).date().isoformat()
    reports = Counters(counters([started], (40, 1000), (90, 1000)))
    leads = [f"L{n}" for n in range(12)]
    assert {
        choose_variant(workspace.sequences["ab-push"].email_steps()[0].variants, lead, "ab-push", "offer").id
        for lead in leads
    } == {"a", "b"}
    store = InMemoryNurtureStore(
        [
            {
                "lead_id": lead,
                "email": f"{lead.lower()}@example.com",
                "country": "GB",
                "consent_marketing_email": {"granted": True},
            }
            for lead in leads
        ]
    )
    sender = FakeEmailSender()
    service = NurtureService(
        workspace=workspace,
        store=store,
        sender=sender,
        tokens=TokenIssuer(lambda: [b"k" * 32], "https://t.example.com", 30),
        due_now=InMemoryDueNowQueue(),
        clock=FakeClock(NOW),
        address_key=AddressHasher(lambda: b"unit-suppression-key"),
        winners=ReportedWinners(reports),
    )
    # WHEN the leads step on
    for lead in leads:
        assert service.enroll_lead(lead, "ab-push") is not None
    service.process([(lead, "ab-push") for lead in leads])
    # THEN every one of them got b, counted under b, and the counters were read once
    assert {email.subject for _, _, _, email in sender.sent} == {"Subject B"}
    assert len(sender.sent) == len(leads)
    assert [c for c in service.counts.take() if c[4] == "sent"] == [["ab-push", 1, "offer", "b", "sent", len(leads)]]
    assert reports.queries == 1
    assert isinstance(workspace.sequences["ab-push"], Sequence)
