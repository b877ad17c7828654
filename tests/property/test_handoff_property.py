"""Properties of the hand-off rules that must hold for any input.

- SSRF: an address passes exactly when it is a global unicast address, not reserved, and not a
  cloud metadata address (IPv4-mapped IPv6 judged as its IPv4); allowing private addresses never lets
  a metadata, multicast or unspecified address through.
- Retries: every delay is within [half, all] of the nominal exponential delay, never more than
  the cap; the schedule never passes the give-up time and always reaches at least 24 hours.
- Round robin: any number of tickets spreads over a team so that no two members differ by more
  than one assignment.
- Payloads: whatever the profile holds, the payload validates against the published schema.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.domain import handoff as h
from leadflow.domain.definitions.handoff import Owner, Retry, Team
from leadflow.domain.handoff_delivery import METADATA_ADDRESSES, backoff_seconds, check_address, next_attempt_at
from leadflow.domain.handoff_payload import PAYLOAD_SCHEMA, build_payload

pytestmark = pytest.mark.unit
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


def _allowed(address: str, allow_private: bool) -> bool:
    try:
        check_address(address, allow_private)
    except h.DestinationRefused:
        return False
    return True


@PROPERTY
@given(address=addresses)
def test_only_global_non_metadata_addresses_pass(address: str) -> None:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    internal = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified
    expected = ip.is_global and not internal and not ip.is_multicast and ip not in METADATA_ADDRESSES
    assert _allowed(address, allow_private=False) == expected


@PROPERTY
@given(address=addresses)
def test_allowing_private_never_allows_metadata_multicast_or_unspecified(address: str) -> None:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES or ip.is_multicast or ip.is_unspecified:
        assert not _allowed(address, allow_private=True)


retries = st.builds(
    Retry,
    initial_seconds=st.floats(1, 3600),
    multiplier=st.floats(1.1, 10),
    max_delay_seconds=st.floats(10, 43_200),
    give_up_after_hours=st.floats(24, 24 * 13),
)


@PROPERTY
@given(policy=retries, attempts=st.integers(1, 200), fraction=st.floats(0, 1))
def test_each_delay_is_jittered_within_half_of_the_capped_nominal_delay(
    policy: Retry, attempts: int, fraction: float
) -> None:
    nominal = min(policy.initial_seconds * policy.multiplier ** min(attempts - 1, 60), policy.max_delay_seconds)
    delay = backoff_seconds(policy, attempts, fraction)
    assert nominal / 2 - 1e-6 <= delay <= nominal + 1e-6


@PROPERTY
@given(policy=retries, fraction=st.floats(0, 1), retry_after=st.one_of(st.none(), st.floats(0, 10**6)))
def test_retrying_lasts_at_least_a_day_and_never_past_the_give_up_time(
    policy: Retry, fraction: float, retry_after: float | None
) -> None:
    give_up = NOW + timedelta(hours=policy.give_up_after_hours)
    now, attempts = NOW, 0
    while True:
        attempts += 1
        due = next_attempt_at(policy, attempts, NOW, now, fraction, retry_after)
        if due is None:
            break
        assert now < due <= give_up
        now = due
    assert now >= NOW + timedelta(hours=24)


@PROPERTY
@given(members=st.integers(1, 12), tickets=st.integers(0, 500), start=st.integers(1, 10_000))
def test_round_robin_never_lets_two_members_differ_by_more_than_one(members: int, tickets: int, start: int) -> None:
    team = Team("t", tuple(f"m{i}" for i in range(members)))
    picks = Counter(h.rotation(team, ticket)[0] for ticket in range(start, start + tickets))
    counts = [picks.get(m, 0) for m in team.members]
    assert max(counts) - min(counts) <= 1


text = st.text(max_size=40)


@PROPERTY
@given(
    profile=st.fixed_dictionaries(
        {"email": st.emails()},
        optional={
            "first_name": text,
            "company": text,
            "country": text,
            "cf_size": st.one_of(text, st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
            "referred_by": st.one_of(st.none(), text),
            "first_touch": st.fixed_dictionaries({}, optional={"channel": text, "utm_source": text, "ref": text}),
        },
    ),
    with_owner=st.booleans(),
)
def test_any_profile_makes_a_payload_the_published_schema_accepts(profile: dict[str, Any], with_owner: bool) -> None:
    route = (
        h.Route("team", owner=Owner("o1", "O", "o@example.com"), team="t") if with_owner else h.Route("fb", queue="q")
    )
    record = h.new_record("01JDQ0Z8W6S9X2V3T4R5P6N7M8", "L", "stage", "r", route, ["d"], NOW, "system")
    payload = build_payload(record, profile, {}, [{"type": "form_submitted", "at": NOW.isoformat()}], {}, NOW)
    jsonschema.Draft202012Validator(PAYLOAD_SCHEMA).validate(payload)
