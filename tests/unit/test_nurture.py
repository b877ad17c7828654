"""The nurture engine: steps, gates, waits, conditions, re-entry, migrations, variants, timezones."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from leadflow.domain.definitions import models
from leadflow.domain.definitions.conditions import Condition, SegmentList
from leadflow.domain.definitions.messaging import FrequencyCaps, MessagingConfig, QuietHours
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.definitions.steps import Action, Variant
from leadflow.domain.nurture import (
    COUNTRY_TIMEZONES,
    MAX_STEPS,
    ActivityView,
    Enrollment,
    LeadView,
    Outcome,
    SentEmail,
    advance,
    choose_variant,
    enroll,
    held_state,
    holdable,
    in_segment,
    lapses_quietly,
    lead_timezone,
    matches,
    message_id_for,
    migrate,
)
from tests.conftest import thread_cpu_time

pytestmark = pytest.mark.unit

# A Wednesday, noon UTC (21:00 in Tokyo).
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
NO_QUIET = MessagingConfig(quiet_hours=None)
DAY = timedelta(days=1)


# ---------------------------------------------------------------------------- builders


def sequence(*steps: dict[str, Any], **extra: Any) -> Sequence:
    """A sequence validated as sequences/test.yaml would be."""
    return Sequence.model_validate(
        {"id": "test", "name": "Test", "purpose": "marketing_email", "steps": list(steps), **extra}
    )


def email(step_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "email", "template": step_id, "subject": f"About {step_id}", **extra}


def wait(step_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "wait", **extra}


def branch(step_id: str, when: dict[str, Any], then: str, otherwise: str) -> dict[str, Any]:
    return {"id": step_id, "type": "branch", "when": when, "then": then, "otherwise": otherwise}


def action(step_id: str, *actions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "action", "actions": list(actions), **extra}


def cond(data: dict[str, Any]) -> Condition:
    return models.validate(Condition, data)


GRANTED = {"granted": True, "at": "2026-11-01T09:00:00+00:00", "form_id": "demo-signup"}


def lead(lead_id: str = "lead-1", **profile: Any) -> LeadView:
    """A lead who gave consent to marketing email (the consent matrix tests say otherwise explicitly)."""
    return LeadView(
        lead_id=lead_id, profile={"lead_id": lead_id, "stage": "lead", "consent_marketing_email": GRANTED, **profile}
    )


def start(seq: Sequence, lead_id: str = "lead-1", at: datetime = NOW) -> Enrollment:
    created = enroll(seq, 1, lead_id, at, None)
    assert created is not None
    return created


def reacted(
    enrollment: Enrollment, step_id: str, *, opened: bool = True, clicked: bool = False, tags: tuple[str, ...] = ()
) -> Enrollment:
    """The enrollment after the lead opened (clicked) the email of ``step_id``."""
    emails = tuple(
        replace(sent, opened=opened, clicked=clicked, link_tags=tags) if sent.step_id == step_id else sent
        for sent in enrollment.emails
    )
    return replace(enrollment, emails=emails)


def sent(step_id: str, at: datetime = NOW, **extra: Any) -> SentEmail:
    return SentEmail(step_id, message_id_for("lead-1", "test", 1, step_id), at, **extra)


def with_emails(*emails: SentEmail) -> Enrollment:
    seq = sequence(email("welcome"))
    return replace(start(seq), emails=emails)


# The source documents' "push" nurturing: a one-week discount to everyone; the openers get a
# product email; the clickers a coupon; those who redeem it go to sales.
PUSH = Sequence.model_validate(
    {
        "id": "push",
        "name": "Push nurturing",
        "purpose": "marketing_email",
        "steps": [
            email("discount", subject="One week only: 20% off"),
            wait("wait-open", days=7, until_event={"opened": "discount"}),
            branch("opened", {"opened": "discount"}, then="product", otherwise="end"),
            email("product", subject="What {{ lead.company }} gets"),
            wait("wait-click", days=7, until_event={"clicked": "product"}),
            branch("clicked", {"clicked": "product"}, then="coupon", otherwise="end"),
            email("coupon", subject="Your coupon"),
            wait("wait-redeem", days=7, until_event={"clicked_tag": "redeem"}),
            branch("redeemed", {"clicked_tag": "redeem"}, then="handoff", otherwise="end"),
            action("handoff", {"handoff": "redeemed the coupon"}),
        ],
    }
)


# ---------------------------------------------------------------------------- the push example


def test_the_push_example_hands_a_lead_who_reacts_every_time_to_sales():
    # GIVEN a lead enrolled in the push sequence
    person = lead(company="Acme")
    enrollment = start(PUSH)

    # WHEN it is advanced: the discount goes out and the lead sleeps for up to 7 days
    first = advance(PUSH, enrollment, person, NOW, MessagingConfig())
    # THEN
    assert first.email is not None and first.email.step_id == "discount"
    assert first.email.subject == "One week only: 20% off"
    assert (first.enrollment.step_id, first.enrollment.due_at, first.deferred) == (
        "wait-open",
        NOW + 7 * DAY,
        "waiting",
    )

    # WHEN the lead opens the discount a day later: the product email goes out at once
    second = advance(PUSH, reacted(first.enrollment, "discount"), person, NOW + DAY, MessagingConfig())
    # THEN
    assert second.email is not None and second.email.step_id == "product"
    assert second.trail == ("wait-open", "opened", "product", "wait-click")
    assert second.enrollment.due_at == NOW + 8 * DAY

    # WHEN it clicks the product email: the coupon goes out
    third = advance(PUSH, reacted(second.enrollment, "product", clicked=True), person, NOW + 2 * DAY, MessagingConfig())
    # THEN
    assert third.email is not None and third.email.step_id == "coupon"
    assert third.enrollment.step_id == "wait-redeem"

    # WHEN it clicks the coupon's redeem link: it is handed to sales and the sequence completes
    redeemed = reacted(third.enrollment, "coupon", clicked=True, tags=("redeem",))
    last = advance(PUSH, redeemed, person, NOW + 3 * DAY, MessagingConfig())
    # THEN
    assert last.email is None
    assert last.actions == (Action(handoff="redeemed the coupon"),)
    assert (last.enrollment.status, last.enrollment.exit_reason) == ("completed", "completed")
    assert last.enrollment.due_at is None and last.enrollment.ended_at == NOW + 3 * DAY
    assert [e.step_id for e in last.enrollment.emails] == ["discount", "product", "coupon"]


def test_the_push_example_drops_a_lead_who_never_opens_after_a_week():
    # GIVEN a lead that got the discount and never opened it
    person = lead()
    first = advance(PUSH, start(PUSH), person, NOW, NO_QUIET)

    # WHEN it is looked at on the day before the week is over, then when it is
    early = advance(PUSH, first.enrollment, person, NOW + 6 * DAY, NO_QUIET)
    late = advance(PUSH, early.enrollment, person, NOW + 7 * DAY, NO_QUIET)

    # THEN it keeps waiting, then completes without another email or any action
    assert early.deferred == "waiting" and early.enrollment.due_at == NOW + 7 * DAY
    assert late.email is None and late.actions == ()
    assert (late.enrollment.status, late.enrollment.step_id) == ("completed", "end")
    assert late.trail == ("wait-open", "opened")


def test_the_push_example_drops_an_opener_who_never_clicks():
    # GIVEN a lead that opened the discount and got the product email
    person = lead()
    first = advance(PUSH, start(PUSH), person, NOW, NO_QUIET)
    second = advance(PUSH, reacted(first.enrollment, "discount"), person, NOW + DAY, NO_QUIET)

    # WHEN the week after the product email passes without a click
    last = advance(PUSH, second.enrollment, person, NOW + 8 * DAY, NO_QUIET)

    # THEN the lead leaves without the coupon
    assert last.email is None and last.enrollment.status == "completed"
    assert [e.step_id for e in last.enrollment.emails] == ["discount", "product"]


# ---------------------------------------------------------------------------- steps


def test_an_email_step_sends_and_walks_on_to_the_next_wait():
    # GIVEN an email followed by a 2-day wait
    seq = sequence(email("welcome", topic="news", sender="hi@example.com", sender_name="Hi"), wait("pause", days=2))

    # WHEN the new enrollment is advanced
    outcome = advance(seq, start(seq), lead(), NOW, NO_QUIET)

    # THEN the email goes out, is recorded, and the wait counts from now
    expected_id = message_id_for("lead-1", "test", 1, "welcome")
    assert outcome.email is not None
    assert (outcome.email.message_id, outcome.email.template, outcome.email.topic) == (expected_id, "welcome", "news")
    assert (outcome.email.sender, outcome.email.sender_name, outcome.email.variant) == ("hi@example.com", "Hi", None)
    assert outcome.enrollment.emails == (SentEmail("welcome", expected_id, NOW),)
    assert (outcome.enrollment.step_id, outcome.enrollment.step_started_at) == ("pause", NOW)
    assert outcome.enrollment.due_at == NOW + 2 * DAY and outcome.deferred == "waiting"
    assert outcome.trail == ("welcome", "pause")


def test_at_most_one_email_goes_out_per_call():
    # GIVEN two emails in a row
    seq = sequence(email("one"), email("two"), wait("pause", days=1))

    # WHEN the enrollment is advanced twice at the same time
    first = advance(seq, start(seq), lead(), NOW, NO_QUIET)
    second = advance(seq, first.enrollment, lead(), NOW, NO_QUIET)

    # THEN the first call sends one and stops at the second, due at once; the next call sends it
    assert first.email is not None and first.email.step_id == "one"
    assert (first.enrollment.step_id, first.enrollment.due_at, first.deferred) == ("two", NOW, None)
    assert second.email is not None and second.email.step_id == "two"
    assert [e.step_id for e in second.enrollment.emails] == ["one", "two"]


def test_the_same_message_id_is_never_sent_twice():
    # GIVEN an email that loops back to itself after a wait while the lead has not clicked
    seq = sequence(
        email("nudge"),
        wait("pause", days=1),
        branch("clicked", {"clicked": "nudge"}, then="end", otherwise="nudge"),
    )
    first = advance(seq, start(seq), lead(), NOW, NO_QUIET)

    # WHEN the loop comes back to the email
    again = advance(seq, first.enrollment, lead(), NOW + DAY, NO_QUIET)

    # THEN it is passed over (already in the enrollment) and the lead waits again
    assert again.email is None
    assert again.trail == ("pause", "clicked", "nudge", "pause")
    assert len(again.enrollment.emails) == 1 and again.enrollment.due_at == NOW + 2 * DAY


def test_a_retry_after_a_lost_store_produces_the_same_message_id():
    # GIVEN an email was sent but the enrollment was never stored (a crash in between)
    seq = sequence(email("welcome"), wait("pause", days=1))
    enrollment = start(seq)
    first = advance(seq, enrollment, lead(), NOW, NO_QUIET)

    # WHEN the stored (old) enrollment is advanced again a minute later
    retry = advance(seq, enrollment, lead(), NOW + timedelta(minutes=1), NO_QUIET)

    # THEN the same id comes out, so the sender can tell it was already sent
    assert first.email is not None and retry.email is not None
    assert retry.email.message_id == first.email.message_id


def test_a_re_entry_gets_new_message_ids():
    # WHEN the ids of one step in two entries of the same lead are made
    # THEN they differ, are stable, and are short and URL-safe
    assert message_id_for("lead-1", "push", 1, "discount") != message_id_for("lead-1", "push", 2, "discount")
    assert message_id_for("lead-1", "push", 1, "discount") == message_id_for("lead-1", "push", 1, "discount")
    value = message_id_for("lead-1", "push", 1, "discount")
    assert value.startswith("m_") and len(value) == 26 and value[2:].isalnum()


@pytest.mark.parametrize(("tag", "goes_to"), [("vip", "for-vips"), ("other", "for-others")])
def test_a_branch_goes_to_then_or_otherwise(tag: str, goes_to: str):
    # GIVEN a branch on a tag
    seq = sequence(
        branch("split", {"tag": "vip"}, then="for-vips", otherwise="for-others"),
        email("for-vips", next="end"),
        email("for-others"),
    )

    # WHEN a lead with the tag (or without it) is advanced
    outcome = advance(seq, start(seq), lead(tags=[tag]), NOW, NO_QUIET)

    # THEN its branch's email goes out
    assert outcome.email is not None and outcome.email.step_id == goes_to
    assert outcome.trail == ("split", goes_to)


def test_action_steps_collect_their_actions_and_go_on():
    # GIVEN two action steps around a wait
    seq = sequence(
        action("mark", {"tag": "nurtured"}, {"set_field": {"name": "nurture_track", "value": "a"}}),
        action("score", {"add_points": {"points": 5}}),
        wait("pause", hours=3),
        action("later", {"enroll": "other"}),
    )

    # WHEN the enrollment is advanced
    outcome = advance(seq, start(seq), lead(), NOW, NO_QUIET)

    # THEN the actions before the wait come out in order; the later one does not
    assert [a.key for a in outcome.actions] == ["tag", "set_field", "add_points"]
    assert outcome.enrollment.step_id == "pause" and outcome.enrollment.due_at == NOW + timedelta(hours=3)


@pytest.mark.parametrize(("stage", "status"), [("mql", "converted"), ("lead", "completed")])
def test_a_goal_step_converts_when_it_holds_and_goes_on_otherwise(stage: str, status: str):
    # GIVEN a goal step on the MQL stage
    seq = sequence({"id": "is-mql", "type": "goal", "when": {"stage": ["mql", "sql"]}}, action("after", {"tag": "x"}))

    # WHEN a lead in the stage (or not) is advanced
    outcome = advance(seq, start(seq), lead(stage=stage), NOW, NO_QUIET)

    # THEN it converts there, or passes on to the end
    assert outcome.enrollment.status == status
    assert outcome.enrollment.exit_reason == ("goal" if status == "converted" else "completed")
    assert outcome.enrollment.ended_at == NOW and outcome.enrollment.due_at is None
    assert len(outcome.actions) == (0 if status == "converted" else 1)


def test_the_sequence_goal_ends_the_enrollment_even_in_a_wait():
    # GIVEN a sequence whose goal is a demo request, and a lead waiting in it
    seq = sequence(
        email("welcome"),
        wait("pause", days=3),
        email("follow-up"),
        goal={"activity": {"type": "form_submitted", "form_id": "demo-signup"}},
    )
    waiting = advance(seq, start(seq), lead(), NOW, NO_QUIET).enrollment

    # WHEN the lead requests a demo and is looked at before the wait is over
    person = replace(lead(), activities=(ActivityView("form_submitted", NOW, {"form_id": "demo-signup"}),))
    outcome = advance(seq, waiting, person, NOW + DAY, NO_QUIET)

    # THEN it leaves as converted, without the follow-up
    assert outcome.email is None
    assert (outcome.enrollment.status, outcome.enrollment.exit_reason) == ("converted", "goal")
    assert outcome.enrollment.step_id == "pause"


def test_an_ended_enrollment_is_returned_unchanged():
    # GIVEN a completed enrollment
    seq = sequence(email("welcome"))
    done = replace(start(seq), status="completed", due_at=None, exit_reason="completed", ended_at=NOW)

    # WHEN it is advanced
    outcome = advance(seq, done, lead(), NOW + DAY, NO_QUIET)

    # THEN nothing happens
    assert outcome == Outcome(done)


def test_a_paused_sequence_holds_its_leads_for_an_hour_at_a_time():
    # GIVEN a paused sequence
    seq = sequence(email("welcome"), status="paused")
    enrollment = start(sequence(email("welcome")))

    # WHEN an enrollment in it is advanced
    outcome = advance(seq, enrollment, lead(), NOW, NO_QUIET)

    # THEN nothing is sent and it is looked at again in an hour
    assert outcome.email is None and outcome.deferred == "paused"
    assert outcome.enrollment == replace(enrollment, due_at=NOW + timedelta(hours=1))


def test_a_runaway_walk_fails_at_the_step_limit():
    # GIVEN more instant steps in a row than one call may pass through
    seq = sequence(*(action(f"a{i}", {"tag": "x"}) for i in range(MAX_STEPS + 1)))

    # WHEN it is advanced
    outcome = advance(seq, start(seq), lead(), NOW, NO_QUIET)

    # THEN it fails after passing through the limit's worth of steps
    assert (outcome.enrollment.status, outcome.enrollment.exit_reason) == ("failed", "step limit")
    assert len(outcome.trail) == MAX_STEPS and outcome.enrollment.due_at is None


def test_an_enrollment_on_a_step_that_does_not_exist_fails():
    # GIVEN an enrollment on a step the definition does not have
    seq = sequence(email("welcome"))
    enrollment = replace(start(seq), step_id="gone")

    # WHEN it is advanced
    outcome = advance(seq, enrollment, lead(), NOW, NO_QUIET)

    # THEN it fails instead of raising
    assert (outcome.enrollment.status, outcome.enrollment.exit_reason) == ("failed", "unknown step")


# ---------------------------------------------------------------------------- waits


def test_a_wait_sleeps_until_its_duration_is_over_and_an_early_look_changes_nothing():
    # GIVEN a lead that entered a 1 day 6 hours wait at NOW
    seq = sequence(wait("pause", days=1, hours=6), email("after"))
    first = advance(seq, start(seq), lead(), NOW, NO_QUIET)

    # WHEN it is woken early (a spurious wake), then at the due time
    early = advance(seq, first.enrollment, lead(), NOW + DAY, NO_QUIET)
    due = NOW + timedelta(days=1, hours=6)
    on_time = advance(seq, early.enrollment, lead(), due, NO_QUIET)

    # THEN it goes back to sleep with the same due time, then moves on
    assert first.enrollment.due_at == due and first.deferred == "waiting"
    assert early.enrollment == first.enrollment and early.deferred == "waiting" and early.email is None
    assert on_time.email is not None and on_time.email.step_id == "after"


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        # Wednesday 12:00 UTC; next Monday 09:00 local
        ("UTC", datetime(2026, 11, 9, 9, 0, tzinfo=UTC)),
        ("Asia/Tokyo", datetime(2026, 11, 9, 0, 0, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 11, 9, 14, 0, tzinfo=UTC)),
    ],
)
def test_a_wait_until_a_weekday_and_time_uses_the_leads_timezone(timezone: str, expected: datetime):
    # GIVEN a wait until Monday 09:00
    seq = sequence(wait("monday", until={"time": "09:00", "weekdays": ["mon"]}), email("after"))

    # WHEN a lead in the timezone enters it on a Wednesday
    outcome = advance(seq, start(seq), lead(timezone=timezone), NOW, NO_QUIET)

    # THEN it wakes on Monday at 09:00 its time
    assert outcome.enrollment.due_at == expected
    assert outcome.enrollment.due_at.astimezone(ZoneInfo(timezone)).strftime("%a %H:%M") == "Mon 09:00"


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        # a day after Wednesday 12:00 UTC is Thursday 12:00 UTC: the next 09:00 is Friday
        ("GB", datetime(2026, 11, 6, 9, 0, tzinfo=UTC)),
        # ... but Thursday 21:00 in Tokyo: the next 09:00 there is Friday 00:00 UTC
        ("Japan", datetime(2026, 11, 6, 0, 0, tzinfo=UTC)),
    ],
)
def test_a_duration_then_until_counts_the_time_of_day_after_the_duration(country: str, expected: datetime):
    # GIVEN a wait of one day, then until 09:00 on any day
    seq = sequence(wait("next-morning", days=1, until={"time": "09:00"}), email("after"))

    # WHEN a lead enters it
    outcome = advance(seq, start(seq), lead(country=country), NOW, NO_QUIET)

    # THEN it wakes at the first 09:00 local after the day has passed
    assert outcome.enrollment.due_at == expected


def test_a_wait_until_today_at_a_later_time_wakes_today():
    # GIVEN a wait until 15:00 on weekdays, entered on a Wednesday at 12:00 UTC
    seq = sequence(wait("afternoon", until={"time": "15:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]}))

    # WHEN it is advanced at once and then at 15:00
    first = advance(seq, start(seq), lead(), NOW, NO_QUIET)
    woke = advance(seq, first.enrollment, lead(), NOW + timedelta(hours=3), NO_QUIET)

    # THEN it wakes the same day
    assert first.enrollment.due_at == NOW + timedelta(hours=3)
    assert woke.enrollment.status == "completed"


def test_until_event_ends_a_wait_early():
    # GIVEN a lead waiting up to 7 days for a click on its email
    seq = sequence(email("offer"), wait("for-click", days=7, until_event={"clicked": "previous"}), email("thanks"))
    waiting = advance(seq, start(seq), lead(), NOW, NO_QUIET).enrollment

    # WHEN it clicks and is looked at two hours later
    outcome = advance(seq, reacted(waiting, "offer", clicked=True), lead(), NOW + timedelta(hours=2), NO_QUIET)

    # THEN the wait ends at once and the next email goes out
    assert outcome.email is not None and outcome.email.step_id == "thanks"
    assert outcome.trail == ("for-click", "thanks")


# ---------------------------------------------------------------------------- gates


def test_a_suppressed_lead_exits_at_its_next_email():
    # GIVEN a lead whose address is suppressed
    seq = sequence(email("welcome"))
    person = replace(lead(), suppressed=True)

    # WHEN it is advanced
    outcome = advance(seq, start(seq), person, NOW, NO_QUIET)

    # THEN it leaves, unsent
    assert outcome.email is None and outcome.enrollment.emails == ()
    assert (outcome.enrollment.status, outcome.enrollment.exit_reason) == ("exited", "suppressed")
    assert outcome.enrollment.ended_at == NOW and outcome.enrollment.due_at is None


@pytest.mark.parametrize(
    ("profile", "step_topic", "exits"),
    [
        ({"unsubscribed": True}, None, True),
        ({"unsubscribed_topics": ["marketing"]}, None, True),
        ({"unsubscribed_topics": ["events"]}, "events", True),
        ({"unsubscribed_topics": ["events"]}, None, False),
        ({"unsubscribed_topics": ["marketing"]}, "product-updates", False),
        ({"unsubscribed": False, "unsubscribed_topics": []}, None, False),
        ({"unsubscribed": "true"}, None, True),  # as a CSV import may have stored it
        ({"unsubscribed": "false"}, None, False),
    ],
)
def test_an_unsubscribed_lead_exits_when_the_email_is_of_a_topic_it_left(
    profile: dict[str, Any], step_topic: str | None, exits: bool
):
    # GIVEN an email of the sequence's topic (marketing) or its own
    seq = sequence(email("welcome", **({"topic": step_topic} if step_topic else {})))

    # WHEN a lead unsubscribed from everything or from some topics is advanced
    outcome = advance(seq, start(seq), lead(**profile), NOW, NO_QUIET)

    # THEN it leaves exactly when it left everything or the email's topic
    if exits:
        assert outcome.email is None
        assert (outcome.enrollment.status, outcome.enrollment.exit_reason) == ("exited", "unsubscribed")
    else:
        assert outcome.email is not None and outcome.enrollment.exit_reason == "completed"


def test_suppression_is_checked_before_the_subscription():
    # GIVEN a lead both suppressed and unsubscribed
    seq = sequence(email("welcome"))
    person = replace(lead(unsubscribed=True), suppressed=True)

    # WHEN it is advanced
    outcome = advance(seq, start(seq), person, NOW, NO_QUIET)

    # THEN the reason is the suppression
    assert outcome.enrollment.exit_reason == "suppressed"


def test_a_lead_waits_for_its_double_opt_in_and_leaves_when_the_link_expired():
    # GIVEN a lead that has not confirmed its subscription yet
    seq = sequence(email("welcome"))
    person = lead(consent_pending=True)
    messaging = MessagingConfig(quiet_hours=None, confirmation_days=7)

    # WHEN it is advanced on the day it entered, then 8 days later
    pending = advance(seq, start(seq), person, NOW, messaging)
    expired = advance(seq, pending.enrollment, person, NOW + 8 * DAY, messaging)
    confirmed = advance(seq, pending.enrollment, lead(consent_pending=False), NOW + DAY, messaging)

    # THEN it waits (looked at every 6 hours), then leaves as unconfirmed; once confirmed, it gets the email
    assert pending.email is None and pending.deferred == "awaiting_confirmation"
    assert pending.enrollment.due_at == NOW + timedelta(hours=6) and pending.enrollment.status == "active"
    assert (expired.enrollment.status, expired.enrollment.exit_reason) == ("exited", "unconfirmed")
    assert confirmed.email is not None


@pytest.mark.parametrize(
    ("now", "quiet_until"),
    [
        # 21:00 in Tokyo: quiet until 08:00 there the next morning (23:00 UTC)
        (datetime(2026, 11, 4, 12, 0, tzinfo=UTC), datetime(2026, 11, 4, 23, 0, tzinfo=UTC)),
        # 02:30 in Tokyo, after midnight: quiet until 08:00 the same local day
        (datetime(2026, 11, 4, 17, 30, tzinfo=UTC), datetime(2026, 11, 4, 23, 0, tzinfo=UTC)),
        # 07:59:59 in Tokyo: a second before the end
        (datetime(2026, 11, 4, 22, 59, 59, tzinfo=UTC), datetime(2026, 11, 4, 23, 0, tzinfo=UTC)),
        # 08:00 and 20:59 in Tokyo: not quiet
        (datetime(2026, 11, 4, 23, 0, tzinfo=UTC), None),
        (datetime(2026, 11, 4, 11, 59, tzinfo=UTC), None),
    ],
)
def test_quiet_hours_that_wrap_midnight_count_in_the_leads_timezone(now: datetime, quiet_until: datetime | None):
    # GIVEN quiet hours 21:00-08:00 and a lead in Tokyo
    seq = sequence(email("welcome"))
    messaging = MessagingConfig(quiet_hours=QuietHours("21:00", "08:00"))

    # WHEN it is due at the given time
    outcome = advance(seq, start(seq, at=now), lead(timezone="Asia/Tokyo"), now, messaging)

    # THEN it waits for the end of the quiet hours, or gets the email
    if quiet_until is None:
        assert outcome.email is not None and outcome.deferred is None
    else:
        assert outcome.email is None and outcome.deferred == "quiet_hours"
        assert outcome.enrollment.due_at == quiet_until and outcome.enrollment.step_id == "welcome"


def test_quiet_hours_end_at_the_local_time_across_a_dst_change():
    # GIVEN a lead in Berlin at 22:00 summer time on the night clocks go back (25 October 2026)
    seq = sequence(email("welcome"))
    now = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)

    # WHEN it is due
    outcome = advance(seq, start(seq, at=now), lead(country="DE"), now, MessagingConfig())

    # THEN it waits until 08:00 winter time (07:00 UTC), not summer time
    assert outcome.enrollment.due_at == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sends", "due"),
    [
        # two in the last 24 hours (per_day 2): free when the older leaves the window
        ((NOW - timedelta(hours=20), NOW - timedelta(hours=2)), NOW + timedelta(hours=4)),
        # three in the window: two must leave
        ((NOW - timedelta(hours=23), NOW - timedelta(hours=20), NOW - timedelta(hours=2)), NOW + timedelta(hours=4)),
        # one exactly 24 hours ago no longer counts
        ((NOW - timedelta(hours=24), NOW - timedelta(hours=2)), None),
        # five on five days of the last week (per_week 5): free when the oldest is a week old
        (tuple(NOW - timedelta(days=d, hours=1) for d in range(1, 6)), NOW + timedelta(days=2, hours=-1)),
        # both caps reached: the later of the two
        (
            (*(NOW - timedelta(days=d) for d in (6, 5, 4)), NOW - timedelta(hours=3), NOW - timedelta(hours=1)),
            NOW + DAY,
        ),
    ],
)
def test_frequency_caps_hold_the_email_until_a_counted_send_leaves_its_window(
    sends: tuple[datetime, ...], due: datetime | None
):
    # GIVEN caps of 2 a day and 5 a week, and a lead with recent marketing sends
    seq = sequence(email("welcome"))
    messaging = MessagingConfig(quiet_hours=None, frequency=FrequencyCaps(per_day=2, per_week=5))
    person = replace(lead(), recent_sends=sends)

    # WHEN it is due
    outcome = advance(seq, start(seq), person, NOW, messaging)

    # THEN it waits exactly until sending fits both caps again (or is sent)
    if due is None:
        assert outcome.email is not None
    else:
        assert outcome.email is None and outcome.deferred == "frequency_cap"
        assert outcome.enrollment.due_at == due


# ---------------------------------------------------------------------------- conditions

ACTIVITIES = (
    ActivityView("page_viewed", NOW - timedelta(days=1), {"url": "https://www.example.com/Pricing"}),
    ActivityView("page_viewed", NOW - timedelta(days=3), {"url": "https://www.example.com/blog"}),
    ActivityView("page_viewed", NOW - timedelta(days=40), {"url": "https://www.example.com/pricing"}),
    ActivityView("form_submitted", NOW - timedelta(days=2), {"form_id": "demo-signup"}),
)
PERSON = LeadView(
    lead_id="lead-1",
    profile={
        "lead_id": "lead-1",
        "country": " Germany ",
        "title": "Head of Marketing",
        "cf_team_size": "50",
        "cf_interests": ["pricing", "Security"],
        "company": "",
        "cf_company": "Acme",
        "stage": "mql",
        "grade": "B",
        "tags": ["webinar", "vip"],
    },
    scores={"smb": 42.5},
    activities=ACTIVITIES,
)
EMAILS = (
    sent("discount", opened=True),
    sent("product", clicked=True, link_tags=("pricing",)),
    sent("coupon"),
)


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"opened": "discount"}, True),
        ({"opened": "product"}, True),  # a click implies an open
        ({"opened": "coupon"}, False),
        ({"opened": "previous"}, False),  # the coupon is the last one sent
        ({"opened": "welcome"}, False),  # never sent
        ({"clicked": "product"}, True),
        ({"clicked": "discount"}, False),
        ({"clicked_tag": "pricing"}, True),
        ({"clicked_tag": "redeem"}, False),
        ({"score": {"model": "smb", "gte": 40}}, True),
        ({"score": {"model": "smb", "gte": 40, "lt": 42.5}}, False),
        ({"score": {"model": "smb", "lt": 50}}, True),
        ({"score": {"model": "key_account", "lt": 1}}, True),  # missing counts as 0
        ({"score": {"model": "key_account", "gte": 0.1}}, False),
        ({"score": {"gte": 40}}, True),  # the lead's only model stands in for the default
        ({"grade": {"at_least": "B"}}, True),
        ({"grade": {"at_least": "A"}}, False),
        ({"grade": {"at_most": "B"}}, True),
        ({"grade": {"at_most": "C"}}, False),
        ({"grade": {"at_least": "A", "at_most": "C"}}, False),
        ({"grade": {"at_least": "C", "at_most": "A"}}, True),
        ({"field": {"name": "country", "equals": "GERMANY"}}, True),
        ({"field": {"name": "country", "one_of": ["France", "germany"]}}, True),
        ({"field": {"name": "country", "one_of": ["France"]}}, False),
        ({"field": {"name": "title", "contains": "MARKETING"}}, True),
        ({"field": {"name": "title", "contains": "sales"}}, False),
        ({"field": {"name": "team_size", "equals": "50"}}, True),  # custom field without its cf_ prefix
        ({"field": {"name": "interests", "equals": "security"}}, True),  # one of a multi-value field
        ({"field": {"name": "company", "equals": "acme"}}, True),  # blank field, the custom one has it
        ({"field": {"name": "title", "exists": True}}, True),
        ({"field": {"name": "phone", "exists": True}}, False),
        ({"field": {"name": "phone", "exists": False}}, True),
        ({"tag": "vip"}, True),
        ({"tag": "customer"}, False),
        ({"stage": ["mql", "sql"]}, True),
        ({"stage": ["lead"]}, False),
        ({"activity": {"type": "page_viewed", "within_days": 7}}, True),
        ({"activity": {"type": "page_viewed", "within_days": 7, "min_count": 3}}, False),
        ({"activity": {"type": "page_viewed", "within_days": 60, "min_count": 3}}, True),
        ({"activity": {"type": "page_viewed", "within_days": 30, "url_contains": "PRICING"}}, True),
        ({"activity": {"type": "page_viewed", "within_days": 30, "url_contains": "pricing", "min_count": 2}}, False),
        ({"activity": {"type": "form_submitted", "form_id": "demo-signup"}}, True),
        ({"activity": {"type": "form_submitted", "form_id": "newsletter"}}, False),
        ({"activity": {"type": "download"}}, False),
        ({"all": [{"tag": "vip"}, {"stage": ["mql"]}]}, True),
        ({"all": [{"tag": "vip"}, {"stage": ["lead"]}]}, False),
        ({"any": [{"tag": "nope"}, {"stage": ["mql"]}]}, True),
        ({"any": [{"tag": "nope"}, {"stage": ["lead"]}]}, False),
        ({"none": [{"tag": "nope"}, {"stage": ["lead"]}]}, True),
        ({"none": [{"tag": "vip"}]}, False),
    ],
)
def test_each_condition_key(condition: dict[str, Any], holds: bool):
    # GIVEN the lead PERSON and an enrollment with three emails (discount opened, product clicked)
    enrollment = with_emails(*EMAILS)

    # WHEN the condition is evaluated
    # THEN it holds as expected
    assert matches(cond(condition), PERSON, NOW, enrollment) is holds


def test_email_conditions_need_an_enrollment():
    # WHEN email conditions are evaluated without an enrollment
    # THEN they never hold
    assert not matches(cond({"opened": "previous"}), PERSON, NOW)
    assert not matches(cond({"clicked_tag": "pricing"}), PERSON, NOW)


def test_a_score_test_without_a_model_reads_the_default_model():
    # GIVEN a lead scored in two models, smb being the default
    person = replace(PERSON, scores={"smb": 80.0, "key_account": 5.0}, default_model="smb")
    unknown_default = replace(person, default_model=None)

    # WHEN a score test without a model is evaluated
    test = cond({"score": {"gte": 50}})

    # THEN it reads the default model (and nothing when the default is unknown and there are several)
    assert matches(test, person, NOW) and not matches(test, unknown_default, NOW)


def test_a_missing_grade_fails_both_grade_tests():
    # GIVEN a lead without a grade
    ungraded = replace(PERSON, profile={**PERSON.profile, "grade": None})

    # WHEN grade tests are evaluated
    # THEN neither holds
    assert not matches(cond({"grade": {"at_least": "F"}}), ungraded, NOW)
    assert not matches(cond({"grade": {"at_most": "A"}}), ungraded, NOW)


SEGMENTS = SegmentList.model_validate(
    {
        "segments": [
            {"id": "germans", "name": "Germans", "when": {"field": {"name": "country", "equals": "germany"}}},
            {"id": "hot-germans", "name": "Hot", "when": {"all": [{"segment": "germans"}, {"score": {"gte": 40}}]}},
            {"id": "loop-a", "name": "A", "when": {"segment": "loop-b"}},
            {"id": "loop-b", "name": "B", "when": {"segment": "loop-a"}},
        ]
    }
)


@pytest.mark.parametrize(
    ("segment_id", "holds"), [("germans", True), ("hot-germans", True), ("unknown", False), ("loop-a", False)]
)
def test_segment_conditions_look_the_segment_up(segment_id: str, holds: bool):
    # WHEN a segment condition is evaluated (nested, unknown, or circular)
    # THEN it holds when the segment matches; unknown and circular segments never do
    assert matches(cond({"segment": segment_id}), PERSON, NOW, None, SEGMENTS) is holds


def test_a_segment_condition_without_segments_never_holds():
    # WHEN a segment condition is evaluated without segments.yaml
    # THEN it does not hold
    assert not matches(cond({"segment": "germans"}), PERSON, NOW)


def test_in_segment_evaluates_a_segment():
    # GIVEN the hot germans segment
    hot = next(s for s in SEGMENTS.segments if s.id == "hot-germans")

    # WHEN a hot German lead and a cold one are tested
    cold = replace(PERSON, scores={"smb": 1.0})

    # THEN only the hot one belongs
    assert in_segment(hot, PERSON, NOW, SEGMENTS) and not in_segment(hot, cold, NOW, SEGMENTS)


# ---------------------------------------------------------------------------- re-entry


def test_a_first_enrollment_starts_at_the_first_step_due_now():
    # WHEN a lead is enrolled
    created = enroll(PUSH, 3, "lead-1", NOW, None)

    # THEN it is active at the first step, entry 1, on the given version, due now
    assert created == Enrollment(
        lead_id="lead-1",
        sequence_id="push",
        version=3,
        entry=1,
        step_id="discount",
        status="active",
        entered_at=NOW,
        step_started_at=NOW,
        due_at=NOW,
    )


def ended(days_ago: float, status: str = "completed") -> Enrollment:
    at = NOW - timedelta(days=days_ago)
    return replace(start(PUSH, at=at - DAY), status=status, due_at=None, ended_at=at, entry=2)


@pytest.mark.parametrize(
    ("policy", "previous", "entry"),
    [
        ({"policy": "never"}, ended(100), None),
        ({"policy": "after_exit"}, replace(ended(1), status="active", ended_at=None), None),
        ({"policy": "after_exit"}, ended(0), 3),
        ({"policy": "after_exit", "cooldown_days": 30}, ended(29.9), None),
        ({"policy": "after_exit", "cooldown_days": 30}, ended(30), 3),
        ({"policy": "after_exit", "cooldown_days": 30}, ended(31, status="exited"), 3),
        ({"policy": "always"}, replace(ended(1), status="active", ended_at=None), 3),
    ],
)
def test_re_entry_policies(policy: dict[str, Any], previous: Enrollment, entry: int | None):
    # GIVEN a sequence with a re-entry policy and the lead's previous (second) enrollment
    seq = sequence(email("welcome"), reentry=policy)

    # WHEN the lead is enrolled again
    created = enroll(seq, 1, "lead-1", NOW, previous)

    # THEN the policy allows it (as the third entry) or refuses
    assert (created.entry if created else None) == entry
    if created is not None:
        assert (created.status, created.step_id, created.due_at, created.emails) == ("active", "welcome", NOW, ())


def test_a_paused_sequence_enrolls_nobody():
    # WHEN a lead is enrolled in a paused sequence
    # THEN it is refused
    assert enroll(sequence(email("welcome"), status="paused"), 1, "lead-1", NOW, None) is None


# ---------------------------------------------------------------------------- migrations

V2 = sequence(
    email("welcome"),
    wait("short-pause", days=1),
    email("offer"),
    wait("pause", days=2),
    migrations=[{"from_version": 1, "steps": {"long-pause": "short-pause", "webinar": "end"}}],
)


@pytest.mark.parametrize(
    ("step_id", "moved_to"),
    [("long-pause", "short-pause"), ("offer", "offer"), ("webinar", "end"), ("survey", None)],
)
def test_migrations_move_leads_onto_the_new_version(step_id: str, moved_to: str | None):
    # GIVEN a lead on version 1 at a step that was renamed, kept, ended or dropped in version 2
    enrollment = replace(start(V2), step_id=step_id, step_started_at=NOW - DAY, due_at=NOW + DAY)

    # WHEN it is migrated
    moved = migrate(enrollment, V2, 2, now=NOW)

    # THEN it moves to the mapped step (or keeps its own), due now; a step without a place stays on version 1
    if moved_to is None:
        assert moved is None
        return
    assert moved is not None and moved.version == 2 and moved.step_id == moved_to
    if moved_to == "end":
        assert (moved.status, moved.due_at, moved.ended_at) == ("completed", None, NOW)
    else:
        assert moved.status == "active" and moved.due_at == NOW and moved.step_started_at == NOW - DAY


def test_a_migrated_wait_keeps_the_time_already_waited():
    # GIVEN a lead a day and a half into the old long pause, migrated to the 1-day pause
    enrollment = replace(start(V2), step_id="long-pause", step_started_at=NOW - timedelta(hours=36))
    moved = migrate(enrollment, V2, 2)
    assert moved is not None and moved.due_at is not None and moved.due_at <= NOW

    # WHEN it is advanced
    outcome = advance(V2, moved, lead(), NOW, NO_QUIET)

    # THEN the shorter wait is already over and the offer goes out
    assert outcome.email is not None and outcome.email.step_id == "offer"


def test_no_migration_leaves_the_lead_on_its_version():
    # GIVEN version 3, which migrates from version 2 only, and a lead on version 1
    v3 = sequence(email("welcome"), migrations=[{"from_version": 2}])
    enrollment = start(V2)

    # WHEN it is migrated
    # THEN nothing applies (and an enrollment already on the version is left alone too)
    assert migrate(enrollment, v3, 3) is None
    assert migrate(replace(enrollment, version=3), v3, 3) is None
    assert migrate(replace(enrollment, version=2), v3, 3) is not None


# ---------------------------------------------------------------------------- variants

SPLIT = (Variant("a", 50, subject="Subject A"), Variant("b", 50, template="layout-b"))


def test_variants_split_ten_thousand_leads_evenly():
    # WHEN 10,000 leads get a variant of a 50/50 test
    picks = [choose_variant(SPLIT, f"lead-{i}", "push", "discount") for i in range(10_000)]

    # THEN each variant gets 50% of them, within 3 points
    share_a = sum(1 for pick in picks if pick is not None and pick.id == "a") / len(picks)
    assert 0.47 <= share_a <= 0.53


def test_variant_weights_are_honoured():
    # WHEN 10,000 leads get a variant of an 80/20 test
    weighted = (Variant("big", 80), Variant("small", 20))
    picks = [choose_variant(weighted, f"lead-{i}", "push", "discount") for i in range(10_000)]

    # THEN about 80% get the big one
    share = sum(1 for pick in picks if pick is not None and pick.id == "big") / len(picks)
    assert 0.77 <= share <= 0.83


def test_a_lead_always_gets_the_same_variant_and_its_subject_or_template():
    # GIVEN an email step with two variants
    seq = sequence(email("welcome", variants=[{"id": "a", "subject": "Subject A"}, {"id": "b", "template": "b"}]))

    # WHEN leads are advanced twice (a retry)
    for i in range(50):
        enrollment = start(seq, lead_id=f"lead-{i}")
        first = advance(seq, enrollment, lead(f"lead-{i}"), NOW, NO_QUIET).email
        retry = advance(seq, enrollment, lead(f"lead-{i}"), NOW, NO_QUIET).email

        # THEN they get the same variant both times, with what it changes
        assert first is not None and retry is not None and first == retry
        if first.variant == "a":
            assert (first.subject, first.template) == ("Subject A", "welcome")
        else:
            assert (first.variant, first.subject, first.template) == ("b", "About welcome", "b")


def test_no_variants_no_choice():
    # WHEN a step without variants is asked for one
    # THEN there is none
    assert choose_variant((), "lead-1", "push", "discount") is None


# ---------------------------------------------------------------------------- timezones


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({"timezone": "Asia/Kolkata", "country": "US"}, "Asia/Kolkata"),
        ({"timezone": "europe/berlin"}, "Europe/Berlin"),
        ({"timezone": "Mars/Olympus", "country": "JP"}, "Asia/Tokyo"),
        ({"timezone": "../../etc/passwd", "country": "jp"}, "Asia/Tokyo"),
        ({"country": "US"}, "America/New_York"),
        ({"country": "de"}, "Europe/Berlin"),
        ({"country": "Germany"}, "Europe/Berlin"),
        ({"country": "  united   kingdom "}, "Europe/London"),
        ({"country": "UK"}, "Europe/London"),
        ({"country": "U.S.A."}, "America/New_York"),
        ({"country": "IN"}, "Asia/Kolkata"),
        ({"country": "Australia"}, "Australia/Sydney"),
        ({"country": "br"}, "America/Sao_Paulo"),
        ({"country": "Atlantis"}, "Europe/Paris"),
        ({"timezone": 5, "country": ["DE"]}, "Europe/Paris"),
        ({}, "Europe/Paris"),
    ],
)
def test_lead_timezone(profile: dict[str, Any], expected: str):
    # WHEN the timezone of a lead is worked out (default Europe/Paris)
    # THEN the valid IANA name wins, then the country, then the default
    assert lead_timezone(profile, "Europe/Paris") == ZoneInfo(expected)


def test_every_country_timezone_exists():
    # GIVEN the country table
    zones = set(COUNTRY_TIMEZONES.values())

    # WHEN each timezone is loaded
    # THEN it exists, and the table covers at least 80 countries
    assert all(ZoneInfo(zone) for zone in zones)
    assert len({key for key in COUNTRY_TIMEZONES if len(key) == 2}) >= 80


# ---------------------------------------------------------------------------- speed


def test_advance_handles_thousands_of_leads_per_second():
    # GIVEN 20,000 new enrollments in the push sequence and their leads
    messaging = MessagingConfig()
    leads = [lead(f"lead-{i}", country=("JP", "DE", "US", "BR")[i % 4], tags=["webinar"]) for i in range(20_000)]
    enrollments = [start(PUSH, lead_id=f"lead-{i}", at=NOW) for i in range(20_000)]
    noon = datetime(2026, 11, 4, 15, 0, tzinfo=UTC)

    # WHEN each is advanced (the discount goes out or waits for quiet hours, the lead waits)
    # (this thread's CPU time, as bench/nurture_step_logic.py --clock cpu: in the full suite the
    # session's local stack still runs its threads, and wall time counted their turns too; the
    # least of three runs, as timeit advises)
    outcomes, elapsed = thread_cpu_time(
        lambda: [advance(PUSH, e, person, noon, messaging) for e, person in zip(enrollments, leads, strict=True)]
    )

    # THEN it takes well under 4 seconds (5,000 leads a second at the very least)
    assert elapsed < 4.0, f"{len(outcomes) / elapsed:.0f} advances/s"
    assert all(o.email is not None or o.deferred == "quiet_hours" for o in outcomes)


# ---------------------------------------------------------------------------- held enrollments


def test_push_waits_lapse_quietly_for_a_lead_who_did_nothing() -> None:
    # GIVEN the push campaign's three waits, each with its email sent and not reacted to
    emails = (sent("discount"), sent("product"), sent("coupon"))
    # THEN each ends the sequence when it runs out: nothing to send, run or record but the end
    for step in ("wait-open", "wait-click", "wait-redeem"):
        assert lapses_quietly(PUSH, step, emails)
    # AND not once the lead reacted in the way its branch asks about
    assert not lapses_quietly(PUSH, "wait-open", (sent("discount", opened=True),))
    assert not lapses_quietly(PUSH, "wait-redeem", (*emails[:2], sent("coupon", clicked=True, link_tags=("redeem",))))
    # AND a step that is not a wait does not lapse
    assert not lapses_quietly(PUSH, "discount", emails)


@pytest.mark.parametrize(
    ("steps", "extra"),
    [
        # a reminder to those who did not open: an email to send when the wait runs out
        ((email("a"), wait("w", days=3), branch("b", {"opened": "a"}, "end", "r"), email("r")), {}),
        # a branch on a profile field: different for each lead
        (
            (
                email("a"),
                wait("w", days=3),
                branch("b", {"field": {"name": "country", "equals": "GB"}}, "x", "end"),
                email("x"),
            ),
            {},
        ),
        # an action after the wait
        ((email("a"), wait("w", days=3), action("t", {"tag": "cold"})), {}),
        # a wait until a local time: its end depends on the lead's timezone
        ((email("a"), wait("w", days=1, until={"time": "09:00"})), {}),
        # a goal read from a field, which no event wakes
        ((email("a"), wait("w", days=3)), {"goal": {"field": {"name": "company", "exists": True}}}),
        # an until_event on recent activity, which no event wakes
        ((email("a"), wait("w", days=3, until_event={"activity": {"type": "page_viewed", "within_days": 3}})), {}),
    ],
)
def test_waits_that_do_not_lapse_quietly(steps: tuple[dict[str, Any], ...], extra: dict[str, Any]) -> None:
    assert not lapses_quietly(sequence(*steps, **extra), "w", (sent("a"),))


def test_a_goal_on_stage_or_score_still_lapses_quietly_since_its_changes_wake_the_lead() -> None:
    seq = sequence(email("a"), wait("w", days=3, until_event={"score": {"gte": 50}}), goal={"stage": ["sql"]})
    assert lapses_quietly(seq, "w", (sent("a"),))


def test_holdable_outcomes_sent_an_email_and_wait_where_the_sequence_lapses_quietly() -> None:
    # GIVEN the push campaign's first step for a new lead
    outcome = advance(PUSH, start(PUSH), lead(), NOW, NO_QUIET)
    # THEN it sent the discount email and waits: holdable
    assert outcome.email is not None and outcome.deferred == "waiting" and holdable(PUSH, outcome)
    # AND an outcome without an email, or with actions, is not
    assert not holdable(PUSH, replace(outcome, email=None))
    assert not holdable(PUSH, replace(outcome, actions=(models.validate(Action, {"tag": "x"}),)))
    # AND a deferred email (quiet hours) is not
    quiet = MessagingConfig(quiet_hours=QuietHours(start="00:00", end="23:59"))
    assert not holdable(PUSH, advance(PUSH, start(PUSH), lead(), NOW, quiet))


def test_a_held_enrollment_completes_at_the_end_of_its_wait_unless_the_lead_reacted() -> None:
    # GIVEN a held enrollment waiting for the discount to be opened
    waiting = advance(PUSH, start(PUSH), lead(), NOW, NO_QUIET).enrollment
    assert waiting.due_at == NOW + 7 * DAY
    # THEN it is active until the wait ends, then completed at its end
    assert held_state(PUSH, waiting, NOW + DAY) == waiting
    ended = held_state(PUSH, waiting, NOW + 8 * DAY)
    assert (ended.status, ended.step_id, ended.exit_reason, ended.ended_at) == (
        "completed",
        "end",
        "completed",
        NOW + 7 * DAY,
    )
    # AND one whose email was opened stays active (due: its next step is owed)
    engaged = reacted(waiting, "discount")
    assert held_state(PUSH, engaged, NOW + 8 * DAY) == engaged
    # AND without its sequence definition it is shown as stored
    assert held_state(None, waiting, NOW + 8 * DAY) == waiting


def test_send_slots_are_taken_in_blocks_that_grow_with_the_rate_and_never_pass_it() -> None:
    from leadflow.services.nurture import PART_RATE, SLOT_BLOCK, broadcast_parts, slot_block

    assert slot_block(14) == 14  # the demo's rate: one block is the whole second
    assert slot_block(100) == SLOT_BLOCK  # five parts of 20/s: the block floor, one write a second each
    assert slot_block(10_000) == SLOT_BLOCK  # 500 parts of 20/s: the floor, never fewer slots than a share
    for rate in (1, 14, 25, 400, 1_000, 50_000):
        block = slot_block(rate)
        assert 1 <= block <= rate
        # one block a second per part covers the rate, and no part's block is much above its share
        assert block * broadcast_parts(rate) >= rate
        assert block <= max(SLOT_BLOCK, -(-rate // broadcast_parts(rate)), PART_RATE)
