"""The scoring engine: which rules match, caps, decay, the ledger's explanations, grade, stage, accounts."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.config.workspace import load_model
from leadflow.domain.accounts import LeadScoreSummary, account_score, department_of, roll_up_accounts
from leadflow.domain.definitions.scoring import SCORING_FILE, AccountRules, ScoringConfig, StageRules
from leadflow.domain.grading import fit_grade, grade_at_least, next_stage
from leadflow.domain.scoring import CAP_EPOCH, Activity, Ledger, LedgerEntry, score_activity
from leadflow.domain.scoring_compiled import CompiledModel, compile_model, compile_models
from leadflow.domain.scoring_decay import RunningScore, decayed_entries, decayed_score, decays_below_at, explain
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

# A Wednesday: the cap week (Monday to Sunday UTC) it falls in began on Monday 2026-11-02.
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
DEMO = load_model(WORKSPACE / SCORING_FILE, ScoringConfig)
DEMO_MODELS = compile_models(DEMO)
SMB = DEMO_MODELS["smb"]


def model(*rules: dict[str, Any], half_life_days: float | None = None, name: str = "test") -> CompiledModel:
    """A compiled model with these rules (validated as scoring.yaml would be)."""
    data = {
        "default_model": name,
        "models": {name: {"half_life_days": half_life_days, "rules": list(rules)}},
        "stages": {"mql": {"score_at_least": 100}},
    }
    return compile_model(name, ScoringConfig.model_validate(data).models[name])


def rule(rule_id: str, activity: str, points: int, **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "activity": activity, "points": points, **extra}


_counter = iter(range(1_000_000))


def act(kind: str, at: datetime = NOW, lead: str = "lead-1", activity_id: str | None = None, **attributes: Any):
    return Activity(activity_id or f"act-{next(_counter)}", lead, kind, at, attributes)


def run(scoring: CompiledModel, activities: list[Activity]) -> list[LedgerEntry]:
    """Score activities one after the other against the growing ledger (as a plain list)."""
    ledger: list[LedgerEntry] = []
    for activity in activities:
        ledger.extend(score_activity(scoring, activity, ledger))
    return ledger


def rules_of(entries: list[LedgerEntry]) -> list[str]:
    return sorted(entry.rule_id for entry in entries)


# ---------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("url", "matched"),
    [
        ("https://www.example.com/pricing", True),
        ("https://www.example.com/pricing/enterprise?utm_source=ads#plans", True),
        ("https://www.example.com/PRICING", True),
        ("/pricing", True),
        ("https://www.example.com/blog/pricing-models", False),
        ("https://www.example.com/?next=/pricing", False),
        ("https://www.example.com", False),
    ],
)
def test_a_path_glob_matches_the_urls_path_alone(url: str, matched: bool):
    # GIVEN the demo's pricing page rule (url_glob: /pricing*)
    # WHEN a page view of the URL is scored
    entries = score_activity(SMB, act("page_viewed", url=url))

    # THEN the pricing rule applies exactly when the path starts with /pricing
    assert ("pricing_page" in rules_of(entries)) is matched


def test_a_glob_with_a_scheme_matches_the_whole_url():
    # GIVEN a rule on one site's pages only
    scoring = model(rule("docs", "page_viewed", 3, when={"url_glob": "https://docs.example.com/*"}))

    # WHEN pages of that site and of another are viewed
    on_site = score_activity(scoring, act("page_viewed", url="https://docs.example.com/start?x=1"))
    elsewhere = score_activity(scoring, act("page_viewed", url="https://www.example.com/docs.example.com/"))

    # THEN only the docs site scores
    assert [e.points for e in on_site] == [3] and elsewhere == []


def test_every_matching_rule_of_a_model_applies():
    # GIVEN the demo smb model: any form +20, the demo form +30 more
    # WHEN the demo form is submitted
    entries = score_activity(SMB, act("form_submitted", form_id="demo-signup"))

    # THEN both rules score, each with its own entry
    assert {e.rule_id: e.points for e in entries} == {"form_submitted": 20, "demo_requested": 30}


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(25, []), (50, ["video_half"]), (75, ["video_half"]), (100, ["video_complete", "video_half"]), ("100", None)],
)
def test_video_rules_score_by_the_share_watched(percent: Any, expected: list[str] | None):
    # GIVEN the demo's video rules (50%: +10, 100%: +20)
    # WHEN progress on a video is reported
    entries = score_activity(SMB, act("video_progress", asset="demo-video", percent=percent))

    # THEN the rules whose share is reached score (a numeric text counts as its number)
    assert rules_of(entries) == (expected if expected is not None else ["video_complete", "video_half"])


@pytest.mark.parametrize(
    ("when", "attributes", "matched"),
    [
        ({"asset": "enterprise-*"}, {"asset": "Enterprise-Security-Guide"}, True),
        ({"asset": "enterprise-*"}, {"asset": "smb-guide"}, False),
        ({"asset": "enterprise-*"}, {}, False),
        ({"campaign": "black-friday"}, {"campaign": "Black-Friday"}, True),
        ({"campaign": "black-friday"}, {"campaign": "black-friday-2"}, False),
        ({"campaign": "q4-*", "asset": "guide"}, {"campaign": "q4-nurture", "asset": "guide"}, True),
        ({"campaign": "q4-*", "asset": "guide"}, {"campaign": "q4-nurture", "asset": "other"}, False),
    ],
)
def test_text_conditions_are_values_or_globs_compared_case_insensitively(
    when: dict[str, str], attributes: dict[str, Any], matched: bool
):
    # GIVEN a download rule with conditions
    scoring = model(rule("r", "download", 7, when=when))

    # WHEN a download with these attributes is scored
    entries = score_activity(scoring, act("download", **attributes))

    # THEN the rule applies when every condition holds
    assert bool(entries) is matched


def test_time_on_page_and_custom_events_are_conditions_too():
    # GIVEN the demo's case study (60 s or more) and trial rules
    # WHEN a case study is skimmed, then read, and a trial started
    skimmed = score_activity(SMB, act("page_viewed", url="https://x.com/customers/acme", seconds=10))
    read = score_activity(SMB, act("page_viewed", url="https://x.com/customers/acme", seconds=90))
    trial = score_activity(SMB, act("custom", event="trial_started"))
    other = score_activity(SMB, act("custom", event="logged_in"))

    # THEN only what meets the conditions scores
    assert "read_case_study" not in rules_of(skimmed) and "read_case_study" in rules_of(read)
    assert rules_of(trial) == ["trial_started"] and other == []


def test_an_activity_type_without_rules_scores_nothing():
    # GIVEN a model that scores only downloads
    scoring = model(rule("download", "download", 5))

    # WHEN other activities (one of a type no release knows yet) are scored
    # THEN they earn nothing
    assert score_activity(scoring, act("page_viewed")) == []
    assert score_activity(scoring, act("sms_replied")) == []


def test_an_entry_says_which_rule_activity_and_time_it_comes_from():
    # GIVEN the demo smb model
    activity = act("download", activity_id="act-9", asset="pricing-guide")

    # WHEN a download is scored
    (entry,) = score_activity(SMB, activity)

    # THEN the entry names everything a rep needs to see why
    assert entry == LedgerEntry(
        entry_id="act-9:smb:download",
        model="smb",
        rule_id="download",
        activity_id="act-9",
        activity_type="download",
        at=NOW,
        points=15,
        reason="Downloaded content: +15",
        cap_key="pricing-guide",
    )


# ---------------------------------------------------------------------------- caps


def test_email_opens_stop_scoring_at_the_weekly_cap():
    # GIVEN the demo's email open rule (+2, at most 10 per 7 days)
    opens = [act("email_opened", NOW + timedelta(hours=i)) for i in range(8)]

    # WHEN a lead opens eight emails in one week
    entries = run(SMB, opens)

    # THEN the first five score and the rest do not
    assert [e.points for e in entries] == [2, 2, 2, 2, 2]


def test_a_cap_gives_what_is_left_and_says_so():
    # GIVEN a rule of +3 capped at 10 per week
    scoring = model(rule("visit", "page_viewed", 3, cap={"max_points": 10, "period_days": 7}))

    # WHEN five pages are viewed in one week
    entries = run(scoring, [act("page_viewed", NOW + timedelta(minutes=i)) for i in range(5)])

    # THEN the fourth gets the 1 point left, the fifth none, and the ledger says the cap cut it
    assert [e.points for e in entries] == [3, 3, 3, 1]
    assert entries[-1].reason == "visit: +1 (capped from +3)"


def test_a_cap_starts_again_in_the_next_window():
    # GIVEN the demo email open rule and a lead who maxed it out on Sunday
    sunday = datetime(2026, 11, 8, 20, 0, tzinfo=UTC)
    ledger = run(SMB, [act("email_opened", sunday) for _ in range(5)])

    # WHEN the lead opens an email on Monday, and another late on Sunday
    monday = score_activity(SMB, act("email_opened", sunday + timedelta(hours=5)), ledger)
    same_week = score_activity(SMB, act("email_opened", sunday + timedelta(hours=3)), ledger)

    # THEN Monday starts a new week (windows run Monday to Sunday UTC); Sunday is still capped
    assert [e.points for e in monday] == [2] and same_week == []
    assert CAP_EPOCH.weekday() == 0


def test_a_cap_per_asset_counts_each_asset_apart():
    # GIVEN the demo download rule (+15 once a year per asset)
    downloads = [act("download", asset=asset) for asset in ("guide-a", "guide-a", "guide-b", "guide-a")]

    # WHEN a lead downloads guide A three times and guide B once
    entries = run(SMB, downloads)

    # THEN each asset scores once
    assert [(e.cap_key, e.points) for e in entries] == [("guide-a", 15), ("guide-b", 15)]


def test_video_milestones_of_one_video_score_once_each():
    # GIVEN the demo video rules (per asset)
    progress = [act("video_progress", asset="v1", percent=p) for p in (25, 50, 75, 100, 100)]

    # WHEN a lead watches one video to the end (and the player reports 100% twice)
    entries = run(SMB, progress)

    # THEN half and full are each scored once: 10 + 20
    assert sorted((e.rule_id, e.points) for e in entries) == [("video_complete", 20), ("video_half", 10)]


def test_negative_points_are_uncapped_unless_configured():
    # GIVEN the demo rules: unsubscribe -50 (no cap), bounce -10 (at most 30 taken per 30 days)
    unsubscribes = [act("unsubscribed", NOW + timedelta(minutes=i)) for i in range(3)]
    bounces = [act("email_bounced", NOW + timedelta(minutes=i)) for i in range(5)]

    # WHEN they happen repeatedly
    # THEN every unsubscribe counts, and bounces stop taking points at the cap
    assert [e.points for e in run(SMB, unsubscribes)] == [-50, -50, -50]
    assert [e.points for e in run(SMB, bounces)] == [-10, -10, -10]


def test_a_negative_cap_gives_the_remainder_too():
    # GIVEN a rule of -7 capped at 10 points taken per week
    scoring = model(rule("bounce", "email_bounced", -7, cap={"max_points": 10, "period_days": 7}))

    # WHEN three bounces happen
    entries = run(scoring, [act("email_bounced") for _ in range(3)])

    # THEN the second takes only what is left
    assert [e.points for e in entries] == [-7, -3]


def test_entries_of_other_models_do_not_use_up_a_cap():
    # GIVEN a lead whose key_account ledger has maxed out email opens (5 per week)
    key_account = DEMO_MODELS["key_account"]
    ledger = run(key_account, [act("email_opened") for _ in range(5)])

    # WHEN an open is scored in smb against the same ledger
    entries = score_activity(SMB, act("email_opened"), ledger)

    # THEN smb's own cap is untouched
    assert [e.points for e in entries] == [2]


# ---------------------------------------------------------------------------- once per activity, and the Ledger


def test_an_activity_delivered_twice_scores_once():
    # GIVEN a lead's ledger after a demo request
    request = act("form_submitted", form_id="demo-signup")
    ledger = run(SMB, [request])

    # WHEN the same activity is scored again (an at-least-once queue redelivered it)
    again = score_activity(SMB, request, ledger)
    again_indexed = score_activity(SMB, request, Ledger(ledger))

    # THEN it adds nothing
    assert again == [] and again_indexed == []


def test_a_ledger_scores_like_a_plain_list():
    # GIVEN a mixed history
    activities = [act("email_opened", NOW + timedelta(hours=i), campaign="nov") for i in range(7)] + [
        act("page_viewed", NOW + timedelta(days=1, minutes=i), url="https://x.com/pricing") for i in range(5)
    ]

    # WHEN it is scored once against a list and once through a Ledger
    ledger = Ledger()
    for activity in activities:
        ledger.record(SMB, activity)

    # THEN both give the same entries
    assert ledger.entries == run(SMB, activities)
    assert len(ledger) == len(list(ledger))


def test_a_ledger_keeps_an_entry_once():
    # GIVEN a ledger with one entry
    (entry,) = score_activity(SMB, act("download", asset="a"))
    ledger = Ledger([entry])

    # WHEN the same entry is added again
    added = ledger.add([entry])

    # THEN it is not added twice
    assert added == [] and ledger.entries == [entry]


def test_a_ledger_answers_caps_for_entries_added_after_its_first_question():
    # GIVEN a ledger that was asked about the open cap, then got more opens from elsewhere
    ledger = Ledger()
    ledger.record(SMB, act("email_opened"))
    ledger.add(run(SMB, [act("email_opened") for _ in range(4)]))

    # WHEN another open is scored
    # THEN the cap counts them all (5 opens x 2 = 10: nothing left)
    assert ledger.record(SMB, act("email_opened")) == []


def test_ledger_entries_round_trip_as_items():
    # GIVEN entries with and without a cap key
    entries = score_activity(SMB, act("video_progress", asset="v", percent=100)) + score_activity(
        SMB, act("unsubscribed")
    )

    # WHEN they are stored as items and read back
    # THEN they are the same
    assert [LedgerEntry.from_item(entry.as_item()) for entry in entries] == entries
    assert "cap_key" not in entries[-1].as_item()


# ---------------------------------------------------------------------------- activities from records


def test_an_activity_record_from_form_capture_reads_as_an_activity():
    # GIVEN the activity item form capture writes (see leadflow.domain.leads)
    record = {
        "activity_id": "a-1",
        "lead_id": "l-1",
        "type": "form_submitted",
        "at": "2026-11-04T12:00:00+00:00",
        "form_id": "demo-signup",
        "touch": {"utm_campaign": "black-friday", "page_url": "https://www.example.com/demo?x=1"},
    }

    # WHEN it is read as an activity
    activity = Activity.from_record(record)

    # THEN its attribution fills the campaign and URL conditions can look at
    assert (activity.type, activity.at, activity.attributes["form_id"]) == ("form_submitted", NOW, "demo-signup")
    assert activity.attributes["campaign"] == "black-friday"
    assert activity.attributes["url"] == "https://www.example.com/demo?x=1"


def test_an_activity_needs_a_time_zone():
    # GIVEN a time without a time zone (it would be read as the machine's local time)
    # WHEN an activity is made with it
    # THEN it is refused
    with pytest.raises(ValueError, match="timezone-aware"):
        Activity("a", "l", "download", datetime(2026, 11, 4, 12, 0))


# ---------------------------------------------------------------------------- decay


def test_points_halve_every_half_life():
    # GIVEN 100 points earned 30 and 60 days ago in a model with a 30-day half-life
    scoring = model(rule("demo", "form_submitted", 100), half_life_days=30)
    month_ago = run(scoring, [act("form_submitted", NOW - timedelta(days=30))])
    two_months_ago = run(scoring, [act("form_submitted", NOW - timedelta(days=60))])

    # WHEN the scores are read now
    # THEN they are worth half and a quarter
    assert decayed_score(month_ago, scoring, NOW) == pytest.approx(50)
    assert decayed_score(two_months_ago, scoring, NOW) == pytest.approx(25)
    assert decayed_score(month_ago, scoring, NOW - timedelta(days=15)) == pytest.approx(100 / math.sqrt(2))


def test_without_a_half_life_points_never_fade():
    # GIVEN a model without decay and points from a year ago
    scoring = model(rule("demo", "form_submitted", 40), rule("bounce", "email_bounced", -5))
    entries = run(scoring, [act("form_submitted", NOW - timedelta(days=365)), act("email_bounced", NOW)])

    # WHEN the score is read
    # THEN it is the plain sum
    assert decayed_score(entries, scoring, NOW) == 35


def test_points_dated_after_now_count_in_full():
    # GIVEN an entry timestamped a minute ahead (a sender's clock runs fast)
    entries = run(SMB, [act("download", NOW + timedelta(minutes=1), asset="a")])

    # WHEN the score is read now
    # THEN it is not inflated above its points
    assert decayed_score(entries, SMB, NOW) == 15


def test_the_score_counts_only_its_own_models_entries():
    # GIVEN a ledger scored in every demo model
    ledger = Ledger()
    for scoring in DEMO_MODELS.values():
        ledger.record(scoring, act("webinar_attended", activity_id="w-1", asset="intro"))

    # WHEN each model's score is read
    scores = {name: decayed_score(ledger, scoring, NOW) for name, scoring in DEMO_MODELS.items()}

    # THEN each has its own points
    assert scores == {"smb": 25, "key_account": 30, "customer": 10}


def test_every_entry_shows_the_decay_applied():
    # GIVEN a download 30 days ago and a pricing view now
    entries = run(
        SMB,
        [act("download", NOW - timedelta(days=30), asset="a"), act("page_viewed", NOW, url="https://x.com/pricing")],
    )

    # WHEN the ledger is read at now
    lines = decayed_entries(entries, SMB, NOW)

    # THEN each entry has its age, factor and value, newest first
    assert [(line.entry.rule_id, line.age_days, line.factor) for line in lines][-1] == ("download", 30, 0.5)
    assert lines[-1].value == pytest.approx(7.5)
    assert {line.entry.rule_id for line in lines[:2]} == {"page_viewed", "pricing_page"}
    assert sum(line.value for line in lines) == pytest.approx(decayed_score(entries, SMB, NOW))


def test_top_reasons_group_by_rule_and_rank_by_weight():
    # GIVEN a lead who viewed pricing three times, downloaded once long ago and unsubscribed
    entries = run(
        SMB,
        [
            *(act("page_viewed", NOW - timedelta(days=i), url="https://x.com/pricing") for i in range(3)),
            act("download", NOW - timedelta(days=90), asset="a"),
            act("unsubscribed", NOW - timedelta(days=1)),
        ],
    )

    # WHEN the top reasons are asked for
    reasons = explain(entries, SMB, NOW, top=3)

    # THEN the heaviest come first, gains and losses alike, with counts and labels
    assert [reason.rule_id for reason in reasons] == ["unsubscribed", "pricing_page", "page_viewed"]
    pricing = reasons[1]
    assert (pricing.description, pricing.activities, pricing.points) == ("Viewed the pricing page", 3, 30)
    assert pricing.value == pytest.approx(sum(10 * 0.5 ** (i / 30) for i in range(3)))
    assert pricing.last_at == NOW
    assert explain(entries, SMB, NOW, top=0) == []


def test_a_running_score_equals_the_ledger_sum():
    # GIVEN entries earned over two months, added to a running score out of order
    entries = run(
        SMB,
        [
            act("download", NOW - timedelta(days=40), asset="a"),
            act("form_submitted", NOW - timedelta(days=10), form_id="demo-signup"),
            act("email_bounced", NOW - timedelta(days=20)),
        ],
    )
    running = RunningScore().plus(entries[2:], SMB).plus(entries[:2], SMB)

    # WHEN it is read later
    # THEN it is what the ledger gives
    later = NOW + timedelta(days=7)
    assert running.value_at(later, SMB) == pytest.approx(decayed_score(entries, SMB, later))
    assert running.as_of == NOW - timedelta(days=10)


def test_when_a_quiet_lead_fades_below_a_threshold():
    # GIVEN a score of 200 now in a model with a 30-day half-life
    # WHEN is it below 100? below 50? (and when it already is, or never will be)
    # THEN after one and two half-lives; at once; never without decay or for 0
    assert decays_below_at(200, NOW, 100, SMB) == NOW + timedelta(days=30)
    assert decays_below_at(200, NOW, 50, SMB) == NOW + timedelta(days=60)
    assert decays_below_at(80, NOW, 100, SMB) == NOW
    assert decays_below_at(200, NOW, 100, model(rule("r", "download", 1))) is None
    assert decays_below_at(200, NOW, 0, SMB) is None


# ---------------------------------------------------------------------------- fit grade


@pytest.mark.parametrize(
    ("profile", "letter", "points"),
    [
        pytest.param(
            {"title": "VP Marketing", "cf_company_size": "201-1000", "country": "DE", "email_domain": "acme.de"},
            "A",
            80,
            id="vp-mid-market-de",
        ),
        pytest.param(
            {"title": "Marketing Manager", "cf_company_size": "51-200", "country": "GB", "email": "jo@acme.co.uk"},
            "B",
            65,
            id="manager-mid-market",
        ),
        pytest.param(
            {"title": "Founder", "cf_company_size": "1-10", "email_domain": "gmail.com"}, "D", 20, id="founder-gmail"
        ),
        pytest.param({"title": "Student", "email_domain": "gmail.com", "country": "BR"}, "F", -40, id="student"),
        pytest.param({}, "E", 0, id="nothing-known"),
    ],
)
def test_the_demo_grade_rules_tell_fit_apart(profile: dict[str, Any], letter: str, points: int):
    # GIVEN the demo grade rules
    # WHEN a profile is graded
    grade = fit_grade(profile, DEMO.grade)

    # THEN it gets the points of its matching rules and the letter they reach
    assert (grade.letter, grade.points) == (letter, points)
    assert sum(reason.points for reason in grade.reasons) == grade.points


def test_only_the_first_matching_rule_of_a_group_counts():
    # GIVEN a title that matches both the c-level and the director rule
    # WHEN it is graded
    grade = fit_grade({"title": "CEO and Director", "email_domain": "acme.com"}, DEMO.grade)

    # THEN seniority counts once, at its highest level
    assert [reason.rule_id for reason in grade.reasons] == ["c_level", "company_email"]
    assert grade.reasons[0].description == "C-level or owner"


def test_grade_rules_compare_numbers_and_texts_loosely():
    # GIVEN rules on a numeric and a text field
    scoring = ScoringConfig.model_validate(
        {
            "default_model": "m",
            "models": {"m": {"rules": [rule("r", "download", 1)]}},
            "stages": {"mql": {"score_at_least": 1}},
            "grade": {
                "rules": [
                    {"id": "mid", "field": "cf_employees", "at_least": 50, "below": 1000, "points": 30},
                    {"id": "industry", "field": "cf_industry", "one_of": [" SaaS "], "points": 20},
                    {"id": "size", "field": "cf_seats", "equals": "25", "points": 10},
                ],
                "thresholds": {"A": 60, "C": 30},
            },
        }
    ).grade

    # WHEN profiles with numbers (as form numbers are stored: floats) and texts are graded
    # THEN ranges include their lower bound only, texts ignore case and spaces, 25.0 equals "25"
    assert fit_grade({"cf_employees": 50.0, "cf_industry": "saas", "cf_seats": 25.0}, scoring).letter == "A"
    assert fit_grade({"cf_employees": "999", "cf_industry": "retail"}, scoring).letter == "C"
    assert fit_grade({"cf_employees": 1000, "cf_industry": ""}, scoring).letter == "F"
    assert fit_grade({"cf_employees": "many", "cf_seats": True}, scoring).points == 0


@pytest.mark.parametrize(
    ("grade", "minimum", "passes"),
    [("A", "B", True), ("B", "B", True), ("C", "B", False), (None, "B", False), (None, None, True), ("F", "F", True)],
)
def test_grade_at_least_ranks_a_highest(grade: str | None, minimum: str | None, passes: bool):
    assert grade_at_least(grade, minimum) is passes


# ---------------------------------------------------------------------------- lifecycle stage

STAGES = DEMO.stages  # MQL at 100 with grade B or better; recycled below 80


@pytest.mark.parametrize(
    ("current", "score", "grade", "expected"),
    [
        pytest.param("lead", 100, "B", "mql", id="lead-hot-and-fit"),
        pytest.param("subscriber", 150, "A", "mql", id="subscriber-hot"),
        pytest.param("recycled", 120, "B", "mql", id="recycled-hot-again"),
        pytest.param("lead", 99.9, "A", None, id="lead-not-hot-enough"),
        pytest.param("lead", 500, "C", None, id="lead-hot-but-unfit"),
        pytest.param("lead", 500, None, None, id="lead-grade-unknown"),
        pytest.param("mql", 79.9, "A", "recycled", id="mql-went-quiet"),
        pytest.param("mql", 85, "A", None, id="mql-in-the-band"),
        pytest.param("mql", 500, "A", None, id="mql-still-hot"),
        pytest.param("sql", 0, "F", None, id="sql-is-sales"),
        pytest.param("opportunity", 0, "F", None, id="opportunity-is-sales"),
        pytest.param("customer", 500, "A", None, id="customer-is-sales"),
        pytest.param("disqualified", 500, "A", None, id="disqualified-stays"),
        pytest.param("recycled", 10, "A", None, id="recycled-stays-cold"),
        pytest.param("won", 500, "A", None, id="unknown-stage"),
    ],
)
def test_scores_move_stages_as_the_stage_rules_say(current: str, score: float, grade: str | None, expected: str | None):
    # GIVEN the demo stage rules
    # WHEN the next stage of a lead is asked for
    # THEN it moves only as the rules say, and never out of a stage sales owns
    assert next_stage(current, score, grade, STAGES) == expected


def test_with_on_decay_stay_a_quiet_mql_stays():
    # GIVEN stage rules that keep MQLs that went quiet
    rules = StageRules(mql=STAGES.mql, on_decay="stay")

    # WHEN an MQL's score has faded to nothing
    # THEN it stays an MQL
    assert next_stage("mql", 0, "A", rules) is None


def test_a_lead_goes_from_lead_to_mql_and_back_to_recycled_when_it_goes_quiet():
    # GIVEN a fit lead (grade A) that downloads, watches, attends, and asks for a demo in one week
    profile = {"title": "Head of Marketing", "cf_company_size": "51-200", "country": "DE", "email": "a@acme.io"}
    grade = fit_grade(profile, DEMO.grade)
    start = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)
    journey = [
        act("download", start, asset="guide"),
        act("video_progress", start + timedelta(days=1), asset="v1", percent=100),
        act("webinar_attended", start + timedelta(days=2), asset="w1"),
        act("form_submitted", start + timedelta(days=3), form_id="demo-signup"),
    ]
    ledger = Ledger()
    for activity in journey:
        ledger.record(SMB, activity)

    # WHEN its stage is evaluated after the demo request, and again after 30 quiet days
    hot = decayed_score(ledger, SMB, start + timedelta(days=3))
    stage = next_stage("lead", hot, grade.letter, DEMO.stages)
    cold = decayed_score(ledger, SMB, start + timedelta(days=33))

    # THEN it becomes an MQL (15 + 30 + 25 + 50, a little decayed), then is recycled
    assert grade.letter == "A" and 100 <= hot < 120 and stage == "mql"
    assert cold < DEMO.stages.recycle_threshold and next_stage("mql", cold, grade.letter, DEMO.stages) == "recycled"
    assert decays_below_at(hot, start + timedelta(days=3), 80, SMB) < start + timedelta(days=33)  # type: ignore[operator]


# ---------------------------------------------------------------------------- accounts


@pytest.mark.parametrize(
    ("title", "department"),
    [
        ("VP of Sales", "sales"),
        ("Account Executive", "sales"),
        ("Chief Executive Officer", "executive"),
        ("President", "executive"),
        ("CMO", "marketing"),
        ("Head of Demand Generation", "marketing"),
        ("IT Manager", "it"),
        ("Senior Software Engineer", "it"),
        ("CFO", "finance"),
        ("Procurement Lead", "finance"),
        ("COO", "operations"),
        ("Director of Operations", "operations"),
        ("Geschäftsführer", "executive"),
        ("Intern", None),
        (None, None),
        ("", None),
    ],
)
def test_job_titles_map_to_committee_departments(title: str | None, department: str | None):
    assert department_of(title) == department


def test_an_account_scores_its_buying_committee():
    # GIVEN four people at one company: IT and finance engaged, marketing barely, one explicit department
    leads = [
        LeadScoreSummary("l-1", "acme.com", 60, title="CTO"),
        LeadScoreSummary("l-2", "acme.com", 35, title="Financial Controller"),
        LeadScoreSummary("l-3", "acme.com", 5, title="Marketing Manager"),
        LeadScoreSummary("l-4", "acme.com", 20, title="Buyer", department="operations"),
    ]

    # WHEN the account is scored with a committee of four
    rules = AccountRules(committee=("executive", "it", "finance", "operations"), engaged_at_least=15)
    account = account_score(leads, rules)

    # THEN it sums its leads, and counts which committee departments are engaged
    assert (account.account_domain, account.score, account.best_lead_score) == ("acme.com", 120, 60)
    assert (account.leads, account.engaged_leads) == (4, 3)
    assert account.departments == ("finance", "it", "operations")
    assert account.missing_departments == ("executive",)
    assert account.coverage == 0.75
    assert account.top_leads == ("l-1", "l-2", "l-4", "l-3")


def test_accounts_roll_up_by_domain_and_leave_free_mail_out():
    # GIVEN leads of two companies and one at a free mail address
    leads = [
        LeadScoreSummary("l-1", "acme.com", 30, title="CEO"),
        LeadScoreSummary("l-2", "globex.com", 12, title="IT Director"),
        LeadScoreSummary("l-3", None, 90, title="CEO"),
        LeadScoreSummary("l-4", "acme.com", 25, title="Head of IT"),
    ]

    # WHEN they are rolled up with the demo account rules (engaged from 15, six departments)
    accounts = roll_up_accounts(leads, DEMO.accounts)

    # THEN each company is one account; the free-mail lead belongs to none
    assert list(accounts) == ["acme.com", "globex.com"]
    assert accounts["acme.com"].departments == ("executive", "it")
    assert accounts["acme.com"].coverage == pytest.approx(2 / 6)
    assert accounts["globex.com"].engaged_leads == 0 and accounts["globex.com"].coverage == 0


@pytest.mark.parametrize(
    "leads",
    [
        [],
        [LeadScoreSummary("l-1", "acme.com", 1), LeadScoreSummary("l-2", "globex.com", 1)],
        [LeadScoreSummary("l-1", None, 1)],
    ],
)
def test_an_account_score_needs_the_leads_of_one_domain(leads: list[LeadScoreSummary]):
    with pytest.raises(ValueError, match="one account domain"):
        account_score(leads)


# ---------------------------------------------------------------------------- where lead.scored is written
class _RecordingScoreStore:
    """A score store of one lead with an empty ledger, keeping the writes (``ports.ScoreStore``)."""

    def __init__(self) -> None:
        from leadflow.ports.scoring import ScoreWrite

        self.writes: list[ScoreWrite] = []

    def score_state(self, lead_id: str) -> Any:
        from leadflow.ports.scoring import ScoreState

        return ScoreState({"lead_id": lead_id, "stage": "lead", "title": "VP Marketing"}, [], 3)

    def apply_score(self, write: Any) -> bool:
        self.writes.append(write)
        return True

    def leads_in_stage(self, stage: str) -> list[str]:
        return []

    def account_leads(self, domain: str) -> list[dict[str, Any]]:
        return []


def test_a_scored_activity_carries_its_event_on_the_ledger_item_and_an_award_uses_the_outbox():
    from leadflow.adapters.memory import FakeClock
    from leadflow.config.workspace import Workspace
    from leadflow.services.scoring import ScoringService

    store = _RecordingScoreStore()
    service = ScoringService(Workspace(WORKSPACE), store, FakeClock(datetime(2026, 12, 5, 10, tzinfo=UTC)))
    # WHEN a download is scored, and a sequence action awards points
    download = {"activity_id": "01KACT", "type": "download", "at": "2026-12-05T09:59:00+00:00", "asset": "guide.pdf"}
    service.score("01KLEAD", download)
    service.award("01KLEAD", 5, None, "Finished the onboarding", "award-1")
    by_activity, by_award = store.writes
    # THEN the download's lead.scored is carried by its ledger item (issue 17: no outbox item) and
    # names the activity, its points the entries' sum
    assert by_activity.announced is not None and by_activity.announced.detail_type == "lead.scored"
    assert by_activity.announced.detail["activity_id"] == "01KACT"
    assert by_activity.announced.detail["points_added"] == sum(e["points"] for e in by_activity.entries) > 0
    assert "lead.scored" not in [e.detail_type for e in by_activity.events]
    # AND the award's lead.scored (it names no activity: its entry is the award's) is an outbox event
    assert by_award.announced is None
    assert [e.detail_type for e in by_award.events][:1] == ["lead.scored"]
    assert by_award.events[0].detail["activity_id"] is None
