"""CRM feedback: what deciding on a CRM's status change reads, and the one transaction that writes
it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from leadflow.domain.events import DomainEvent


ApplyStatus = Literal["applied", "duplicate", "conflict", "ignored"]


@dataclass(frozen=True)
class FeedbackState:
    """What deciding needs: the lead's stage and lock, and the hand-off's status, lock and last feedback."""

    lead_id: str
    stage: str
    score_version: int
    last_feedback_at: datetime | None
    handoff_id: str | None = None
    handoff_status: str | None = None
    handoff_rev: int | None = None
    handoff_found: bool = True
    owner_id: str | None = None


@dataclass(frozen=True)
class CrmFeedbackWrite:
    """One transaction: the event claimed, and (when applied) the hand-off, the lead, an activity and events."""

    provider: str
    event_id: str
    lead_id: str
    seen_expires_at: int
    applied: bool
    expected_score_version: int = 0
    handoff_id: str | None = None
    expected_rev: int | None = None
    status: str | None = None
    history_entry: dict[str, Any] | None = None
    stage_move: tuple[str, str] | None = None
    feedback: dict[str, Any] = field(default_factory=dict)
    activity: dict[str, Any] | None = None
    events: list[DomainEvent] = field(default_factory=list)


class CrmFeedbackStore(Protocol):
    def lead_for_external_id(self, provider: str, external_id: str) -> str | None:
        """The lead a CRM record id was handed off as (the CRMREF item), or None."""
        ...

    def feedback_state(self, lead_id: str, handoff_id: str | None) -> FeedbackState | None:
        """The lead (None: no such lead) and the hand-off (``handoff_id``, else the lead's latest)."""
        ...

    def apply_feedback(self, write: CrmFeedbackWrite) -> ApplyStatus:
        """Write it atomically: ``duplicate`` when the event was claimed before (nothing written),
        ``conflict`` when the lead or hand-off changed since it was read (nothing written).

        Raises:
            StorageUnavailable: the table is throttled or down.
        """
        ...

    def release_owner(self, owner_id: str) -> None:
        """One open hand-off fewer for the owner's capacity (never below zero)."""
        ...
