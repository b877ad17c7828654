"""The nurture step's cheaper helpers give what they gave.

``domain.nurture.mail_log.utc_iso`` keeps the text of UTC instants; ``services.nurture._personal`` and
``_recent_sends`` take shortcuts for the common profile (no custom fields to copy, no legacy
sends); a batch worked on one thread counts straight into its result. Each must be what the
code before them computed, for any input.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.domain.nurture.mail_log import MailLog, utc_iso
from leadflow.services.nurture import _personal, _recent_sends

pytestmark = pytest.mark.unit

BERLIN = ZoneInfo("Europe/Berlin")


class ShiftedDatetime(datetime):
    """A datetime subclass (as time-freezing libraries make): never taken from the kept texts."""


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 10, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0),  # the hour DST ends: twice on the clock
        datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1),
        datetime(2026, 11, 24, 11, 0, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 11, 24, 10, 0),  # naive: the machine's local time
        ShiftedDatetime(2026, 11, 24, 10, 0, tzinfo=UTC),
        None,
    ],
)
def test_iso_times_are_what_they_were(value: datetime | None) -> None:
    expected = value.astimezone(UTC).isoformat() if value is not None else None
    assert utc_iso(value) == expected
    assert utc_iso(value) == expected  # read again: from the kept texts where they are kept


@settings(max_examples=200, deadline=None)
@given(st.datetimes(timezones=st.just(UTC) | st.sampled_from([BERLIN, ZoneInfo("America/New_York")])))
def test_iso_times_of_any_zone_are_their_utc_text(value: datetime) -> None:
    assert utc_iso(value) == value.astimezone(UTC).isoformat()


def reference_personal(profile: dict[str, Any]) -> dict[str, Any]:
    """``services.nurture._personal`` before its hidden fields were a module constant (GSI5's keys added)."""
    hidden = {"PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "GSI5PK", "GSI5SK"}
    hidden |= {"recent_sends", "score_version"}
    lead = {k: v for k, v in profile.items() if k not in hidden}
    for key, value in profile.items():
        if key.startswith("cf_"):
            lead.setdefault(key[3:], value)
    return lead


KEYS = st.sampled_from(["PK", "SK", "GSI2SK", "recent_sends", "first_name", "plan", "cf_plan", "cf_first_name", "cf_"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS | st.text(max_size=6), st.text(max_size=4) | st.integers(), max_size=8))
def test_personal_fields_are_what_they_were_in_the_same_order(profile: dict[str, Any]) -> None:
    assert list(_personal(profile).items()) == list(reference_personal(profile).items())


SEND = {"at": "2026-11-24T09:00:00+00:00", "m": "m_1"}


def reference_recent_sends(profile: dict[str, Any], log: MailLog | None) -> tuple[datetime, ...]:
    legacy = tuple(datetime.fromisoformat(s) for s in profile.get("recent_sends") or ())
    return legacy + log.times() if log is not None else legacy


@pytest.mark.parametrize(
    ("profile", "log"),
    [
        ({}, None),
        ({}, MailLog()),
        ({"recent_sends": []}, MailLog()),
        ({"recent_sends": ["2026-11-23T10:00:00+00:00"]}, None),
        (
            {"recent_sends": ["2026-11-23T10:00:00+00:00"]},
            MailLog(1, ({"at": "2026-11-24T09:00:00+00:00", "m": "m_1"},)),
        ),
        ({}, MailLog(2, (SEND, {"m": "m_2"}))),
    ],
)
def test_recent_sends_are_what_they_were(profile: dict[str, Any], log: MailLog | None) -> None:
    assert _recent_sends(profile, log) == reference_recent_sends(profile, log)
