"""Closing the loop: apply what sales did (from the CRM) to hand-offs and lifecycle stages.

Each piece of feedback is applied at most once (its provider's event id is claimed in the same
transaction that changes the lead), never over newer feedback, and with optimistic locking on
both the hand-off record and the lead, so concurrent scoring or a second webhook never loses an
update. A stage change publishes ``lead.stage_changed`` (source ``leadflow.crm``) through the
outbox: nurture's goals stop sequences for SQLs, and recycled leads are enrolled again by
sequences triggered on ``stage_reached: recycled``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from leadflow.domain.crm_feedback import Decision, Feedback, decide, refuse_future
from leadflow.domain.definitions.crm_feedback import CrmFeedbackConfig
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.events import DomainEvent
from leadflow.domain.handoff import CLOSED, OPEN
from leadflow.domain.ids import new_id
from leadflow.ports.clock import Clock
from leadflow.ports.crm_feedback import CrmFeedbackStore, CrmFeedbackWrite, FeedbackState

SOURCE_CRM = "leadflow.crm"
SEEN_TTL = timedelta(days=30)  # longer than any CRM retries a delivery (HubSpot, Salesforce: about a day)
CONFLICT_RETRIES = 5
ItemResult = Literal["applied", "unchanged", "duplicate", "stale", "unknown_lead", "unknown_handoff"]


@dataclass
class FeedbackSummary:
    results: list[ItemResult] = field(default_factory=list)
    ignored: int = 0

    def counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter(self.results)
        if self.ignored:
            counts["ignored"] = self.ignored
        return dict(counts)


class CrmFeedbackService:
    def __init__(self, config: CrmFeedbackConfig, store: CrmFeedbackStore, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    def apply(self, items: list[Feedback], ignored: int = 0) -> FeedbackSummary:
        """Apply a batch of feedback, one item after the other (a batch may hold one lead twice).

        Raises:
            MalformedFeedback: an item dated too far in the future (nothing of the batch applied).
            StorageUnavailable: the table cannot take it now (the CRM retries the whole request;
                items already applied are then duplicates).
        """
        refuse_future(items, self.clock.now())
        summary = FeedbackSummary(ignored=ignored)
        for item in items:
            summary.results.append(self.apply_one(item))
        return summary

    def apply_one(self, item: Feedback) -> ItemResult:
        """Apply one piece of feedback; what happened to it.

        Raises:
            StorageUnavailable: the table cannot take it now, or the lead kept changing.
        """
        lead_id = item.lead.lead_id
        if lead_id is None and item.lead.external_id is not None:
            lead_id = self.store.lead_for_external_id(item.provider, item.lead.external_id)
        if lead_id is None:
            return "unknown_lead"
        for _attempt in range(CONFLICT_RETRIES):
            state = self.store.feedback_state(lead_id, item.handoff_id)
            if state is None:
                return "unknown_lead"
            if not state.handoff_found:
                return "unknown_handoff"
            decision = decide(
                item, state.stage, state.handoff_status, state.last_feedback_at, self.config.disqualify_reasons
            )
            status = self.store.apply_feedback(self._write(item, state, decision))
            if status == "duplicate":
                return "duplicate"
            if status == "conflict":
                continue
            if not decision.apply:
                return "stale"
            closing = decision.status in CLOSED and state.handoff_status in OPEN
            if closing and state.owner_id:
                self.store.release_owner(state.owner_id)
            return "applied" if decision.stage or decision.status != state.handoff_status else "unchanged"
        raise StorageUnavailable("the lead kept changing while sales feedback was applied")

    def _write(self, item: Feedback, state: FeedbackState, decision: Decision) -> CrmFeedbackWrite:
        now = self.clock.now()
        seen_expires_at = int((now + SEEN_TTL).timestamp())
        if not decision.apply:
            return CrmFeedbackWrite(item.provider, item.event_id, state.lead_id, seen_expires_at, applied=False)
        at = item.occurred_at.isoformat()
        by = f"crm:{item.provider}"
        feedback = {
            "outcome": item.outcome,
            "at": at,
            "provider": item.provider,
            "event_id": item.event_id,
            **({"reason": item.reason} if item.reason else {}),
            **({"handoff_id": state.handoff_id} if state.handoff_id else {}),
            **item.details,
        }
        detail = item.reason or ", ".join(f"{k}={v}" for k, v in item.details.items() if k in ("property", "value"))
        history_entry = {"status": item.outcome, "at": at, "by": by, "detail": detail or item.outcome}
        activity_id = new_id(now)
        activity = {
            "activity_id": activity_id,
            "type": "sales_feedback",
            "at": at,
            "recorded_at": now.isoformat(),
            "outcome": item.outcome,
            "provider": item.provider,
            "event_id": item.event_id,  # names the CRMEVT record of this event (an erasure deletes it)
            **({"reason": item.reason} if item.reason else {}),
            **({"handoff_id": state.handoff_id} if state.handoff_id else {}),
        }
        stage_move = (state.stage, decision.stage) if decision.stage else None
        events = self._events(item, state, stage_move, now)
        return CrmFeedbackWrite(
            provider=item.provider,
            event_id=item.event_id,
            lead_id=state.lead_id,
            seen_expires_at=seen_expires_at,
            applied=True,
            expected_score_version=state.score_version,
            handoff_id=state.handoff_id,
            expected_rev=state.handoff_rev,
            status=decision.status if state.handoff_id else None,
            history_entry=history_entry if state.handoff_id else None,
            stage_move=stage_move,
            feedback=feedback,
            activity=activity,
            events=events,
        )

    @staticmethod
    def _events(
        item: Feedback, state: FeedbackState, stage_move: tuple[str, str] | None, now: datetime
    ) -> list[DomainEvent]:
        """``handoff.feedback``, and ``lead.stage_changed`` when the feedback moves the lead."""
        at = item.occurred_at.isoformat()
        feedback = {
            "lead_id": state.lead_id,
            "handoff_id": state.handoff_id,
            "provider": item.provider,
            "outcome": item.outcome,
            "reason": item.reason,
            "at": at,
        }
        events = [DomainEvent(new_id(now), SOURCE_CRM, "handoff.feedback", now.isoformat(), feedback)]
        if stage_move:
            by = f"crm:{item.provider}"
            moved = {
                "lead_id": state.lead_id,
                "from": stage_move[0],
                "to": stage_move[1],
                "by": by,
                "outcome": item.outcome,
            }
            events.append(DomainEvent(new_id(now), SOURCE_CRM, "lead.stage_changed", now.isoformat(), moved))
        return events
