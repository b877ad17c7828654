"""The steps of a nurture sequence (``email``, ``wait``, ``branch``, ``action``, ``goal``),
each checking its own fields; the sequence (``sequences.py``) checks how they connect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Le, MinLen
from pydantic import Field

from leadflow.domain.definitions import models
from leadflow.domain.definitions.conditions import (
    FIELD_PATTERN,
    ID_PATTERN,
    TAG_PATTERN,
    TIME_PATTERN,
    WEEKDAYS,
    Condition,
    Weekday,
    check_pattern,
)
from leadflow.domain.definitions.models import ConfigProblem


# ---------------------------------------------------------------------------- steps
@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of an A/B test: what it changes and its share of the leads."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    weight: Annotated[int, Ge(1), Le(100)] = 50
    """Relative share (weights 50/50 split evenly)."""
    subject: str | None = None
    template: str | None = None

    def __post_init__(self) -> None:
        check_pattern(ID_PATTERN, self.id, "variant", "id")


@dataclass(frozen=True, slots=True)
class EmailStep:
    """Send one email. Marketing emails obey suppression, consent, frequency caps and quiet hours."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    type: Literal["email"]
    template: str
    """Template name: templates/emails/<name>.html.j2 (and .txt.j2)."""
    subject: str
    """The subject line, a Jinja template ({{ lead.first_name | default('there', true) }})."""
    sender: str | None = None
    """A sender address overriding messaging.yaml's."""
    sender_name: str | None = None
    topic: str | None = None
    """The subscription topic (messaging.yaml topics); the sequence's when absent."""
    variants: tuple[Variant, ...] = ()
    """A/B variants; each lead gets one, stable across retries."""
    reply: bool = False
    """A reply to the lead's own action (the welcome after a sign-up): goes out at once, even in quiet
    hours. Suppression, unsubscribe, consent and frequency caps still apply."""
    purpose: str | None = None
    """The consent purpose of this marketing email (consent.yaml purposes); the sequence's when absent.
    It goes only to leads whose consent for it is granted (or whose region's basis allows it)."""
    transactional: bool = False
    """This email answers what the person asked for (the demo request's reply): it needs no marketing
    consent and no frequency cap allows or holds it. Only in sequences a form or the API starts;
    suppression still applies."""
    next: str | None = None


@dataclass(frozen=True, slots=True)
class UntilTime:
    """A weekday and time of day in the lead's timezone."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    time: str = "09:00"
    """HH:MM, 24-hour clock."""
    weekdays: tuple[Weekday, ...] = WEEKDAYS  # type: ignore[assignment]
    """Allowed days (mon..sun); the first allowed day and time after the wait began."""

    def __post_init__(self) -> None:
        if not TIME_PATTERN.match(self.time):
            raise ConfigProblem("time", f"'{self.time}' is not HH:MM")
        if not self.weekdays:
            raise ConfigProblem("weekdays", "name at least one day")


@dataclass(frozen=True, slots=True)
class WaitStep:
    """Wait a duration, until a local weekday/time, or up to a duration until a condition holds."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    type: Literal["wait"]
    days: Annotated[int, Ge(0), Le(3650)] = 0
    hours: Annotated[int, Ge(0), Le(10_000)] = 0
    minutes: Annotated[int, Ge(0), Le(100_000)] = 0
    until: UntilTime | None = None
    """Wait until this local time (after the duration, if one is given too)."""
    until_event: Condition | None = None
    """End the wait early as soon as this holds (e.g. clicked: previous); the duration is the longest wait."""
    next: str | None = None

    @property
    def seconds(self) -> int:
        return self.days * 86_400 + self.hours * 3_600 + self.minutes * 60

    def __post_init__(self) -> None:
        if self.seconds == 0 and self.until is None:
            raise ConfigProblem("days", "a wait needs a duration (days, hours, minutes) or until")
        if self.until_event is not None and self.seconds == 0:
            raise ConfigProblem("until_event", "give the longest wait (days, hours or minutes) too")


@dataclass(frozen=True, slots=True)
class BranchStep:
    """Go to ``then`` when the condition holds, else to ``otherwise`` (either may be 'end')."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    type: Literal["branch"]
    when: Condition
    then: str
    otherwise: str


@dataclass(frozen=True, slots=True)
class SetField:
    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    name: str
    value: str

    def __post_init__(self) -> None:
        check_pattern(FIELD_PATTERN, self.name, "field", "name")
        if self.name in PROTECTED_FIELDS:
            raise ConfigProblem("name", f"'{self.name}' is kept by leadflow itself and cannot be set")


PROTECTED_FIELDS = frozenset(
    {
        "lead_id",
        "email",
        "stage",
        "scores",
        "grade",
        "tags",
        "created_at",
        "updated_at",
        "score_version",
        "scored_entries",
    }
)


@dataclass(frozen=True, slots=True)
class AddPoints:
    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    points: Annotated[int, Ge(-10_000), Le(10_000)]
    model: str | None = None
    reason: str = "sequence action"


@dataclass(frozen=True, slots=True)
class Action:
    """One thing to do to the lead. Give exactly one key."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    tag: str | None = None
    untag: str | None = None
    set_field: SetField | None = None
    add_points: AddPoints | None = None
    handoff: str | None = None
    """Hand the lead to sales, with this reason."""
    enroll: str | None = None
    """Enroll the lead in this other sequence."""
    exit_sequence: str | None = None
    """Take the lead out of this other sequence."""

    def __post_init__(self) -> None:
        given = [name for name in ACTION_KEYS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ConfigProblem(None, f"an action has exactly one of {', '.join(ACTION_KEYS)}")
        for name in ("tag", "untag"):
            if getattr(self, name) is not None:
                check_pattern(TAG_PATTERN, getattr(self, name), "tag", name)
        for name in ("enroll", "exit_sequence"):
            if getattr(self, name) is not None:
                check_pattern(ID_PATTERN, getattr(self, name), "sequence", name)

    @property
    def key(self) -> str:
        return next(name for name in ACTION_KEYS if getattr(self, name) is not None)


ACTION_KEYS = ("tag", "untag", "set_field", "add_points", "handoff", "enroll", "exit_sequence")


@dataclass(frozen=True, slots=True)
class ActionStep:
    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    type: Literal["action"]
    actions: Annotated[tuple[Action, ...], MinLen(1)]
    next: str | None = None


@dataclass(frozen=True, slots=True)
class GoalStep:
    """Leave the sequence as converted when the condition holds; otherwise go on."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    type: Literal["goal"]
    when: Condition
    next: str | None = None


Step = Annotated[EmailStep | WaitStep | BranchStep | ActionStep | GoalStep, Field(discriminator="type")]
StepType = EmailStep | WaitStep | BranchStep | ActionStep | GoalStep
