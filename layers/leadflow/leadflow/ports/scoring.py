"""Scoring: the score state a lead is scored from, the write that moves its score (and stage), the
stores of scoring and of a rescore, and the explanation of a lead's score."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from leadflow.domain.events import DomainEvent


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class ScoreState:
    """A lead as scoring reads it: its profile (None: no such lead), ledger and score version."""

    profile: dict[str, Any] | None
    ledger: list[dict[str, Any]]
    version: int


@dataclass(frozen=True)
class ScoreWrite:
    lead_id: str
    expected_version: int
    entries: list[dict[str, Any]]
    summary: dict[str, Any]
    stage: tuple[str, str] | None
    events: list[DomainEvent] = field(default_factory=list)
    announced: DomainEvent | None = None
    """The ``lead.scored`` event the new ledger item carries (``domain.events.scored_on_ledger``):
    published from the item's stream record, not from an outbox item."""
    replaced: list[dict[str, Any]] = field(default_factory=list)
    """Ledger entries (as ``score_state`` read them) whose items ``entries`` replace: an activity's
    entries worked out again when the summary lagged the ledger (``services.scoring``)."""


class ScoreStore(Protocol):
    def score_state(self, lead_id: str) -> ScoreState: ...

    def apply_score(self, write: ScoreWrite) -> bool:
        """False when the version moved on or the ledger item exists (reload and retry). The ledger
        item may be written when the summary is refused (the next try sees the summary lag)."""
        ...

    def leads_in_stage(self, stage: str) -> list[str]: ...

    def account_leads(self, domain: str) -> list[dict[str, Any]]: ...


class RescoreStore(ScoreStore, Protocol):
    def lead_ids(self) -> list[str]: ...

    def lead_activities(self, lead_id: str) -> list[dict[str, Any]]: ...

    def rewrite_ledger(
        self,
        lead_id: str,
        remove: list[dict[str, Any]],
        add: list[dict[str, Any]],
        summary: dict[str, Any],
        stage: str | None,
    ) -> None: ...


class Explainer(Protocol):
    def explain_lead(self, lead_id: str, top: int = 5) -> dict[str, Any]: ...
