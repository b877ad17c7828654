"""An unsubscribe the table cannot take waits on the intake queue and is applied as of when it was
asked for; a consent given after it wins (``NurtureService.preference_or_park``, ``replay_preference``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from leadflow.adapters.memory import InMemoryIntakeQueue, InMemoryNurtureStore
from leadflow.domain.errors import StorageUnavailable
from leadflow.services.nurture.preferences import is_parked_preference
from tests.unit.test_nurture_service import NOW, PUSH, Nurture, nurture_on, profile

pytestmark = pytest.mark.unit


class Outage(InMemoryNurtureStore):
    down = False

    def get_lead(self, lead_id: str) -> dict[str, Any] | None:
        if self.down:
            raise StorageUnavailable("InternalServerError")
        return super().get_lead(lead_id)


@pytest.fixture
def nurture() -> Nurture:
    nurture = nurture_on(Outage([profile("L1")]))
    nurture.service.enroll_lead("L1", PUSH)
    nurture.step("L1")
    assert len(nurture.sender.sent) == 1
    return nurture


def test_an_unsubscribe_during_an_outage_is_applied_by_the_replay_as_of_when_it_was_asked(nurture: Nurture) -> None:
    store, queue = nurture.store, InMemoryIntakeQueue()
    # GIVEN the table down when the lead unsubscribes
    store.down = True  # type: ignore[attr-defined]
    answer = nurture.service.preference_or_park(queue, "L1", "unsubscribe", None, "one_click")
    assert answer["parked"] is True and [is_parked_preference(m) for m in queue.messages] == [True]
    # WHEN the table is back an hour later and the replay applies it (delivered twice)
    store.down = False  # type: ignore[attr-defined]
    nurture.clock.current = NOW + timedelta(hours=1)
    for _ in range(2):
        nurture.service.replay_preference(queue.messages[0])
    # THEN the lead is unsubscribed as of the request, its consent withdrawn, out of the sequence
    lead = store.profiles["L1"]
    assert lead["unsubscribed"] is True and lead["unsubscribed_at"] == NOW.isoformat()
    assert lead["consent_marketing_email"]["granted"] is False
    assert nurture.enrollment("L1").exit_reason == "unsubscribed"


def test_a_replayed_unsubscribe_does_not_undo_a_consent_given_after_it(nurture: Nurture) -> None:
    store, queue = nurture.store, InMemoryIntakeQueue()
    store.down = True  # type: ignore[attr-defined]
    nurture.service.preference_or_park(queue, "L1", "unsubscribe", None, "one_click")
    # GIVEN the lead subscribed again after asking to unsubscribe, before the replay came
    store.down = False  # type: ignore[attr-defined]
    later = (NOW + timedelta(minutes=5)).isoformat()
    store.profiles["L1"]["consent_marketing_email"] = {"granted": True, "at": later, "form_id": "demo-signup"}
    # WHEN the replay comes
    answer = nurture.service.replay_preference(queue.messages[0])
    # THEN the newer consent stands: nothing is withdrawn
    assert answer["stale"] is True
    assert store.profiles["L1"]["consent_marketing_email"]["granted"] is True
    assert not store.profiles["L1"].get("unsubscribed")


def test_an_unsubscribe_neither_the_table_nor_the_queue_takes_is_refused(nurture: Nurture) -> None:
    nurture.store.down = True  # type: ignore[attr-defined]
    with pytest.raises(StorageUnavailable):
        nurture.service.preference_or_park(InMemoryIntakeQueue(down=True), "L1", "unsubscribe", None, "one_click")
