"""What every part of the nurture service shares: its collaborators, the sequences it runs on
(current and registered versions), the enrollments of a lead as stored or held, and a lead as
the pure engine sees it."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from leadflow.config.workspace import Workspace
from leadflow.domain.definitions import models
from leadflow.domain.definitions.messaging import MessagingConfig
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.definitions.steps import EmailStep, StepType
from leadflow.domain.events import DomainEvent
from leadflow.domain.ids import new_id
from leadflow.domain.nurture import ActivityView, Enrollment, LeadView, held_state, migrate
from leadflow.domain.nurture.mail_log import MailLog
from leadflow.domain.nurture.triggers import reads_activity
from leadflow.domain.rendering import EmailRenderer
from leadflow.ports.clock import Clock
from leadflow.ports.messaging import EmailSender
from leadflow.ports.nurture import DueNowQueue, NurtureStore, PointsAwarder, VariantWinners
from leadflow.services.nurture.counts import SequenceCounts
from leadflow.services.nurture.links import TokenIssuer

SOURCE_NURTURE = "leadflow.nurture"
SEND_WORKERS = 8
"""Leads of one batch worked on at once: their SES and DynamoDB round trips overlap, so a batch
takes a fraction of the Lambda time (and GB-seconds) it takes one lead after the other."""
SLOT_BLOCK = 25
"""Send slots taken from the shared per-second counter at a time (one write per block)."""
SLOT_WAITS = 10
"""Seconds a worker waits for a free send slot before it leaves the rest of its batch due."""
PART_RATE = 20
"""Emails a second one broadcast part is given of the account's SES rate: a broadcast runs as
``ceil(rate / PART_RATE)`` parallel parts (14/s: 1, 100/s: 5, 1,000/s: 50). One part sends ~25 a
second at 512 MB on a loaded host's figures and ~45 on a quiet one (the cost meter's time model:
4-8 ms of CPU per email here, x3.5 on a 512 MB Lambda, plus the calls' latency over the worker
threads; ``bench/broadcast_drain.py``), so each keeps its share busy with a margin. More parts
cost next to nothing (a Lambda invocation and an Express child per part and round)."""
ITEMS_PER_PART = 3_000
"""No more parts than one per this many table items (about 1,000 leads: profile, mail log,
enrollment): a part of a small table would spend more on starting than on sending, and a broadcast
of a 1,000-lead segment is over in about a minute at one part's pace anyway."""
MAX_PARTS = 500
"""At most this many parts (10,000 emails a second, the schema's highest rate): Lambda's default
concurrency is 1,000 per account, shared with the API and the other functions."""
HOP_SECONDS = 600
"""How long one hop of a part enrolls and sends before it returns its cursor to the broadcast's
state machine (the template's ``BroadcastHopSeconds``): within the function's 900 s with a page to
spare; a round's start-up (~seconds) is then under 1% of it."""


def broadcast_parts(rate: float, items: int | None = None) -> int:
    """Parts (parallel Scan segments) a broadcast runs as at an SES rate of ``rate`` emails a
    second: one per ``PART_RATE`` of it, at least one, at most ``MAX_PARTS``, and, when the table's
    size is known (``items``), no more than one per ``ITEMS_PER_PART`` items."""
    parts = max(1, min(MAX_PARTS, math.ceil(rate / PART_RATE)))
    if items is not None:
        parts = min(parts, max(1, math.ceil(items / ITEMS_PER_PART)))
    return parts


@dataclass
class BatchResult:
    """What one batch did, counted (the step function returns it; tests and the bench read it)."""

    processed: int = 0
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "sent": self.sent,
            "outcomes": dict(self.outcomes),
            "failures": self.failures[:20],
        }

    def add(self, other: BatchResult) -> None:
        self.processed += other.processed
        self.sent += other.sent
        self.outcomes.update(other.outcomes)
        self.failures.extend(other.failures)


class StepFailed(RuntimeError):
    """A step taken at once for a bus event failed unexpectedly: the event must be delivered again."""


@dataclass(frozen=True)
class _Job:
    """One enrollment to advance, over the item read at ``rev``.

    A broadcast's enrollment is ``fresh``: not stored yet, it must be written whatever its first
    step does; ``new`` when the lead had no enrollment in the sequence (the write then requires
    that none exists), else it replaces the ended one read at ``rev`` (a re-entry). ``enrolls``:
    its first write is the lead's enrollment, counted ``enrolled`` as it is written (a broadcast's);
    counted per page after the fact, an invocation that died mid-page lost the count of the leads
    it had enrolled, whom its retry found enrolled already."""

    enrollment: Enrollment
    rev: int
    new: bool
    profile: dict[str, Any]
    fresh: bool = False
    enrolls: bool = False


