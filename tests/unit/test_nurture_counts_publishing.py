"""What the nurture functions counted reaches the reports even when the bus refuses it.

``publish_counts`` puts one ``nurture.counted`` event on the bus per invocation. An event the bus
refuses (or a call that fails) goes into the outbox, whose stream relay publishes it: counts kept
in the function's memory would be lost with its container, and the sequence report would count
fewer sent than the mail logs hold. Only when the table refuses them too are they kept for the
next call."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from leadflow.adapters.memory import InMemoryNurtureStore
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.events import DomainEvent, OutboxEvent
from leadflow.services.nurture.publishing import publish_counts
from tests.unit.test_nurture_service import PUSH, Nurture, nurture_on, profile

pytestmark = pytest.mark.unit


class Bus:
    """A bus that refuses (``refuse``), fails (``fail``) or takes what is published."""

    def __init__(self, refuse: bool = False, fail: bool = False) -> None:
        self.refuse, self.fail = refuse, fail
        self.taken: list[OutboxEvent] = []

    def publish(self, events: list[OutboxEvent]) -> list[str]:
        if self.fail:
            raise ConnectionError("the bus did not answer")
        if self.refuse:
            return [e.event_id for e in events]
        self.taken.extend(events)
        return []


class OutboxDown(InMemoryNurtureStore):
    def put_events(self, events: Sequence[DomainEvent]) -> None:
        raise StorageUnavailable("the table is out")


def sent_counts(events: Sequence[DomainEvent | OutboxEvent]) -> list[list[object]]:
    rows = []
    for event in events:
        detail = event.detail if isinstance(event, DomainEvent) else json.loads(event.detail)
        rows += [row for row in detail["counts"] if row[4] == "sent"]
    return rows


def two_sends(store: InMemoryNurtureStore) -> Nurture:
    nurture = nurture_on(store)
    for lead in ("L1", "L2"):
        nurture.service.enroll_lead(lead, PUSH)
    nurture.step("L1", "L2")
    assert len(nurture.sender.sent) == 2
    return nurture


@pytest.mark.parametrize("bus", [Bus(refuse=True), Bus(fail=True)], ids=["refused", "no-answer"])
def test_counts_the_bus_does_not_take_go_into_the_outbox(bus: Bus) -> None:
    # GIVEN two emails sent, counted in the function's memory
    nurture = two_sends(InMemoryNurtureStore([profile("L1"), profile("L2")]))
    before = len(nurture.store.events)
    # WHEN the bus refuses the nurture.counted event (or does not answer)
    published = publish_counts(nurture.service, bus)
    # THEN the event is in the outbox, for the relay to publish, and nothing is left in memory
    (event,) = nurture.store.events[before:]
    assert event.detail_type == "nurture.counted"
    assert sent_counts([event]) == [[PUSH, 1, "discount", "-", "sent", 2]]
    assert published == len(event.detail["counts"])
    assert nurture.service.counts.take() == []


def test_counts_the_bus_takes_are_not_written_to_the_outbox() -> None:
    nurture = two_sends(InMemoryNurtureStore([profile("L1"), profile("L2")]))
    before = len(nurture.store.events)
    bus = Bus()
    assert publish_counts(nurture.service, bus) > 0
    assert sent_counts(bus.taken) == [[PUSH, 1, "discount", "-", "sent", 2]]
    assert nurture.store.events[before:] == []


def test_counts_neither_the_bus_nor_the_table_takes_are_kept_for_the_next_call() -> None:
    # GIVEN two sends, and the bus and the table both refusing
    nurture = two_sends(OutboxDown([profile("L1"), profile("L2"), profile("L3")]))
    assert publish_counts(nurture.service, Bus(refuse=True)) == 0
    # WHEN the next invocation sends one more and the bus takes its event
    nurture.service.enroll_lead("L3", PUSH)
    nurture.step("L3")
    bus = Bus()
    publish_counts(nurture.service, bus)
    # THEN that event carries all three sends: none was lost
    assert sent_counts(bus.taken) == [[PUSH, 1, "discount", "-", "sent", 3]]
