"""Conditions and segments: the ``when`` of branches, goals, waits for an event and the
workspace's ``segments.yaml``.

A condition is one key each, combined with ``all``/``any``/``none``. The names and patterns
every nurture definition shares (ids, fields, tags, times of day) are here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Le

from leadflow.domain.definitions import models
from leadflow.domain.definitions.models import ConfigProblem
from leadflow.domain.definitions.scoring import STAGES, ActivityType, GradeLetter

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FIELD_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_:.-]{0,63}$")
TIME_PATTERN = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
END = "end"
PREVIOUS = "previous"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def check_pattern(pattern: re.Pattern[str], value: str, what: str, field_name: str) -> None:
    if not pattern.match(value):
        raise ConfigProblem(field_name, f"{what} '{value}' must match {pattern.pattern}")


# ---------------------------------------------------------------------------- conditions
@dataclass(frozen=True, slots=True)
class ScoreTest:
    """The lead's (decayed) score in one model compared with thresholds."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    model: str | None = None
    """The scoring model (see scoring.yaml); its default_model when absent."""
    gte: float | None = None
    """The score is at least this."""
    lt: float | None = None
    """The score is below this."""

    def __post_init__(self) -> None:
        if self.gte is None and self.lt is None:
            raise ConfigProblem("gte", "give gte, lt or both")


@dataclass(frozen=True, slots=True)
class GradeTest:
    """The fit grade compared with letters (A is best)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    at_least: GradeLetter | None = None
    """The grade is this letter or better (at_least: B holds for A and B)."""
    at_most: GradeLetter | None = None
    """The grade is this letter or worse."""

    def __post_init__(self) -> None:
        if self.at_least is None and self.at_most is None:
            raise ConfigProblem("at_least", "give at_least, at_most or both")


@dataclass(frozen=True, slots=True)
class FieldTest:
    """A profile field (first_name, country, a form's custom field...) compared with values."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    name: str
    """The field, as stored on the lead (custom fields without their cf_ prefix work too)."""
    equals: str | None = None
    """Equal, ignoring case and surrounding blanks."""
    one_of: tuple[str, ...] | None = None
    """Equal to one of these (ignoring case)."""
    contains: str | None = None
    """Contains this text (ignoring case)."""
    exists: bool | None = None
    """Has a non-blank value (true) or none (false)."""

    def __post_init__(self) -> None:
        check_pattern(FIELD_PATTERN, self.name, "field", "name")
        given = [x for x in (self.equals, self.one_of, self.contains, self.exists) if x is not None]
        if len(given) != 1:
            raise ConfigProblem("equals", "give exactly one of equals, one_of, contains, exists")


@dataclass(frozen=True, slots=True)
class ActivityTest:
    """The lead did something (at least ``min_count`` times) within the last ``within_days``."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    type: ActivityType
    """The activity type (page_viewed, email_clicked, form_submitted...)."""
    within_days: Annotated[int, Ge(1), Le(730)] = 30
    """How far back to look."""
    min_count: Annotated[int, Ge(1)] = 1
    """How many such activities at least."""
    url_contains: str | None = None
    """Only activities whose URL contains this (ignoring case)."""
    form_id: str | None = None
    """Only submissions of this form."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One test; ``all``/``any``/``none`` combine others. Give exactly one key."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    all: tuple[Condition, ...] | None = None
    """Every one of these holds."""
    any: tuple[Condition, ...] | None = None
    """At least one of these holds."""
    none: tuple[Condition, ...] | None = None
    """Not one of these holds."""
    opened: str | None = None
    """The email sent at this step of the sequence was opened (or clicked); 'previous' is the last email sent."""
    clicked: str | None = None
    """A link in the email sent at this step was clicked; 'previous' is the last email sent."""
    clicked_tag: str | None = None
    """A link with this tag was clicked in any email of this enrollment."""
    score: ScoreTest | None = None
    """Score thresholds."""
    grade: GradeTest | None = None
    """Fit grade thresholds."""
    field: FieldTest | None = None
    """A profile field test."""
    tag: str | None = None
    """The lead carries this tag."""
    stage: tuple[str, ...] | None = None
    """The lead's lifecycle stage is one of these."""
    activity: ActivityTest | None = None
    """Something the lead did recently."""
    segment: str | None = None
    """The lead matches this segment of segments.yaml."""

    def __post_init__(self) -> None:
        given = [name for name in CONDITION_KEYS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ConfigProblem(
                None, f"a condition has exactly one of {', '.join(CONDITION_KEYS)} (got {given or 'none'})"
            )
        key = given[0]
        if key in ("all", "any", "none") and not getattr(self, key):
            raise ConfigProblem(key, "must list at least one condition")
        if key == "stage":
            for stage in self.stage or ():
                if stage not in STAGES:
                    raise ConfigProblem("stage", f"'{stage}' is not a stage ({', '.join(STAGES)})")
        if key in ("tag", "clicked_tag"):
            check_pattern(TAG_PATTERN, getattr(self, key), "tag", key)
        if key == "segment":
            check_pattern(ID_PATTERN, self.segment or "", "segment", "segment")

    @property
    def key(self) -> str:
        return next(name for name in CONDITION_KEYS if getattr(self, name) is not None)

    def walk(self) -> list[Condition]:
        """This condition and every one nested in it."""
        found = [self]
        for group in (self.all, self.any, self.none):
            for child in group or ():
                found.extend(child.walk())
        return found


CONDITION_KEYS = (
    "all",
    "any",
    "none",
    "opened",
    "clicked",
    "clicked_tag",
    "score",
    "grade",
    "field",
    "tag",
    "stage",
    "activity",
    "segment",
)


# ---------------------------------------------------------------------------- segments
@dataclass(frozen=True, slots=True)
class Segment:
    """A dynamic list: every lead for which ``when`` holds, now."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    name: str
    when: Condition
    description: str = ""

    def __post_init__(self) -> None:
        check_pattern(ID_PATTERN, self.id, "segment", "id")
        for part in self.when.walk():
            if part.key in ("opened", "clicked", "clicked_tag"):
                raise ConfigProblem("when", f"'{part.key}' is about one enrollment's emails; segments use activity")


@dataclass(frozen=True, slots=True)
class SegmentList:
    """segments.yaml."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    segments: tuple[Segment, ...] = ()

    def __post_init__(self) -> None:
        ids = [s.id for s in self.segments]
        if len(set(ids)) != len(ids):
            raise ConfigProblem("segments", "segment ids must differ")
        known = set(ids)
        for segment in self.segments:
            for part in segment.when.walk():
                if part.segment is not None and part.segment not in known:
                    raise ConfigProblem(
                        "segments", f"segment '{segment.id}' refers to unknown segment '{part.segment}'"
                    )

    @classmethod
    def model_validate(cls, data: Any) -> SegmentList:
        return models.validate(cls, data if data is not None else {})

    @classmethod
    def from_trusted(cls, data: Any) -> SegmentList:
        return models.validate(cls, data)
