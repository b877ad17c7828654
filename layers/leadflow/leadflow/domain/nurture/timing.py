"""Time in the lead's world: its timezone (from its profile or country), quiet hours, frequency caps
and waits until a local weekday and time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from leadflow.domain.countries import COUNTRY_TIMEZONES
from leadflow.domain.definitions.conditions import WEEKDAYS
from leadflow.domain.definitions.messaging import FrequencyCaps, QuietHours
from leadflow.domain.definitions.steps import UntilTime

_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


def lead_timezone(profile: Mapping[str, Any], default: str) -> ZoneInfo:
    """The lead's timezone: ``timezone`` if a valid IANA name, else its ``country``'s, else ``default``.

    Args:
        profile: the lead profile (``timezone``, ``country``: an ISO 3166 alpha-2 code or an
            English name, any case).
        default: messaging.yaml's ``default_timezone`` (validated there).

    Raises:
        zoneinfo.ZoneInfoNotFoundError: only when ``default`` itself is not a timezone.
    """
    name = profile.get("timezone")
    country = profile.get("country")
    return _resolve_zone(
        name if isinstance(name, str) else None, country if isinstance(country, str) else None, default
    )


@lru_cache(maxsize=4096)
def _resolve_zone(name: str | None, country: str | None, default: str) -> ZoneInfo:
    if name:
        zone = _zone(name.strip())
        if zone is not None:
            return zone
    if country:
        key = " ".join(country.replace(".", "").split()).casefold()
        zone_name = COUNTRY_TIMEZONES.get(key)
        if zone_name is not None:
            zone = _zone(zone_name)
            if zone is not None:
                return zone
    return ZoneInfo(default)


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    """The timezone named ``name`` (any case), None if there is none."""
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError, TypeError):
        canonical = _zone_names().get(name.casefold())
        return ZoneInfo(canonical) if canonical is not None and canonical != name else None


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {zone.casefold(): zone for zone in available_timezones()}


@lru_cache(maxsize=256)
def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at ``at`` in ``zone``, as a UTC instant (a time skipped by a DST change counts as after it)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _next_local_time(after: datetime, until: UntilTime, zone: ZoneInfo) -> datetime:
    """The first allowed weekday at ``until.time`` in ``zone``, at or after ``after``."""
    at = _clock(until.time)
    allowed = {WEEKDAYS.index(day) for day in until.weekdays}
    start = after.astimezone(zone).date()
    for offset in range(8):
        day = start + timedelta(days=offset)
        if day.weekday() in allowed:
            candidate = _local(day, at, zone)
            if candidate >= after:
                return candidate
    # Unreachable: within 8 days every weekday recurs once after ``after``'s own day.
    return after + _WEEK  # pragma: no cover


def _quiet_until(now: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours around ``now`` end, None outside them (a window may wrap midnight)."""
    if quiet is None:
        return None
    start, end = _clock(quiet.start), _clock(quiet.end)
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(second=0, microsecond=0, tzinfo=None)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + _DAY
    ends = _local(day, end, zone)
    # A DST change inside the window can fold the end back onto now: never wake in the past.
    return ends if ends > now else now + timedelta(minutes=1)


def _cap_until(now: datetime, sends: tuple[datetime, ...], caps: FrequencyCaps) -> datetime | None:
    """When sending would be within both frequency caps again, None if it is now."""
    free_at: datetime | None = None
    for window, limit in ((_DAY, caps.per_day), (_WEEK, caps.per_week)):
        since = now - window
        counted = sorted(sent for sent in sends if since < sent <= now)
        if len(counted) >= limit:
            # Sends leave the window oldest first; enough must leave to get below the limit.
            frees = counted[len(counted) - limit] + window
            free_at = frees if free_at is None or frees > free_at else free_at
    return free_at
