"""Decay and explanation: what a lead's ledger is worth at a given time, and why.

Points are stored as earned; decay is applied when a score is read, from each point's
age: ``points * 0.5 ** (age_days / half_life_days)`` (points dated after ``now`` count in
full; a model without a half-life does not decay). ``explain`` gives the rules that weigh
most in a score, ``RunningScore`` keeps a score current without re-reading the ledger,
and ``decays_below_at`` says when a score fades below a threshold.

Pure: no AWS, no environment, no clock reads; the time of evaluation is always ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadflow.domain.scoring import CAP_EPOCH, Ledger, LedgerEntry
from leadflow.domain.scoring_compiled import DAY_SECONDS, CompiledModel


def decay_factor(at: datetime, now: datetime, half_life_days: float | None) -> float:
    """What a point earned at ``at`` is worth at ``now``: ``0.5 ** (age_days / half_life_days)``, at most 1."""
    if half_life_days is None:
        return 1.0
    age = (now - at).total_seconds()
    return 1.0 if age <= 0 else 0.5 ** (age / (half_life_days * DAY_SECONDS))


def decayed_score(entries: Iterable[LedgerEntry], model: CompiledModel, now: datetime) -> float:
    """The lead's score in ``model`` at ``now``: its entries of that model, each decayed by its age.

    A ``Ledger`` hands over only that model's entries (in the order added, so the sum is
    the same to the last bit); any other iterable is filtered.
    """
    name = model.name
    own = entries.of_model(name) if isinstance(entries, Ledger) else (e for e in entries if e.model == name)
    if model.half_life_days is None:
        return float(sum(entry.points for entry in own))
    half_life = model.half_life_days * DAY_SECONDS
    total = 0.0
    for entry in own:
        age = (now - entry.at).total_seconds()
        total += entry.points if age <= 0 else entry.points * 0.5 ** (age / half_life)
    return total


@dataclass(frozen=True, slots=True)
class DecayedEntry:
    """One ledger entry as it counts at a given time."""

    entry: LedgerEntry
    age_days: float
    factor: float
    """The decay applied: 1 when the model does not decay."""
    value: float
    """``entry.points * factor``."""


def decayed_entries(entries: Iterable[LedgerEntry], model: CompiledModel, now: datetime) -> list[DecayedEntry]:
    """Every entry of ``model`` with its age, the decay applied and what it is worth at ``now``, newest first."""
    lines = []
    for entry in entries:
        if entry.model != model.name:
            continue
        factor = decay_factor(entry.at, now, model.half_life_days)
        age_days = max((now - entry.at).total_seconds() / DAY_SECONDS, 0.0)
        lines.append(DecayedEntry(entry, age_days, factor, entry.points * factor))
    lines.sort(key=lambda line: (line.entry.at, line.entry.entry_id), reverse=True)
    return lines


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule's part of a score: what a sales rep reads to see why a lead is hot."""

    rule_id: str
    description: str
    activities: int
    """How many activities the rule scored."""
    points: int
    """Points earned, before decay."""
    value: float
    """What they are worth at the time of evaluation."""
    last_at: datetime
    """The latest activity the rule scored."""


def explain(entries: Iterable[LedgerEntry], model: CompiledModel, now: datetime, top: int = 5) -> list[Reason]:
    """The rules that weigh most in the lead's score at ``now`` (by decayed value, gains and losses alike).

    Args:
        entries: the lead's ledger (entries of other models are ignored).
        model: the compiled model whose score is explained.
        now: the time of evaluation.
        top: how many reasons at most.
    """
    grouped: dict[str, list[Any]] = {}
    for line in decayed_entries(entries, model, now):
        entry = line.entry
        group = grouped.get(entry.rule_id)
        if group is None:
            grouped[entry.rule_id] = [1, entry.points, line.value, entry.at]
        else:
            group[0] += 1
            group[1] += entry.points
            group[2] += line.value
            group[3] = max(group[3], entry.at)
    reasons = [
        Reason(rule_id, model.labels.get(rule_id, rule_id), count, points, value, last_at)
        for rule_id, (count, points, value, last_at) in grouped.items()
    ]
    reasons.sort(key=lambda reason: (-abs(reason.value), reason.rule_id))
    return reasons[: max(top, 0)]


@dataclass(frozen=True, slots=True)
class RunningScore:
    """A decayed score kept current without re-reading the ledger.

    Every point of a model decays at the same rate, so a score known at ``as_of`` is known
    at any later time: ``value * 0.5 ** (days / half_life)``. Store ``value`` and ``as_of``
    on the lead; add each new activity's entries with ``plus``.
    """

    value: float = 0.0
    as_of: datetime = CAP_EPOCH

    def value_at(self, now: datetime, model: CompiledModel) -> float:
        """The score at ``now`` (not raised for a ``now`` before ``as_of``)."""
        return self.value * decay_factor(self.as_of, now, model.half_life_days)

    def plus(self, entries: Iterable[LedgerEntry], model: CompiledModel) -> RunningScore:
        """The score with ``entries`` (of ``model``; others are ignored) added, as of the latest time seen."""
        value, as_of = self.value, self.as_of
        for entry in entries:
            if entry.model != model.name:
                continue
            if entry.at > as_of:
                value = value * decay_factor(as_of, entry.at, model.half_life_days) + entry.points
                as_of = entry.at
            else:
                value += entry.points * decay_factor(entry.at, as_of, model.half_life_days)
        return RunningScore(value, as_of)


def decays_below_at(score: float, as_of: datetime, threshold: float, model: CompiledModel) -> datetime | None:
    """When a score of ``score`` at ``as_of`` fades below ``threshold`` if nothing else happens.

    Returns:
        ``as_of`` when it is already below; None when it never will (no decay, or a
        threshold of 0 or less, which a fading positive score never goes under).
    """
    if score < threshold:
        return as_of
    if model.half_life_days is None or threshold <= 0:
        return None
    return as_of + timedelta(days=model.half_life_days * math.log2(score / threshold))
