"""Behaviour score: activities, the points they earn in each model, and the ledger that keeps them.

The rules, in one place:
- an activity gets the points of every rule of a model that matches it (its type, then
  its conditions); each (activity, model, rule) scores at most once, so a redelivered
  activity adds nothing;
- a capped rule never gives more than ``cap.max_points`` (or takes more, for negative
  points) within one fixed period window; an activity over the cap gets what is left;
  because windows are fixed, the total does not depend on the order activities arrive in;
- points are stored as earned (the ledger); decay is applied when a score is read
  (``leadflow.domain.scoring_decay``).

Models are compiled by ``leadflow.domain.scoring_compiled``. The product scores every
activity in every model: ``ModelSet`` does that in one pass (the rules of all models
indexed by activity type, each distinct condition tested once), with the same result as
``score_activity`` model by model. The fit grade and lifecycle stage are in
``leadflow.domain.grading``, the account roll-up in ``leadflow.domain.accounts``.

Pure: no AWS, no environment, no clock reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadflow.domain.scoring_compiled import CompiledModel, LedgerKey, Plan, plans

# Cap windows are counted from a Monday, so 7-day windows are calendar weeks (UTC).
CAP_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)
_CAP_EPOCH_SECONDS = CAP_EPOCH.timestamp()

# ---------------------------------------------------------------------------- activities and the ledger


@dataclass(frozen=True, slots=True)
class Activity:
    """Something a lead did, as the scoring engine reads it.

    ``attributes`` holds what rules look at: ``url``, ``asset``, ``link_tag``, ``percent``
    (video watched, 0-100), ``form_id``, ``campaign``, ``seconds`` (time on page),
    ``event`` (a custom event's name). Missing attributes simply fail conditions on them.
    """

    activity_id: str
    lead_id: str
    type: str
    at: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.at.utcoffset() is None:
            raise ValueError("activity time must be timezone-aware")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Activity:
        """An activity from its stored record: ``activity_id``, ``lead_id``, ``type``, ``at`` (ISO 8601), attributes.

        A record without ``campaign`` or ``url`` takes them from its attribution
        (``touch.utm_campaign``, ``touch.page_url``), as form submissions carry them there.

        Raises:
            KeyError: a required key is missing.
            ValueError: ``at`` is not an ISO 8601 time with a time zone.
        """
        attributes = {k: v for k, v in record.items() if k not in ("activity_id", "lead_id", "type", "at")}
        touch = record.get("touch")
        if isinstance(touch, Mapping):
            if "campaign" not in attributes and touch.get("utm_campaign"):
                attributes["campaign"] = touch["utm_campaign"]
            if "url" not in attributes and touch.get("page_url"):
                attributes["url"] = touch["page_url"]
        at = record["at"]
        return cls(
            activity_id=str(record["activity_id"]),
            lead_id=str(record["lead_id"]),
            type=str(record["type"]),
            at=at if isinstance(at, datetime) else datetime.fromisoformat(at),
            attributes=attributes,
        )


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """Points one rule of one model gave (or took) for one activity: the unit of explanation."""

    entry_id: str
    """``<activity_id>:<model>:<rule_id>``: the same activity scored twice gives the same id."""
    model: str
    rule_id: str
    activity_id: str
    activity_type: str
    at: datetime
    """When the activity happened (decay counts from here)."""
    points: int
    """Points as earned, after the cap, before decay."""
    reason: str
    """Why, in words: the rule's description, its points, and the cap if it cut them."""
    cap_key: str | None = None
    """The value the rule's cap is counted per (e.g. the asset), when the cap has ``per``."""

    def as_item(self) -> dict[str, Any]:
        """The entry as JSON-compatible data (``at`` in ISO 8601); ``from_item`` reads it back."""
        item: dict[str, Any] = {
            "entry_id": self.entry_id,
            "model": self.model,
            "rule_id": self.rule_id,
            "activity_id": self.activity_id,
            "activity_type": self.activity_type,
            "at": self.at.isoformat(),
            "points": self.points,
            "reason": self.reason,
        }
        if self.cap_key is not None:
            item["cap_key"] = self.cap_key
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> LedgerEntry:
        at = item["at"]
        return cls(
            entry_id=str(item["entry_id"]),
            model=str(item["model"]),
            rule_id=str(item["rule_id"]),
            activity_id=str(item["activity_id"]),
            activity_type=str(item["activity_type"]),
            at=at if isinstance(at, datetime) else datetime.fromisoformat(at),
            points=int(item["points"]),
            reason=str(item["reason"]),
            cap_key=item.get("cap_key"),
        )


# ---------------------------------------------------------------------------- behaviour score


def score_activity(
    model: CompiledModel, activity: Activity, prior: Ledger | Iterable[LedgerEntry] = ()
) -> list[LedgerEntry]:
    """The ledger entries one activity earns in one model.

    Args:
        model: the compiled scoring model.
        activity: what the lead did.
        prior: the lead's ledger so far (any models, any order; entries of other models
            are ignored), used for caps and to score each activity once. A ``Ledger``
            answers from its indexes; a plain iterable is indexed first (read through once).

    Returns:
        One entry per matching rule that still has points to give: a capped rule gives
        what is left of its cap in the activity's window (nothing when it is spent), and
        a rule that already scored this activity gives nothing. Empty when nothing matches.
        ``prior`` is not changed (``Ledger.record`` scores and adds in one step).
    """
    plan = model.plans.get(activity.type)
    if plan is None:
        return []
    return _score_plan(plan, activity, prior if isinstance(prior, Ledger) else Ledger(prior), add=False)


def _score_plan(plan: Plan, activity: Activity, ledger: Ledger, add: bool) -> list[LedgerEntry]:  # noqa: C901 - the per-entry loop of the scoring engine in one piece (bench/scoring_engine.py)
    """The entries ``activity`` earns by ``plan`` against ``ledger``; with ``add``, each goes into it too.

    The one scoring loop (``score_activity``, ``Ledger.record``, ``ModelSet``). Adding as
    we go gives the same entries as scoring first and adding after: an entry bears only on
    its own (model, rule) cap and id, and each (model, rule) comes once in a plan.
    """
    tests, steps = plan
    attributes = activity.attributes
    passed = [test(attributes) for test in tests] if tests else ()
    scored, listed, by_model, windows = ledger.ids, ledger._entries, ledger._by_model, ledger._windows
    uncounted = ledger._uncounted
    activity_id, kind, at = activity.activity_id, activity.type, activity.at
    since_epoch = at.timestamp() - _CAP_EPOCH_SECONDS
    same_model: list[LedgerEntry] | None = None
    same_model_name = ""
    entries: list[LedgerEntry] = []
    for name, rule, slot, uncapped_key, id_suffix in steps:
        if slot >= 0 and not passed[slot]:
            continue
        entry_id = activity_id + id_suffix
        if entry_id in scored:
            continue
        points = rule.points
        cap_key = None
        key = uncapped_key
        if key is None:  # the rule's cap counts per attribute value
            value = attributes.get(rule.cap_per)  # type: ignore[arg-type]
            cap_key = "" if value is None else str(value)
            key = (name, rule.id, cap_key)
        reason = rule.reason
        sums = None
        if rule.cap_max:
            seconds = rule.cap_seconds
            tracked = windows.get(key)
            if tracked is None or tracked[0] != seconds:
                tracked = ledger._track(key, seconds)
            sums = tracked[1]
            window = int(since_epoch // seconds)
            spent = sums.get(window, 0)
            room = rule.cap_max - abs(spent)
            if room <= 0:
                continue
            if room < abs(points):
                points = room * rule.sign
                reason = f"{rule.description}: {points:+d} (capped from {rule.points:+d})"
        entry = LedgerEntry(entry_id, name, rule.id, activity_id, kind, at, points, reason, cap_key)
        entries.append(entry)
        if add:  # Ledger._index, inlined: this runs for every entry scored
            scored.add(entry_id)
            listed.append(entry)
            if name != same_model_name or same_model is None:
                same_model_name, same_model = name, by_model.get(name)
                if same_model is None:
                    same_model = by_model[name] = []
            same_model.append(entry)
            if sums is not None:  # the cap's windows, just read: count the entry in its window
                sums[window] = spent + points
            elif (tracked := windows.get(key)) is not None:
                window = int(since_epoch // tracked[0])
                tracked[1][window] = tracked[1].get(window, 0) + points
            else:
                uncounted.add(key)
    return entries


class ModelSet:
    """Several compiled models scored together, as the product scores each activity in all of them.

    The rules of every model are indexed by activity type in one table, and rules with the
    same condition (the pricing-page glob in three models) share one test, run once per
    activity. ``score`` gives exactly what ``score_activity`` gives model by model, in the
    same order: the models in order, each model's rules in file order.
    """

    __slots__ = ("_plans", "models")

    def __init__(self, models: Iterable[CompiledModel]) -> None:
        self.models = tuple(models)
        self._plans = plans((model.name, model.rules_by_type) for model in self.models)

    def score(self, activity: Activity, prior: Ledger | Iterable[LedgerEntry] = ()) -> list[LedgerEntry]:
        """The ledger entries one activity earns in every model of the set.

        Args:
            activity: what the lead did.
            prior: the lead's ledger so far, as for ``score_activity``.

        Returns:
            ``[entry for model in models for entry in score_activity(model, activity, prior)]``.
            ``prior`` is not changed (``Ledger.record_in`` scores and adds in one step).
        """
        plan = self._plans.get(activity.type)
        if plan is None:
            return []
        return _score_plan(plan, activity, prior if isinstance(prior, Ledger) else Ledger(prior), add=False)


def _window(at: datetime, seconds: float) -> int:
    """The number of the cap window of ``seconds`` that ``at`` falls in."""
    return int((at.timestamp() - _CAP_EPOCH_SECONDS) // seconds)


class Ledger:
    """A lead's ledger entries (every model), indexed for scoring: by entry id, and by rule and cap window.

    Scoring against a ``Ledger`` costs the same however long the lead's history is; scoring
    against a plain list reads the list. Entries are kept in the order added; an entry
    whose id is already in the ledger is not added again.
    """

    __slots__ = ("_by_model", "_entries", "_uncounted", "_windows", "ids")

    def __init__(self, entries: Iterable[LedgerEntry] = ()) -> None:
        self._entries: list[LedgerEntry] = []
        self._by_model: dict[str, list[LedgerEntry]] = {}
        self.ids: set[str] = set()
        """The ids of the entries (read-only for callers: add entries with ``add``)."""
        # Points per cap window, built on first use for a (model, rule, cap key): (window length, sums).
        self._windows: dict[LedgerKey, tuple[float, dict[int, int]]] = {}
        # Keys of entries not counted in any cap window: every entry's key is here or in
        # ``_windows``, so a key in neither has no entries to read when its windows are first
        # built (the common case: a lead's first activity for a capped rule).
        self._uncounted: set[LedgerKey] = set()
        self.add(entries)

    @property
    def entries(self) -> list[LedgerEntry]:
        """The entries, in the order they were added."""
        return list(self._entries)

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def of_model(self, model: str) -> list[LedgerEntry]:
        """The entries of one model, in the order they were added (read-only for callers)."""
        return self._by_model.get(model, [])

    def add(self, entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
        """Add entries; returns those that were new (ids not yet in the ledger)."""
        added = []
        ids, listed, by_model, windows = self.ids, self._entries, self._by_model, self._windows
        for entry in entries:
            if entry.entry_id in ids:
                continue
            ids.add(entry.entry_id)
            listed.append(entry)
            same_model = by_model.get(entry.model)
            if same_model is None:
                by_model[entry.model] = [entry]
            else:
                same_model.append(entry)
            key = (entry.model, entry.rule_id, entry.cap_key)
            tracked = windows.get(key) if windows else None
            if tracked is not None:  # cap windows kept for this entry's rule count it
                window = _window(entry.at, tracked[0])
                tracked[1][window] = tracked[1].get(window, 0) + entry.points
            else:
                self._uncounted.add(key)
            added.append(entry)
        return added

    def record(self, model: CompiledModel, activity: Activity) -> list[LedgerEntry]:
        """Score ``activity`` in ``model`` against this ledger and add the entries it earns; returns them.

        The same as ``add(score_activity(model, activity, self))``, in one pass.
        """
        plan = model.plans.get(activity.type)
        return [] if plan is None else _score_plan(plan, activity, self, add=True)

    def record_in(self, models: ModelSet, activity: Activity) -> list[LedgerEntry]:
        """Score ``activity`` in every model of ``models`` and add the entries it earns; returns them.

        The same as ``add(models.score(activity, self))``, in one pass.
        """
        plan = models._plans.get(activity.type)
        return [] if plan is None else _score_plan(plan, activity, self, add=True)

    def has(self, entry_id: str) -> bool:
        return entry_id in self.ids

    def spent(self, model: str, rule_id: str, cap_key: str | None, seconds: float, window: int) -> int:
        """Points a rule gave (negative: took) for a cap key in one cap window of ``seconds``."""
        key = (model, rule_id, cap_key)
        tracked = self._windows.get(key)
        if tracked is None or tracked[0] != seconds:
            tracked = self._track(key, seconds)
        return tracked[1].get(window, 0)

    def _track(self, key: LedgerKey, seconds: float) -> tuple[float, dict[int, int]]:
        """Start keeping the points of ``key`` per cap window of ``seconds`` (from then on, ``_index`` adds to them)."""
        sums: dict[int, int] = {}
        _model, rule_id, cap_key = key
        has_entries = key in self._uncounted or key in self._windows
        for entry in self._by_model.get(key[0], ()) if has_entries else ():
            if entry.rule_id == rule_id and entry.cap_key == cap_key:
                number = _window(entry.at, seconds)
                sums[number] = sums.get(number, 0) + entry.points
        tracked = self._windows[key] = (seconds, sums)
        return tracked
