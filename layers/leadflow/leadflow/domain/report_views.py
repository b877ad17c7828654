"""Reports assembled from counter items: sums, rates, percentiles. Pure (no AWS, no clock)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from leadflow.domain.reporting import FUNNEL_STAGES, HOUR_BUCKETS, REPORTED_STAGES, TIMED_STAGES

PERCENTILES = (50, 75, 90, 95)
_TIMED_BY_PREFIX = {prefix: stage for stage, prefix in TIMED_STAGES.items()}
_REPORTED = frozenset(REPORTED_STAGES)
MAX_REPORT_DAYS = 366


class BadPeriod(ValueError):
    """``from`` / ``to`` are not days, are reversed, or span more than ``MAX_REPORT_DAYS``."""


def period(start: str, end: str) -> tuple[str, str]:
    """The checked period (``YYYY-MM-DD`` both, inclusive).

    Raises:
        BadPeriod: not ISO days, ``from`` after ``to``, or longer than ``MAX_REPORT_DAYS``.
    """
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise BadPeriod("from and to must be days, YYYY-MM-DD") from None
    if len(start) != 10 or len(end) != 10:
        raise BadPeriod("from and to must be days, YYYY-MM-DD")
    if first > last:
        raise BadPeriod("from must not be after to")
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise BadPeriod(f"a report covers at most {MAX_REPORT_DAYS} days")
    return first.isoformat(), last.isoformat()


def days_between(start: str, end: str) -> list[str]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def rate(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator`` rounded to 4 places; None when nothing was counted below."""
    return round(numerator / denominator, 4) if denominator else None


def percentile_hours(histogram: list[int], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of a time histogram (``HOUR_BUCKETS``), interpolated inside
    its bucket; past the last bound, that bound. None for an empty histogram."""
    total = sum(histogram)
    if not total:
        return None
    rank = q / 100 * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = HOUR_BUCKETS[index - 1] if index else 0.0
            if index >= len(HOUR_BUCKETS):
                return float(HOUR_BUCKETS[-1])
            high = HOUR_BUCKETS[index]
            return round(low + (high - low) * max(rank - seen, 0) / count, 1)
        seen += count
    return float(HOUR_BUCKETS[-1])


def timing(histogram: list[int]) -> dict[str, Any]:
    return {"count": sum(histogram), **{f"p{q}_hours": percentile_hours(histogram, q) for q in PERCENTILES}}


def counts_of(fields: Mapping[str, Any]) -> tuple[tuple[str, str | int, int], ...]:
    """A counter item's fields as ``(kind, where, n)``: ``("c", "", n)`` leads created, ``("r", stage,
    n)`` reached a stage, ``(timed stage, bucket, n)`` a time-to-stage histogram bucket; other
    fields (keys, unknown names) left out. A funnel report adds each item to its row, its day and
    the totals: read once, added three times (a quarter's 5,400 items took 2/3 of the report's CPU
    reading each item's field names three times: docs/benchmarks.md section 19)."""
    counts: list[tuple[str, str | int, int]] = []
    for name, value in fields.items():
        if name == "created":
            counts.append(("c", "", int(value)))
        elif name.startswith("reached_"):
            stage = name[8:]
            if stage in _REPORTED:
                counts.append(("r", stage, int(value)))
        else:
            prefix, _, index = name.partition("_")
            timed = _TIMED_BY_PREFIX.get(prefix)
            if timed is not None and index.isdigit() and int(index) <= len(HOUR_BUCKETS):
                counts.append((timed, int(index), int(value)))
    return tuple(counts)


class FunnelTotals:
    """Counters of one funnel row (a dimension value, a day, or everything) being added up."""

    def __init__(self) -> None:
        self.created = 0
        self.reached = dict.fromkeys(REPORTED_STAGES, 0)
        self.histograms = {stage: [0] * (len(HOUR_BUCKETS) + 1) for stage in TIMED_STAGES}

    def add(self, fields: Mapping[str, Any]) -> None:
        """Add a counter item (only the fields it has: most items have few)."""
        self.add_counts(counts_of(fields))

    def add_counts(self, counts: tuple[tuple[str, str | int, int], ...]) -> None:
        """Add a counter item's fields as ``counts_of`` read them."""
        reached, histograms = self.reached, self.histograms
        for kind, where, value in counts:
            if kind == "c":
                self.created += value
            elif kind == "r":
                reached[str(where)] += value
            else:
                histograms[kind][int(where)] += value

    def row(self) -> dict[str, Any]:
        reached = self.reached
        conversion = {f"{a}_to_{b}": rate(reached[b], reached[a]) for a, b in itertools.pairwise(FUNNEL_STAGES)}
        conversion["lead_to_customer"] = rate(reached["customer"], reached["lead"])
        return {
            "created": self.created,
            "reached": dict(reached),
            "conversion": conversion,
            "time_to_mql": timing(self.histograms["mql"]),
            "time_to_sql": timing(self.histograms["sql"]),
        }


def funnel_report(
    items: Iterable[tuple[str, str, Mapping[str, Any]]], *, start: str, end: str, by: str, view: str
) -> dict[str, Any]:
    """The funnel of a period from its counter items.

    Args:
        items: ``(day, value, fields)`` of every counter item of the view and dimension in the period.
        start: first day; end: last day (inclusive).
        by: the dimension the rows are keyed by.
        view: ``events`` (what happened in the period) or ``cohort`` (leads created in it, followed on).

    Returns:
        ``{from, to, by, view, totals, rows: [{key, ...}], days: [{day, ...}]}``; rows sorted by
        leads created, most first.
    """
    rows: dict[str, FunnelTotals] = {}
    per_day = {day: FunnelTotals() for day in days_between(start, end)}
    totals = FunnelTotals()
    for day, value, fields in items:
        counts = counts_of(fields)
        rows.setdefault(value, FunnelTotals()).add_counts(counts)
        if day in per_day:
            per_day[day].add_counts(counts)
        totals.add_counts(counts)
    ordered = sorted(rows.items(), key=lambda kv: (-kv[1].created, -kv[1].reached["lead"], kv[0]))
    return {
        "from": start,
        "to": end,
        "by": by,
        "view": view,
        "totals": totals.row(),
        "rows": [{"key": key, **t.row()} for key, t in ordered],
        "days": [{"day": day, "created": t.created, "reached": dict(t.reached)} for day, t in per_day.items()],
    }
