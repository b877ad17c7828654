"""The optimized scoring engine against a straightforward reference, on random models and histories.

The engine scores through precompiled plans (every model's rules indexed by activity type,
shared condition tests, an indexed ledger with incremental cap windows, entries added as they
are scored). The reference below is the rules of ``leadflow.domain.scoring`` written the
plain way: for each model, for each rule of the activity's type, test the conditions, skip
an entry id already in the ledger, and sum the rule's prior points in the activity's cap
window by reading the whole ledger. Both must give the same entries, in the same order, and
the same scores to the last bit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from fnmatch import translate
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.config.workspace import load_model
from leadflow.domain.definitions.scoring import SCORING_FILE, ScoringConfig, ScoringModel
from leadflow.domain.scoring import CAP_EPOCH, Activity, Ledger, LedgerEntry, ModelSet, score_activity
from leadflow.domain.scoring_compiled import DAY_SECONDS, compile_models
from leadflow.domain.scoring_decay import decayed_score
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = datetime(2026, 9, 1, tzinfo=UTC)
KINDS = ("page_viewed", "email_opened", "email_clicked", "download", "video_progress", "form_submitted", "custom")
URLS = ("https://x.com/", "https://x.com/pricing?a=1", "/pricing", "https://x.com/Careers/", "/blog/1", 7)
ASSETS = ("a", "b", "enterprise-guide", None)


# ---------------------------------------------------------------------------- the reference


def reference_matches(when: Any, attributes: Mapping[str, Any]) -> bool:
    """A rule's conditions, read straight from the config model."""
    for name in ("asset", "link_tag", "form_id", "campaign", "event"):
        pattern = getattr(when, name)
        if pattern is None:
            continue
        value = attributes.get(name)
        if value is None:
            return False
        if any(char in pattern for char in "*?["):
            if not re.match(translate(pattern), str(value), re.IGNORECASE):
                return False
        elif str(value).casefold() != pattern.casefold():
            return False
    if when.url_glob is not None:
        url = attributes.get("url")
        if not isinstance(url, str):
            return False
        if "://" not in when.url_glob:  # a path glob: compare the URL's path
            url = re.match(r"(?:[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)?([^?#]*)", url).group(1) or "/"  # type: ignore[union-attr]
        if not re.match(translate(when.url_glob.strip()), url, re.IGNORECASE):
            return False
    for name, attribute in (("min_video_percent", "percent"), ("min_seconds_on_page", "seconds")):
        minimum = getattr(when, name)
        if minimum is None:
            continue
        value = attributes.get(attribute)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return False
        try:
            number = float(value)
        except ValueError:
            return False
        if number < minimum:
            return False
    return True


