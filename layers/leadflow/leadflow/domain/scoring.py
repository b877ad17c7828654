"""Lead scoring: behaviour points, fit grade, lifecycle stage and the account roll-up.

The rules, in one place:
- an activity gets the points of every rule of a model that matches it (its type, then
  its conditions); each (activity, model, rule) scores at most once, so a redelivered
  activity adds nothing;
- a capped rule never gives more than ``cap.max_points`` (or takes more, for negative
  points) within one fixed period window; an activity over the cap gets what is left;
  because windows are fixed, the total does not depend on the order activities arrive in;
- points are stored as earned (the ledger); decay is applied when a score is read, from
  each point's age: ``points * 0.5 ** (age_days / half_life_days)`` (points dated after
  ``now`` count in full);
- the fit grade adds the points of the profile rules that match (the first per group),
  and takes the best letter whose threshold it reaches;
- scoring moves a lead into MQL (from the stages ``promote_from`` lists) when the
  MQL model's score and the grade are high enough, and an MQL whose score has faded
  below ``recycle_below`` to recycled (unless ``on_decay: stay``); it never moves a
  lead out of a stage sales owns;
- leads roll up by company domain into accounts: the sum and best of their scores, and
  which departments of the buying committee are engaged.

Pure: no AWS, no environment, no clock reads; the time of evaluation is always ``now``.
Compile a model once (``compile_model``/``compile_models``) and reuse it: globs are
translated and rules indexed by activity type when it is built. The product scores every
activity in every model: ``ModelSet`` does that in one pass (the rules of all models
indexed by activity type, each distinct condition tested once), with the same result as
``score_activity`` model by model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import translate
from functools import lru_cache
from typing import Any

from leadflow.domain.definitions.scoring import (
    GRADES,
    SALES_OWNED_STAGES,
    AccountRules,
    GradeConfig,
    GradeRule,
    ScoringConfig,
    ScoringModel,
    ScoringRule,
    StageRules,
)
from leadflow.domain.emails import FREE_MAIL_DOMAINS

DAY_SECONDS = 86_400.0
# Cap windows are counted from a Monday, so 7-day windows are calendar weeks (UTC).
CAP_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)
_CAP_EPOCH_SECONDS = CAP_EPOCH.timestamp()
_GRADE_RANK = {letter: rank for rank, letter in enumerate(GRADES)}

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


# ---------------------------------------------------------------------------- compiled models


def _text_matcher(pattern: str) -> Callable[[str], bool]:
    """Case-insensitive equality, or a glob when the pattern has * ? or [."""
    if any(char in pattern for char in "*?["):
        regex = re.compile(translate(pattern), re.IGNORECASE)
        return lambda value: regex.match(value) is not None
    folded = pattern.casefold()
    return lambda value: value.casefold() == folded


_URL_PATH = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)?([^?#]*)")


# Pages repeat (every lead views the same pricing page): the path of a URL is worked out once.
@lru_cache(maxsize=4096)
def _url_path(url: str) -> str:
    """The path of a URL (no query, no fragment); a value without a scheme is taken as a path."""
    match = _URL_PATH.match(url)
    return (match.group(1) if match else "") or "/"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


_TEXT_CONDITIONS = ("asset", "link_tag", "form_id", "campaign", "event")


class CompiledRule:
    """A scoring rule ready to match: globs translated once, cap in seconds."""

    __slots__ = (
        "cap_max",
        "cap_per",
        "cap_seconds",
        "checks",
        "condition",
        "description",
        "id",
        "min_percent",
        "min_seconds",
        "points",
        "reason",
        "sign",
        "test",
        "unconditional",
        "url_on_path",
        "url_regex",
    )

    def __init__(self, rule: ScoringRule) -> None:
        when = rule.when
        self.id = rule.id
        self.points = rule.points
        self.sign = 1 if rule.points > 0 else -1
        self.description = rule.label
        self.checks: tuple[tuple[str, Callable[[str], bool]], ...] = tuple(
            (name, _text_matcher(getattr(when, name))) for name in _TEXT_CONDITIONS if getattr(when, name) is not None
        )
        self.url_regex: re.Pattern[str] | None = None
        self.url_on_path = False
        if when.url_glob is not None:
            self.url_regex = re.compile(translate(when.url_glob.strip()), re.IGNORECASE)
            self.url_on_path = "://" not in when.url_glob
        self.min_percent = when.min_video_percent
        self.min_seconds = when.min_seconds_on_page
        self.cap_max = rule.cap.max_points if rule.cap else 0
        self.cap_seconds = rule.cap.period_days * DAY_SECONDS if rule.cap else 0.0
        self.cap_per = rule.cap.per if rule.cap else None
        self.reason = f"{rule.label}: {rule.points:+d}"
        self.unconditional = not rule.when.given()
        # What ``matches`` depends on, and nothing else: rules with equal conditions (the
        # same test in several models) match the same activities.
        self.condition: tuple[Any, ...] = (
            tuple((name, getattr(when, name)) for name in _TEXT_CONDITIONS if getattr(when, name) is not None),
            when.url_glob,
            when.min_video_percent,
            when.min_seconds_on_page,
        )
        self.test = self._fastest_test()

    def _fastest_test(self) -> Callable[[Mapping[str, Any]], bool]:
        """``matches``, as a closure doing only this rule's one test when it has only one.

        Most conditions are a single URL glob or a single text value; scoring runs these
        for every activity of their type, so they skip ``matches``'s general walk.
        """
        only_url = not self.checks and self.min_percent is None and self.min_seconds is None
        if only_url and self.url_regex is not None:
            match = self.url_regex.match
            if self.url_on_path:
                return lambda attributes: (
                    isinstance(url := attributes.get("url"), str) and match(_url_path(url)) is not None
                )
            return lambda attributes: isinstance(url := attributes.get("url"), str) and match(url) is not None
        if len(self.checks) == 1 and self.url_regex is None and self.min_percent is None and self.min_seconds is None:
            ((name, check),) = self.checks
            return lambda attributes: (value := attributes.get(name)) is not None and check(str(value))
        return self.matches

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        """Whether an activity with these attributes meets every condition of the rule."""
        for name, check in self.checks:
            value = attributes.get(name)
            if value is None or not check(str(value)):
                return False
        if self.url_regex is not None:
            url = attributes.get("url")
            if not isinstance(url, str) or self.url_regex.match(_url_path(url) if self.url_on_path else url) is None:
                return False
        if self.min_percent is not None:
            percent = _number(attributes.get("percent"))
            if percent is None or percent < self.min_percent:
                return False
        if self.min_seconds is not None:
            seconds = _number(attributes.get("seconds"))
            if seconds is None or seconds < self.min_seconds:
                return False
        return True


@dataclass(frozen=True, slots=True)
class CompiledModel:
    """A scoring model ready to score: its rules indexed by activity type."""

    name: str
    half_life_days: float | None
    rules_by_type: Mapping[str, tuple[CompiledRule, ...]]
    labels: Mapping[str, str]
    """Each rule's description, by rule id."""
    description: str = ""
    plans: Mapping[str, _Plan] = field(default_factory=dict, compare=False, repr=False)
    """The scoring plan per activity type (see ``_plans``); ``compile_model`` fills it."""


PAGE_VIEWED = "page_viewed"
TIME_ON_PAGE = "page_time"  # the snippet's report when a page is left: url and seconds


def compile_model(name: str, model: ScoringModel) -> CompiledModel:
    """``model`` (named ``name`` in scoring.yaml) ready to score activities."""
    by_type: dict[str, list[CompiledRule]] = {}
    for rule in model.rules:
        compiled = CompiledRule(rule)
        by_type.setdefault(rule.activity.value, []).append(compiled)
        if rule.activity.value == PAGE_VIEWED and compiled.min_seconds is not None:
            # The snippet reports the time on a page apart from the view itself (one view, one
            # count): only the rules that ask for time on the page read that report.
            by_type.setdefault(TIME_ON_PAGE, []).append(compiled)
    rules_by_type = {kind: tuple(rules) for kind, rules in by_type.items()}
    return CompiledModel(
        name=name,
        half_life_days=model.half_life_days,
        rules_by_type=rules_by_type,
        labels={rule.id: rule.label for rule in model.rules},
        description=model.description,
        plans=_plans([(name, rules_by_type)]),
    )


def compile_models(config: ScoringConfig) -> dict[str, CompiledModel]:
    """Every model of ``config``, compiled, by name."""
    return {name: compile_model(name, model) for name, model in config.models.items()}


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


_LedgerKey = tuple[str, str, str | None]
"""(model, rule id, cap key): how a ledger indexes entries for caps."""
_Test = Callable[[Mapping[str, Any]], bool]
_PlanStep = tuple[str, CompiledRule, int, _LedgerKey | None, str]
"""(model name, rule, number of its test or -1 when unconditional, its ledger key unless that
depends on the activity, the entry id after the activity id)."""
_Plan = tuple[tuple[_Test, ...], tuple[_PlanStep, ...]]
"""The distinct tests of an activity type's rules, then the rules' steps in order."""


def _plans(models: Iterable[tuple[str, Mapping[str, tuple[CompiledRule, ...]]]]) -> dict[str, _Plan]:
    """The scoring plan of each activity type over ``(model name, rules by type)`` in order.

    Steps come model by model, each model's rules in file order; rules with the same
    condition (the pricing-page glob in three models) share one test.
    """
    by_type: dict[str, tuple[dict[tuple[Any, ...], int], list[_Test], list[_PlanStep]]] = {}
    for name, rules_by_type in models:
        for kind, rules in rules_by_type.items():
            slots, tests, steps = by_type.setdefault(kind, ({}, [], []))
            for rule in rules:
                slot = -1
                if not rule.unconditional:
                    slot = slots.get(rule.condition, -1)
                    if slot < 0:
                        slot = slots[rule.condition] = len(tests)
                        tests.append(rule.test)
                key = None if rule.cap_per is not None else (name, rule.id, None)
                steps.append((name, rule, slot, key, f":{name}:{rule.id}"))
    return {kind: (tuple(tests), tuple(steps)) for kind, (_slots, tests, steps) in by_type.items()}


def _score_plan(plan: _Plan, activity: Activity, ledger: Ledger, add: bool) -> list[LedgerEntry]:  # noqa: C901 - the per-entry loop of the scoring engine in one piece (bench/scoring_engine.py)
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
        self._plans = _plans((model.name, model.rules_by_type) for model in self.models)

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
        self._windows: dict[_LedgerKey, tuple[float, dict[int, int]]] = {}
        # Keys of entries not counted in any cap window: every entry's key is here or in
        # ``_windows``, so a key in neither has no entries to read when its windows are first
        # built (the common case: a lead's first activity for a capped rule).
        self._uncounted: set[_LedgerKey] = set()
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

    def _track(self, key: _LedgerKey, seconds: float) -> tuple[float, dict[int, int]]:
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


# ---------------------------------------------------------------------------- fit grade


@dataclass(frozen=True, slots=True)
class GradeReason:
    """A profile rule that matched, and its points."""

    rule_id: str
    field: str | None
    points: int
    description: str


@dataclass(frozen=True, slots=True)
class Grade:
    """The fit grade of a profile: A (ideal buyer) to F, its points and why."""

    letter: str
    points: int
    reasons: tuple[GradeReason, ...] = ()


def _email_domain(profile: Mapping[str, Any]) -> str | None:
    domain = profile.get("email_domain")
    if not domain:
        email = profile.get("email")
        if not isinstance(email, str) or "@" not in email:
            return None
        domain = email.rsplit("@", 1)[1]
    return str(domain).strip().lower() or None


def fit_grade(profile: Mapping[str, Any], config: GradeConfig) -> Grade:
    """How well a lead fits the ideal buyer.

    Args:
        profile: the lead record (title, country, email_domain or email, cf_<custom field>...).
        config: the grade rules and thresholds.

    Returns:
        The grade: the points of every matching rule (the first per group, in file order)
        and the best letter whose threshold they reach (F below all).
    """
    points = 0
    reasons = []
    taken_groups: set[str] = set()
    for rule in config.rules:
        if rule.group is not None and rule.group in taken_groups:
            continue
        if not _grade_rule_matches(rule, profile):
            continue
        if rule.group is not None:
            taken_groups.add(rule.group)
        points += rule.points
        reasons.append(GradeReason(rule.id, rule.field, rule.points, rule.label))
    reached = [_GRADE_RANK[letter] for letter, minimum in config.thresholds.items() if points >= minimum]
    return Grade(GRADES[min(reached)] if reached else "F", points, tuple(reasons))


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold()


def _grade_rule_matches(rule: GradeRule, profile: Mapping[str, Any]) -> bool:
    if rule.free_mail is not None:
        domain = _email_domain(profile)
        return domain is not None and (domain in FREE_MAIL_DOMAINS) == rule.free_mail
    value = profile.get(rule.field or "")
    if value is None or value == "":
        return False
    if rule.equals is not None:
        return _text(value) == rule.equals.strip().casefold()
    if rule.one_of is not None:
        return _text(value) in {option.strip().casefold() for option in rule.one_of}
    if rule.matches is not None:
        # re caches compiled patterns: a grade's handful of regexes are compiled once.
        return re.compile(rule.matches, re.IGNORECASE).search(str(value)) is not None
    number = _number(value)
    if number is None or not math.isfinite(number):
        return False
    return (rule.at_least is None or number >= rule.at_least) and (rule.below is None or number < rule.below)


def grade_at_least(grade: str | None, minimum: str | None) -> bool:
    """Whether ``grade`` is ``minimum`` or better (no minimum: always; no grade: only when F will do)."""
    if minimum is None:
        return True
    return _GRADE_RANK.get(grade or "F", len(GRADES)) <= _GRADE_RANK[minimum]


# ---------------------------------------------------------------------------- lifecycle stage


def next_stage(current: str, score: float, grade: str | None, rules: StageRules) -> str | None:
    """The stage scoring moves a lead to, or None when it stays where it is.

    Args:
        current: the lead's stage.
        score: its decayed score in the MQL model (``ScoringConfig.mql_model``) now.
        grade: its fit grade letter (None when unknown: it passes only a rule without a grade).
        rules: the stage rules.

    Returns:
        "mql" for a lead in a ``promote_from`` stage whose score and grade are high
        enough; "recycled" for an MQL whose score has faded below the recycle threshold
        when ``on_decay`` is recycled; None otherwise. Stages sales owns never move.
    """
    if current in SALES_OWNED_STAGES:
        return None
    mql = rules.mql
    if current == "mql":
        if rules.on_decay == "recycled" and score < rules.recycle_threshold:
            return "recycled"
        return None
    if current in rules.promote_from and score >= mql.score_at_least and grade_at_least(grade, mql.grade_at_least):
        return "mql"
    return None


# ---------------------------------------------------------------------------- accounts

# Title keywords per department, the first match wins: functions before general management,
# so "VP of Sales" is sales and "Account Executive" sales, while a bare "President" is executive.
DEPARTMENT_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("marketing", (
        "cmo", "chief marketing", "marketing", "marketer", "brand", "growth", r"demand gen\w*", "communications",
        "content", "seo", "sem", "media", "campaigns?", "pr", "public relations",
    )),
    ("sales", (
        "cro", "chief revenue", "sales", "account executive", "account manager", "business development", "bdr", "sdr",
        "revenue", "commercial", "partnerships?",
    )),
    ("finance", (
        "cfo", "chief financial", "finance", "financial", "controller", "controlling", "accounting", "accountant",
        r"treasur\w*", "procurement", "purchasing", "buyer",
    )),
    ("it", (
        "cto", "cio", "ciso", "chief (?:technology|information|digital)", "it", "information technology",
        r"engineer\w*", "developer", "software", "devops", "architect", "security", "infrastructure", "systems", "data",
        "technical", "technology",
    )),
    ("operations", (
        "coo", "chief operating", "operations", "ops", "logistics", "supply chain", r"facilit\w*", "production",
        "plant",
    )),
    ("executive", (
        "ceo", "chief executive", "co-founder", "founder", "president", "owner", "managing director", "general manager",
        "chairman", "chairwoman", "managing partner", "executive director", r"geschäftsführer\w*",
    )),
)  # fmt: skip
_DEPARTMENT_PATTERNS = tuple(
    (department, re.compile(rf"\b(?:{'|'.join(keywords)})\b", re.IGNORECASE))
    for department, keywords in DEPARTMENT_KEYWORDS
)


