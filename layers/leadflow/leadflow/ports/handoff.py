"""Sales hand-off: the hand-off store, the delivery queue, a delivery and its sender, and the
notifier of SLA reminders and escalations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from leadflow.domain.definitions.handoff import Destination
    from leadflow.domain.events import DomainEvent
    from leadflow.domain.handoff_delivery import Outcome
    from leadflow.domain.handoff_sla import SlaNotice


@dataclass(frozen=True)
class Delivery:
    """One hand-off to one destination: what a sender needs."""

    destination: Destination
    url: str  # the effective URL (the fake CRM under `leadflow dev`)
    allow_private: bool
    payload: dict[str, Any]
    handoff_id: str
    lead_id: str


class DeliverySender(Protocol):
    def send(self, delivery: Delivery, now: datetime) -> Outcome: ...


class HandoffStore(Protocol):
    def get_lead(self, lead_id: str) -> dict[str, Any] | None: ...
    def get_handoff(self, lead_id: str, handoff_id: str) -> dict[str, Any] | None: ...
    def lead_handoffs(self, lead_id: str) -> list[dict[str, Any]]: ...
    def create_handoff(
        self, record: dict[str, Any], previous: str | None, sla_due: datetime | None, events: list[DomainEvent]
    ) -> bool: ...
    def save_handoff(
        self,
        record: dict[str, Any],
        sla_due: datetime | None,
        events: list[DomainEvent] | None = None,
        stage: str | None = None,
    ) -> bool:
        """Write a changed record (conditional on its ``rev``) with its events and, when ``stage``
        is given, the lead moved to that stage, atomically; False when the record changed meanwhile."""
        ...

    def sla_due(self, now: datetime, limit: int = 500) -> list[tuple[str, str]]: ...
    def waiting_handoffs(self, limit: int = 100) -> list[tuple[str, dict[str, Any]]]: ...
    def next_ticket(self, team: str) -> int: ...
    def reserve_owner(self, owner_id: str, capacity: int) -> bool: ...
    def release_owner(self, owner_id: str) -> None: ...
    def disabled_destinations(self) -> dict[str, dict[str, Any]]: ...
    def disable_destination(self, name: str, at: datetime, reason: str) -> None: ...
    def put_crm_ref(self, provider: str, external_id: str, lead_id: str, handoff_id: str) -> None: ...
    def recent_activities(self, lead_id: str, limit: int) -> list[dict[str, Any]]: ...


class DeliveryQueue(Protocol):
    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        """One message per (hand-off, destination)."""
        ...


class Notifier(Protocol):
    def notify(self, notice: SlaNotice, message_id: str) -> None:
        """Email a sales rep (SLA reminders and escalations)."""
        ...
