"""Properties of the scoring engine that must hold for any history of activities.

- Without decay, the order activities arrive in does not change the score (caps count per
  fixed window, so even capped rules add up to the same total), nor does redelivery.
- A capped rule never gives more than its cap in one window, and never more than its points.
- With decay, a lead that does nothing (positive points only) never gains: the score is
  non-increasing over time; the running score equals the ledger sum.
- The fit grade depends on the profile alone.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.config.workspace import load_model
from leadflow.domain.definitions.scoring import SCORING_FILE, ScoringConfig
from leadflow.domain.grading import fit_grade
from leadflow.domain.scoring import CAP_EPOCH, Activity, Ledger, LedgerEntry, score_activity
from leadflow.domain.scoring_compiled import DAY_SECONDS, CompiledModel, compile_model, compile_models
from leadflow.domain.scoring_decay import RunningScore, decayed_score
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = datetime(2026, 9, 1, tzinfo=UTC)
DEMO = load_model(WORKSPACE / SCORING_FILE, ScoringConfig)
DEMO_MODELS = compile_models(DEMO)
# Rules of every shape: uncapped, capped per rule, capped per asset, capped with a remainder,
# negative capped and uncapped, overlapping rules on one activity type.
RULES: list[dict[str, Any]] = [
    {"id": "visit", "activity": "page_viewed", "points": 3, "cap": {"max_points": 10, "period_days": 7}},
    {"id": "pricing", "activity": "page_viewed", "points": 10, "when": {"url_glob": "/pricing*"}},
    {"id": "open", "activity": "email_opened", "points": 2, "cap": {"max_points": 10, "period_days": 7}},
    {
        "id": "download",
        "activity": "download",
        "points": 15,
        "cap": {"max_points": 15, "period_days": 365, "per": "asset"},
    },
    {"id": "big_download", "activity": "download", "points": 7, "cap": {"max_points": 20, "period_days": 30}},
    {"id": "bounce", "activity": "email_bounced", "points": -10, "cap": {"max_points": 25, "period_days": 30}},
    {"id": "unsubscribe", "activity": "unsubscribed", "points": -50},
    {
        "id": "video_half",
        "activity": "video_progress",
        "points": 10,
        "when": {"min_video_percent": 50},
        "cap": {"max_points": 10, "period_days": 90, "per": "asset"},
    },
]
POSITIVE_RULES = [rule for rule in RULES if rule["points"] > 0]


def compiled(rules: list[dict[str, Any]], half_life_days: float | None) -> CompiledModel:
    data = {
        "default_model": "m",
        "models": {"m": {"half_life_days": half_life_days, "rules": rules}},
        "stages": {"mql": {"score_at_least": 100}},
    }
    return compile_model("m", ScoringConfig.model_validate(data).models["m"])


NO_DECAY = compiled(RULES, None)
DECAYING = compiled(POSITIVE_RULES, 14)
CAPS = {rule["id"]: rule["cap"] for rule in RULES if "cap" in rule}


@st.composite
def activity_lists(draw: st.DrawFn, kinds: tuple[str, ...] | None = None) -> list[Activity]:
    """Up to 40 activities of one lead over 120 days, each with a distinct id."""
    kinds = kinds or (
        "page_viewed",
        "email_opened",
        "download",
        "email_bounced",
        "unsubscribed",
        "video_progress",
        "form_submitted",
        "webinar_attended",
    )
    count = draw(st.integers(min_value=0, max_value=40))
    activities = []
    for index in range(count):
        attributes = {
            "url": draw(st.sampled_from(["https://x.com/", "https://x.com/pricing?a=1", "/blog/1"])),
            "asset": draw(st.sampled_from(["a", "b", "c"])),
            "percent": draw(st.sampled_from([25, 50, 100])),
            "form_id": draw(st.sampled_from(["demo-signup", "newsletter"])),
        }
        at = START + timedelta(seconds=draw(st.integers(min_value=0, max_value=120 * 86_400)))
        activities.append(Activity(f"act-{index}", "lead-1", draw(st.sampled_from(kinds)), at, attributes))
    return activities


def score_all(scoring: CompiledModel, activities: list[Activity]) -> list[LedgerEntry]:
    ledger: list[LedgerEntry] = []
    for activity in activities:
        ledger.extend(score_activity(scoring, activity, ledger))
    return ledger


def window_sums(entries: list[LedgerEntry], caps: dict[str, dict[str, Any]]) -> dict[tuple[Any, ...], int]:
    """Points per (model, rule, cap key, cap window); uncapped rules per activity."""
    sums: dict[tuple[Any, ...], int] = defaultdict(int)
    for entry in entries:
        cap = caps.get(entry.rule_id)
        if cap is None:
            key: tuple[Any, ...] = (entry.model, entry.rule_id, entry.activity_id)
        else:
            window = int((entry.at - CAP_EPOCH).total_seconds() // (cap["period_days"] * DAY_SECONDS))
            key = (entry.model, entry.rule_id, entry.cap_key, window)
        sums[key] += entry.points
    return dict(sums)


@PROPERTY
@given(activities=activity_lists(), order=st.randoms(use_true_random=False))
def test_without_decay_the_order_of_activities_does_not_change_the_score(activities: list[Activity], order: Any):
    # GIVEN a lead's activities and the same activities in another order
    shuffled = list(activities)
    order.shuffle(shuffled)

    # WHEN both are scored by a model without decay
    in_order, reordered = score_all(NO_DECAY, activities), score_all(NO_DECAY, shuffled)

    # THEN the score is the same, and so are the points of every rule in every cap window
    assert decayed_score(in_order, NO_DECAY, START) == decayed_score(reordered, NO_DECAY, START)
    assert window_sums(in_order, CAPS) == window_sums(reordered, CAPS)


@PROPERTY
@given(activities=activity_lists(), order=st.randoms(use_true_random=False))
def test_the_demo_models_points_per_window_do_not_depend_on_arrival_order(activities: list[Activity], order: Any):
    # GIVEN the shipped models and a lead's activities in two orders
    shuffled = list(activities)
    order.shuffle(shuffled)
    caps = {
        f"{name}:{rule.id}": {"period_days": rule.cap.period_days}
        for name, model in DEMO.models.items()
        for rule in model.rules
        if rule.cap
    }

    # WHEN both are scored in every model
    ledgers = []
    for sequence in (activities, shuffled):
        ledger = Ledger()
        for activity in sequence:
            for scoring in DEMO_MODELS.values():
                ledger.record(scoring, activity)
        ledgers.append(ledger.entries)

    # THEN every rule gives the same points in every cap window (with decay the score itself may
    # differ a little: which activity of a window got the capped remainder decides how old it is)
    renamed = [
        [LedgerEntry(**{**entry.as_item(), "at": entry.at, "rule_id": f"{entry.model}:{entry.rule_id}"}) for entry in e]
        for e in ledgers
    ]
    assert window_sums(renamed[0], caps) == window_sums(renamed[1], caps)


@PROPERTY
@given(activities=activity_lists())
def test_caps_hold_in_every_window(activities: list[Activity]):
    # GIVEN any history, scored in arrival order
    entries = score_all(NO_DECAY, activities)
    points = {rule["id"]: rule["points"] for rule in RULES}

    # THEN no capped rule gives more than its cap in one window (or takes more, for negative points)
    for (_, rule_id, *_), total in window_sums(entries, CAPS).items():
        cap = CAPS.get(rule_id)
        if cap is not None:
            assert abs(total) <= cap["max_points"]
    # AND no entry is larger than its rule's points, or of the other sign
    for entry in entries:
        assert entry.points != 0
        assert 0 < entry.points / points[entry.rule_id] <= 1


@PROPERTY
@given(activities=activity_lists())
def test_caps_hold_in_the_demo_models_too(activities: list[Activity]):
    # GIVEN any history scored in every demo model through one ledger
    ledger = Ledger()
    for activity in activities:
        for scoring in DEMO_MODELS.values():
            ledger.record(scoring, activity)

    # THEN every capped rule stays within its cap in every window
    for name, model in DEMO.models.items():
        caps = {
            rule.id: {"period_days": rule.cap.period_days, "max": rule.cap.max_points}
            for rule in model.rules
            if rule.cap
        }
        own = [entry for entry in ledger if entry.model == name]
        for (_, rule_id, *_), total in window_sums(own, caps).items():
            if rule_id in caps:
                assert abs(total) <= caps[rule_id]["max"]


@PROPERTY
@given(activities=activity_lists(), copies=st.lists(st.integers(min_value=0, max_value=39), max_size=20))
def test_redelivered_activities_add_nothing(activities: list[Activity], copies: list[int]):
    # GIVEN a history in which some activities are delivered again later
    redelivered = activities + [activities[i] for i in copies if i < len(activities)]

    # WHEN both are scored, through a list and through a Ledger
    once = score_all(NO_DECAY, activities)
    indexed = Ledger()
    for activity in redelivered:
        indexed.record(NO_DECAY, activity)

    # THEN redelivery changes nothing, and the Ledger agrees with the list entry for entry
    assert score_all(NO_DECAY, redelivered) == once
    assert indexed.entries == once


@PROPERTY
@given(
    activities=activity_lists(("page_viewed", "email_opened", "download", "video_progress")),
    days=st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), min_size=2, max_size=6),
)
def test_a_quiet_leads_score_never_rises(activities: list[Activity], days: list[float]):
    # GIVEN a history of positive points in a decaying model
    entries = score_all(DECAYING, activities)
    last = max((activity.at for activity in activities), default=START)

    # WHEN the score is read at later and later times after the last activity
    scores = [decayed_score(entries, DECAYING, last + timedelta(days=d)) for d in sorted(days)]

    # THEN it never goes up, never below 0, and never above the undecayed sum
    undecayed = sum(entry.points for entry in entries)
    assert all(later <= earlier + 1e-9 for earlier, later in pairwise(scores))
    assert all(0 <= score <= undecayed + 1e-9 for score in scores)


@PROPERTY
@given(activities=activity_lists(), order=st.randoms(use_true_random=False), extra_days=st.integers(0, 365))
def test_a_running_score_equals_the_ledger_in_any_order(activities: list[Activity], order: Any, extra_days: int):
    # GIVEN a history in a decaying model, with its entries added to a running score in any order
    scoring = DEMO_MODELS["smb"]
    entries = score_all(scoring, activities)
    shuffled = list(entries)
    order.shuffle(shuffled)
    running = RunningScore()
    for entry in shuffled:
        running = running.plus([entry], scoring)

    # WHEN both are read after the last activity
    now = max((entry.at for entry in entries), default=START) + timedelta(days=extra_days)

    # THEN they agree
    assert running.value_at(now, scoring) == pytest.approx(decayed_score(entries, scoring, now), rel=1e-9, abs=1e-9)


PROFILES = st.fixed_dictionaries(
    {},
    optional={
        "title": st.one_of(
            st.sampled_from(["CEO", "VP Sales", "Marketing Manager", "Student", "Head of IT", "Director"]), st.text()
        ),
        "cf_company_size": st.sampled_from(["1-10", "11-50", "51-200", "201-1000", "1000+", ""]),
        "country": st.one_of(st.sampled_from(["DE", "US", "BR", "NO"]), st.none()),
        "cf_industry": st.one_of(st.sampled_from(["SaaS", "retail"]), st.integers(), st.floats()),
        "email_domain": st.sampled_from(["gmail.com", "acme.com", "GMX.de", ""]),
        "email": st.emails(),
    },
)


@PROPERTY
@given(profile=PROFILES, order=st.randoms(use_true_random=False))
def test_the_grade_depends_on_the_profile_alone(profile: dict[str, Any], order: Any):
    # GIVEN a profile, and the same profile with its fields in another order
    items = list(profile.items())
    order.shuffle(items)

    # WHEN both are graded (twice)
    first, again, reordered = (
        fit_grade(profile, DEMO.grade),
        fit_grade(profile, DEMO.grade),
        fit_grade(dict(items), DEMO.grade),
    )

    # THEN the grade is the same, and its letter is the best one its points reach
    assert first == again == reordered
    reached = [letter for letter, minimum in DEMO.grade.thresholds.items() if first.points >= minimum]
    assert first.letter == (min(reached) if reached else "F")
    assert first.points == sum(reason.points for reason in first.reasons)


# ---------------------------------------------------------------------------- lead.scored on the ledger item
_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


@PROPERTY
@given(
    rules=st.lists(_NAMES, min_size=1, max_size=6),
    points=st.lists(st.integers(-100, 100), min_size=1, max_size=6),
    scores=st.dictionaries(_NAMES, st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 2)), max_size=4),
    grade=st.sampled_from(["A", "B", "C", "D", "F"]),
    nurture=st.booleans(),
)
def test_a_ledger_item_gives_back_the_lead_scored_event_it_carries(
    rules: list[str], points: list[int], scores: dict[str, float], grade: str, nurture: bool
):
    from leadflow.domain.events import lead_scored, scored_from_ledger, scored_on_ledger

    # GIVEN a scored activity's new entries (one per model and rule) and the event they earned
    entries = [
        {"entry_id": f"act:{rule}", "rule_id": rule, "activity_id": "01KACT", "points": n}
        for rule, n in zip(rules, points, strict=False)
    ]
    event = lead_scored("01KEVT", "2026-12-05T10:00:00+00:00", "01KLEAD", "01KACT", entries, scores, grade, nurture)
    # THEN the entries and what the item carries rebuild exactly that event
    rebuilt = scored_from_ledger("01KLEAD", "01KACT", entries, scored_on_ledger(event))
    assert rebuilt.envelope() == event.envelope()
    assert (rebuilt.source, rebuilt.detail_type) == (event.source, event.detail_type)


_IDS = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=12)


@PROPERTY
@given(
    activities=st.lists(_IDS, min_size=1, max_size=3),
    rules=st.lists(st.tuples(_NAMES, _NAMES, st.integers(-50, 50)), min_size=1, max_size=6, unique_by=lambda r: r[:2]),
    capped=st.booleans(),
)
def test_a_ledger_item_reads_back_the_entries_it_was_written_with(
    activities: list[str], rules: list[tuple[str, str, int]], capped: bool
):
    from leadflow.adapters.dynamo_scoring import ITEM_SK, compact_entries, ledger_entries

    # GIVEN entries (as LedgerEntry.as_item makes them) of one activity or of several
    entries = [
        {
            "entry_id": f"{activities[i % len(activities)]}:{model}:{rule}",
            "model": model,
            "rule_id": rule,
            "activity_id": activities[i % len(activities)],
            "activity_type": "email_clicked",
            "at": f"2026-12-05T10:00:0{i % len(activities)}+00:00",
            "points": points,
            "reason": f"{rule} (+{points})",
            **({"cap_key": "guide.pdf"} if capped else {}),
        }
        for i, (model, rule, points) in enumerate(rules)
    ]
    # WHEN they are written as one item and read back
    item = {"PK": "LEAD#L", "SK": "LEDGER#x", **compact_entries(entries)}
    read = [{k: v for k, v in e.items() if k != ITEM_SK} for e in ledger_entries([item])]
    # THEN every entry reads back as it was, whichever way the item kept them
    order = sorted(entries, key=lambda e: (e["at"], e["entry_id"]))
    assert read == order
    # AND one activity's entries keep its id, type and time once
    assert ("activity_id" in item) == _one_activity(entries)


def _one_activity(entries: list[dict[str, Any]]) -> bool:
    return len({(e["activity_id"], e["at"]) for e in entries}) == 1
