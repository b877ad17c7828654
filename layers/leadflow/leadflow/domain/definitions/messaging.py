"""``messaging.yaml``: who sends, and the rules every marketing email obeys (frequency caps,
quiet hours, the SES send rate, subscription topics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from annotated_types import Ge, Le, MinLen

from leadflow.domain.definitions import models
from leadflow.domain.definitions.conditions import ID_PATTERN, TIME_PATTERN, check_pattern
from leadflow.domain.definitions.models import ConfigProblem


# ---------------------------------------------------------------------------- messaging.yaml
@dataclass(frozen=True, slots=True)
class FrequencyCaps:
    """At most this many marketing emails per lead, across all sequences."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    per_day: Annotated[int, Ge(1), Le(100)] = 2
    """Within any 24 hours."""
    per_week: Annotated[int, Ge(1), Le(500)] = 5
    """Within any 7 days."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No marketing email between ``start`` and ``end`` in the lead's timezone (it waits for ``end``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    start: str = "21:00"
    end: str = "08:00"

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            if not TIME_PATTERN.match(getattr(self, name)):
                raise ConfigProblem(name, f"'{getattr(self, name)}' is not HH:MM")
        if self.start == self.end:
            raise ConfigProblem("end", "start and end are equal: leave quiet_hours out for none")


@dataclass(frozen=True, slots=True)
class Topic:
    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    name: str
    description: str = ""

    def __post_init__(self) -> None:
        check_pattern(ID_PATTERN, self.id, "topic", "id")


@dataclass(frozen=True, slots=True)
class MessagingConfig:
    """messaging.yaml: who sends, and the rules every marketing email obeys."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    from_address: str = "news@example.com"
    """The sender address (verified in SES)."""
    from_name: str = "leadflow"
    reply_to: str | None = None
    postal_address: Annotated[str, MinLen(5)] = "Example Inc., 1 Example Street, Springfield, USA"
    """The sender's postal address, printed in every email's footer (CAN-SPAM)."""
    default_timezone: str = "UTC"
    """For leads whose timezone cannot be told from their profile (IANA name, e.g. Europe/Berlin)."""
    frequency: FrequencyCaps = field(default_factory=FrequencyCaps)
    quiet_hours: QuietHours | None = field(default_factory=QuietHours)
    send_rate_per_second: Annotated[int, Ge(1), Le(10_000)] = 14
    """The account's SES maximum send rate, shared by every concurrent sender."""
    topics: tuple[Topic, ...] = (Topic("marketing", "Product news and offers"),)
    """Subscription topics shown on the preferences page."""
    confirmation_days: Annotated[int, Ge(1), Le(90)] = 7
    """How long a double opt-in confirmation link works."""

    def __post_init__(self) -> None:
        if "@" not in self.from_address or any(c in self.from_address for c in "\r\n<> "):
            raise ConfigProblem("from_address", f"'{self.from_address}' is not an email address")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.default_timezone)
        except (ValueError, KeyError, OSError):
            raise ConfigProblem("default_timezone", f"'{self.default_timezone}' is not an IANA timezone") from None
        if len({t.id for t in self.topics}) != len(self.topics) or not self.topics:
            raise ConfigProblem("topics", "at least one topic, ids unique")

    @classmethod
    def model_validate(cls, data: Any) -> MessagingConfig:
        return models.validate(cls, data if data is not None else {})

    @classmethod
    def from_trusted(cls, data: Any) -> MessagingConfig:
        return models.validate(cls, data)