def department_of(title: str | None) -> str | None:
    """The committee department of a job title (executive, marketing, sales, it, finance, operations), or None."""
    if not title:
        return None
    for department, pattern in _DEPARTMENT_PATTERNS:
        if pattern.search(title):
            return department
    return None


@dataclass(frozen=True, slots=True)
class LeadScoreSummary:
    """One lead as the account roll-up sees it."""

    lead_id: str
    account_domain: str | None
    score: float
    """Its decayed score in the account model."""
    title: str | None = None
    department: str | None = None
    """Its department when known (e.g. from the CRM); otherwise derived from the title."""

    @property
    def resolved_department(self) -> str | None:
        return self.department or department_of(self.title)


@dataclass(frozen=True, slots=True)
class AccountScore:
    """A company's leads, scored as one buying committee."""

    account_domain: str
    score: float
    """Sum of its leads' scores."""
    best_lead_score: float
    leads: int
    engaged_leads: int
    """Leads whose score reaches ``engaged_at_least``."""
    departments: tuple[str, ...]
    """Committee departments with at least one engaged lead, sorted."""
    missing_departments: tuple[str, ...]
    """Committee departments nobody engaged is from, in committee order."""
    coverage: float
    """Share of the committee engaged, 0 to 1."""
    top_leads: tuple[str, ...]
    """Lead ids, highest score first (at most 5)."""


