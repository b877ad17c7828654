"""Ports: what the services need from the outside world. Adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from leadflow.domain.leads import CapturePlan
from leadflow.domain.ratelimit import RateWindow


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class StoredCapture:
    """What the store did with a submission."""

    lead_id: str
    created: bool
    replayed: bool = False


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class ScoreState:
    """A lead as scoring reads it: its profile (None: no such lead), ledger and score version."""

    profile: dict[str, Any] | None
    ledger: list[dict[str, Any]]
    version: int


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
