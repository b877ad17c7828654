"""Held enrollments: a broadcast's enrollment that sent its email and waits at a step that lapses
quietly is held by the lead's mail log (no item, no due-index entry, no write to end)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from leadflow.domain.definitions.conditions import END, Condition
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.definitions.steps import BranchStep, GoalStep, WaitStep
from leadflow.domain.nurture.conditions import _CACHE_LIMIT
from leadflow.domain.nurture.engine import MAX_STEPS, _Plan, _plan
from leadflow.domain.nurture.state import ACTIVE, COMPLETED, Enrollment, LeadView, Outcome, SentEmail

ENGAGEMENT_KEYS = frozenset({"all", "any", "none", "opened", "clicked", "clicked_tag"})
"""Conditions that read only the enrollment's emails (what the lead did with them)."""
WAKING_KEYS = ENGAGEMENT_KEYS | {"stage", "score", "grade", "tag"}
"""Conditions whose every change reaches the nurture events function as an event (``lead.stage_changed``,
``lead.scored``, ``lead.tagged``), which looks at the lead's waits and goals at once (``_wake``)."""
_NOBODY = LeadView(lead_id="", profile={})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reads_only(condition: Condition, keys: frozenset[str]) -> bool:
    return all(part.key in keys for part in condition.walk())


_QUIET: dict[tuple[int, str, tuple[tuple[str, bool, bool, tuple[str, ...]], ...]], tuple[Sequence, bool]] = {}


def lapses_quietly(sequence: Sequence, step_id: str, emails: tuple[SentEmail, ...]) -> bool:
    """``_lapses_quietly``, remembered per sequence, step and what the lead did with its emails
    (a broadcast asks it for every lead, nearly always with the same answer)."""
    key = (id(sequence), step_id, tuple((e.step_id, e.opened, e.clicked, e.link_tags) for e in emails))
    found = _QUIET.get(key)
    if found is not None and found[0] is sequence:
        return found[1]
    if len(_QUIET) >= _CACHE_LIMIT:
        _QUIET.clear()
    answer = _lapses_quietly(sequence, step_id, emails)
    _QUIET[key] = (sequence, answer)
    return answer


def _lapses_quietly(sequence: Sequence, step_id: str, emails: tuple[SentEmail, ...]) -> bool:
    """Whether a lead waiting at wait step ``step_id`` ends the sequence, doing nothing and sending
    nothing, when the wait runs out: for every lead alike, given only the enrollment's ``emails``.

    True when the wait has a plain duration (no local weekday or time, which depend on the lead's
    timezone) and every step after it up to the end is a branch or goal step that reads only the
    emails (opened, clicked, clicked a link tag), taking the path to the end; the wait's
    ``until_event`` and the sequence goal may also read stage, score, grade or tags, whose changes
    arrive as events that look at the lead's waits at once. Such an enrollment needs no write and no
    due-index entry to end: it is *held* by the lead's mail log (the one write of its email) and
    reads as completed once its wait is over (``held_state``).
    """
    plan = _plan(sequence)
    step = plan.steps.get(step_id)
    if not isinstance(step, WaitStep) or not _waits_quietly(step, sequence, plan, emails):
        return False
    return _ends_quietly(plan, plan.next[step_id], emails)


def _waits_quietly(step: WaitStep, sequence: Sequence, plan: _Plan, emails: tuple[SentEmail, ...]) -> bool:
    """Whether the wait is the same for every lead (a plain duration) and whatever may end it early
    (its ``until_event``, the sequence goal) arrives as an event, and the goal does not hold already."""
    if step.until is not None:
        return False
    if step.until_event is not None and not _reads_only(step.until_event, WAKING_KEYS):
        return False
    goal = sequence.goal
    if goal is None:
        return True
    if not _reads_only(goal, WAKING_KEYS):
        return False
    return not (
        _reads_only(goal, ENGAGEMENT_KEYS) and plan.goal is not None and plan.goal(_NOBODY, _EPOCH, emails, None, 0)
    )


def _ends_quietly(plan: _Plan, current: str, emails: tuple[SentEmail, ...]) -> bool:
    """Whether the path from step ``current`` reaches the end through branches and goal steps that
    read only the emails, converting nowhere."""
    for _ in range(MAX_STEPS):
        if current == END:
            return True
        step = plan.steps.get(current)
        if not isinstance(step, BranchStep | GoalStep) or not _reads_only(step.when, ENGAGEMENT_KEYS):
            return False
        holds = plan.conditions[current](_NOBODY, _EPOCH, emails, None, 0)
        if isinstance(step, GoalStep):
            if holds:
                return False  # it converts: an outcome to record
            current = plan.next[current]
        else:
            current = step.then if holds else step.otherwise
    return False


def holdable(sequence: Sequence, outcome: Outcome) -> bool:
    """Whether the outcome's enrollment may be held by the lead's mail log instead of stored: it sent
    an email, runs no action, and now waits at a wait step that lapses quietly."""
    enrollment = outcome.enrollment
    return (
        outcome.email is not None
        and not outcome.actions
        and outcome.deferred == "waiting"
        and enrollment.status == ACTIVE
        and lapses_quietly(sequence, enrollment.step_id, enrollment.emails)
    )


def held_state(sequence: Sequence | None, enrollment: Enrollment, now: datetime) -> Enrollment:
    """A held enrollment as of ``now``: once its wait is over and it lapses quietly (nothing the lead
    did since changes the way), it has completed, at the end of the wait."""
    if (
        sequence is not None
        and enrollment.status == ACTIVE
        and enrollment.due_at is not None
        and now >= enrollment.due_at
        and lapses_quietly(sequence, enrollment.step_id, enrollment.emails)
    ):
        return replace(
            enrollment, step_id=END, status=COMPLETED, exit_reason=COMPLETED, due_at=None, ended_at=enrollment.due_at
        )
    return enrollment