def account_score(leads: Sequence[LeadScoreSummary], rules: AccountRules | None = None) -> AccountScore:
    """The account score of one company's leads.

    Raises:
        ValueError: no leads, or leads of different (or no) account domains.
    """
    rules = rules or AccountRules()
    domains = {lead.account_domain for lead in leads}
    if len(domains) != 1 or None in domains:
        raise ValueError(f"leads of exactly one account domain expected, got {sorted(map(str, domains))}")
    engaged = [lead for lead in leads if lead.score >= rules.engaged_at_least]
    covered = {department for lead in engaged if (department := lead.resolved_department)}
    committee = rules.committee
    ranked = sorted(leads, key=lambda lead: (-lead.score, lead.lead_id))
    return AccountScore(
        account_domain=str(next(iter(domains))),
        score=sum(lead.score for lead in leads),
        best_lead_score=ranked[0].score,
        leads=len(leads),
        engaged_leads=len(engaged),
        departments=tuple(sorted(d for d in covered if d in committee)),
        missing_departments=tuple(d for d in committee if d not in covered),
        coverage=sum(1 for d in committee if d in covered) / len(committee),
        top_leads=tuple(lead.lead_id for lead in ranked[:5]),
    )


def roll_up_accounts(leads: Iterable[LeadScoreSummary], rules: AccountRules | None = None) -> dict[str, AccountScore]:
    """Account scores of every company domain among ``leads`` (leads without one, e.g. free mail, are left out)."""
    by_domain: dict[str, list[LeadScoreSummary]] = {}
    for lead in leads:
        if lead.account_domain:
            by_domain.setdefault(lead.account_domain, []).append(lead)
    return {domain: account_score(members, rules) for domain, members in sorted(by_domain.items())}
