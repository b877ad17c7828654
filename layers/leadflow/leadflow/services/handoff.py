"""Sales hand-off: start one (stage reached, sequence action, a person), assign it, deliver it
to every destination with its own retries, and watch its SLA.

A hand-off is started once per lead at a time: the profile's ``handoff_id`` is changed with
a condition, so two triggers racing (the MQL stage change and a sequence's ``handoff``
action) make one record. Each destination is one queue message: one slow or failing
destination never holds the others back.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from leadflow.config.workspace import Workspace
from leadflow.domain import handoff as domain
from leadflow.domain.definitions.handoff import HandoffConfig
from leadflow.domain.errors import InvalidWorkspace, LeadNotFound
from leadflow.domain.events import DomainEvent
from leadflow.domain.handoff_delivery import Outcome, effective_url, next_attempt_at, visibility_seconds
from leadflow.domain.handoff_payload import build_payload
from leadflow.domain.handoff_sla import SlaNotice, escalation_owner, sla_notice, sla_step
from leadflow.domain.ids import new_id
from leadflow.ports.clock import Clock
from leadflow.ports.handoff import Delivery, DeliveryQueue, DeliverySender, HandoffStore, Notifier
from leadflow.ports.scoring import Explainer

SOURCE_HANDOFF = "leadflow.handoff"
logger = logging.getLogger("leadflow.handoff")
CONFLICT_RETRIES = 8
CRM_PROVIDERS = frozenset({"hubspot", "salesforce"})


class HandoffConflict(domain.HandoffError):
    """The record kept changing under us (retried ``CONFLICT_RETRIES`` times)."""


@dataclass(frozen=True)
class Decision:
    """What the queue consumer does with a delivery message."""

    action: Literal["done", "retry", "dead_letter"]
    delay_seconds: int = 0
    reason: str = ""


@dataclass(frozen=True)
class SweepResult:
    checked: int
    reminded: int
    escalated: int
    recycled: int


# Stages a lead leaves sales for without sales acting (scoring's decay recycles an MQL).
LEFT_SALES = frozenset({"recycled", "disqualified"})


class HandoffService:
    def __init__(  # noqa: PLR0917 - the service's ports
        self,
        workspace: Workspace,
        store: HandoffStore,
        explainer: Explainer,
        queue: DeliveryQueue,
        sender: DeliverySender,
        clock: Clock,
        local_mode: bool = False,
        local_base_url: str = "",
        jitter: Callable[[], float] = random.random,
        notifier: Notifier | None = None,
    ) -> None:
        self.workspace = workspace
        self.store = store
        self.explainer = explainer
        self.queue = queue
        self.sender = sender
        self.clock = clock
        self.local_mode = local_mode
        self.local_base_url = local_base_url
        self.jitter = jitter
        self.notifier = notifier

    @property
    def config(self) -> HandoffConfig:
        return self.workspace.handoff

    # ------------------------------------------------------------------ starting
    def on_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Start a hand-off for a bus event (EventBridge envelope), if it asks for one.

        ``lead.stage_changed`` to the configured stage and ``lead.handoff_requested`` (the
        nurture ``handoff`` action) start one; anything else is ignored. A redelivered event
        finds the hand-off it started and only makes sure its deliveries are queued.
        """
        detail = event.get("detail") or {}
        lead_id = detail.get("lead_id")
        event_id = str(detail.get("event_id") or event.get("id") or "")
        if not lead_id or not self.config.enabled:
            return None
        if event.get("detail-type") == "lead.stage_changed":
            if detail.get("to") != self.config.trigger_stage:
                return None
            reason = f"reached stage {detail['to']}"
            return self.start(lead_id, "stage", reason, "system", event_id)[0]
        if event.get("detail-type") == "lead.handoff_requested":
            sequence = detail.get("sequence_id") or "a sequence"
            reason = str(detail.get("reason") or f"requested by {sequence}")
            return self.start(lead_id, "sequence", reason, "system", event_id)[0]
        return None

    def start(
        self, lead_id: str, trigger: str, reason: str, by: str, event_id: str = ""
    ) -> tuple[dict[str, Any], bool]:
        """Hand a lead off (or return its open hand-off).

        Returns:
            The record, and whether it was created now.

        Raises:
            LeadNotFound: no such lead.
            HandoffDisabled: handoff.yaml switches hand-offs off.
            HandoffConflict: the profile kept changing under us.
        """
        config = self.config
        if not config.enabled:
            raise domain.HandoffDisabled("hand-offs are disabled in handoff.yaml")
        for _ in range(CONFLICT_RETRIES):
            profile = self.store.get_lead(lead_id)
            if profile is None:
                raise LeadNotFound(lead_id)
            previous = profile.get("handoff_id")
            if previous:
                existing = self.store.get_handoff(lead_id, previous)
                if existing is not None and existing["status"] in domain.OPEN:
                    if event_id and existing.get("trigger_event_id") == event_id:
                        self._enqueue(existing)  # a redelivery: the first run may have stopped before queueing
                    return existing, False
            now = self.clock.now()
            scores, timeline = self._read_for_payload(lead_id, profile)  # before an owner is reserved
            route = self._assign(profile, now)
            destinations = [d.name for d in config.destinations if d.enabled]
            record = domain.new_record(
                new_id(now), lead_id, trigger, reason, route, destinations, now, by, trigger_event_id=event_id
            )
            record["payload"] = self._payload(record, profile, scores, timeline, now)
            event = self._event(
                "handoff.created",
                now,
                lead_id=lead_id,
                handoff_id=record["handoff_id"],
                trigger=trigger,
                owner_id=route.owner.id if route.owner else None,
                team=route.team,
                queue=route.queue,
                assigned_by=route.rule,
            )
            sla_due = sla_step(record, config.sla, now).next_due
            if self.store.create_handoff(record, previous, sla_due, [event]):
                self._enqueue(record)
                return record, True
            if route.owner is not None:  # another trigger won the race: give the slot back
                self.store.release_owner(route.owner.id)
        raise HandoffConflict(lead_id)

    def _assign(self, profile: dict[str, Any], now: datetime) -> domain.Route:
        """Named account, territory or default team (round-robin over available members), else the queue."""
        assignment = self.config.assignment
        route = domain.route(profile, assignment)
        if route.owner is not None:  # a key account always goes to its owner
            self.store.reserve_owner(route.owner.id, 10**9)
            return route
        team = assignment.team(route.team or "")
        if team is None:
            return route
        ticket = self.store.next_ticket(team.id)
        for owner_id in domain.rotation(team, ticket):
            owner = assignment.owner(owner_id)
            if owner is None or not domain.in_working_hours(domain.hours_of(owner, team), now):
                continue
            if self.store.reserve_owner(owner.id, owner.capacity):
                return domain.Route(route.rule, owner=owner, team=team.id)
        return domain.fallback(assignment, route.rule)

    def _read_for_payload(self, lead_id: str, profile: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The lead's scores with their reasons, and its recent activities, for the hand-off's payload.

        Only a workspace without scoring (``InvalidWorkspace``: no scoring.yaml) hands off without
        scores. Any other failure, a table throttled or down included, goes up: the event is
        delivered again, rather than sales getting the lead without the reasons (it was so).

        Raises:
            LeadNotFound: no such lead."""
        config = self.config
        try:
            explanation = self.explainer.explain_lead(lead_id, top=config.top_reasons)
        except InvalidWorkspace:
            explanation = {"stage": profile.get("stage"), "models": {}, "grade": {}}
        return explanation, self.store.recent_activities(lead_id, config.timeline_limit)

    def _payload(
        self,
        record: dict[str, Any],
        profile: dict[str, Any],
        explanation: dict[str, Any],
        timeline: list[dict[str, Any]],
        now: datetime,
    ) -> dict[str, Any]:
        consent = {k.removeprefix("consent_"): v for k, v in profile.items() if k.startswith("consent_")}
        consent = {k: v for k, v in consent.items() if k not in ("pending", "confirmed_at")}
        return build_payload(record, profile, explanation, timeline, consent, now, self.config.top_reasons)

    def _enqueue(self, record: dict[str, Any]) -> None:
        pending = [n for n, state in record["destinations"].items() if state.get("status") == "pending"]
        if pending:
            self.queue.enqueue([delivery_message(record, name) for name in pending])

    def _event(self, detail_type: str, now: datetime, **detail: Any) -> DomainEvent:
        return DomainEvent(new_id(now), SOURCE_HANDOFF, detail_type, now.isoformat(), detail)

    # ------------------------------------------------------------------ delivering
    def deliver(self, message: dict[str, Any]) -> Decision:
        """One attempt to send one hand-off to one destination, and what to do with its message.

        ``done``: delivered, or nothing left to do. ``retry``: try again after ``delay_seconds``
        (the schedule, or the destination's Retry-After). ``dead_letter``: a final failure
        (refused, 4xx, DUPLICATES_DETECTED, disabled by 410, or 26 hours of retries), kept
        for ``leadflow replay``.
        """
        lead_id, handoff_id, name = message["lead_id"], message["handoff_id"], message["destination"]
        record = self.store.get_handoff(lead_id, handoff_id)
        if record is None or name not in record["destinations"]:
            return Decision("done", reason="no such hand-off or destination")
        now = self.clock.now()
        state = record["destinations"][name]
        if state.get("status") == "failed" and message.get("replay"):
            state = {"status": "pending", "attempts": 0, "replayed_at": now.isoformat()}
            record = self._save_destination(record, name, state, now, f"{name}: replayed")
        if state.get("status") in ("delivered", "failed"):
            return Decision("done", reason=f"already {state['status']}")
        due = state.get("next_attempt_at")
        if due and datetime.fromisoformat(due) > now:  # an early receive (waits longer than 12 h wait twice)
            return Decision("retry", visibility_seconds(datetime.fromisoformat(due), now), "not due yet")
        claimed = self._claim(record, name, now)
        if isinstance(claimed, Decision):
            return claimed
        outcome = self._attempt(claimed, name, now)
        return self._apply(claimed, name, outcome, now)

    def _claim(self, record: dict[str, Any], name: str, now: datetime) -> dict[str, Any] | Decision:
        """Take the destination for one attempt (a lease), so two copies of a message never both send.

        SQS delivers at least once, and a redelivered trigger may queue a delivery twice: only
        the copy that wins the conditional write sends; the other comes back after the lease.
        """
        destination = self.config.destination(name)
        lease = timedelta(seconds=(destination.timeout_seconds if destination else 30) * 3 + 30)
        for _ in range(CONFLICT_RETRIES):
            state = record["destinations"][name]
            if state.get("status") in ("delivered", "failed"):
                return Decision("done", reason=f"already {state['status']}")
            until = state.get("lease_until")
            if state.get("status") == "sending" and until and datetime.fromisoformat(until) > now:
                seconds = max(visibility_seconds(datetime.fromisoformat(until), now), 1)
                return Decision("retry", seconds, "another attempt is in flight")
            claimed = {**state, "status": "sending", "lease_until": (now + lease).isoformat()}
            updated = {**record, "destinations": {**record["destinations"], name: claimed}}
            if self.store.save_handoff(updated, sla_step(updated, self.config.sla, now).next_due):
                return updated
            reloaded = self.store.get_handoff(record["lead_id"], record["handoff_id"])
            if reloaded is None:
                return Decision("done", reason="the hand-off is gone")
            record = reloaded
        raise HandoffConflict(record["handoff_id"])

    def _attempt(self, record: dict[str, Any], name: str, now: datetime) -> Outcome:
        destination = self.config.destination(name)
        if destination is None or not destination.enabled:
            return Outcome("final", None, "the destination is no longer enabled in handoff.yaml")
        disabled = self.store.disabled_destinations().get(name)
        if disabled is not None:
            return Outcome("final", None, f"the destination was disabled at {disabled.get('at')} (410)")
        url, allow_private = effective_url(destination, self.local_mode, self.local_base_url)
        payload = {**record["payload"], "sent_at": now.isoformat()}
        delivery = Delivery(destination, url, allow_private, payload, record["handoff_id"], record["lead_id"])
        return self.sender.send(delivery, now)

    def _apply(self, record: dict[str, Any], name: str, outcome: Outcome, now: datetime) -> Decision:
        state = dict(record["destinations"][name])
        attempts = int(state.get("attempts", 0)) + 1
        first = state.get("first_attempt_at") or now.isoformat()
        state.update(attempts=attempts, first_attempt_at=first, last_status_code=outcome.status_code)
        state.pop("next_attempt_at", None)
        state.pop("lease_until", None)
        state["last_error"] = outcome.error or None
        decision = Decision("done")
        if outcome.kind == "delivered":
            state.update(status="delivered", delivered_at=now.isoformat(), external_id=outcome.external_id)
            destination = self.config.destination(name)
            if outcome.external_id and destination is not None and destination.type in CRM_PROVIDERS:
                self.store.put_crm_ref(destination.type, outcome.external_id, record["lead_id"], record["handoff_id"])
        elif outcome.kind == "retry":
            due = next_attempt_at(
                self.config.retry,
                attempts,
                datetime.fromisoformat(first),
                now,
                self.jitter(),
                outcome.retry_after_seconds,
            )
            if due is None:
                state.update(status="failed", last_error=f"gave up after {attempts} attempts: {outcome.error}")
                decision = Decision("dead_letter", reason=state["last_error"])
            else:
                state.update(status="retrying", next_attempt_at=due.isoformat())
                decision = Decision("retry", visibility_seconds(due, now), outcome.error)
        else:
            if outcome.kind == "disable":
                self.store.disable_destination(name, now, outcome.error)
            state["status"] = "failed"
            decision = Decision("dead_letter", reason=outcome.error)
        detail = f"{name}: {state['status']}" + (f" ({outcome.error})" if outcome.error else "")
        self._save_destination(record, name, state, now, detail)
        return decision

    def _save_destination(
        self, record: dict[str, Any], name: str, state: dict[str, Any], now: datetime, detail: str
    ) -> dict[str, Any]:
        """Write one destination's state (and the status it adds up to), reloading on a conflict."""
        for _ in range(CONFLICT_RETRIES):
            destinations = {**record["destinations"], name: {k: v for k, v in state.items() if v is not None}}
            updated = {**record, "destinations": destinations, "updated_at": now.isoformat()}
            if record["status"] in domain.AWAITING_ACCEPTANCE:
                status = domain.delivery_status(destinations)
                updated = domain.transition(updated, status, now, "system", detail)
            if self.store.save_handoff(updated, sla_step(updated, self.config.sla, now).next_due):
                return updated
            reloaded = self.store.get_handoff(record["lead_id"], record["handoff_id"])
            if reloaded is None:
                return record
            record = reloaded
        raise HandoffConflict(record["handoff_id"])

    # ------------------------------------------------------------------ SLA
    def sweep(self) -> SweepResult:
        """Remind, escalate and recycle the hand-offs whose SLA is due (the scheduled sweep)."""
        now = self.clock.now()
        counts = {"remind": 0, "escalate": 0, "recycle": 0}
        due = self.store.sla_due(now)
        for lead_id, handoff_id in due:
            for _ in range(CONFLICT_RETRIES):
                record = self.store.get_handoff(lead_id, handoff_id)
                if record is None:
                    break
                done = self._sla(record, now)
                if done is not None:
                    for action in done:
                        counts[action] += 1
                    break
        return SweepResult(len(due), counts["remind"], counts["escalate"], counts["recycle"])

    def _sla(self, record: dict[str, Any], now: datetime) -> list[str] | None:
        """Apply every SLA step due now to one record; None when it changed under us."""
        profile = self.store.get_lead(record["lead_id"]) or {}
        if profile.get("stage") in LEFT_SALES:
            return self._close_left_sales(record, str(profile["stage"]), now)
        sla = self.config.sla
        actions: list[str] = []
        notices: list[SlaNotice] = []
        events: list[DomainEvent] = []
        stage: str | None = None
        owner = record.get("owner") or {}
        step = sla_step(record, sla, now)
        while step.action is not None:
            action = step.action
            actions.append(action)
            base = {"lead_id": record["lead_id"], "handoff_id": record["handoff_id"], "owner_id": owner.get("id")}
            if action == "recycle":
                record = domain.transition(record, domain.RECYCLED, now, "sla", "no sales action within the SLA")
                events += self._recycled_events(base, now)
                stage = "recycled"
                break
            escalate_to = escalation_owner(self.config, record) if action == "escalate" else None
            detail = (
                f"reminded {owner.get('id') or 'the queue'}: not accepted within {sla.accept_within_hours} h"
                if action == "remind"
                else f"escalated to {escalate_to.id if escalate_to else 'nobody (no escalate_to)'}"
            )
            recipient = escalate_to if action == "escalate" else self.config.assignment.owner(owner.get("id", ""))
            if recipient is not None:
                notices.append(sla_notice(action, record, recipient, detail))
            record = {
                **record,
                "sla": [*record.get("sla", []), {"status": action, "at": now.isoformat()}],
                "history": [*record["history"], domain.history_entry(record["status"], now, "sla", detail)],
                "updated_at": now.isoformat(),
            }
            events.append(
                self._event(
                    f"handoff.{'reminder' if action == 'remind' else 'escalated'}",
                    now,
                    **base,
                    escalate_to=escalate_to.id if escalate_to else None,
                )
            )
            step = sla_step(record, sla, now)
        next_due = None if record["status"] in domain.CLOSED else sla_step(record, sla, now).next_due
        if not self.store.save_handoff(record, next_due, events, stage):
            return None
        if "recycle" in actions and owner.get("id"):
            self.store.release_owner(owner["id"])
        for notice in notices:  # after the write: a sweep that lost the race sends nothing
            self._notify(notice, record)
        return actions

    def _recycled_events(self, base: dict[str, Any], now: datetime) -> list[DomainEvent]:
        """A hand-off the SLA recycled: ``handoff.recycled``, and the lead's move back to recycled."""
        recycled = self._event("handoff.recycled", now, **base)
        profile = self.store.get_lead(base["lead_id"]) or {}
        moved = self._event(
            "lead.stage_changed",
            now,
            lead_id=base["lead_id"],
            to="recycled",
            reason="handoff_sla",
            **{"from": profile.get("stage")},
        )
        return [recycled, moved]

    def _close_left_sales(self, record: dict[str, Any], stage: str, now: datetime) -> list[str] | None:
        """The lead left sales before sales acted (its score decayed: scoring recycled it): the
        hand-off is recycled too, its owner freed, and nobody is reminded or escalated to."""
        owner = record.get("owner") or {}
        record = domain.transition(record, domain.RECYCLED, now, "scoring", f"the lead was {stage} before sales acted")
        event = self._event(
            "handoff.recycled",
            now,
            lead_id=record["lead_id"],
            handoff_id=record["handoff_id"],
            owner_id=owner.get("id"),
            reason=f"lead_{stage}",
        )
        if not self.store.save_handoff(record, None, [event], None):
            return None
        if owner.get("id"):
            self.store.release_owner(owner["id"])
        return ["recycle"]

    def _notify(self, notice: SlaNotice, record: dict[str, Any]) -> None:
        if self.notifier is None:
            return
        kind = "remind" if notice.subject.startswith("Reminder") else "escalate"
        try:
            self.notifier.notify(notice, f"sla-{record['handoff_id']}-{kind}")
        except Exception:  # noqa: BLE001 - the SLA event is on the bus anyway; an email is best effort
            logger.warning("SLA email not sent", extra={"handoff_id": record["handoff_id"], "action": kind})


def delivery_message(record: dict[str, Any], destination: str, replay: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {
        "kind": "deliver",
        "lead_id": record["lead_id"],
        "handoff_id": record["handoff_id"],
        "destination": destination,
        "webhook_id": domain.webhook_id(record["handoff_id"], destination),
    }
    if replay:
        message["replay"] = True
    return message