class NurtureBase:
    """The nurture service's state and the reads its parts share (``NurtureService`` puts the parts
    together: stepping, enrollment, broadcasts, preferences)."""

    def __init__(
        self,
        *,
        workspace: Workspace,
        store: NurtureStore,
        sender: EmailSender,
        tokens: TokenIssuer,
        due_now: DueNowQueue,
        clock: Clock,
        address_key: Callable[[str], str],
        points: PointsAwarder | None = None,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        winners: VariantWinners | None = None,
    ) -> None:
        self.workspace = workspace
        self.store = store
        self.sender = sender
        self.tokens = tokens
        self.due_now = due_now
        self.clock = clock
        self.address_key = address_key
        """An address's key on the suppression list (its keyed hash: ``domain.gdpr.AddressHasher``)."""
        self.points = points
        self._wall = wall
        """The wall clock in seconds (``time.time``): send slots are counted per second of it, by
        every worker of every invocation at once, so not a process's ``time.monotonic``."""
        self._sleep = sleep
        self._current: dict[str, tuple[Sequence, int]] = {}
        self._old: dict[tuple[str, int], Sequence] = {}
        self._slots = 0
        self._slot_second = -1
        self._spent_second = -1
        """The second whose shared counter was found full: no worker asks it again until the next."""
        self._slot_lock = threading.Lock()
        self.workers = SEND_WORKERS
        self._activity_needed: dict[int, bool] = {}  # by id(): sequences are kept for the service's life
        self.counts = SequenceCounts()
        self.winners = winners
        """A/B winners to send to the remaining leads (``variants.promote_winner``); None: never."""
        """What was done, per sequence, version, step and variant (published for the reports)."""
        self._suppression_lock = threading.Lock()
        self._suppression_list: set[str] | None = set()  # None: too long to keep, read one by one
        self._suppression_read: datetime | None = None

    # ------------------------------------------------------------------ configuration
    @cached_property
    def messaging(self) -> MessagingConfig:
        return self.workspace.messaging

    @cached_property
    def renderer(self) -> EmailRenderer:
        return EmailRenderer(self.workspace.templates)

    def current(self, sequence_id: str) -> tuple[Sequence, int] | None:
        """The sequence as the workspace has it now, and its version number (looked up once per sequence:
        the service's workspace does not change)."""
        found = self._current.get(sequence_id)
        if found is not None:
            return found
        sequence = self.workspace.sequences.get(sequence_id)
        if sequence is None:
            return None
        version = self.store.version_of(sequence_id, sequence.content_hash, models.dump(Sequence, sequence))
        found = self._current[sequence_id] = (sequence, version)
        return found

    def definition(self, enrollment: Enrollment) -> tuple[Sequence, Enrollment] | None:
        """The sequence version this enrollment runs on (migrated onto the current one where declared)."""
        found = self.current(enrollment.sequence_id)
        if found is None:
            return None
        sequence, version = found
        if enrollment.version == version:
            return sequence, enrollment
        moved = migrate(enrollment, sequence, version)
        if moved is not None:
            return sequence, moved
        old = self._version(enrollment.sequence_id, enrollment.version)
        return (old, enrollment) if old is not None else None

    def _version(self, sequence_id: str, number: int) -> Sequence | None:
        """Version ``number`` of the sequence: the workspace's when current, else as registered."""
        found = self.current(sequence_id)
        if found is not None and found[1] == number:
            return found[0]
        key = (sequence_id, number)
        if key not in self._old:
            data = self.store.version_definition(sequence_id, number)
            if data is None:
                return None
            self._old[key] = Sequence.from_trusted(data)
        return self._old[key]

    # ------------------------------------------------------------------ reading enrollments
    def _resolve(
        self,
        lead_id: str,
        sequence_id: str,
        stored: tuple[Enrollment, int] | None,
        log: MailLog | None,
        now: datetime,
    ) -> tuple[Enrollment, int, bool] | None:
        """The lead's enrollment in the sequence: its item, or the one its mail log holds when that
        one is a later entry (a held enrollment reads as completed once its wait is over and it lapses
        quietly). Returns (enrollment, the item's rev or 0 when there is none, whether it is held)."""
        held = log.held_enrollment(lead_id, sequence_id) if log is not None else None
        if held is None or (stored is not None and stored[0].entry >= held.entry):
            return (stored[0], stored[1], False) if stored is not None else None
        # Worked out on the version it runs on (a migration, if one applies, happens at its next step).
        state = held_state(self._version(sequence_id, held.version), held, now)
        return state, (stored[1] if stored is not None else 0), True

    def enrollment(self, lead_id: str, sequence_id: str) -> tuple[Enrollment, int] | None:
        """The lead's enrollment in the sequence (stored or held) and the rev to write it over."""
        found = self._resolve(
            lead_id,
            sequence_id,
            self.store.enrollment(lead_id, sequence_id),
            self.store.mail_log(lead_id),
            self.clock.now(),
        )
        return (found[0], found[1]) if found is not None else None

    def lead_enrollments(self, lead_id: str) -> list[tuple[Enrollment, int]]:
        """Every enrollment of the lead, stored or held, by sequence id."""
        now = self.clock.now()
        stored = {e.sequence_id: (e, rev) for e, rev in self.store.lead_enrollments(lead_id)}
        log = self.store.mail_log(lead_id)
        found = []
        for sequence_id in sorted(stored.keys() | log.held.keys()):
            resolved = self._resolve(lead_id, sequence_id, stored.get(sequence_id), log, now)
            if resolved is not None:
                found.append((resolved[0], resolved[1]))
        return found

    def overview(self) -> list[dict[str, Any]]:
        """Every sequence of the workspace: its current version, triggers, steps and version history."""
        rows = []
        for sequence in self.workspace.sequences.values():
            found = self.current(sequence.id)
            rows.append(
                {
                    "id": sequence.id,
                    "name": sequence.name,
                    "status": sequence.status,
                    "version": found[1] if found else None,
                    "topic": sequence.topic,
                    "triggers": [t.key for t in sequence.triggers],
                    "steps": [_step_view(sequence, step) for step in sequence.steps],
                    "versions": self.store.versions(sequence.id),
                }
            )
        return rows

    def _needs_activity(self, sequence: Sequence) -> bool:
        """Whether the sequence's conditions read recent activities (worked out once per sequence)."""
        key = id(sequence)
        if key not in self._activity_needed:
            self._activity_needed[key] = reads_activity(sequence, self.workspace.segments)
        return self._activity_needed[key]

    def _lead_view(
        self, profile: dict[str, Any], suppressed: bool, needs_activity: bool, log: MailLog | None = None
    ) -> LeadView:
        lead_id = str(profile["lead_id"])
        activities: tuple[ActivityView, ...] = ()
        if needs_activity:
            activities = tuple(
                ActivityView(str(a.get("type")), datetime.fromisoformat(a["at"]), a)
                for a in self.store.recent_activities(lead_id)
                if a.get("at")
            )
        scores = profile.get("scores")
        return LeadView(  # by position: made twice per lead of a broadcast
            lead_id,
            profile,
            {k: float(v) for k, v in scores.items()} if scores else {},
            activities,
            suppressed,
            _recent_sends(profile, log),
            self._scoring_default_model,
        )

    def _event(self, detail_type: str, now: datetime, **detail: Any) -> DomainEvent:
        return DomainEvent(new_id(now), SOURCE_NURTURE, detail_type, now.isoformat(), detail)

    @cached_property
    def _scoring_default_model(self) -> str:
        try:
            return self.workspace.scoring.default_model
        except Exception:  # noqa: BLE001 - a workspace without scoring
            return "default"

    if TYPE_CHECKING:  # provided by the parts NurtureService is made of (stepping, enrollment, preferences)

        def _work(self, jobs: list[_Job], logs: Mapping[str, MailLog], now: datetime) -> BatchResult: ...

        def enroll_lead(
            self, lead_id: str, sequence_id: str, reason: str = "api", push: bool = True
        ) -> Enrollment | None: ...

        def exit(self, lead_id: str, sequence_id: str, reason: str) -> bool: ...

        def _wake(self, lead_id: str, profile: dict[str, Any] | None = None) -> int: ...

        def _double_opt_in(self, profile: dict[str, Any], detail: dict[str, Any]) -> None: ...


