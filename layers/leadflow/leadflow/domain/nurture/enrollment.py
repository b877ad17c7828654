"""Enrolling a lead (the sequence's re-entry policy) and moving an enrollment onto a new version."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from leadflow.domain.definitions.conditions import END
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.nurture.engine import _plan
from leadflow.domain.nurture.state import ACTIVE, COMPLETED, Enrollment


def enroll(
    sequence: Sequence, version: int, lead_id: str, now: datetime, previous: Enrollment | None
) -> Enrollment | None:
    """A new active enrollment of ``lead_id`` at the sequence's first step, due now.

    Args:
        sequence: the sequence, at ``version``.
        version: the version number of that definition.
        lead_id: the lead.
        now: the time of enrollment.
        previous: the lead's latest enrollment in this sequence, if any.

    Returns:
        The enrollment, or None when the sequence is paused or its re-entry policy refuses:
        ``never`` (any previous enrollment), ``after_exit`` (the previous one is still active,
        or ended less than ``cooldown_days`` ago); ``always`` re-enrolls at once (the caller
        ends the previous one).
    """
    if sequence.status == "paused":
        return None
    entry = 1
    if previous is not None:
        reentry = sequence.reentry
        if reentry.policy == "never":
            return None
        if reentry.policy == "after_exit":
            if previous.status == ACTIVE:
                return None
            ended = previous.ended_at or previous.step_started_at
            if now - ended < timedelta(days=reentry.cooldown_days):
                return None
        entry = previous.entry + 1
    return Enrollment(
        lead_id=lead_id,
        sequence_id=sequence.id,
        version=version,
        entry=entry,
        step_id=sequence.steps[0].id,
        status=ACTIVE,
        entered_at=now,
        step_started_at=now,
        due_at=now,
    )


def migrate(
    enrollment: Enrollment, sequence: Sequence, version: int, *, now: datetime | None = None
) -> Enrollment | None:
    """The enrollment moved onto ``version`` of ``sequence``, when a migration of the sequence applies.

    A migration applies when its ``from_version`` is the enrollment's version. The current
    step is mapped through ``Migration.steps``, or kept when that id exists in the new version;
    mapped to 'end', the enrollment completes. The time already spent in the step still counts
    (a wait keeps its start); emails already sent keep their message ids, so a step that keeps
    its id is not sent again.

    Args:
        enrollment: an active enrollment on an older version.
        sequence: the new definition.
        version: its version number.
        now: when the move happens; the enrollment is due then (without it, due at once:
            at the start of its current step, which is already past).

    Returns:
        The moved enrollment, or None when no migration applies or the step has no place in the
        new version (the lead then finishes the version it is on).
    """
    if enrollment.status != ACTIVE or enrollment.version == version:
        return None
    migration = next((m for m in sequence.migrations if m.from_version == enrollment.version), None)
    if migration is None:
        return None
    target = migration.steps.get(enrollment.step_id, enrollment.step_id)
    due = now if now is not None else enrollment.step_started_at
    if target == END:
        return replace(
            enrollment,
            version=version,
            step_id=END,
            status=COMPLETED,
            exit_reason=COMPLETED,
            due_at=None,
            ended_at=due,
        )
    if target not in _plan(sequence).steps:
        return None
    return replace(enrollment, version=version, step_id=target, due_at=due)
