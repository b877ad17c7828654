"""What a bus event means for nurture: the sequences its triggers enroll the lead in, an email's
open or click marked on the enrollment that sent it, a lead's change met by its waiting
enrollments, and the segments it newly joined. Pure: the caller gives ``now``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from leadflow.domain.definitions.conditions import Condition, Segment, SegmentList
from leadflow.domain.definitions.sequences import Sequence, Trigger
from leadflow.domain.definitions.steps import BranchStep, EmailStep, GoalStep, WaitStep
from leadflow.domain.nurture.conditions import in_segment, matches
from leadflow.domain.nurture.state import ACTIVE, CONVERTED, Enrollment, LeadView, SentEmail

OPENED = "email_opened"
CLICKED = "email_clicked"


def triggered_by(
    sequences: Iterable[Sequence], detail_type: str, detail: Mapping[str, Any], default_model: str
) -> list[str]:
    """The ids of the active sequences one of whose triggers this bus event fires, sorted.

    Args:
        sequences: the workspace's sequences.
        detail_type: the event's type (``lead.captured``, ``lead.stage_changed``, ``lead.tagged``,
            ``lead.scored``).
        detail: the event's detail.
        default_model: the scoring model a ``score_crossed`` trigger without ``model`` reads.
    """
    found = {
        sequence.id
        for sequence in sequences
        if sequence.status == "active"
        and any(_fires(trigger, detail_type, detail, default_model) for trigger in sequence.triggers)
    }
    return sorted(found)


# Complexity C (13), kept: one flat dispatch on the trigger's kind, one short test per kind.
def _fires(trigger: Trigger, detail_type: str, detail: Mapping[str, Any], default_model: str) -> bool:
    key = trigger.key
    if key == "form_submitted" and detail_type == "lead.captured":
        # A lead created through the admin API or an import submitted no form (``via``).
        return "via" not in detail and trigger.form_submitted in ("*", detail.get("form_id"))
    if key == "stage_reached" and detail_type == "lead.stage_changed":
        return detail.get("to") == trigger.stage_reached
    if key == "tag_added" and detail_type == "lead.tagged":
        return detail.get("tag") == trigger.tag_added
    if key == "score_crossed" and detail_type == "lead.scored" and trigger.score_crossed:
        model = trigger.score_crossed.model or default_model
        new = float((detail.get("scores") or {}).get(model, 0))
        old = new - float(detail.get("points_added") or 0)
        return old < trigger.score_crossed.at_least <= new
    return False


def engaged(enrollment: Enrollment, detail: Mapping[str, Any], now: datetime) -> tuple[Enrollment, bool] | None:
    """The enrollment with an open or click (an ``activity.recorded`` detail) marked on the email it
    names, and whether that ends a wait now (the enrollment is then due now).

    A click also counts as an open and records its link's tag (``link_tag``, or ``link_id``).

    Returns:
        (the changed enrollment, woken), or None when nothing changes (another email, or this
        open or click is already marked).
    """
    message_id = detail.get("message_id")
    clicked = detail.get("type") == CLICKED
    tag = detail.get("link_tag") or detail.get("link_id")
    emails = tuple(_marked(e, clicked, tag) if e.message_id == message_id else e for e in enrollment.emails)
    if emails == enrollment.emails:
        return None
    woken = enrollment.status == ACTIVE and enrollment.due_at is not None and enrollment.due_at > now
    return replace(enrollment, emails=emails, due_at=now if woken else enrollment.due_at), woken


def _marked(email: SentEmail, clicked: bool, tag: Any) -> SentEmail:
    """The email opened, and with ``clicked`` clicked, its link's ``tag`` among its clicked tags."""
    tags = email.link_tags
    if clicked and tag and tag not in tags:
        tags = (*tags, str(tag))
    return replace(email, opened=True, clicked=email.clicked or clicked, link_tags=tags)


def after_change(
    sequence: Sequence, enrollment: Enrollment, lead: LeadView, now: datetime, segments: SegmentList | None
) -> Enrollment | None:
    """A waiting enrollment once its lead changed (stage, score, tags, consent): converted when the
    sequence goal now holds, due now when its wait's ``until_event`` has now happened or its email
    waited for the double opt-in confirmation that has now come, else None (nothing to write: it
    stays due when it was)."""
    if sequence.goal is not None and matches(sequence.goal, lead, now, enrollment, segments):
        return replace(enrollment, status=CONVERTED, exit_reason="goal", due_at=None, ended_at=now)
    step = next((s for s in sequence.steps if s.id == enrollment.step_id), None)
    until = step.until_event if isinstance(step, WaitStep) else None
    if until is not None and matches(until, lead, now, enrollment, segments):
        return replace(enrollment, due_at=now)
    if isinstance(step, EmailStep) and _confirmed_since(lead.profile, enrollment.step_started_at):
        return replace(enrollment, due_at=now)
    return None


def _confirmed_since(profile: Mapping[str, Any], since: datetime) -> bool:
    """Whether the lead confirmed its double opt-in after ``since`` (``consent_confirmed_at``)."""
    confirmed = profile.get("consent_confirmed_at")
    return isinstance(confirmed, str) and datetime.fromisoformat(confirmed) >= since


def segment_triggers(sequences: Iterable[Sequence]) -> dict[str, str]:
    """Segment id -> the active sequence a ``segment_joined`` trigger enrolls its new members in."""
    return {
        trigger.segment_joined: sequence.id
        for sequence in sequences
        for trigger in sequence.triggers
        if trigger.segment_joined and sequence.status == "active"
    }


def segments_joined(
    wanted: Iterable[str], segments: SegmentList, lead: LeadView, now: datetime, known: Iterable[str]
) -> list[str]:
    """Which of the ``wanted`` segments the lead is in now and was not (``known``: its ``segments``)."""
    by_id = {segment.id: segment for segment in segments.segments}
    was = set(known)
    return [sid for sid in wanted if sid in by_id and sid not in was and in_segment(by_id[sid], lead, now, segments)]


def reads_activity(sequence: Sequence, segments: SegmentList) -> bool:
    """Whether the sequence's conditions (goal, branches, goal steps, waits' events, the segments
    they name) read the lead's recent activities: only then are they read for its steps."""
    by_id = {segment.id: segment for segment in segments.segments}
    conditions = [sequence.goal] if sequence.goal else []
    for step in sequence.steps:
        if isinstance(step, BranchStep | GoalStep):
            conditions.append(step.when)
        elif isinstance(step, WaitStep) and step.until_event is not None:
            conditions.append(step.until_event)
    return any(_reads_activity(part, by_id) for condition in conditions for part in condition.walk())


def _reads_activity(part: Condition, segments: Mapping[str, Segment]) -> bool:
    if part.key == "activity":
        return True
    named = segments.get(part.segment) if part.key == "segment" and part.segment else None
    return named is not None and any(p.key == "activity" for p in named.when.walk())
