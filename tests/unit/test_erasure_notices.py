"""lead.erased webhooks: one attempt per message, retried on the hand-off schedule, then dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.domain.definitions.handoff import Destination, HandoffConfig
from leadflow.domain.gdpr import erased_notice
from leadflow.domain.handoff_delivery import Outcome
from leadflow.ports.handoff import Delivery
from leadflow.services.erasure_notices import deliver_erasure_notice

pytestmark = pytest.mark.unit
ERASED = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
CONFIG = HandoffConfig(
    destinations=(
        Destination(name="hook", type="webhook", url="https://crm.example.com/h"),
        Destination(name="hubspot", type="hubspot"),
    )
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


class Sender:
    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[Delivery] = []

    def send(self, delivery: Delivery, now: datetime) -> Outcome:
        self.sent.append(delivery)
        return self.outcomes.pop(0)


def message(destination: str = "hook") -> dict[str, Any]:
    notice = erased_notice("L1", "er_1", ["h1"], [], ERASED)
    return {"kind": "erased", "destination": destination, "erasure_id": "er_1", "payload": notice}


def test_a_notice_is_sent_once_signed_under_the_erasure_id() -> None:
    # GIVEN a webhook destination that answers 200
    sender = Sender(Outcome("delivered", 200))
    # WHEN the notice's message is handled
    decision = deliver_erasure_notice(message(), 1, CONFIG, sender, Clock(ERASED))
    # THEN it was sent once, as the erasure (its id is the webhook-id's), and the message is done
    assert decision.action == "done"
    assert [(d.handoff_id, d.lead_id, d.payload["type"]) for d in sender.sent] == [("er_1", "L1", "lead.erased")]
    assert sender.sent[0].payload["handoff_ids"] == ["h1"] and "sent_at" in sender.sent[0].payload


def test_a_failing_destination_is_retried_on_the_schedule_then_dead_lettered() -> None:
    # GIVEN a destination answering 503
    first = deliver_erasure_notice(
        message(), 1, CONFIG, Sender(Outcome("retry", 503, "503")), Clock(ERASED), jitter=lambda: 0.5
    )
    # THEN the first failure comes back after the backoff
    assert first.action == "retry" and first.delay_seconds >= 1
    # AND once the give-up time (26 hours after the erasure) has passed, it goes to the DLQ
    late = Clock(ERASED + timedelta(hours=27))
    last = deliver_erasure_notice(message(), 30, CONFIG, Sender(Outcome("retry", 503, "503")), late)
    assert last.action == "dead_letter"
    # AND a refusal is final at once
    refused = deliver_erasure_notice(message(), 1, CONFIG, Sender(Outcome("final", 400, "400")), Clock(ERASED))
    assert refused.action == "dead_letter"


def test_destinations_that_take_no_webhooks_get_nothing() -> None:
    sender = Sender()
    for name in ("hubspot", "gone"):
        assert deliver_erasure_notice(message(name), 1, CONFIG, sender, Clock(ERASED)).action == "done"
    assert sender.sent == []