def reference_window(at: datetime, period_days: int) -> int:
    seconds = period_days * DAY_SECONDS
    return int((at.timestamp() - CAP_EPOCH.timestamp()) // seconds)


def reference_score(
    models: Mapping[str, ScoringModel], activity: Activity, ledger: list[LedgerEntry]
) -> list[LedgerEntry]:
    """What ``activity`` earns in each model, in model order then rule order, against ``ledger``."""
    earned = []
    ids = {entry.entry_id for entry in ledger}
    for name, model in models.items():
        for rule in model.rules:
            if rule.activity.value != activity.type or not reference_matches(rule.when, activity.attributes):
                continue
            entry_id = f"{activity.activity_id}:{name}:{rule.id}"
            if entry_id in ids:
                continue
            cap_key = None
            if rule.cap and rule.cap.per is not None:
                value = activity.attributes.get(rule.cap.per)
                cap_key = "" if value is None else str(value)
            points = rule.points
            reason = f"{rule.label}: {rule.points:+d}"
            if rule.cap:
                window = reference_window(activity.at, rule.cap.period_days)
                spent = sum(
                    entry.points
                    for entry in ledger
                    if (entry.model, entry.rule_id, entry.cap_key) == (name, rule.id, cap_key)
                    and reference_window(entry.at, rule.cap.period_days) == window
                )
                room = rule.cap.max_points - abs(spent)
                if room <= 0:
                    continue
                if room < abs(points):
                    points = room * (1 if rule.points > 0 else -1)
                    reason = f"{rule.label}: {points:+d} (capped from {rule.points:+d})"
            earned.append(
                LedgerEntry(
                    entry_id, name, rule.id, activity.activity_id, activity.type, activity.at, points, reason, cap_key
                )
            )
    return earned


def reference_decayed(entries: list[LedgerEntry], name: str, half_life_days: float | None, now: datetime) -> float:
    own = [entry for entry in entries if entry.model == name]
    if half_life_days is None:
        return float(sum(entry.points for entry in own))
    total = 0.0
    for entry in own:
        age = (now - entry.at).total_seconds()
        total += entry.points if age <= 0 else entry.points * 0.5 ** (age / (half_life_days * DAY_SECONDS))
    return total


# ---------------------------------------------------------------------------- random inputs


@st.composite
def rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """One rule of any shape: conditions of every kind (some shared between models), caps, negative points."""
    when: dict[str, Any] = {}
    kind = draw(st.sampled_from(KINDS))
    if draw(st.booleans()):
        when["url_glob"] = draw(st.sampled_from(["/pricing*", "/careers*", "https://x.com/*", "*/blog/*"]))
    if draw(st.booleans()):
        when["asset"] = draw(st.sampled_from(["enterprise-*", "a", "B"]))
    # Conditions that only apply to one activity type (the config refuses them elsewhere).
    if kind == "video_progress" and draw(st.booleans()):
        when["min_video_percent"] = draw(st.sampled_from([25, 50, 100]))
    if kind == "page_viewed" and draw(st.booleans()):
        when["min_seconds_on_page"] = draw(st.sampled_from([10, 60]))
    if kind == "form_submitted" and draw(st.booleans()):
        when["form_id"] = draw(st.sampled_from(["demo-signup", "demo-*"]))
    if kind == "email_clicked" and draw(st.booleans()):
        when["link_tag"] = draw(st.sampled_from(["pricing", "Pricing"]))
    if kind == "custom" and draw(st.booleans()):
        when["event"] = "trial_started"
    points = draw(st.sampled_from([-50, -10, -3, 1, 2, 5, 10, 25]))
    rule: dict[str, Any] = {"id": f"r{index}", "activity": kind, "points": points, "description": f"rule {index}"}
    if when:
        rule["when"] = when
    if draw(st.booleans()):
        cap: dict[str, Any] = {
            "max_points": draw(st.sampled_from([1, 5, 10, 30])),
            "period_days": draw(st.sampled_from([1, 7, 30])),
        }
        if draw(st.booleans()):
            cap["per"] = draw(st.sampled_from(["asset", "url", "campaign"]))
        rule["cap"] = cap
    return rule


@st.composite
def configs(draw: st.DrawFn) -> ScoringConfig:
    models = {}
    for name in draw(st.lists(st.sampled_from(["smb", "key", "customer"]), min_size=1, max_size=3, unique=True)):
        count = draw(st.integers(1, 8))
        models[name] = {
            "half_life_days": draw(st.sampled_from([None, 7, 30])),
            "rules": [draw(rules(index)) for index in range(count)],
        }
    data = {"default_model": next(iter(models)), "models": models, "stages": {"mql": {"score_at_least": 100}}}
    return ScoringConfig.model_validate(data)


@st.composite
def histories(draw: st.DrawFn) -> list[Activity]:
    """Up to 40 activities of one lead over 60 days, out of time order, some delivered twice."""
    activities = []
    for index in range(draw(st.integers(0, 40))):
        attributes: dict[str, Any] = {}
        for name, values in (
            ("url", URLS),
            ("asset", ASSETS),
            ("percent", (25, 50, "75", True, 100)),
            ("seconds", (5, 61, "90")),
            ("form_id", ("demo-signup", "Demo-Signup", "other")),
            ("link_tag", ("pricing", "PRICING", "blog", None)),
            ("event", ("trial_started", "logged_in", None)),
        ):
            value = draw(st.sampled_from(values))
            if value is not None:
                attributes[name] = value
        at = START + timedelta(seconds=draw(st.integers(0, 60 * 86_400)))
        activities.append(Activity(f"act-{index}", "lead-1", draw(st.sampled_from(KINDS)), at, attributes))
    if activities and draw(st.booleans()):
        activities.append(draw(st.sampled_from(activities)))  # a redelivery
    return activities


# ---------------------------------------------------------------------------- the properties


@PROPERTY
@given(config=configs(), activities=histories())
def test_the_engine_scores_exactly_as_the_reference(config: ScoringConfig, activities: list[Activity]):
    # GIVEN random models and a random history, scored by the reference one activity at a time
    compiled = compile_models(config)
    model_set = ModelSet(compiled.values())
    expected: list[LedgerEntry] = []
    indexed, together, apart = Ledger(), Ledger(), Ledger()
    listed: list[LedgerEntry] = []
    for activity in activities:
        want = reference_score(config.models, activity, expected)
        expected.extend(want)

        # WHEN the engine scores it every way it can
        scored = model_set.score(activity, indexed)
        from_list = [e for model in compiled.values() for e in score_activity(model, activity, listed)]
        added_together = together.record_in(model_set, activity)
        added_apart = [entry for model in compiled.values() for entry in apart.record(model, activity)]
        indexed.add(scored)
        listed.extend(from_list)

        # THEN every way gives the reference's entries, in the reference's order
        assert scored == want
        assert from_list == want
        assert added_together == want
        assert added_apart == want

    # AND the ledgers and the decayed scores agree to the last bit
    for ledger in (indexed, together, apart):
        assert ledger.entries == expected
    now = START + timedelta(days=75)
    for name, model in compiled.items():
        want_score = reference_decayed(expected, name, model.half_life_days, now)
        assert decayed_score(together, model, now) == want_score
        assert decayed_score(listed, model, now) == want_score
        assert together.of_model(name) == [entry for entry in expected if entry.model == name]


def test_the_demo_models_score_the_demo_history_as_the_reference():
    # GIVEN the demo workspace's three models and a varied history of one lead
    config = load_model(WORKSPACE / SCORING_FILE, ScoringConfig)
    model_set = ModelSet(compile_models(config).values())
    kinds = ("page_viewed", "email_opened", "email_clicked", "download", "video_progress", "webinar_attended")
    pages = ("https://www.example.com/pricing", "/customers/acme", "/careers", "/security", "/add-ons/sms")
    activities = [
        Activity(
            f"act-{i}",
            "lead-1",
            kinds[i % len(kinds)],
            START + timedelta(hours=7 * i),
            {"url": pages[i % len(pages)], "seconds": 30 * (i % 4), "asset": f"asset-{i % 3}", "percent": 25 * (i % 5),
             "link_tag": "pricing" if i % 2 else "blog"},
        )
        for i in range(300)
    ]  # fmt: skip
    expected: list[LedgerEntry] = []
    ledger = Ledger()

    for activity in activities:
        # WHEN each activity is scored in every model
        want = reference_score(config.models, activity, expected)
        expected.extend(want)

        # THEN the engine gives what the reference gives
        assert ledger.record_in(model_set, activity) == want
    assert len(expected) > 300


def test_a_plain_list_with_an_entry_twice_scores_as_its_ledger():
    # GIVEN a history listed with one entry twice (a ledger never holds an id twice)
    config = load_model(WORKSPACE / SCORING_FILE, ScoringConfig)
    smb = compile_models(config)["smb"]
    first = Activity("a1", "lead-1", "email_opened", START, {})
    entries = score_activity(smb, first)

    # WHEN the next open is scored against the list and against the ledger
    second = Activity("a2", "lead-1", "email_opened", START + timedelta(hours=1), {})
    from_list = score_activity(smb, second, entries + entries)
    from_ledger = score_activity(smb, second, Ledger(entries))

    # THEN both count the first open once
    assert from_list == from_ledger
    assert from_list[0].points == 2
