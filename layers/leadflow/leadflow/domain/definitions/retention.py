"""retention.yaml: how long leadflow keeps a person who does nothing (GDPR storage limitation).

With ``enabled: true`` the daily sweep (``DecaySweepFunction``) erases every lead with no
activity for ``erase_inactive_after_months`` months, through the same erasure as
``DELETE /api/v1/leads/{lead_id}`` (everything of the person goes; the address stays on the
suppression list only as a keyed hash; a ``lead.erased`` webhook tells the CRM; an audit
record says how many items of each kind went). Absent or ``enabled: false``: nothing is
erased by time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from leadflow.domain.definitions import models

if TYPE_CHECKING:  # config.models provides these when pydantic validates
    from annotated_types import Ge, Le


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """Retention settings of a workspace."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    enabled: bool = False
    """Erase inactive leads in the daily sweep."""
    erase_inactive_after_months: Annotated[int, Ge(1), Le(1200)] = 36
    """A lead whose newest activity (or, without any, its last profile change) is older than this many
    calendar months is erased."""
    max_erasures_per_run: Annotated[int, Ge(1), Le(100_000)] = 500
    """At most this many erasures per daily run (the rest follow on the next days)."""

    @classmethod
    def model_validate(cls, data: Any) -> RetentionConfig:
        return models.validate(cls, data if data is not None else {})

    @classmethod
    def from_trusted(cls, data: dict[str, Any]) -> RetentionConfig:
        return cls(**data)
