"""Nurture: enroll leads in sequences, and move whole batches of enrollments a step on.

``NurtureService.process`` is the step function's use case: one batch of enrollments (a
tick's shard page, or the due-now queue's messages) is read with two BatchGetItems,
each enrollment is advanced by the pure engine (``domain.nurture.advance``), emails are
rendered, checked and sent (send ledger first, then SES, within the account's send rate),
and the enrollments are stored with optimistic locking. One lead's failure (a broken
template, a rejected address) is recorded on its enrollment and never stops the batch.

``handle_event`` turns bus events into enrollments (triggers), engagement (opens and
clicks end waits at once) and goal checks. ``broadcast`` enrolls a whole segment with
batched writes. ``unsubscribe`` and ``confirm`` are the preference page's use cases.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import cached_property
from typing import Any, Protocol

from leadflow.adapters.nurture import DynamoNurtureStore
from leadflow.config import models
from leadflow.config.sequences import Action, MessagingConfig, Sequence
from leadflow.config.workspace import Workspace
from leadflow.domain.events import DomainEvent
from leadflow.domain.ids import new_id
from leadflow.domain.nurture import (
    ActivityView,
    EmailToSend,
    Enrollment,
    LeadView,
    Outcome,
    advance,
    enroll,
    in_segment,
    migrate,
)
from leadflow.domain.rendering import EmailRenderer, RenderedEmail, Sender, TemplateProblem
from leadflow.domain.tokens import TokenKind, TrackingToken, sign

SOURCE_NURTURE = "leadflow.nurture"
STANDARD_FIELDS = frozenset({"first_name", "last_name", "company", "title", "phone", "country", "timezone"})
MAX_ADVANCES_PER_ENROLLMENT = 4
THROTTLE_RETRY = timedelta(minutes=1)
ERROR_RETRY = timedelta(minutes=10)


class Clock(Protocol):
    def now(self) -> datetime: ...


class EmailSender(Protocol):
    def send(self, email: RenderedEmail, to: str, message_id: str, tags: dict[str, str]) -> str: ...


class DueNowQueue(Protocol):
    def push(self, pairs: list[tuple[str, str]]) -> None: ...


class PointsAwarder(Protocol):
    def award(self, lead_id: str, points: int, model: str | None, reason: str, award_id: str) -> None: ...


@dataclass
class BatchResult:
    """What one batch did, counted (the step function returns it; tests and the bench read it)."""

    processed: int = 0
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "sent": self.sent,
            "outcomes": dict(self.outcomes),
            "failures": self.failures[:20],
        }


class TokenIssuer:
    """Signed links of one email: open pixel, tracked clicks, unsubscribe and preferences."""

    def __init__(self, keys: Callable[[], list[bytes]], base_url: str, token_days: int) -> None:
        self.keys = keys
        self.base_url = base_url.rstrip("/")
        self.token_days = token_days

    def token(self, kind: TokenKind, lead_id: str, message_id: str, now: datetime, **extra: Any) -> str:
        expires = int((now + timedelta(days=self.token_days)).timestamp())
        return sign(TrackingToken(kind, lead_id, message_id, expires, **extra), self.keys()[0])

    def links(self, lead_id: str, message_id: str, campaign: str, now: datetime) -> EmailLinks:
        return EmailLinks(self, lead_id, message_id, campaign, now)


@dataclass
class EmailLinks:
    """``LinkSigner`` for one message (the renderer calls it)."""

    issuer: TokenIssuer
    lead_id: str
    message_id: str
    campaign: str
    now: datetime

    def click_url(self, url: str, tag: str) -> str:
        token = self.issuer.token(
            TokenKind.CLICK, self.lead_id, self.message_id, self.now, link_id=tag, url=url, campaign=self.campaign
        )
        return f"{self.issuer.base_url}/t/c/{token}"

    def open_pixel_url(self) -> str:
        token = self.issuer.token(TokenKind.OPEN, self.lead_id, self.message_id, self.now, campaign=self.campaign)
        return f"{self.issuer.base_url}/t/o/{token}"

    def unsubscribe_url(self) -> str:
        token = self.issuer.token(
            TokenKind.UNSUBSCRIBE, self.lead_id, self.message_id, self.now, campaign=self.campaign
        )
        return f"{self.issuer.base_url}/u/{token}"

    def preferences_url(self) -> str:
        return self.unsubscribe_url()


class NurtureService:
    def __init__(
        self,
        *,
        workspace: Workspace,
        store: DynamoNurtureStore,
        sender: EmailSender,
        tokens: TokenIssuer,
        due_now: DueNowQueue,
        clock: Clock,
        points: PointsAwarder | None = None,
        monotonic: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.workspace = workspace
        self.store = store
        self.sender = sender
        self.tokens = tokens
        self.due_now = due_now
        self.clock = clock
        self.points = points
        self._wall = monotonic
        self._sleep = sleep
        self._versions: dict[str, int] = {}
        self._old: dict[tuple[str, int], Sequence] = {}
        self._slots = 0
        self._activity_needed: dict[int, bool] = {}  # by id(): sequences are kept for the service's life

    # ------------------------------------------------------------------ configuration
    @cached_property
    def messaging(self) -> MessagingConfig:
        return self.workspace.messaging

    @cached_property
    def renderer(self) -> EmailRenderer:
        return EmailRenderer(self.workspace.templates)

    def current(self, sequence_id: str) -> tuple[Sequence, int] | None:
        """The sequence as the workspace has it now, and its version number."""
        sequence = self.workspace.sequences.get(sequence_id)
        if sequence is None:
            return None
        if sequence_id not in self._versions:
            self._versions[sequence_id] = self.store.version_of(
                sequence_id, sequence.content_hash, models.dump(Sequence, sequence)
            )
        return sequence, self._versions[sequence_id]

    def definition(self, enrollment: Enrollment) -> tuple[Sequence, Enrollment] | None:
        """The sequence version this enrollment runs on (migrated onto the current one where declared)."""
        found = self.current(enrollment.sequence_id)
        if found is None:
            return None
        sequence, version = found
        if enrollment.version == version:
            return sequence, enrollment
        moved = migrate(enrollment, sequence, version)
        if moved is not None:
            return sequence, moved
        key = (enrollment.sequence_id, enrollment.version)
        if key not in self._old:
            data = self.store.version_definition(enrollment.sequence_id, enrollment.version)
            if data is None:
                return None
            self._old[key] = Sequence.from_trusted(data)
        return self._old[key], enrollment

    def overview(self) -> list[dict[str, Any]]:
        """Every sequence of the workspace: its current version, triggers, steps and version history."""
        rows = []
        for sequence in self.workspace.sequences.values():
            found = self.current(sequence.id)
            rows.append(
                {
                    "id": sequence.id,
                    "name": sequence.name,
                    "status": sequence.status,
                    "version": found[1] if found else None,
                    "topic": sequence.topic,
                    "triggers": [t.key for t in sequence.triggers],
                    "steps": [{"id": s.id, "type": s.type} for s in sequence.steps],
                    "versions": self.store.versions(sequence.id),
                }
            )
        return rows

    # ------------------------------------------------------------------ the step
    def process(self, pairs: list[tuple[str, str]]) -> BatchResult:
        """Advance every (lead id, sequence id) enrollment of the batch that is due."""
        result = BatchResult()
        if not pairs:
            return result
        now = self.clock.now()
        enrollments, profiles = self.store.load_batch(pairs)
        addresses = {lead: str(p.get("email", "")).casefold() for lead, p in profiles.items() if p.get("email")}
        suppressed = self.store.suppressed(set(addresses.values())) if addresses else set()
        for pair in pairs:
            loaded = enrollments.get(pair)
            profile = profiles.get(pair[0])
            if loaded is None or profile is None:
                result.outcomes["missing"] += 1
                continue
            enrollment, rev = loaded
            if enrollment.status != "active" or (enrollment.due_at and enrollment.due_at > now):
                result.outcomes["not_due"] += 1
                continue
            result.processed += 1
            try:
                self._advance_one(enrollment, rev, profile, addresses.get(pair[0], "") in suppressed, now, result)
            except Exception as error:  # one lead never stops the batch  # noqa: BLE001
                result.outcomes["error"] += 1
                result.failures.append({"lead_id": pair[0], "sequence_id": pair[1], "error": type(error).__name__})
                self._back_off(pair, now)
        return result

    def _needs_activity(self, sequence: Sequence) -> bool:
        """Whether the sequence's conditions read recent activities (worked out once per sequence)."""
        key = id(sequence)
        if key not in self._activity_needed:
            self._activity_needed[key] = _needs_activity(sequence, self.workspace)
        return self._activity_needed[key]

    def _back_off(self, pair: tuple[str, str], now: datetime) -> None:
        """An enrollment whose step failed unexpectedly is looked at again later, not in a tight loop."""
        try:
            current = self.store.enrollment(*pair)
            if current is not None and current[0].status == "active":
                self.store.put_enrollment(replace(current[0], due_at=now + ERROR_RETRY), current[1])
        except Exception:  # noqa: BLE001, S110 - the store itself is failing: the next tick retries anyway
            pass

    def _lead_view(self, profile: dict[str, Any], suppressed: bool, needs_activity: bool) -> LeadView:
        lead_id = str(profile["lead_id"])
        activities: tuple[ActivityView, ...] = ()
        if needs_activity:
            activities = tuple(
                ActivityView(str(a.get("type")), datetime.fromisoformat(a["at"]), a)
                for a in self.store.recent_activities(lead_id)
                if a.get("at")
            )
        return LeadView(
            lead_id=lead_id,
            profile=profile,
            scores={k: float(v) for k, v in (profile.get("scores") or {}).items()},
            activities=activities,
            suppressed=suppressed,
            recent_sends=tuple(datetime.fromisoformat(s) for s in profile.get("recent_sends") or ()),
            default_model=self._default_model(),
        )

    def _advance_one(  # noqa: PLR0917 - one private call site
        self,
        enrollment: Enrollment,
        rev: int,
        profile: dict[str, Any],
        suppressed: bool,
        now: datetime,
        result: BatchResult,
    ) -> None:
        found = self.definition(enrollment)
        if found is None:
            exited = replace(enrollment, status="exited", exit_reason="sequence removed", due_at=None, ended_at=now)
            self.store.put_enrollment(exited, rev, [self._changed(exited, now)])
            result.outcomes["sequence_removed"] += 1
            return
        sequence, enrollment = found
        lead = self._lead_view(profile, suppressed, self._needs_activity(sequence))
        segments = self.workspace.segments
        for _ in range(MAX_ADVANCES_PER_ENROLLMENT):
            outcome = advance(sequence, enrollment, lead, now, self.messaging, segments)
            if outcome.email is not None:
                sent = self._send(sequence, outcome, lead, now, result)
                if sent == "retry":
                    # Throttled or capped meanwhile: stays on its step, looked at again soon.
                    later = replace(enrollment, due_at=now + THROTTLE_RETRY)
                    if self.store.put_enrollment(later, rev):
                        rev += 1
                    return
                if sent == "failed":
                    return
                lead = replace(lead, recent_sends=(*lead.recent_sends, now))
            changed = outcome.enrollment != enrollment
            if changed:
                events = (
                    [self._changed(outcome.enrollment, now)] if outcome.enrollment.status != enrollment.status else []
                )
                if not self.store.put_enrollment(outcome.enrollment, rev, events):
                    result.outcomes["conflict"] += 1
                    return
                rev += 1
            self._run_actions(sequence, outcome.enrollment, outcome.actions, now)
            result.outcomes[outcome.deferred or outcome.enrollment.status] += 1
            enrollment = outcome.enrollment
            if (
                outcome.email is None
                or enrollment.status != "active"
                or (enrollment.due_at and enrollment.due_at > now)
            ):
                return

    def _send(self, sequence: Sequence, outcome: Outcome, lead: LeadView, now: datetime, result: BatchResult) -> str:
        """Render, claim, send one email. Returns "sent", "taken", "retry" or "failed"."""
        from leadflow.adapters.ses import SendRejected, SendThrottled, SendUncertain

        email: EmailToSend = outcome.email  # type: ignore[assignment]
        lead_id = lead.lead_id
        profile = lead.profile
        messaging = self.messaging
        sender = Sender(
            address=email.sender or messaging.from_address,
            name=email.sender_name or messaging.from_name,
            reply_to=messaging.reply_to,
            postal_address=messaging.postal_address,
        )
        links = self.tokens.links(lead_id, email.message_id, sequence.id, now)
        try:
            rendered = self.renderer.render(
                email.template,
                email.subject,
                _personal(profile),
                {"sequence": sequence.id, "step": email.step_id, "variant": email.variant},
                sender,
                links,
            )
        except TemplateProblem as problem:
            failed = replace(
                outcome.enrollment,
                status="failed",
                exit_reason=f"template {problem}"[:300],
                due_at=None,
                ended_at=now,
                emails=outcome.enrollment.emails[:-1],
            )
            self.store.put_enrollment(failed, self._rev_of(failed), [self._changed(failed, now)])
            result.outcomes["template_error"] += 1
            result.failures.append({"lead_id": lead_id, "sequence_id": sequence.id, "error": "template"})
            return "failed"
        rendered.headers["Date"] = format_datetime(now)  # the send time on the service's clock
        if not self._take_slot():
            result.outcomes["rate_limited"] += 1
            return "retry"
        sends = [str(s) for s in profile.get("recent_sends") or ()]
        record = {"sequence_id": sequence.id, "step_id": email.step_id, "variant": email.variant, "topic": email.topic}
        claim = self.store.claim_send(
            lead_id, email.message_id, record, now, len(sends), str(profile["email"]).casefold()
        )
        if claim == "taken":
            result.outcomes["already_sent"] += 1
            return "taken"
        if claim == "changed":
            result.outcomes["changed_meanwhile"] += 1
            return "retry"
        try:
            ses_id = self.sender.send(
                rendered,
                str(profile["email"]),
                email.message_id,
                {"lead": lead_id, "sequence": sequence.id, "step": email.step_id},
            )
        except SendThrottled:
            self.store.release_send(lead_id, email.message_id)
            self._unclaim(lead_id, sends, now)
            result.outcomes["throttled"] += 1
            return "retry"
        except SendRejected as error:
            result.outcomes["rejected"] += 1
            result.failures.append({"lead_id": lead_id, "sequence_id": sequence.id, "error": f"rejected {error}"})
            return "taken"  # counted as this step's email: never retried
        except SendUncertain:
            result.outcomes["uncertain"] += 1
            return "taken"  # it may have gone out: never sent again
        self.store.mark_sent(lead_id, email.message_id, ses_id, now)
        result.sent += 1
        self.store.set_recent_sends(
            lead_id, [*sends, now.isoformat()], [s for s in [*sends, now.isoformat()] if _recent(s, now)]
        )
        return "sent"

    def _unclaim(self, lead_id: str, sends: list[str], now: datetime) -> None:
        self.store.set_recent_sends(lead_id, [*sends, now.isoformat()], sends)

    def _rev_of(self, enrollment: Enrollment) -> int:
        current = self.store.enrollment(enrollment.lead_id, enrollment.sequence_id)
        return current[1] if current else 0

    def _take_slot(self) -> bool:
        """One send within the account's SES rate, shared by all workers (waits up to ~2 s)."""
        for _ in range(40):
            if self._slots > 0:
                self._slots -= 1
                return True
            got = self.store.take_send_slots(5, self.messaging.send_rate_per_second, self._wall())
            if got:
                self._slots = got - 1
                return True
            self._sleep(0.05 + (1 - self._wall() % 1) * 0.5)
        return False

    def _changed(self, enrollment: Enrollment, now: datetime) -> DomainEvent:
        return DomainEvent(
            new_id(now),
            SOURCE_NURTURE,
            "enrollment.changed",
            now.isoformat(),
            {
                "lead_id": enrollment.lead_id,
                "sequence_id": enrollment.sequence_id,
                "version": enrollment.version,
                "status": enrollment.status,
                "step_id": enrollment.step_id,
                "exit_reason": enrollment.exit_reason,
            },
        )

    # ------------------------------------------------------------------ actions
    def _run_actions(
        self, sequence: Sequence, enrollment: Enrollment, actions: Iterable[Action], now: datetime
    ) -> None:
        lead_id = enrollment.lead_id
        for index, action in enumerate(actions):
            key = action.key
            if key in ("tag", "untag"):
                tag = str(getattr(action, key))
                verb = "ADD" if key == "tag" else "DELETE"
                events = [self._event("lead.tagged", now, lead_id=lead_id, tag=tag)] if key == "tag" else []
                self.store.update_profile(lead_id, f"{verb} #t :t", {"#t": "tags"}, {":t": {tag}}, events)
            elif key == "set_field" and action.set_field is not None:
                name = action.set_field.name
                attribute = name if name in STANDARD_FIELDS else f"cf_{name}"
                self.store.update_profile(lead_id, "SET #f = :v", {"#f": attribute}, {":v": action.set_field.value})
            elif key == "add_points" and action.add_points is not None and self.points is not None:
                award = f"{sequence.id}.{enrollment.entry}.{enrollment.step_id}.{index}"
                self.points.award(
                    lead_id, action.add_points.points, action.add_points.model, action.add_points.reason, award
                )
            elif key == "handoff":
                event = self._event(
                    "lead.handoff_requested",
                    now,
                    lead_id=lead_id,
                    reason=action.handoff,
                    sequence_id=sequence.id,
                    step_id=enrollment.step_id,
                )
                self.store.update_profile(
                    lead_id, "SET #h = :h", {"#h": "handoff_requested_at"}, {":h": now.isoformat()}, [event]
                )
            elif key == "enroll" and action.enroll is not None:
                self.enroll_lead(lead_id, action.enroll, reason=f"sequence {sequence.id}")
            elif key == "exit_sequence" and action.exit_sequence is not None:
                self.exit(lead_id, action.exit_sequence, f"sequence {sequence.id}")

    def _event(self, detail_type: str, now: datetime, **detail: Any) -> DomainEvent:
        return DomainEvent(new_id(now), SOURCE_NURTURE, detail_type, now.isoformat(), detail)

    # ------------------------------------------------------------------ enrolling
    def enroll_lead(self, lead_id: str, sequence_id: str, reason: str = "api", push: bool = True) -> Enrollment | None:
        """Enroll one lead (its re-entry policy decides); due-now steps go to the queue at once."""
        found = self.current(sequence_id)
        if found is None:
            return None
        sequence, version = found
        now = self.clock.now()
        previous = self.store.enrollment(lead_id, sequence_id)
        created = enroll(sequence, version, lead_id, now, previous[0] if previous else None)
        if created is None:
            return None
        rev = previous[1] if previous else 0
        event = self._event(
            "enrollment.changed",
            now,
            lead_id=lead_id,
            sequence_id=sequence_id,
            version=version,
            status="active",
            step_id=created.step_id,
            reason=reason,
        )
        if not self.store.put_enrollment(created, rev, [event], new=previous is None):
            return None
        if push:
            self.due_now.push([(lead_id, sequence_id)])
        return created

    def exit(self, lead_id: str, sequence_id: str, reason: str) -> bool:
        current = self.store.enrollment(lead_id, sequence_id)
        if current is None or current[0].status != "active":
            return False
        now = self.clock.now()
        exited = replace(current[0], status="exited", exit_reason=reason, due_at=None, ended_at=now)
        return self.store.put_enrollment(exited, current[1], [self._changed(exited, now)])

    def triggered(self, detail_type: str, detail: dict[str, Any], profile: dict[str, Any] | None) -> list[str]:
        """The sequences this event enrolls the lead in (by their triggers)."""
        found = []
        for sequence in self.workspace.sequences.values():
            if sequence.status != "active":
                continue
            for trigger in sequence.triggers:
                key = trigger.key
                if key == "form_submitted" and detail_type == "lead.captured":
                    if trigger.form_submitted in ("*", detail.get("form_id")):
                        found.append(sequence.id)
                elif key == "stage_reached" and detail_type == "lead.stage_changed":
                    if detail.get("to") == trigger.stage_reached:
                        found.append(sequence.id)
                elif key == "tag_added" and detail_type == "lead.tagged":
                    if detail.get("tag") == trigger.tag_added:
                        found.append(sequence.id)
                elif key == "score_crossed" and detail_type == "lead.scored" and trigger.score_crossed:
                    model = trigger.score_crossed.model or self._default_model()
                    new = float((detail.get("scores") or {}).get(model, 0))
                    old = new - float(detail.get("points_added") or 0)
                    if old < trigger.score_crossed.at_least <= new:
                        found.append(sequence.id)
        return sorted(set(found))

    def _default_model(self) -> str:
        return self._scoring_default_model

    @cached_property
    def _scoring_default_model(self) -> str:
        try:
            return self.workspace.scoring.default_model
        except Exception:  # noqa: BLE001 - a workspace without scoring
            return "default"

    def handle_event(self, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
        """One bus event: enrollments its triggers ask for, engagement, and waking the lead's waits."""
        lead_id = str(detail.get("lead_id") or "")
        if not lead_id:
            return {"ignored": True}
        done: dict[str, Any] = {"enrolled": [], "woken": 0}
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return {"ignored": True}
        if detail_type == "lead.captured":
            self._double_opt_in(profile, detail)
        if detail_type == "activity.recorded" and detail.get("type") in ("email_opened", "email_clicked"):
            done["woken"] += self._engaged(lead_id, detail)
        for sequence_id in self.triggered(detail_type, detail, profile):
            if self.enroll_lead(lead_id, sequence_id, reason=detail_type):
                done["enrolled"].append(sequence_id)
        done["enrolled"] += self._segments_joined(profile)
        if detail_type in ("lead.stage_changed", "lead.scored", "lead.tagged", "lead.consent_confirmed"):
            done["woken"] += self._wake(lead_id)
        return done

    def _engaged(self, lead_id: str, detail: dict[str, Any]) -> int:
        """Mark the email opened/clicked on its enrollment; a wait for it ends now."""
        sequence_id = detail.get("campaign")
        message_id = detail.get("message_id")
        if not sequence_id or not message_id:
            return 0
        for _ in range(3):
            current = self.store.enrollment(lead_id, str(sequence_id))
            if current is None:
                return 0
            enrollment, rev = current
            emails = []
            touched = False
            for email in enrollment.emails:
                if email.message_id == message_id:
                    clicked = email.clicked or detail.get("type") == "email_clicked"
                    tags = email.link_tags
                    tag = detail.get("link_tag") or detail.get("link_id")
                    if detail.get("type") == "email_clicked" and tag and tag not in tags:
                        tags = (*tags, str(tag))
                    updated = replace(email, opened=True, clicked=clicked, link_tags=tags)
                    touched = touched or updated != email
                    emails.append(updated)
                else:
                    emails.append(email)
            if not touched:
                return 0
            now = self.clock.now()
            woken = enrollment.status == "active" and enrollment.due_at is not None and enrollment.due_at > now
            changed = replace(enrollment, emails=tuple(emails), due_at=now if woken else enrollment.due_at)
            if self.store.put_enrollment(changed, rev):
                if woken:
                    self.due_now.push([(lead_id, enrollment.sequence_id)])
                return 1 if woken else 0
        return 0

    def _wake(self, lead_id: str) -> int:
        """Look at the lead's active enrollments now: a goal may hold, a branch may differ."""
        now = self.clock.now()
        woken = []
        for enrollment, rev in self.store.lead_enrollments(lead_id):
            # Due now, so the step looks at it (a step skips what is not due): a goal that holds
            # ends it, otherwise the step stops again at the same wait, due when it was.
            waiting = enrollment.status == "active" and enrollment.due_at and enrollment.due_at > now
            if waiting and self.store.put_enrollment(replace(enrollment, due_at=now), rev):
                woken.append((lead_id, enrollment.sequence_id))
        if woken:
            self.due_now.push(woken)
        return len(woken)

    def _segments_joined(self, profile: dict[str, Any]) -> list[str]:
        """Enrollments of segment_joined triggers for segments the lead newly matches."""
        wanted = {
            t.segment_joined: s.id
            for s in self.workspace.sequences.values()
            for t in s.triggers
            if t.segment_joined and s.status == "active"
        }
        if not wanted:
            return []
        now = self.clock.now()
        lead = self._lead_view(profile, False, True)
        known = set(profile.get("segments") or ())
        segments = {s.id: s for s in self.workspace.segments.segments}
        joined = [
            sid
            for sid in wanted
            if sid in segments and sid not in known and in_segment(segments[sid], lead, now, self.workspace.segments)
        ]
        if not joined:
            return []
        self.store.update_profile(str(profile["lead_id"]), "ADD #s :s", {"#s": "segments"}, {":s": set(joined)})
        return [
            wanted[sid]
            for sid in joined
            if self.enroll_lead(str(profile["lead_id"]), wanted[sid], reason="segment_joined")
        ]

    # ------------------------------------------------------------------ double opt-in
    def _double_opt_in(self, profile: dict[str, Any], detail: dict[str, Any]) -> None:
        """A form that asks for double opt-in: mark consent pending and send the confirmation email."""
        form_id = detail.get("form_id")
        try:
            form = self.workspace.form(str(form_id))
        except Exception:  # noqa: BLE001 - an unknown or removed form asks nothing
            return
        if not getattr(form, "double_opt_in", False) or profile.get("consent_confirmed_at"):
            return
        consent = detail.get("consent") or {}
        if not consent.get("granted"):
            return
        lead_id = str(profile["lead_id"])
        now = self.clock.now()
        self.store.update_profile(lead_id, "SET #p = :t", {"#p": "consent_pending"}, {":t": True})
        message_id = f"optin_{lead_id}_{int(now.timestamp())}"
        confirm = self.tokens.token(TokenKind.CONFIRM, lead_id, message_id, now)
        messaging = self.messaging
        links = self.tokens.links(lead_id, message_id, "double-opt-in", now)
        rendered = self.renderer.render(
            "double_opt_in",
            "Please confirm your subscription",
            _personal(profile),
            {"confirm_url": f"{self.tokens.base_url}/u/{confirm}?confirm=1"},
            Sender(messaging.from_address, messaging.from_name, messaging.reply_to, messaging.postal_address),
            links,
        )
        self.sender.send(rendered, str(profile["email"]), message_id, {"lead": lead_id, "kind": "double-opt-in"})

    # ------------------------------------------------------------------ broadcast
    def broadcast(
        self, sequence_id: str, progress: Callable[[int, int], None] | None = None, scan_segments: int = 4
    ) -> dict[str, int]:
        """Enroll every lead of the sequence's broadcast segment (batched reads and writes).

        Raises:
            KeyError: no such sequence, or it has no broadcast trigger.
        """
        found = self.current(sequence_id)
        if found is None:
            raise KeyError(sequence_id)
        sequence, version = found
        trigger = next((t.broadcast for t in sequence.triggers if t.broadcast), None)
        if trigger is None:
            raise KeyError(f"{sequence_id} has no broadcast trigger")
        segment = next((s for s in self.workspace.segments.segments if s.id == trigger.segment), None)
        if segment is None:
            raise KeyError(trigger.segment)
        needs_activity = any(p.key == "activity" for p in segment.when.walk())
        now = self.clock.now()
        counts = Counter[str]()
        for part in range(scan_segments):
            for page in self.store.scan_profiles(part, scan_segments):
                members = [
                    p
                    for p in page
                    if in_segment(segment, self._lead_view(p, False, needs_activity), now, self.workspace.segments)
                ]
                counts["scanned"] += len(page)
                if not members:
                    continue
                existing, _ = self.store.load_batch([(str(p["lead_id"]), sequence_id) for p in members])
                fresh = []
                for profile in members:
                    lead_id = str(profile["lead_id"])
                    previous = existing.get((lead_id, sequence_id))
                    if previous is not None and previous[0].status == "active":
                        counts["already_enrolled"] += 1
                        continue
                    created = enroll(sequence, version, lead_id, now, previous[0] if previous else None)
                    if created is None:
                        counts["refused"] += 1
                        continue
                    fresh.append(created)
                counts["enrolled"] += self.store.put_enrollments(fresh)
                if progress:
                    progress(counts["scanned"], counts["enrolled"])
        return dict(counts)

    def broadcast_once(self, sequence_id: str, run_id: str) -> dict[str, int]:
        """``broadcast`` for one request, at most once: an asynchronous invocation may be delivered twice."""
        claim = {"PK": f"SEQ#{sequence_id}", "SK": f"BROADCAST#{run_id}", "at": self.clock.now().isoformat()}
        if not self.store.put_items([claim]):
            return {"duplicate": 1}
        return self.broadcast(sequence_id)

    def scheduled_broadcasts(self, now: datetime) -> list[str]:
        """Run every broadcast whose ``at`` has come, once each (a claim item per sequence and time)."""
        ran = []
        for sequence in self.workspace.sequences.values():
            for trigger in sequence.triggers:
                if trigger.broadcast is None or trigger.broadcast.at is None or sequence.status != "active":
                    continue
                if datetime.fromisoformat(trigger.broadcast.at) > now:
                    continue
                claim = {"PK": f"SEQ#{sequence.id}", "SK": f"BROADCAST#{trigger.broadcast.at}", "at": now.isoformat()}
                if self.store.put_items([claim]):
                    self.broadcast(sequence.id)
                    ran.append(sequence.id)
        return ran

    # ------------------------------------------------------------------ unsubscribe and confirmation
    def unsubscribe(self, lead_id: str, topics: list[str] | None, source: str) -> dict[str, Any]:
        """Unsubscribe from everything (``topics`` None) or from some topics; exits sequences of those topics."""
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return {"found": False}
        now = self.clock.now()
        at = now.isoformat()
        if topics is None:
            event = self._event("lead.unsubscribed", now, lead_id=lead_id, source=source)
            self.store.update_profile(
                lead_id,
                "SET #u = :t, #ua = :a, #c = :c",
                {"#u": "unsubscribed", "#ua": "unsubscribed_at", "#c": "consent_marketing_email"},
                {":t": True, ":a": at, ":c": {"granted": False, "at": at, "source": source}},
                [event],
            )
            self.store.put_items(
                [
                    {
                        "PK": f"LEAD#{lead_id}",
                        "SK": f"CONSENT#{at}#{new_id(now)}",
                        "purpose": "marketing_email",
                        "granted": False,
                        "at": at,
                        "source": source,
                    }
                ]
            )
            if profile.get("email"):
                self.store.suppress(str(profile["email"]).casefold(), "unsubscribe", at)
        else:
            self.store.update_profile(
                lead_id, "SET #t = :t", {"#t": "unsubscribed_topics"}, {":t": sorted(set(topics))}
            )
        exited = 0
        for enrollment, _rev in self.store.lead_enrollments(lead_id):
            sequence = self.workspace.sequences.get(enrollment.sequence_id)
            if enrollment.status == "active" and (topics is None or (sequence and sequence.topic in topics)):
                exited += self.exit(lead_id, enrollment.sequence_id, "unsubscribed")
        return {"found": True, "exited": exited, "topics": topics}

    def confirm(self, lead_id: str) -> bool:
        """The double opt-in link was followed: consent confirmed, marketing email may start."""
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return False
        if profile.get("consent_confirmed_at"):
            return True
        now = self.clock.now()
        at = now.isoformat()
        event = self._event("lead.consent_confirmed", now, lead_id=lead_id)
        self.store.update_profile(
            lead_id,
            "SET #p = :f, #c = :a",
            {"#p": "consent_pending", "#c": "consent_confirmed_at"},
            {":f": False, ":a": at},
            [event],
        )
        self.store.put_items(
            [
                {
                    "PK": f"LEAD#{lead_id}",
                    "SK": f"CONSENT#{at}#{new_id(now)}",
                    "purpose": "marketing_email",
                    "granted": True,
                    "step": "confirmed",
                    "at": at,
                    "source": "double_opt_in",
                }
            ]
        )
        self._wake(lead_id)
        return True


def _recent(iso: str, now: datetime) -> bool:
    return datetime.fromisoformat(iso) > now - timedelta(days=7)


def _personal(profile: Mapping[str, Any]) -> dict[str, Any]:
    """What templates may read about the lead: its profile fields and custom fields, no internals."""
    hidden = {"PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "recent_sends", "score_version"}
    lead = {k: v for k, v in profile.items() if k not in hidden}
    for key, value in profile.items():
        if key.startswith("cf_"):
            lead.setdefault(key[3:], value)
    return lead


def _needs_activity(sequence: Sequence, workspace: Workspace) -> bool:
    from leadflow.config.sequences import BranchStep, GoalStep, WaitStep

    conditions = [sequence.goal] if sequence.goal else []
    for step in sequence.steps:
        if isinstance(step, BranchStep | GoalStep):
            conditions.append(step.when)
        elif isinstance(step, WaitStep) and step.until_event is not None:
            conditions.append(step.until_event)
    segments = {s.id: s for s in workspace.segments.segments}
    for condition in conditions:
        for part in condition.walk():
            if part.key == "activity":
                return True
            if (
                part.key == "segment"
                and part.segment in segments
                and any(p.key == "activity" for p in segments[part.segment].when.walk())
            ):
                return True
    return False
