"""Fit grade and lifecycle stage: how well a lead fits the ideal buyer, and where scoring moves it.

- the fit grade adds the points of the profile rules that match (the first per group),
  and takes the best letter whose threshold it reaches;
- scoring moves a lead into MQL (from the stages ``promote_from`` lists) when the
  MQL model's score and the grade are high enough, and an MQL whose score has faded
  below ``recycle_below`` to recycled (unless ``on_decay: stay``); it never moves a
  lead out of a stage sales owns.

Pure: no AWS, no environment, no clock reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadflow.domain.definitions.scoring import GRADES, SALES_OWNED_STAGES, GradeConfig, GradeRule, StageRules
from leadflow.domain.emails import FREE_MAIL_DOMAINS
from leadflow.domain.scoring_compiled import number

_GRADE_RANK = {letter: rank for rank, letter in enumerate(GRADES)}


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
    amount = number(value)
    if amount is None or not math.isfinite(amount):
        return False
    return (rule.at_least is None or amount >= rule.at_least) and (rule.below is None or amount < rule.below)


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
