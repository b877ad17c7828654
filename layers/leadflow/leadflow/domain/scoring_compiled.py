"""Compiled scoring models: the rules of scoring.yaml made ready to match activities.

Compile a model once (``compile_model``/``compile_models``) and reuse it: globs are
translated and rules indexed by activity type when it is built. A rule matches an
activity of its type when every condition it gives holds (text values case-insensitive,
globs on the URL's path unless the glob names a scheme, numbers at least the minimum).
Each model carries its scoring plan per activity type (``plans``): the distinct condition
tests of its rules, then the rules in file order, which ``leadflow.domain.scoring`` runs.

Pure: no AWS, no environment, no clock reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import translate
from functools import lru_cache
from typing import Any

from leadflow.domain.definitions.scoring import ScoringConfig, ScoringModel, ScoringRule

DAY_SECONDS = 86_400.0


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


def number(value: Any) -> float | None:
    """``value`` as a number (an int, a float or numeric text), or None (booleans are not numbers)."""
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
            percent = number(attributes.get("percent"))
            if percent is None or percent < self.min_percent:
                return False
        if self.min_seconds is not None:
            seconds = number(attributes.get("seconds"))
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
    plans: Mapping[str, Plan] = field(default_factory=dict, compare=False, repr=False)
    """The scoring plan per activity type (see ``plans``); ``compile_model`` fills it."""


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
        plans=plans([(name, rules_by_type)]),
    )


def compile_models(config: ScoringConfig) -> dict[str, CompiledModel]:
    """Every model of ``config``, compiled, by name."""
    return {name: compile_model(name, model) for name, model in config.models.items()}


LedgerKey = tuple[str, str, str | None]
"""(model, rule id, cap key): how a ledger indexes entries for caps."""
_Test = Callable[[Mapping[str, Any]], bool]
_PlanStep = tuple[str, CompiledRule, int, LedgerKey | None, str]
"""(model name, rule, number of its test or -1 when unconditional, its ledger key unless that
depends on the activity, the entry id after the activity id)."""
Plan = tuple[tuple[_Test, ...], tuple[_PlanStep, ...]]
"""The distinct tests of an activity type's rules, then the rules' steps in order."""


def plans(models: Iterable[tuple[str, Mapping[str, tuple[CompiledRule, ...]]]]) -> dict[str, Plan]:
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
