"""Properties of the nurture engine that must hold for any sequence, lead and history.

Random small sequences (every step type, random conditions, forward and backward jumps,
A/B variants, a sequence goal) are walked for one lead over random stretches of time while
the lead opens and clicks what it gets. Whatever happens:

- ``advance`` never raises, and gives the same outcome for the same inputs;
- no message id is ever sent twice, and every email sent is recorded in the enrollment;
- an active enrollment is due at or after now (strictly after now when it waits for
  something); an ended one is due never;
- the status only moves from active to completed, converted, exited or failed, and an
  ended enrollment never changes again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from leadflow.domain.consent import consent_decision
from leadflow.domain.definitions.conditions import (
    END,
    PREVIOUS,
    WEEKDAYS,
    ActivityTest,
    Condition,
    FieldTest,
    GradeTest,
    ScoreTest,
    SegmentList,
)
from leadflow.domain.definitions.consent import ConsentPolicy, Purpose, Region
from leadflow.domain.definitions.messaging import FrequencyCaps, MessagingConfig, QuietHours
from leadflow.domain.definitions.scoring import GRADES, STAGES, ActivityType, GradeLetter
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.definitions.steps import (
    Action,
    ActionStep,
    BranchStep,
    EmailStep,
    GoalStep,
    StepType,
    UntilTime,
    Variant,
    WaitStep,
)
from leadflow.domain.nurture import (
    TERMINAL_STATUSES,
    ActivityView,
    Enrollment,
    LeadView,
    SentEmail,
    advance,
    enroll,
    lead_timezone,
    matches,
)

pytestmark = pytest.mark.unit

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = datetime(2026, 9, 1, 6, 30, tzinfo=UTC)
TAGS = ("redeem", "pricing", "vip")
LETTERS: tuple[GradeLetter, ...] = ("A", "B", "C", "D", "E", "F")
SEGMENTS = SegmentList.model_validate(
    {
        "segments": [
            {"id": "hot", "name": "Hot", "when": {"score": {"model": "mql", "gte": 50}}},
            {"id": "hot-vip", "name": "Hot VIPs", "when": {"all": [{"segment": "hot"}, {"tag": "vip"}]}},
        ]
    }
)

# ---------------------------------------------------------------------------- strategies

instants = st.integers(min_value=-8 * 86_400, max_value=30 * 86_400).map(lambda s: START + timedelta(seconds=s))
past_instants = st.integers(min_value=-8 * 86_400, max_value=0).map(lambda s: START + timedelta(seconds=s))
clock_times = st.sampled_from(["00:00", "06:30", "08:00", "09:00", "12:15", "21:00", "23:59"])


def leaf_conditions(email_ids: list[str]) -> st.SearchStrategy[Condition]:
    refs = st.sampled_from([PREVIOUS, *email_ids])
    thresholds = st.floats(min_value=-50, max_value=150, allow_nan=False)
    return st.one_of(
        refs.map(lambda ref: Condition(opened=ref)),
        refs.map(lambda ref: Condition(clicked=ref)),
        st.sampled_from(TAGS).map(lambda tag: Condition(clicked_tag=tag)),
        st.tuples(st.sampled_from(["mql", "smb", None]), thresholds, st.one_of(st.none(), thresholds)).map(
            lambda t: Condition(score=ScoreTest(model=t[0], gte=t[1], lt=t[2]))
        ),
        st.tuples(st.sampled_from([*LETTERS, None]), st.sampled_from(LETTERS)).map(
            lambda t: Condition(grade=GradeTest(at_least=t[0], at_most=t[1]))
        ),
        st.sampled_from(
            [
                FieldTest(name="country", equals="de"),
                FieldTest(name="country", one_of=("US", "Japan")),
                FieldTest(name="team_size", contains="5"),
                FieldTest(name="company", exists=True),
                FieldTest(name="company", exists=False),
            ]
        ).map(lambda test: Condition(field=test)),
        st.sampled_from(TAGS).map(lambda tag: Condition(tag=tag)),
        st.lists(st.sampled_from(STAGES), min_size=1, max_size=3).map(lambda s: Condition(stage=tuple(s))),
        st.builds(
            ActivityTest,
            type=st.sampled_from([ActivityType.PAGE_VIEWED, ActivityType.FORM_SUBMITTED]),
            within_days=st.integers(min_value=1, max_value=30),
            min_count=st.integers(min_value=1, max_value=3),
            url_contains=st.sampled_from([None, "pricing"]),
            form_id=st.sampled_from([None, "demo"]),
        ).map(lambda test: Condition(activity=test)),
        st.sampled_from(["hot", "hot-vip", "gone"]).map(lambda sid: Condition(segment=sid)),
    )


def conditions(email_ids: list[str]) -> st.SearchStrategy[Condition]:
    def combine(children: st.SearchStrategy[Condition]) -> st.SearchStrategy[Condition]:
        parts = st.lists(children, min_size=1, max_size=3).map(tuple)
        return st.one_of(
            parts.map(lambda p: Condition(all=p)),
            parts.map(lambda p: Condition(any=p)),
            parts.map(lambda p: Condition(none=p)),
        )

    return st.recursive(leaf_conditions(email_ids), combine, max_leaves=4)


@st.composite
def sequences(draw: st.DrawFn) -> Sequence:
    """A small valid sequence: only waits may jump anywhere (a loop needs a wait in it); other steps jump forward."""
    kinds = draw(st.lists(st.sampled_from(["email", "wait", "branch", "action", "goal"]), min_size=1, max_size=7))
    ids = [f"s{index}" for index in range(len(kinds))]
    email_ids = [ids[index] for index, kind in enumerate(kinds) if kind == "email"]
    when = conditions(email_ids)
    steps: list[StepType] = []
    for index, kind in enumerate(kinds):
        step_id = ids[index]
        forward = st.sampled_from([*ids[index + 1 :], END])
        anywhere = st.one_of(st.none(), st.sampled_from([*ids, END]))
        if kind == "email":
            variants = draw(
                st.sampled_from([(), (Variant("a", 50, subject="A"), Variant("b", 30, template="b"))]),
            )
            steps.append(
                EmailStep(
                    id=step_id,
                    type="email",
                    template=f"t-{step_id}",
                    subject=f"s-{step_id}",
                    topic=draw(st.sampled_from([None, "news"])),
                    purpose=draw(st.sampled_from([None, "marketing_email", "event_invitations"])),
                    transactional=draw(st.sampled_from([False, False, True])),
                    variants=variants,
                    next=draw(st.one_of(st.none(), forward)),
                )
            )
        elif kind == "wait":
            hours = draw(st.sampled_from([0, 0, 1, 5, 30, 24 * 7]))
            until = draw(st.one_of(st.none(), st.builds(UntilTime, time=clock_times, weekdays=weekdays())))
            if hours == 0 and until is None:
                hours = 2
            event = draw(st.one_of(st.none(), when)) if hours else None
            steps.append(
                WaitStep(id=step_id, type="wait", hours=hours, until=until, until_event=event, next=draw(anywhere))
            )
        elif kind == "branch":
            steps.append(
                BranchStep(id=step_id, type="branch", when=draw(when), then=draw(forward), otherwise=draw(forward))
            )
        elif kind == "action":
            steps.append(
                ActionStep(id=step_id, type="action", actions=(Action(tag="nurtured"),), next=draw(st.none() | forward))
            )
        else:
            steps.append(GoalStep(id=step_id, type="goal", when=draw(when), next=draw(st.none() | forward)))
    return Sequence(
        id="prop",
        name="Property",
        purpose="marketing_email",
        steps=tuple(steps),
        goal=draw(st.one_of(st.none(), st.none(), when)),
        status=draw(st.sampled_from(["active", "active", "active", "paused"])),
    )


def weekdays() -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True).map(tuple)


profiles = st.fixed_dictionaries(
    {"stage": st.sampled_from(STAGES)},
    optional={
        "timezone": st.one_of(st.sampled_from(["Asia/Tokyo", "America/New_York", "Nowhere/City", ""]), st.text()),
        "country": st.one_of(st.sampled_from(["DE", "japan", "United States", "xx"]), st.text(max_size=20)),
        "grade": st.sampled_from([*GRADES, None, "z", "b"]),
        "tags": st.lists(st.sampled_from(TAGS), max_size=3),
        "unsubscribed": st.sampled_from([False, False, False, True]),
        "unsubscribed_topics": st.lists(st.sampled_from(["marketing", "news"]), max_size=1),
        "consent_pending": st.sampled_from([False, False, False, True]),
        "consent_marketing_email": st.sampled_from(
            [{"granted": True, "at": "2026-01-01"}, {"granted": False, "source": "complaint"}, "yes", None, {}]
        ),
        "consent_event_invitations": st.sampled_from([{"granted": True}, {"granted": "false"}]),
        "consent_confirmed_at": st.sampled_from(["2026-01-02", None]),
        "forms_submitted": st.lists(st.sampled_from(["demo", "webinar"]), max_size=2),
        "company": st.sampled_from(["Acme", "", "  ", None]),
        "cf_team_size": st.sampled_from(["5", "50", 5, 5.0, ["5"]]),
    },
)
activities = st.builds(
    ActivityView,
    type=st.sampled_from(["page_viewed", "form_submitted", "email_clicked"]),
    at=instants,
    attrs=st.fixed_dictionaries(
        {}, optional={"url": st.sampled_from(["/pricing", "/blog"]), "form_id": st.just("demo")}
    ),
)
leads = st.builds(
    LeadView,
    lead_id=st.sampled_from(["lead-1", "lead-2", "lead-3"]),
    profile=profiles,
    scores=st.dictionaries(st.sampled_from(["mql", "smb"]), st.floats(min_value=-20, max_value=200, allow_nan=False)),
    activities=st.lists(activities, max_size=4).map(tuple),
    suppressed=st.sampled_from([False, False, False, True]),
    recent_sends=st.lists(past_instants, max_size=4).map(tuple),
    default_model=st.sampled_from([None, "mql"]),
)
messaging_configs = st.builds(
    MessagingConfig,
    default_timezone=st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York"]),
    frequency=st.builds(
        FrequencyCaps, per_day=st.integers(min_value=1, max_value=3), per_week=st.integers(min_value=1, max_value=6)
    ),
    quiet_hours=st.one_of(
        st.none(),
        st.tuples(clock_times, clock_times).filter(lambda t: t[0] != t[1]).map(lambda t: QuietHours(*t)),
    ),
    confirmation_days=st.integers(min_value=1, max_value=10),
)
# Each round: how long until the next look (None: exactly at the due time), and what the lead did
# with the last email it got (open, click, the tag of the link clicked).
rounds = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(min_value=0, max_value=3 * 86_400)),
        st.booleans(),
        st.booleans(),
        st.sampled_from(TAGS),
    ),
    min_size=1,
    max_size=15,
)


def react(enrollment: Enrollment, opened: bool, clicked: bool, tag: str) -> Enrollment:
    if not enrollment.emails:
        return enrollment
    last = enrollment.emails[-1]
    reacted = SentEmail(
        last.step_id,
        last.message_id,
        last.sent_at,
        opened=last.opened or opened,
        clicked=last.clicked or clicked,
        link_tags=(*last.link_tags, tag) if clicked else last.link_tags,
    )
    return replace(enrollment, emails=(*enrollment.emails[:-1], reacted))


# ---------------------------------------------------------------------------- properties


BASES = st.sampled_from(["opt_in", "soft_opt_in", "opt_out"])
policies = st.builds(
    ConsentPolicy,
    purposes=st.just((Purpose("marketing_email", "Marketing"), Purpose("event_invitations", "Events"))),
    default_basis=BASES,
    regions=st.lists(
        st.builds(
            Region,
            countries=st.sampled_from([("DE",), ("US", "JP")]).map(tuple),
            basis=BASES,
            double_opt_in=st.sampled_from([None, True, False]),
        ),
        max_size=2,
    ).map(tuple),
    double_opt_in=st.booleans(),
    soft_opt_in_forms=st.just(("demo",)),
)


@PROPERTY
@given(sequence=sequences(), lead=leads, messaging=messaging_configs, history=rounds, policy=policies)
def test_a_walk_never_fails_its_invariants(
    sequence: Sequence,
    lead: LeadView,
    messaging: MessagingConfig,
    history: list[tuple[int | None, bool, bool, str]],
    policy: ConsentPolicy,
):
    # GIVEN a random sequence and lead, the lead enrolled at START
    enrollment = enroll(replace(sequence, status="active"), 1, lead.lead_id, START, None)
    assert enrollment is not None
    now = START
    sent_ids: set[str] = set()

    for gap, opened, clicked, tag in history:
        # WHEN it is looked at (at its due time or after a random gap), and again with the same inputs
        if gap is None:
            now = max(now, enrollment.due_at) if enrollment.due_at is not None else now
        else:
            now += timedelta(seconds=gap)
        outcome = advance(sequence, enrollment, lead, now, messaging, SEGMENTS, policy)
        again = advance(sequence, enrollment, lead, now, messaging, SEGMENTS, policy)
        moved = outcome.enrollment

        # THEN the outcome is deterministic...
        assert again == outcome
        # ... an ended enrollment never changes, an active one only ends one way
        if enrollment.status != "active":
            assert outcome.enrollment == enrollment and outcome.email is None
            continue
        assert moved.status == "active" or moved.status in TERMINAL_STATUSES
        # ... an email is new, and recorded
        if outcome.email is not None:
            assert outcome.email.message_id not in sent_ids
            # ... a marketing email only with consent for its purpose (a transactional one needs none)
            step = sequence.step(outcome.email.step_id)
            assert isinstance(step, EmailStep)
            purpose = sequence.purpose_of(step)
            assert purpose is None or consent_decision(purpose, lead.profile, policy) == "granted"
            sent_ids.add(outcome.email.message_id)
            assert moved.emails == (*enrollment.emails, SentEmail(outcome.email.step_id, outcome.email.message_id, now))
            lead = replace(lead, recent_sends=(*lead.recent_sends, now))
        else:
            assert moved.emails == enrollment.emails
        # ... an active enrollment is due now or later (later when it waits for something)
        if moved.status == "active":
            assert moved.due_at is not None and moved.due_at >= now
            assert moved.step_id != END
            if outcome.deferred is not None:
                assert moved.due_at > now
            else:
                assert outcome.email is not None and moved.due_at == now
        else:
            assert moved.due_at is None and moved.ended_at == now and moved.exit_reason
            assert outcome.deferred is None
        event(f"outcome: {moved.status} {moved.exit_reason or outcome.deferred or 'moved'}")
        enrollment = react(moved, opened, clicked, tag)

    # THEN no message id was sent twice over the whole walk
    assert len({sent.message_id for sent in enrollment.emails}) == len(enrollment.emails)


@PROPERTY
@given(data=st.data(), lead=leads, now=instants, emails=st.lists(st.booleans(), max_size=3))
def test_matches_never_raises(data: st.DataObject, lead: LeadView, now: datetime, emails: list[bool]):
    # GIVEN a random condition and an enrollment with a few emails
    condition = data.draw(conditions(["s0", "s1"]))
    sequence = Sequence(
        id="prop",
        name="Property",
        steps=(EmailStep(id="s0", type="email", template="t", subject="s", purpose="marketing_email"),),
    )
    enrollment = enroll(sequence, 1, lead.lead_id, START, None)
    assert enrollment is not None
    enrollment = replace(
        enrollment,
        emails=tuple(SentEmail(f"s{i % 2}", f"m{i}", START, opened=o, clicked=o) for i, o in enumerate(emails)),
    )

    # WHEN it is evaluated with and without the enrollment and segments
    results = [
        matches(condition, lead, now, enrollment, SEGMENTS),
        matches(condition, lead, now, None, SEGMENTS),
        matches(condition, lead, now),
    ]

    # THEN it answers yes or no
    assert all(isinstance(result, bool) for result in results)


@PROPERTY
@given(profile=st.fixed_dictionaries({}, optional={"timezone": st.text(), "country": st.text()}))
def test_any_profile_has_a_timezone(profile: dict[str, Any]):
    # WHEN the timezone of a profile with arbitrary text is worked out
    zone = lead_timezone(profile, "UTC")

    # THEN it is a usable timezone
    assert START.astimezone(zone).utcoffset() is not None
