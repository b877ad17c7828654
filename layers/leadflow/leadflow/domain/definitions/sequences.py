"""Nurture sequences: the workspace's ``sequences/``.

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

The conditions are in ``conditions.py``, the steps in ``steps.py``, ``messaging.yaml`` in
``messaging.py``. Plain dataclasses validated by pydantic (``models``), like the other definitions.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Le, MinLen

from leadflow.domain.definitions import models
from leadflow.domain.definitions.conditions import (
    END,
    ID_PATTERN,
    PREVIOUS,
    TAG_PATTERN,
    Condition,
    SegmentList,
    check_pattern,
)
from leadflow.domain.definitions.consent import PURPOSE_PATTERN
from leadflow.domain.definitions.models import ConfigProblem
from leadflow.domain.definitions.scoring import STAGES
from leadflow.domain.definitions.steps import BranchStep, EmailStep, GoalStep, Step, StepType, WaitStep


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
        check_pattern(ID_PATTERN, self.segment, "segment", "segment")
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
            check_pattern(TAG_PATTERN, self.tag_added, "tag", "tag_added")
        if self.segment_joined is not None:
            check_pattern(ID_PATTERN, self.segment_joined, "segment", "segment_joined")
        if self.form_submitted is not None and self.form_submitted != "*":
            check_pattern(ID_PATTERN, self.form_submitted, "form", "form_submitted")

    @property
    def key(self) -> str:
        return next(name for name in TRIGGER_KEYS if getattr(self, name) is not None)


TRIGGER_KEYS = ("form_submitted", "tag_added", "stage_reached", "score_crossed", "segment_joined", "api", "broadcast")
UNASKED_TRIGGERS = frozenset({"tag_added", "stage_reached", "score_crossed", "segment_joined", "broadcast"})
"""Triggers that enroll a lead for something it did not ask for: no transactional step in their sequences."""


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
        check_pattern(ID_PATTERN, self.id, "sequence", "id")
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
            check_pattern(ID_PATTERN, step.id, "step", "steps")
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
                check_pattern(PURPOSE_PATTERN, purpose, "purpose", "purpose")
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
