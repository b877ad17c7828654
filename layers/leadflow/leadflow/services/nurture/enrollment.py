"""Triggers and enrollment: bus events that enroll a lead, engagement that ends a wait, a lead's
change that wakes its waits or meets a goal, segments newly joined, and exits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from leadflow.domain.nurture import Enrollment, choose_variant, enroll
from leadflow.domain.nurture.triggers import after_change, engaged, segment_triggers, segments_joined, triggered_by
from leadflow.ports.nurture import ProfileChange
from leadflow.services.nurture.base import NurtureBase, StepFailed, _Job


class Enrolling(NurtureBase):
    """Enrollments the workspace's triggers, a lead's engagement and its changes ask for."""

    def enroll_lead(self, lead_id: str, sequence_id: str, reason: str = "api", push: bool = True) -> Enrollment | None:
        """Enroll one lead (its re-entry policy decides); due-now steps go to the queue at once."""
        found = self.current(sequence_id)
        if found is None:
            return None
        sequence, version = found
        now = self.clock.now()
        previous = self.enrollment(lead_id, sequence_id)
        created = enroll(sequence, version, lead_id, now, previous[0] if previous else None)
        if created is None:
            return None
        rev = previous[1] if previous else 0
        if not self.store.put_enrollment(created, rev, new=previous is None):
            return None
        self.counts.add(sequence_id, version, created.step_id, None, "enrolled")
        if push:
            self.due_now.push([(lead_id, sequence_id)])
        return created

    def exit(self, lead_id: str, sequence_id: str, reason: str) -> bool:
        """Take the lead out of the sequence; False when it is not in it now.

        A step written meanwhile (the due-now queue's first step right after an enrollment, a
        tick's) moves the item's rev on: the exit reads again and decides on what is there then."""
        for _ in range(3):
            current = self.enrollment(lead_id, sequence_id)
            if current is None or current[0].status != "active":
                return False
            now = self.clock.now()
            exited = replace(current[0], status="exited", exit_reason=reason, due_at=None, ended_at=now)
            if self.store.put_enrollment(exited, current[1]):
                break
        else:
            return False
        last = exited.emails[-1].step_id if exited.emails else exited.step_id
        self.counts.add(sequence_id, exited.version, exited.step_id, None, "exits")
        if reason == "unsubscribed":  # on the step of the email it followed, with that email's variant
            self.counts.add(sequence_id, exited.version, last, self._variant_of(exited, last), "unsubscribes")
        return True

    def _variant_of(self, enrollment: Enrollment, step_id: str) -> str | None:
        """The A/B variant the lead got at an email step (stable per lead, so worked out again)."""
        found = self.definition(enrollment)
        steps = {s.id: s for s in found[0].email_steps()} if found is not None else {}
        variants = steps[step_id].variants if step_id in steps else ()
        chosen = choose_variant(variants, enrollment.lead_id, enrollment.sequence_id, step_id) if variants else None
        return chosen.id if chosen is not None else None

    def triggered(self, detail_type: str, detail: dict[str, Any], profile: dict[str, Any] | None) -> list[str]:
        """The sequences this event enrolls the lead in (by their triggers: ``triggered_by``)."""
        return triggered_by(self.workspace.sequences.values(), detail_type, detail, self._scoring_default_model)

    def listens(self, detail_type: str, detail: Mapping[str, Any]) -> bool:
        """Whether the workspace's sequences act on this bus event at all (``Workspace.nurture_listens``):
        the rest cost their delivery and nothing else, no read, no write."""
        listened = self.workspace.nurture_listens
        if detail_type == "activity.recorded":
            return detail.get("type") in ("email_opened", "email_clicked") or listened["activity"]
        return listened.get(detail_type, True)

    # Complexity C (11), kept: the list of what one bus event may do, each a call, in order.
    def handle_event(self, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
        """One bus event: enrollments its triggers ask for, engagement, and waking the lead's waits."""
        lead_id = str(detail.get("lead_id") or "")
        if not lead_id or not self.listens(detail_type, detail):
            return {"ignored": True}
        done: dict[str, Any] = {"enrolled": [], "woken": 0}
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return {"ignored": True}
        if detail_type == "lead.captured":
            self._double_opt_in(profile, detail)
        if detail_type == "activity.recorded" and detail.get("type") in ("email_opened", "email_clicked"):
            done["woken"] += self._engaged(lead_id, detail, profile)
        for sequence_id in self.triggered(detail_type, detail, profile):
            if self.enroll_lead(lead_id, sequence_id, reason=detail_type):
                done["enrolled"].append(sequence_id)
        done["enrolled"] += self._segments_joined(profile)
        if detail_type in ("lead.stage_changed", "lead.scored", "lead.tagged", "lead.consent_confirmed"):
            done["woken"] += self._wake(lead_id, profile)
        return done

    def _engaged(self, lead_id: str, detail: dict[str, Any], profile: dict[str, Any]) -> int:
        """Mark the email opened/clicked on its enrollment; a wait for it ends now.

        A held enrollment (a broadcast's) that this wakes takes its next step here, at once, as the
        step function would after a hop through the due-now queue: the step's own write (the claim
        of its email, which holds it again, or its stored item) records the open with it. No
        separate write of the open, no queue message, no second read of the lead.

        Raises:
            StepFailed: that step failed unexpectedly; the event is retried (nothing was recorded,
                or the enrollment was stored to be retried by the ticks and the retry finds the
                open recorded)."""
        sequence_id = detail.get("campaign")
        message_id = detail.get("message_id")
        if not sequence_id or not message_id:
            return 0
        for _ in range(3):
            woken = self._engage_once(lead_id, str(sequence_id), detail, profile)
            if woken is not None:
                return woken
        return 0

    # Complexity C (13), kept: one read, then the three ways an open lands (a held enrollment's
    # next step taken now, a held one rewritten, a stored one rewritten), each a conditional write.
    def _engage_once(
        self, lead_id: str, sequence_id: str, detail: dict[str, Any], profile: dict[str, Any]
    ) -> int | None:
        """One try of ``_engaged`` on a fresh read: 1 when a wait ended, 0 when nothing did, None when
        the enrollment was written meanwhile (try again)."""
        now = self.clock.now()
        log = self.store.mail_log(lead_id)
        current = self._resolve(lead_id, sequence_id, self.store.enrollment(lead_id, sequence_id), log, now)
        if current is None:
            return 0
        enrollment, rev, held = current
        if held and enrollment.status != "active":
            return 0  # its wait is over and it has ended: the activity itself is recorded
        marked = engaged(enrollment, detail, now)
        if marked is None:
            return 0
        changed, woken = marked
        if woken and held:
            done = self._work([_Job(changed, rev, rev == 0, profile, fresh=True)], {lead_id: log}, now)
            if done.outcomes["conflict"]:
                return None  # written meanwhile (an unsubscribe, another event): read again
            if done.outcomes["error"]:
                raise StepFailed(f"{lead_id} {enrollment.sequence_id}: {done.failures}")
            return 1
        if not (self.store.hold(changed, log) if held else self.store.put_enrollment(changed, rev)):
            return None
        if woken:
            self.due_now.push([(lead_id, enrollment.sequence_id)])
        return 1 if woken else 0

    # Complexity C (12), kept: the filter of which enrollments can be woken is the function; what
    # a change means for one of them is decided in the domain (``after_change``).
    def _wake(self, lead_id: str, profile: dict[str, Any] | None = None) -> int:
        """The lead changed (stage, score, tags, consent): look at its waiting enrollments now.

        A sequence goal that now holds ends the enrollment at once (converted), and a wait for
        an event that has now happened ends (the step is due now). Nothing is written for the
        others: they stay due when they were (a frequency cap, a wait's end).
        """
        now = self.clock.now()
        profile = profile if profile is not None else self.store.get_lead(lead_id)
        if profile is None:
            return 0
        woken: list[tuple[str, str]] = []
        for stored, rev in self.lead_enrollments(lead_id):
            if stored.status != "active" or not stored.due_at or stored.due_at <= now:
                continue
            found = self.definition(stored)
            if found is None:
                continue
            sequence, enrollment = found
            lead = self._lead_view(profile, False, self._needs_activity(sequence))
            changed = after_change(sequence, enrollment, lead, now, self.workspace.segments)
            if changed is not None and self.store.put_enrollment(changed, rev) and changed.status == "active":
                woken.append((lead_id, enrollment.sequence_id))
        if woken:
            self.due_now.push(woken)
        return len(woken)

    def _segments_joined(self, profile: dict[str, Any]) -> list[str]:
        """Enrollments of segment_joined triggers for segments the lead newly matches."""
        wanted = segment_triggers(self.workspace.sequences.values())
        if not wanted:
            return []
        lead = self._lead_view(profile, False, True)
        joined = segments_joined(wanted, self.workspace.segments, lead, self.clock.now(), profile.get("segments") or ())
        if not joined:
            return []
        self.store.update_profile(str(profile["lead_id"]), ProfileChange(add_to={"segments": set(joined)}))
        return [
            wanted[sid]
            for sid in joined
            if self.enroll_lead(str(profile["lead_id"]), wanted[sid], reason="segment_joined")
        ]
