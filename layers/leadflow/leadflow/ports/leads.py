"""Leads captured, read and tracked: the lead store form capture writes a submission to (and the
types it hands back), the intake queue that keeps a raw submission for replay, tracked
activities, and the audience store (leads written by a person or an import, and paged lists of
leads)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from leadflow.domain.leads import CapturePlan
from leadflow.domain.ratelimit import RateWindow

if TYPE_CHECKING:
    from leadflow.domain.audience import LeadUpdate
    from leadflow.domain.events import DomainEvent
    from leadflow.domain.ratelimit import HitCounter


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class StoredCapture:
    """What the store did with a submission."""

    lead_id: str
    created: bool
    replayed: bool = False
    submission_id: str = ""


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class SpamRecord:
    form_id: str
    reason: str
    at: str
    fields: dict[str, list[str]]
    record_id: str


class LeadStore(Protocol):
    def capture(self, plan: CapturePlan, window: RateWindow | None, day: str) -> StoredCapture:
        """Store a submission atomically: lead (created or merged), activity, consent, outbox events.

        Raises:
            RateLimited: the client's window is full (nothing written).
            StorageUnavailable: the store is throttled or down (nothing written).
        """
        ...

    def record_spam(self, spam: SpamRecord, window: RateWindow | None, day: str) -> None:
        """Keep a spam post (with a TTL) and count it; raises like ``capture``."""
        ...

    def get_lead(self, lead_id: str) -> dict[str, Any] | None: ...

    def lead_id_for_email(self, email_key: str) -> str | None: ...

    def lead_history(self, lead_id: str, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The lead's most recent activities (newest first) and its whole consent history."""
        ...

    def recent_leads(self, limit: int) -> list[dict[str, Any]]: ...

    def form_stats(self, day: str) -> dict[str, dict[str, int]]: ...


class IntakeQueue(Protocol):
    def enqueue(self, message: dict[str, Any]) -> None:
        """Keep a raw submission durably for replay.

        Raises:
            IntakeUnavailable: the queue did not take it.
        """
        ...


class ActivityStore(Protocol):
    def record_activity(
        self, owner_pk: str, activity: dict[str, Any], events: list[DomainEvent], counter: HitCounter | None = None
    ) -> bool: ...

    def record_announced(
        self, lead_id: str, activity: dict[str, Any], source: str, counter: HitCounter | None = None
    ) -> bool:
        """Store an activity of a known lead that is its own ``activity.recorded`` event (published
        by ``source``, its id the activity's): no outbox item. False when nothing was written: the
        lead does not exist (erased), the hit counter is full, or the activity is stored already."""
        ...

    def visitor_lead(self, visitor_id: str) -> str | None: ...

    def visitor_activities(self, visitor_id: str) -> list[dict[str, Any]]: ...


ListIndex = Literal["stage", "tag", "segment", "recent"]


class AudienceStore(Protocol):
    def capture(self, plan: CapturePlan, window: RateWindow | None, day: str) -> StoredCapture:
        """As ``LeadStore.capture``: a stated lead goes through the same guard and merge."""
        ...

    def get_lead(self, lead_id: str) -> dict[str, Any] | None: ...

    def lead_id_for_email(self, email_key: str) -> str | None: ...

    def update_lead(self, update: LeadUpdate) -> None:
        """Apply a PATCH in one transaction. Raises LeadNotFound, AddressTaken, StorageUnavailable."""
        ...

    def change_tag(
        self, lead_id: str, tag: str, add: bool, activity: dict[str, Any], events: list[DomainEvent]
    ) -> bool:
        """Add or remove a tag with its membership item; False when nothing changed. Raises LeadNotFound."""
        ...

    def leads_page(
        self, index: ListIndex, value: str, limit: int, cursor: str | None, now: datetime
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of profiles of a stage, tag or segment (or the newest), and the next page's cursor."""
        ...
