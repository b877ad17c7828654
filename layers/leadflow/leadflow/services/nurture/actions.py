"""A step's actions: profile changes (tag, untag, set a field, hand off) gathered into one write,
points, and enrollments in or out of other sequences."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.definitions.steps import Action
from leadflow.domain.nurture import Enrollment
from leadflow.ports.nurture import ProfileChange
from leadflow.services.nurture.base import NurtureBase

STANDARD_FIELDS = frozenset({"first_name", "last_name", "company", "title", "phone", "country", "timezone"})
_PROFILE_ATTRIBUTE = {"tag": "tags", "untag": "tags", "handoff": "handoff_requested_at"}


def profile_attribute(action: Action) -> str | None:
    """The profile attribute the action changes; None for one that writes elsewhere (points, enrollments)."""
    if action.key == "set_field":
        if action.set_field is None:
            return None
        name = action.set_field.name
        return name if name in STANDARD_FIELDS else f"cf_{name}"
    return _PROFILE_ATTRIBUTE.get(action.key)


class Actions(NurtureBase):
    """Running the actions a step collected, after its enrollment is stored."""

    def _run_actions(
        self, sequence: Sequence, enrollment: Enrollment, actions: Iterable[Action], now: datetime
    ) -> None:
        """Apply a step's actions in order. Consecutive changes of the profile (tag, untag, set a
        field, hand off) are one update, with their events, in one transaction (a transaction bills
        every item twice: one instead of one per action); an action that writes elsewhere (points,
        enrollments) or changes an attribute again first applies what is pending."""
        lead_id = enrollment.lead_id
        change = ProfileChange()
        for index, action in enumerate(actions):
            attribute = profile_attribute(action)
            if attribute is None or change.touches(attribute):
                if change:
                    self.store.update_profile(lead_id, change)
                change = ProfileChange()
            if attribute is None:
                self._run_elsewhere(sequence, enrollment, action, index)
            else:
                self._change_profile(change, attribute, action, sequence, enrollment, now)
        if change:
            self.store.update_profile(lead_id, change)

    def _change_profile(  # noqa: PLR0917 - one private call site
        self,
        change: ProfileChange,
        attribute: str,
        action: Action,
        sequence: Sequence,
        enrollment: Enrollment,
        now: datetime,
    ) -> None:
        """Add a tag, untag, set a field or hand-off action to the pending profile change."""
        key = action.key
        lead_id = enrollment.lead_id
        if key == "tag":
            tag = str(action.tag)
            change.add_to[attribute] = {tag}
            change.events.append(self._event("lead.tagged", now, lead_id=lead_id, tag=tag))
        elif key == "untag":
            change.remove_from[attribute] = {str(action.untag)}
        elif key == "set_field" and action.set_field is not None:
            change.assign[attribute] = action.set_field.value
        elif key == "handoff":
            change.assign[attribute] = now.isoformat()
            change.events.append(
                self._event(
                    "lead.handoff_requested",
                    now,
                    lead_id=lead_id,
                    reason=action.handoff,
                    sequence_id=sequence.id,
                    step_id=enrollment.step_id,
                )
            )

    def _run_elsewhere(self, sequence: Sequence, enrollment: Enrollment, action: Action, index: int) -> None:
        """Points, an enrollment in another sequence, or an exit from one."""
        lead_id = enrollment.lead_id
        if action.add_points is not None and self.points is not None:
            award = f"{sequence.id}.{enrollment.entry}.{enrollment.step_id}.{index}"
            points = action.add_points
            self.points.award(lead_id, points.points, points.model, points.reason, award)
        elif action.enroll is not None:
            self.enroll_lead(lead_id, action.enroll, reason=f"sequence {sequence.id}")
        elif action.exit_sequence is not None:
            self.exit(lead_id, action.exit_sequence, f"sequence {sequence.id}")
