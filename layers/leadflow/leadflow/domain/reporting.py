"""Report counting: which counters one bus event moves, and the marker that makes it count once.

Pure: no boto3, no clock. The reporting function turns each event of a batch into *facts*
(``Fact``): one marker item (written with a condition, so a redelivered or replayed event finds
it and counts nothing) and the counter increments the event stands for. The service adds the
increments of a batch up per counter item and writes them once per item (``ADD n``), in the
same transaction as the markers.

Funnel counters (``docs/data-model.md``, ReportsTable): ``PK=FUNNEL#<view>#<dimension>``,
``SK=<day>#<value>`` with fields ``created``, ``reached_<stage>``, and histogram buckets
``ttm_<i>`` / ``tts_<i>`` (hours from creation to MQL / SQL). The *events* view counts on the
day a thing happened; the *cohort* view on the day the lead was created. A lead reaches a
stage once (a marker per lead and stage); reaching a later funnel stage also reaches the
earlier ones it skipped (a lead handed straight to SQL by sales passed MQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

DIMENSIONS = ("source", "medium", "campaign", "form", "channel", "ref")
Dimension = Literal["source", "medium", "campaign", "form", "channel", "ref"]
VIEWS = ("events", "cohort")
View = Literal["events", "cohort"]
FUNNEL_STAGES = ("lead", "mql", "sql", "opportunity", "customer")
SIDE_STAGES = ("recycled", "disqualified")
REPORTED_STAGES = FUNNEL_STAGES + SIDE_STAGES
NO_VALUE = "(none)"
VALUE_MAX_LENGTH = 200
# Upper bounds (hours) of the time-to-stage histogram's buckets; one more bucket holds the rest.
HOUR_BUCKETS = (1, 2, 4, 8, 12, 24, 48, 72, 120, 168, 240, 336, 504, 720, 1080, 1440, 2160, 4320, 8760)
TIMED_STAGES = {"mql": "ttm", "sql": "tts"}
MARKER_DAYS = 400  # markers outlive any replay of the bus archive a user would run


Key = tuple[str, str]


@dataclass
class Fact:
    """What one event counts: a marker (written only if absent) and counter increments."""

    marker: Key
    marker_item: dict[str, Any]
    increments: dict[Key, dict[str, int]] = field(default_factory=dict)

    def add(self, key: Key, name: str, n: int = 1) -> None:
        fields = self.increments.setdefault(key, {})
        fields[name] = fields.get(name, 0) + n


def day_of(at: str | datetime) -> str:
    """The UTC day (``YYYY-MM-DD``) of an ISO-8601 time."""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


def clean_value(value: object) -> str:
    """A dimension value as it is kept: trimmed, bounded, ``(none)`` when empty."""
    text = str(value).strip() if value is not None else ""
    return text[:VALUE_MAX_LENGTH] if text else NO_VALUE


def attribution(touch: Mapping[str, Any] | None) -> dict[str, str]:
    """The funnel dimensions of a lead: those of its first touch (what brought it)."""
    touch = touch or {}
    return {
        "source": clean_value(touch.get("utm_source")),
        "medium": clean_value(touch.get("utm_medium")),
        "campaign": clean_value(touch.get("utm_campaign")),
        "form": clean_value(touch.get("form_id")),
        "channel": clean_value(touch.get("channel")),
        "ref": clean_value(touch.get("ref")),
    }


def funnel_key(view: str, dimension: str, day: str, value: str) -> Key:
    return f"FUNNEL#{view}#{dimension}", f"{day}#{value}"


def hour_bucket(hours: float) -> int:
    """Index of the histogram bucket holding ``hours`` (``len(HOUR_BUCKETS)`` past the last bound)."""
    for index, bound in enumerate(HOUR_BUCKETS):
        if hours <= bound:
            return index
    return len(HOUR_BUCKETS)


def _expires(at: datetime) -> int:
    return int(at.timestamp()) + MARKER_DAYS * 86_400


def lead_created(lead_id: str, at: datetime, touch: Mapping[str, Any], stage: str) -> list[Fact]:
    """A new lead: ``created`` in both views on its creation day, and the stage it starts in.

    Args:
        lead_id: the new lead.
        at: when it was captured.
        touch: its first touch (``lead.captured`` detail ``touch``).
        stage: the stage its form creates leads in (``lead`` or ``subscriber``).
    """
    dims = attribution(touch)
    day = day_of(at)
    fact = Fact(
        ("LEADRPT#" + lead_id, "CREATED"),
        {"at": at.isoformat(), "day": day, "dims": dims, "stage": stage, "expires_at": _expires(at)},
    )
    for view in VIEWS:
        for dimension, value in dims.items():
            fact.add(funnel_key(view, dimension, day, value), "created")
    facts = [fact]
    for reached in stages_reached(stage):
        facts.append(stage_reached(lead_id, reached, at, at, dims))
    return facts


def stages_reached(to: str) -> tuple[str, ...]:
    """The stages a move to ``to`` reaches: the funnel stages up to it, or a side stage alone."""
    if to in FUNNEL_STAGES:
        return FUNNEL_STAGES[: FUNNEL_STAGES.index(to) + 1]
    return (to,) if to in SIDE_STAGES else ()


def stage_reached(lead_id: str, stage: str, at: datetime, created_at: datetime, dims: Mapping[str, str]) -> Fact:
    """A lead reached ``stage`` (first time): counted on the day it happened and on its cohort's day.

    Args:
        lead_id: the lead.
        stage: one of ``REPORTED_STAGES``.
        at: when it reached the stage.
        created_at: when the lead was created (its cohort, and the time to MQL / SQL).
        dims: its funnel dimensions (``attribution``).
    """
    hours = round(max((at - created_at).total_seconds() / 3600, 0.0), 3)
    marker = {
        "at": at.isoformat(),
        "day": day_of(at),
        "cohort": day_of(created_at),
        "hours": hours,
        "dims": dict(dims),
        "expires_at": _expires(at),
    }
    fact = Fact(("LEADRPT#" + lead_id, f"REACHED#{stage}"), marker)
    fact.increments = reached_increments(stage, marker)
    return fact


def reached_increments(stage: str, marker: Mapping[str, Any]) -> dict[Key, dict[str, int]]:
    """The counters a stage marker stands for (also how ``verify`` recomputes them)."""
    increments: dict[Key, dict[str, int]] = {}
    timed = TIMED_STAGES.get(stage)
    for view, day in (("events", str(marker["day"])), ("cohort", str(marker["cohort"]))):
        for dimension, value in dict(marker["dims"]).items():
            fields = increments.setdefault(funnel_key(view, dimension, day, str(value)), {})
            fields[f"reached_{stage}"] = 1
            if timed:
                fields[f"{timed}_{hour_bucket(float(marker['hours']))}"] = 1
    return increments


def merge_increments(facts: Iterable[Fact]) -> dict[Key, dict[str, int]]:
    """The increments of many facts added up per counter item (one ``ADD`` per item and field)."""
    total: dict[Key, dict[str, int]] = {}
    for fact in facts:
        for key, fields in fact.increments.items():
            into = total.setdefault(key, {})
            for name, n in fields.items():
                into[name] = into.get(name, 0) + n
    return total