def _step_view(sequence: Sequence, step: StepType) -> dict[str, Any]:
    """A step as the sequence listing shows it: an email's consent purpose, or that it is transactional."""
    view: dict[str, Any] = {"id": step.id, "type": step.type}
    if isinstance(step, EmailStep):
        view.update(purpose=sequence.purpose_of(step), transactional=step.transactional)
    return view


def _recent_sends(profile: Mapping[str, Any], log: MailLog | None) -> tuple[datetime, ...]:
    """When the lead was last sent marketing email: its mail log, and the ``recent_sends`` list
    profiles written before the mail log existed may still carry (read, never written)."""
    listed = profile.get("recent_sends")
    legacy = tuple(datetime.fromisoformat(s) for s in listed) if listed else ()
    if log is None or not log.sends:
        return legacy
    return legacy + log.times()


HIDDEN_FIELDS = frozenset(
    {"PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "GSI5PK", "GSI5SK"}
    | {"recent_sends", "score_version"}
)
"""Profile attributes that are the table's or the engine's, never a template's."""


def _personal(profile: Mapping[str, Any]) -> dict[str, Any]:
    """What templates may read about the lead: its profile fields and custom fields, no internals."""
    lead = {k: v for k, v in profile.items() if k not in HIDDEN_FIELDS}
    for key, value in profile.items():
        if key.startswith("cf_"):
            lead.setdefault(key[3:], value)
    return lead
