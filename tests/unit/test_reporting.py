"""Report counting and report assembly: pure rules, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import pytest

from leadflow.domain.form_reports import forms_report, page_key
from leadflow.domain.report_views import BadPeriod, funnel_report, percentile_hours, period
from leadflow.domain.reporting import (
    HOUR_BUCKETS,
    attribution,
    day_of,
    hour_bucket,
    lead_created,
    merge_increments,
    stage_reached,
    stages_reached,
)
from leadflow.domain.sales_reports import handoff_created, handoff_outcome, handoff_report, reason_key
from leadflow.domain.sequence_reports import (
    ab_verdict,
    email_engaged,
    latest_send,
    nurture_counted,
    sends_of,
    sequence_report,
    two_proportion_z,
)

pytestmark = pytest.mark.unit
AT = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
TOUCH = {"channel": "form", "form_id": "demo-signup", "utm_source": "linkedin", "utm_campaign": "spring", "ref": "ana"}


def test_a_new_lead_counts_once_per_dimension_in_both_views_with_its_first_stage():
    # GIVEN a lead captured at 23:30 UTC from LinkedIn
    # WHEN it is counted
    facts = lead_created("L1", AT, TOUCH, "lead")
    # THEN one creation marker and one stage marker, and created + reached_lead per view and dimension
    assert [f.marker for f in facts] == [("LEADRPT#L1", "CREATED"), ("LEADRPT#L1", "REACHED#lead")]
    counters = merge_increments(facts)
    assert counters[("FUNNEL#events#source", "2026-12-01#linkedin")] == {"created": 1, "reached_lead": 1}
    assert counters[("FUNNEL#cohort#medium", "2026-12-01#(none)")] == {"created": 1, "reached_lead": 1}
    assert counters[("FUNNEL#events#ref", "2026-12-01#ana")]["created"] == 1
    assert len(counters) == 12


def test_a_subscriber_is_created_without_reaching_a_funnel_stage():
    facts = lead_created("L1", AT, TOUCH, "subscriber")
    assert len(facts) == 1
    assert all(set(fields) == {"created"} for fields in merge_increments(facts).values())


def test_reaching_sql_passes_the_skipped_stages_and_side_stages_stand_alone():
    assert stages_reached("sql") == ("lead", "mql", "sql")
    assert stages_reached("recycled") == ("recycled",)
    assert stages_reached("subscriber") == ()


def test_mql_is_counted_on_its_day_and_its_cohort_day_with_the_time_it_took():
    # GIVEN a lead created on Dec 1 that became MQL 50 hours later
    mql = stage_reached("L1", "mql", AT + timedelta(hours=50), AT, attribution(TOUCH))
    counters = mql.increments
    # THEN the events view counts it on Dec 4 (UTC), the cohort view on Dec 1, with the 72 h bucket
    bucket = hour_bucket(50)
    assert HOUR_BUCKETS[bucket] == 72
    assert counters[("FUNNEL#events#source", "2026-12-04#linkedin")] == {"reached_mql": 1, f"ttm_{bucket}": 1}
    assert counters[("FUNNEL#cohort#source", "2026-12-01#linkedin")] == {"reached_mql": 1, f"ttm_{bucket}": 1}
    assert mql.marker_item["hours"] == 50.0


def test_days_are_utc_days():
    assert day_of("2026-12-01T23:30:00-02:00") == "2026-12-02"


def test_dimension_values_are_bounded_and_never_empty():
    dims = attribution({"utm_source": "  ", "utm_medium": "x" * 500})
    assert dims["source"] == "(none)"
    assert len(dims["medium"]) == 200


def test_percentiles_interpolate_inside_the_histogram_bucket():
    histogram = [0] * (len(HOUR_BUCKETS) + 1)
    histogram[hour_bucket(30)] = 10  # ten leads between 24 and 48 hours
    assert percentile_hours(histogram, 50) == 36.0
    assert percentile_hours([0] * len(histogram), 50) is None
    histogram[-1] = 100
    assert percentile_hours(histogram, 95) == float(HOUR_BUCKETS[-1])


def test_the_funnel_sums_keys_days_and_totals_with_rates():
    # GIVEN two sources over two days
    items = [
        ("2026-12-01", "linkedin", {"created": 10, "reached_lead": 10, "reached_mql": 4, "ttm_5": 4}),
        ("2026-12-02", "linkedin", {"created": 10, "reached_lead": 10, "reached_mql": 1, "reached_sql": 1}),
        ("2026-12-02", "newsletter", {"created": 30, "reached_lead": 30}),
    ]
    # WHEN the report is assembled
    report = funnel_report(items, start="2026-12-01", end="2026-12-03", by="source", view="events")
    # THEN rows are keyed by source, most leads first, with rates between stages
    assert [r["key"] for r in report["rows"]] == ["newsletter", "linkedin"]
    linkedin = report["rows"][1]
    assert linkedin["created"] == 20
    assert linkedin["conversion"]["lead_to_mql"] == 0.25
    assert linkedin["conversion"]["mql_to_sql"] == 0.2
    assert linkedin["conversion"]["opportunity_to_customer"] is None
    assert linkedin["time_to_mql"]["count"] == 4
    assert report["totals"]["created"] == 50
    assert [d["created"] for d in report["days"]] == [10, 40, 0]


@pytest.mark.parametrize(
    ("start", "end"), [("2026-12-02", "2026-12-01"), ("2026-13-01", "2026-12-01"), ("2024-01-01", "2026-01-01")]
)
def test_a_bad_period_is_refused(start, end):
    with pytest.raises(BadPeriod):
        period(start, end)


# ---------------------------------------------------------------------------- sequences and A/B tests


def test_the_z_test_matches_the_textbook_example():
    # GIVEN 200 of 1,000 against 150 of 1,000 (pooled p = 0.175)
    z, p = two_proportion_z(200, 1000, 150, 1000)
    # THEN z = 0.05 / sqrt(0.175 * 0.825 * 0.002) = 2.9424, two-sided p = 2 (1 - Phi(z)) = 0.00326
    assert round(z, 4) == 2.9424
    assert abs(p - 2 * (1 - NormalDist().cdf(z))) < 1e-12
    assert round(p, 5) == 0.00326
    assert two_proportion_z(0, 0, 5, 10) == (0.0, 1.0)


def test_a_variant_wins_only_when_it_beats_every_other_at_the_confidence():
    assert ab_verdict({"a": (200, 1000), "b": (150, 1000)}, 0.95)["winner"] == "a"
    close = ab_verdict({"a": (52, 1000), "b": (50, 1000)}, 0.95)
    assert close["winner"] is None
    assert close["verdict"] == "not yet"
    assert close["leader"] == "a"
    # a third arm that is as good as the leader keeps it from winning
    assert ab_verdict({"a": (200, 1000), "b": (150, 1000), "c": (199, 1000)}, 0.95)["winner"] is None


def test_the_sequence_report_orders_steps_and_judges_each_test():
    # GIVEN counters of two days: a nudge step split a/b, and a welcome step without variants
    items = [
        {"SK": "2026-12-01#1#welcome#-", "enrolled": 10, "sent": 10, "unique_opens": 4},
        {"SK": "2026-12-01#1#nudge#a", "sent": 500, "unique_clicks": 100, "unsubscribes": 5},
        {"SK": "2026-12-02#1#nudge#b", "sent": 500, "unique_clicks": 60},
        {"SK": "2026-12-02#1#nudge#-", "skipped_quiet_hours": 3, "exits": 1},
    ]
    # WHEN the report is assembled
    report = sequence_report(
        items, sequence_id="welcome", start="2026-12-01", end="2026-12-02", step_order=["welcome", "nudge"]
    )
    # THEN the flow follows the sequence, rates are over sent, and b lost at 95%
    assert [row["step"] for row in report["flow"]] == ["welcome", "nudge"]
    nudge = report["flow"][1]
    assert nudge["counts"]["sent"] == 1000
    assert nudge["counts"]["skipped_quiet_hours"] == 3
    assert nudge["rates"]["click_rate"] == 0.16
    assert nudge["rates"]["unsubscribe_rate"] == 0.005
    assert report["totals"]["counts"]["enrolled"] == 10
    (test,) = report["ab_tests"]
    assert (test["step"], test["winner"], test["confidence"]) == ("nudge", "a", 0.95)
    assert [v["rate"] for v in test["variants"]] == [0.2, 0.12]


def test_counted_events_and_engagement_become_counter_increments():
    at = datetime(2026, 12, 2, 9, tzinfo=UTC)
    counted = nurture_counted(
        "E1", at, [["welcome", 1, "welcome", "-", "sent", 3], ["welcome", 1, "x", "-", "bogus", 1]]
    )
    assert counted.marker == ("EVT#E1", "EVT")
    assert counted.increments == {("SEQRPT#welcome", "2026-12-02#1#welcome#-"): {"sent": 3}}
    # an open is counted on the day its email was sent, under its step and variant, once per email
    send = sends_of(
        [{"at": "2026-12-01T10:00:00+00:00", "m": "m_1", "s": "welcome", "p": "nudge", "variant": "b", "v": 2}]
    )[0]
    opened = email_engaged("email_opened", "m_1", send, at)
    assert opened.marker == ("MSGRPT#m_1", "unique_opens")
    assert opened.increments == {("SEQRPT#welcome", "2026-12-01#2#nudge#b"): {"unique_opens": 1}}
    # SES feedback is about the lead's last email of the sequence sent before it
    assert latest_send([send], "welcome", "2026-12-01T09:00:00+00:00") is None
    assert latest_send([send], "welcome", at.isoformat()) == send


# ---------------------------------------------------------------------------- forms, hand-offs


def test_a_page_is_its_host_and_path():
    assert page_key("https://www.example.com/a/b?email=x@y.z#top") == "www.example.com/a/b"
    assert page_key("") == "(none)"
    assert page_key("not a url") == "(none)"


def test_forms_report_takes_views_from_the_pages_a_form_was_posted_from():
    pages = [
        {"SK": "2026-12-01#www.example.com/signup", "views": 40, "submissions": 4, "new_leads": 3},
        {"SK": "2026-12-02#www.example.com/signup", "views": 60, "submissions": 6, "new_leads": 5},
        {"SK": "2026-12-02#www.example.com/blog", "views": 500},
    ]
    stats = [("demo-signup", {"submissions": 10, "new_leads": 8, "spam": 2})]
    form_pages = {"demo-signup": [{"SK": "2026-12-01#www.example.com/signup", "submissions": 4}]}
    answer = forms_report(stats, pages, form_pages, start="2026-12-01", end="2026-12-02")
    assert answer["forms"] == [
        {
            "form_id": "demo-signup",
            "views": 100,
            "submissions": 10,
            "new_leads": 8,
            "spam": 2,
            "conversion_rate": 0.1,
            "pages": ["www.example.com/signup"],
        }
    ]
    assert [p["page"] for p in answer["pages"]] == ["www.example.com/blog", "www.example.com/signup"]
    assert answer["pages"][0]["conversion_rate"] == 0.0


def test_handoff_outcomes_count_once_for_the_owner_and_team_it_was_assigned_to():
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    created = handoff_created("H1", at, "rep-ana", "inbound")
    assert created.increments == {
        ("HANDOFFS#owner", "2026-12-01#rep-ana"): {"assigned": 1},
        ("HANDOFFS#team", "2026-12-01#inbound"): {"assigned": 1},
    }
    accepted = handoff_outcome("H1", "accepted", None, at + timedelta(hours=3), created.marker_item)
    assert accepted is not None
    assert accepted.marker == ("HANDOFFRPT#H1", "OUTCOME#accepted")
    assert accepted.increments[("HANDOFFS#team", "2026-12-01#inbound")] == {"accepted": 1, f"tta_{hour_bucket(3)}": 1}
    rejected = handoff_outcome("H2", "rejected", "Bad fit: too small!", at, None)
    assert rejected is not None
    assert rejected.increments[("HANDOFFS#owner", "2026-12-01#(queue)")] == {
        "rejected": 1,
        "reason_bad-fit-too-small": 1,
    }
    assert handoff_outcome("H3", "meeting", None, at, None) is None
    assert reason_key("") == "unspecified"
    answer = handoff_report(
        [{"SK": "2026-12-01#rep-ana", "assigned": 4, "accepted": 2, "won": 1, "reason_bad-fit": 1, "rejected": 1}],
        [],
        start="2026-12-01",
        end="2026-12-01",
    )
    (ana,) = answer["owners"]
    assert (ana["acceptance_rate"], ana["win_rate"], ana["rejection_reasons"]) == (0.5, 0.25, {"bad-fit": 1})
