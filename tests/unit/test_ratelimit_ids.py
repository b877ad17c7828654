"""Fixed one-minute rate windows, and leadflow's time-ordered 26-character ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from leadflow.domain.ids import is_id, new_id
from leadflow.domain.ratelimit import WINDOW_SECONDS, rate_window

pytestmark = pytest.mark.unit

MINUTE_START = datetime(2026, 11, 5, 12, 0, 0, tzinfo=UTC)
MINUTE_EPOCH = int(MINUTE_START.timestamp())


# ---------------------------------------------------------------------------- rate windows


def test_posts_in_one_minute_share_a_counter():
    # GIVEN posts from one client at the start, middle and last instant of a minute
    moments = [MINUTE_START, MINUTE_START + timedelta(seconds=30), MINUTE_START + timedelta(seconds=59.999)]

    # WHEN their windows are computed
    keys = {rate_window("198.51.100.4", moment, limit=30).counter_key for moment in moments}

    # THEN they count against one counter named by client and window start
    assert keys == {f"RATE#198.51.100.4#{MINUTE_EPOCH}"}


def test_the_next_minute_is_a_new_counter():
    # GIVEN posts on either side of a minute boundary
    # WHEN their windows are computed
    before = rate_window("198.51.100.4", MINUTE_START - timedelta(milliseconds=1), limit=30)
    after = rate_window("198.51.100.4", MINUTE_START, limit=30)

    # THEN they use different counters
    assert before.counter_key == f"RATE#198.51.100.4#{MINUTE_EPOCH - WINDOW_SECONDS}"
    assert after.counter_key != before.counter_key


def test_clients_have_their_own_counters():
    # GIVEN two clients posting at the same moment
    # WHEN their windows are computed
    first = rate_window("198.51.100.4", MINUTE_START, limit=30)
    second = rate_window("2001:db8::1", MINUTE_START, limit=30)

    # THEN the counters differ
    assert first.counter_key != second.counter_key
    assert second.counter_key == f"RATE#2001:db8::1#{MINUTE_EPOCH}"


@pytest.mark.parametrize(("offset", "retry_after"), [(0, 60), (1, 59), (30, 30), (59, 1), (59.9, 1)])
def test_retry_after_is_the_time_left_in_the_window(offset: float, retry_after: int):
    # GIVEN a post this many seconds into a minute
    now = MINUTE_START + timedelta(seconds=offset)

    # WHEN its window is computed
    window = rate_window("198.51.100.4", now, limit=30)

    # THEN a refused client is told to come back when the next window opens (never 0)
    assert window.retry_after_seconds == retry_after
    assert 1 <= window.retry_after_seconds <= WINDOW_SECONDS


def test_the_counter_expires_well_after_its_window():
    # GIVEN a post in the middle of a minute
    window = rate_window("198.51.100.4", MINUTE_START + timedelta(seconds=42), limit=30)

    # WHEN its expiry is read
    # THEN the counter lives ten windows from the window start (DynamoDB TTL is lazy), in epoch seconds
    assert window.expires_at == MINUTE_EPOCH + 10 * WINDOW_SECONDS
    assert window.limit == 30


def test_the_window_ignores_the_time_zone_it_is_given_in():
    # GIVEN one instant expressed in UTC and in UTC+02:00
    local = MINUTE_START.astimezone(timezone(timedelta(hours=2)))

    # WHEN their windows are computed
    # THEN they are the same window
    assert rate_window("198.51.100.4", local, limit=30) == rate_window("198.51.100.4", MINUTE_START, limit=30)


# ---------------------------------------------------------------------------- ids


def test_an_id_is_26_url_safe_characters():
    # GIVEN a moment
    # WHEN an id is made
    value = new_id(MINUTE_START)

    # THEN it is 26 Crockford base32 characters (no I, L, O, U)
    assert len(value) == 26
    assert is_id(value)
    assert not set(value) & set("ILOU")


def test_ids_sort_by_time():
    # GIVEN moments a millisecond, a second and years apart, in random creation order
    moments = [
        MINUTE_START + timedelta(days=3650),
        MINUTE_START,
        MINUTE_START + timedelta(milliseconds=1),
        MINUTE_START + timedelta(seconds=1),
        datetime(1999, 1, 1, tzinfo=UTC),
    ]

    # WHEN an id is made for each
    ids = {moment: new_id(moment) for moment in moments}

    # THEN sorting the ids sorts the moments
    assert [ids[m] for m in sorted(moments)] == sorted(ids.values())


def test_ids_of_one_millisecond_are_unique():
    # GIVEN many ids made in the same millisecond
    # WHEN they are compared
    ids = {new_id(MINUTE_START) for _ in range(10_000)}

    # THEN none repeats (80 random bits each)
    assert len(ids) == 10_000


def test_ids_of_one_millisecond_share_the_time_prefix():
    # GIVEN two ids of one millisecond
    # WHEN their first 10 characters (48 bits of milliseconds) are compared
    # THEN they are equal
    assert new_id(MINUTE_START)[:10] == new_id(MINUTE_START + timedelta(microseconds=999))[:10]


@pytest.mark.parametrize(
    "value", ["", "01JCZ3Q8X8F5T9Y4N2M1K0H7G", "01JCZ3Q8X8F5T9Y4N2M1K0H7GEX", "01jcz3q8x8f5t9y4n2m1k0h7ge", "O" * 26]
)
def test_what_is_not_an_id_is_recognised(value: str):
    # GIVEN a string of the wrong length, case or alphabet
    # WHEN it is checked
    # THEN it is not an id
    assert not is_id(value)
