"""Nurture sequences, segments and sending rules: the workspace's ``sequences/``, ``segments.yaml``
and ``messaging.yaml``.

A sequence is a list of steps a lead walks through, one enrollment per lead per sequence:

- ``email``: send a template (A/B variants split by weight);
- ``wait``: a duration, until a weekday and time in the lead's timezone, or up to some
  time until an event happens (an open, a click...);
- ``branch``: go to ``then`` when a condition holds, else to ``otherwise``;
- ``action``: tag, untag, set a field, add points, hand off to sales, enroll elsewhere;
- ``goal``: leave the sequence (reached) when a condition holds, else go on.

Steps run in file order unless one names its ``next`` (or ``end``). A sequence-wide ``goal``
is checked before every step and whenever the lead changes: once it holds, the lead exits.

Conditions (branches, goals, segments) are one key each, combined with ``all``/``any``/``none``.
What is checked here: the shape, names, that every step id a step points at exists, and
that no loop of steps can spin without a wait or an email in it.

Plain dataclasses validated by pydantic (``config.models``), like the other config files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Le, MinLen
from pydantic import Field

from leadflow.config import models
from leadflow.config.consent import PURPOSE_PATTERN
from leadflow.config.models import ConfigProblem
from leadflow.config.scoring import STAGES, ActivityType, GradeLetter

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FIELD_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_:.-]{0,63}$")
TIME_PATTERN = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
END = "end"
PREVIOUS = "previous"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _check(pattern: re.Pattern[str], value: str, what: str, field_name: str) -> None:
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
        _check(FIELD_PATTERN, self.name, "field", "name")
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
            _check(TAG_PATTERN, getattr(self, key), "tag", key)
        if key == "segment":
            _check(ID_PATTERN, self.segment or "", "segment", "segment")

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


# ---------------------------------------------------------------------------- triggers
@dataclass(frozen=True, slots=True)
class ScoreCrossing:
    """The score of a model rose to or above ``at_least`` (it was below before)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    at_least: float
    model: str | None = None
    """The scoring model; scoring.yaml's default_model when absent."""


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Enroll everyone in a segment at once (``leadflow broadcast``, the API, or at ``at``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    segment: str
    """The segment (segments.yaml) to enroll."""
    at: str | None = None
    """When to enroll it on its own (ISO 8601 with a timezone); without it, only on request."""

    def __post_init__(self) -> None:
        _check(ID_PATTERN, self.segment, "segment", "segment")
        if self.at is not None:
            from datetime import datetime

            try:
                when = datetime.fromisoformat(self.at)
            except ValueError:
                raise ConfigProblem("at", f"'{self.at}' is not an ISO 8601 time") from None
            if when.tzinfo is None:
                raise ConfigProblem("at", "needs a timezone, e.g. 2026-12-01T09:00:00+01:00")


@dataclass(frozen=True, slots=True)
class Trigger:
    """What enrolls a lead. Give exactly one key."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    form_submitted: str | None = None
    """A form id, or * for any form."""
    tag_added: str | None = None
    """The lead got this tag."""
    stage_reached: str | None = None
    """The lead moved into this stage."""
    score_crossed: ScoreCrossing | None = None
    """The score rose past a threshold."""
    segment_joined: str | None = None
    """The lead newly matches this segment."""
    api: bool | None = None
    """Manual or API enrollment (POST /api/v1/sequences/{id}/enrollments, leadflow enroll)."""
    broadcast: Broadcast | None = None
    """A scheduled or requested broadcast to a segment."""

    def __post_init__(self) -> None:
        given = [name for name in TRIGGER_KEYS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ConfigProblem(None, f"a trigger has exactly one of {', '.join(TRIGGER_KEYS)}")
        if self.stage_reached is not None and self.stage_reached not in STAGES:
            raise ConfigProblem("stage_reached", f"'{self.stage_reached}' is not a stage ({', '.join(STAGES)})")
        if self.tag_added is not None:
            _check(TAG_PATTERN, self.tag_added, "tag", "tag_added")
        if self.segment_joined is not None:
            _check(ID_PATTERN, self.segment_joined, "segment", "segment_joined")
        if self.form_submitted is not None and self.form_submitted != "*":
            _check(ID_PATTERN, self.form_submitted, "form", "form_submitted")

    @property
    def key(self) -> str:
        return next(name for name in TRIGGER_KEYS if getattr(self, name) is not None)


TRIGGER_KEYS = ("form_submitted", "tag_added", "stage_reached", "score_crossed", "segment_joined", "api", "broadcast")
UNASKED_TRIGGERS = frozenset({"tag_added", "stage_reached", "score_crossed", "segment_joined", "broadcast"})
"""Triggers that enroll a lead for something it did not ask for: no transactional step in their sequences."""


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
        _check(ID_PATTERN, self.id, "variant", "id")


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
        _check(FIELD_PATTERN, self.name, "field", "name")
        if self.name in PROTECTED_FIELDS:
            raise ConfigProblem("name", f"'{self.name}' is kept by leadflow itself and cannot be set")


PROTECTED_FIELDS = frozenset(
    {"lead_id", "email", "stage", "scores", "grade", "tags", "created_at", "updated_at", "score_version"}
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
                _check(TAG_PATTERN, getattr(self, name), "tag", name)
        for name in ("enroll", "exit_sequence"):
            if getattr(self, name) is not None:
                _check(ID_PATTERN, getattr(self, name), "sequence", name)

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


# ---------------------------------------------------------------------------- the sequence
@dataclass(frozen=True, slots=True)
class Reentry:
    """May a lead that was enrolled before be enrolled again?"""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    policy: Literal["never", "after_exit", "always"] = "never"
    """never: once per lead; after_exit: again once the previous enrollment ended; always: restart at once."""
    cooldown_days: Annotated[int, Ge(0), Le(3650)] = 0
    """after_exit: at least this many days after the previous enrollment ended."""


@dataclass(frozen=True, slots=True)
class Migration:
    """Move leads still on an older version of this sequence onto this one."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    from_version: Annotated[int, Ge(1)]
    """The version number (as listed by leadflow and the API) the leads are on."""
    steps: dict[str, str] = field(default_factory=dict)
    """Old step id -> step id in this version; steps not listed keep their id when it still exists."""


DURATION = re.compile(r"^([1-9][0-9]{0,3})([dhm])$")


@dataclass(frozen=True, slots=True)
class PromoteWinner:
    """Once a test has run ``after`` (e.g. ``2d``, ``12h``, ``90m``) and a variant wins at ``confidence``,
    the leads still to reach the step get the winner."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    after: str
    confidence: Annotated[float, Ge(0.5), Le(0.999)] = 0.95

    def __post_init__(self) -> None:
        if not DURATION.match(self.after):
            raise ConfigProblem("variants", "promote_winner.after: a number and d, h or m (2d, 12h, 90m)")

    @property
    def after_seconds(self) -> int:
        found = DURATION.match(self.after)
        if found is None:  # refused in __post_init__; kept for the type checker
            raise ConfigProblem("variants", "promote_winner.after: a number and d, h or m (2d, 12h, 90m)")
        return int(found.group(1)) * {"d": 86400, "h": 3600, "m": 60}[found.group(2)]


@dataclass(frozen=True, slots=True)
class VariantTests:
    """How the sequence's A/B tests (its email steps with ``variants``) are judged in the reports."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    confidence: Annotated[float, Ge(0.5), Le(0.999)] = 0.95
    """A variant wins when a two-sided two-proportion z-test rejects "no difference" at this confidence."""
    metric: Literal["click", "open"] = "click"
    """What a variant is judged on: unique clicks (or opens) over emails sent."""
    promote_winner: PromoteWinner | None = None
    """Send the winner to the remaining leads once it has won (the test's start plus ``after``)."""


@dataclass(frozen=True, slots=True)
class Sequence:
    """A nurture sequence: sequences/<id>.yaml."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    name: str
    steps: Annotated[tuple[Step, ...], MinLen(1)]
    description: str = ""
    status: Literal["active", "paused"] = "active"
    """paused: nobody new is enrolled and nothing is sent; enrolled leads wait where they are."""
    triggers: tuple[Trigger, ...] = ()
    reentry: Reentry = field(default_factory=Reentry)
    goal: Condition | None = None
    """Leave the sequence (converted) as soon as this holds."""
    topic: str = "marketing"
    """The subscription topic of its emails (messaging.yaml topics)."""
    purpose: str | None = None
    """The consent purpose of its marketing emails (consent.yaml purposes), unless a step names its own.
    Every email step that is not transactional must have one, here or on the step."""
    migrations: tuple[Migration, ...] = ()
    variants: VariantTests = field(default_factory=VariantTests)
    """The A/B tests' confidence and metric (the reports' verdict: a winner, or "not yet")."""

    def __post_init__(self) -> None:
        _check(ID_PATTERN, self.id, "sequence", "id")
        ids = self._step_ids()
        for step in self.steps:
            self._check_step(step, ids)
        loop = self._instant_loop()
        if loop:
            raise ConfigProblem("steps", f"steps {' -> '.join(loop)} loop without a wait")
        self._check_migrations(ids)

    def _step_ids(self) -> dict[str, int]:
        """Step id -> its index; each id well-formed and used once."""
        ids: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            _check(ID_PATTERN, step.id, "step", "steps")
            if step.id == END or step.id in ids:
                raise ConfigProblem("steps", f"step id '{step.id}' is used twice (or is the reserved 'end')")
            ids[step.id] = index
        return ids

    def _check_step(self, step: StepType, ids: dict[str, int]) -> None:
        """Where the step goes exists, what its conditions open or click is an email, its variants differ."""
        for target in _targets(step):
            if target != END and target not in ids:
                raise ConfigProblem("steps", f"step '{step.id}' goes to '{target}', which is not a step")
        for condition in _conditions(step):
            for part in condition.walk():
                for name in ("opened", "clicked"):
                    ref = getattr(part, name)
                    if ref is not None and ref != PREVIOUS and not _is_email(self, ref):
                        raise ConfigProblem("steps", f"step '{step.id}': '{name}: {ref}' names no email step")
        if isinstance(step, EmailStep):
            if len({v.id for v in step.variants}) != len(step.variants):
                raise ConfigProblem("steps", f"step '{step.id}': variant ids must differ")
            self._check_purpose(step)

    def _check_migrations(self, ids: dict[str, int]) -> None:
        seen_versions = set()
        for migration in self.migrations:
            if migration.from_version in seen_versions:
                raise ConfigProblem("migrations", f"two migrations from version {migration.from_version}")
            seen_versions.add(migration.from_version)
            for old, new in migration.steps.items():
                if new != END and new not in ids:
                    raise ConfigProblem("migrations", f"step '{old}' migrates to '{new}', which is not a step")

    def _check_purpose(self, step: EmailStep) -> None:
        """A marketing email names its consent purpose; a transactional one answers a request."""
        for purpose in (step.purpose, self.purpose):
            if purpose is not None:
                _check(PURPOSE_PATTERN, purpose, "purpose", "purpose")
        if step.transactional:
            unasked = sorted({t.key for t in self.triggers} & UNASKED_TRIGGERS)
            if unasked:
                raise ConfigProblem(
                    "steps",
                    f"step '{step.id}' is transactional, but a {unasked[0]} trigger enrolls people who asked for "
                    "nothing: a transactional email only answers a person's own request (a form, the API)",
                )
        elif self.purpose_of(step) is None:
            raise ConfigProblem(
                "steps",
                f"step '{step.id}' is a marketing email without a purpose: name its consent purpose "
                "(purpose: marketing_email, here or on the sequence) or mark a reply to a request transactional: true",
            )

    def purpose_of(self, step: EmailStep) -> str | None:
        """The consent purpose of an email step (None for a transactional one)."""
        return None if step.transactional else (step.purpose or self.purpose)

    def step(self, step_id: str) -> StepType:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def next_of(self, step_id: str) -> str:
        """The step after ``step_id`` in file order ('end' after the last)."""
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return self.steps[index + 1].id if index + 1 < len(self.steps) else END
        raise KeyError(step_id)

    def successors(self, step: StepType) -> list[str]:
        targets = _targets(step)
        if isinstance(step, BranchStep):
            return targets
        if isinstance(step, GoalStep):
            return [step.next or self.next_of(step.id)]
        return [step.next or self.next_of(step.id)]

    def _instant_loop(self) -> list[str]:
        """A cycle of steps without a wait in it: it would spin (an email is sent once per enrollment,
        so a loop back to an email does not stop either)."""
        instant = {s.id for s in self.steps if not isinstance(s, WaitStep)}
        graph = {s.id: [t for t in self.successors(s) if t in instant] for s in self.steps if s.id in instant}
        state: dict[str, int] = {}
        path: list[str] = []

        def visit(node: str) -> list[str]:
            state[node] = 1
            path.append(node)
            for target in graph[node]:
                if state.get(target) == 1:
                    return [*path[path.index(target) :], target]
                if target not in state:
                    found = visit(target)
                    if found:
                        return found
            state[node] = 2
            path.pop()
            return []

        for node in graph:
            if node not in state:
                found = visit(node)
                if found:
                    return found
        return []

    @property
    def content_hash(self) -> str:
        """Identifies this content: an edit makes a new version."""
        content = models.dump(Sequence, self)
        if self.variants == VariantTests():  # left as it was: the versions it had before the field existed
            del content["variants"]
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def email_steps(self) -> list[EmailStep]:
        return [s for s in self.steps if isinstance(s, EmailStep)]

    @classmethod
    def model_validate(cls, data: Any) -> Sequence:
        return models.validate(cls, data)

    @classmethod
    def from_trusted(cls, data: Any) -> Sequence:
        return models.validate(cls, data)


def _targets(step: StepType) -> list[str]:
    if isinstance(step, BranchStep):
        return [step.then, step.otherwise]
    return [step.next] if step.next else []


def _conditions(step: StepType) -> list[Condition]:
    if isinstance(step, BranchStep | GoalStep):
        return [step.when]
    if isinstance(step, WaitStep) and step.until_event is not None:
        return [step.until_event]
    return []


def _is_email(sequence: Sequence, step_id: str) -> bool:
    return any(isinstance(s, EmailStep) and s.id == step_id for s in sequence.steps)


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
        _check(ID_PATTERN, self.id, "segment", "id")
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
        _check(ID_PATTERN, self.id, "topic", "id")


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


def nurture_listens(sequences: Iterable[Sequence], segments: SegmentList) -> dict[str, bool]:
    """Which of the bus's lead events the active sequences act on.

    A score, tag or stage event matters only to a trigger on it or to a wait or goal that reads it
    (they are looked at when the lead changes); any other activity than an email's open or click
    only to a wait or goal that reads activity; with a ``segment_joined`` trigger every event
    matters (any change may make the lead join). The scoring function marks its ``lead.scored``
    events with the answer, and the nurture bus rule takes only the marked ones."""
    active = [s for s in sequences if s.status == "active"]
    triggers = {t.key for s in active for t in s.triggers}
    by_id = {s.id: s for s in segments.segments}
    keys: set[str] = set()
    for sequence in active:
        conditions = [sequence.goal] if sequence.goal is not None else []
        conditions += [s.until_event for s in sequence.steps if isinstance(s, WaitStep) and s.until_event]
        for condition in conditions:
            for part in condition.walk():
                keys.add(part.key)
                if part.key == "segment" and part.segment in by_id:
                    keys.update(p.key for p in by_id[part.segment].when.walk())
    every = "segment_joined" in triggers
    return {
        "lead.scored": every or "score_crossed" in triggers or bool(keys & {"score", "grade"}),
        "lead.tagged": every or "tag_added" in triggers or "tag" in keys,
        "lead.stage_changed": every or "stage_reached" in triggers or "stage" in keys,
        "activity": every or "activity" in keys,
    }
