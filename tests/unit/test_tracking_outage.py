"""A table outage loses no tracked hit: opens, clicks and site events wait on the intake queue.

``TrackingService`` with a table that fails (``StorageUnavailable``, as the adapter raises for
throttling, 5xx and no answer) and an intake queue: the hit is parked, the pixel and the redirect
are answered all the same, and ``replay`` (the intake replay) stores it as it came, once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.adapters.memory import FakeClock, InMemoryIntakeQueue
from leadflow.config.workspace import Workspace
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.ratelimit import HitCounter
from leadflow.domain.tokens import TokenKind
from leadflow.services.tracking import TrackingService, is_parked_hit
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TARGET = "https://www.example.com/pricing"


class Table:
    """The activity store's writes, in memory; ``down`` makes every call fail as an outage does."""

    def __init__(self) -> None:
        self.down = False
        self.activities: dict[tuple[str, str], dict[str, Any]] = {}
        self.hits: Counter[str] = Counter()
        self.links: dict[str, str] = {}

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailable("InternalServerError")

    def record_announced(
        self, lead_id: str, activity: dict[str, Any], source: str, counter: HitCounter | None = None
    ) -> bool:
        self._check()
        if counter is not None:
            if self.hits[counter.key] >= counter.cap:
                return False
            self.hits[counter.key] += 1
        key = (f"LEAD#{lead_id}", f"ACT#{activity['at']}#{activity['activity_id']}")
        if key in self.activities:
            return False
        self.activities[key] = activity
        return True

    def record_activity(self, owner_pk: str, activity: dict[str, Any], events: list[Any], counter: Any = None) -> bool:
        self._check()
        key = (owner_pk, f"ACT#{activity['at']}#{activity['activity_id']}")
        if key in self.activities:
            return False
        self.activities[key] = activity
        return True

    def visitor_lead(self, visitor_id: str) -> str | None:
        self._check()
        return self.links.get(visitor_id)

    def visitor_activities(self, visitor_id: str) -> list[dict[str, Any]]:
        return []


class PageViews:
    def __init__(self) -> None:
        self.counted: Counter[tuple[str, str]] = Counter()

    def viewed(self, key: tuple[str, str]) -> None:
        self.counted[key] += 1


@pytest.fixture
def parts() -> tuple[TrackingService, Table, InMemoryIntakeQueue, PageViews, FakeClock]:
    table, queue, views, clock = Table(), InMemoryIntakeQueue(), PageViews(), FakeClock(NOW)
    service = TrackingService(Workspace(WORKSPACE), table, lambda: [b"k" * 32], clock, page_views=views, intake=queue)  # type: ignore[arg-type]
    return service, table, queue, views, clock


def replayed(service: TrackingService, queue: InMemoryIntakeQueue, times: int = 2) -> None:
    """The intake replay, each message delivered ``times`` times (SQS delivers at least once)."""
    for message in queue.messages:
        assert is_parked_hit(message)
        for _ in range(times):
            service.replay(message)


def test_an_open_the_table_cannot_take_is_stored_by_the_replay_once_as_it_came(parts):
    service, table, queue, _, clock = parts
    pixel = service.issue(TokenKind.OPEN, "L1", "welcome-1")
    # GIVEN the table down when the open pixel is fetched
    table.down = True
    assert service.open(pixel, "Mail/1.0") is True
    assert table.activities == {}
    # WHEN the table is back an hour later and the intake replay delivers the parked hit twice
    table.down, clock.current = False, NOW + timedelta(hours=1)
    replayed(service, queue)
    # THEN the open is stored once, at the time it happened, under its id (the token's hit cap applied)
    ((key, activity),) = table.activities.items()
    assert activity["type"] == "email_opened" and activity["message_id"] == "welcome-1"
    assert activity["at"] == NOW.isoformat() and key[1].endswith(activity["activity_id"])
    assert set(table.hits) == {next(m["counter"]["key"] for m in queue.messages)}


def test_a_click_redirects_during_the_outage_and_is_recorded_after_it(parts):
    service, table, queue, _, _ = parts
    click = service.issue(TokenKind.CLICK, "L1", "m-1", url=TARGET, link_id="pricing")
    table.down = True
    # WHEN the lead clicks while the table is down
    clicked = service.click_target(click, "Browser/1.0")
    # THEN the click goes where it was signed to, with the visitor cookie, and waits on the queue
    assert clicked is not None and clicked[0] == TARGET
    assert [m["hit"] for m in queue.messages] == ["email"]
    table.down = False
    replayed(service, queue)
    assert [(a["type"], a["link_tag"]) for a in table.activities.values()] == [("email_clicked", "pricing")]


def test_a_click_redirects_even_when_neither_the_table_nor_the_queue_takes_it(parts):
    service, table, queue, _, _ = parts
    click = service.issue(TokenKind.CLICK, "L1", "m-1", url=TARGET, link_id="pricing")
    table.down = queue.down = True
    clicked = service.click_target(click, "Browser/1.0")
    assert clicked is not None and clicked[0] == TARGET
    assert queue.messages == [] and table.activities == {}


def test_a_site_event_the_table_cannot_take_is_stored_and_its_page_view_counted_once(parts):
    service, table, queue, views, clock = parts
    body = {"visitor_id": "visitor-abc123", "type": "page_view", "url": "https://www.example.com/pricing"}
    # GIVEN the table down (the visitor's lead cannot even be looked up)
    table.down = True
    activity_id = service.site_event(body, "Browser/1.0")
    assert [m["hit"] for m in queue.messages] == ["site"] and views.counted == Counter()
    # WHEN the visitor has become a lead meanwhile, and the replay delivers the hit twice
    table.down, table.links["visitor-abc123"] = False, "L1"
    clock.current = NOW + timedelta(days=1)
    replayed(service, queue)
    # THEN it is the lead's activity, with the id the request was answered with and its own time
    ((key, activity),) = table.activities.items()
    assert key == ("LEAD#L1", f"ACT#{NOW.isoformat()}#{activity_id}")
    assert activity["type"] == "page_viewed" and activity["lead_id"] == "L1"
    # AND its page view is counted once, on the day it happened
    ((view, count),) = views.counted.items()
    assert count == 1 and view[1].startswith(NOW.date().isoformat() + "#")


def test_a_site_event_neither_the_table_nor_the_queue_takes_is_refused(parts):
    service, table, queue, _, _ = parts
    table.down = queue.down = True
    with pytest.raises(StorageUnavailable):
        service.site_event({"visitor_id": "visitor-abc123", "type": "page_view", "url": TARGET})
