"""Nurture (services/nurture): the nurture package's collaborators: the nurture store (leads,
enrollments, mail logs, sequence versions, suppressions, the send rate, the due index, broadcast
runs) and the types it exchanges, the due-now queue, points, the broadcast runner and the A/B
winners."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:  # not imported at run time: form capture's cold start loads neither the renderer nor nurture
    from leadflow.domain.definitions.sequences import Sequence as SequenceConfig
    from leadflow.domain.events import DomainEvent
    from leadflow.domain.nurture.mail_log import MailLog
    from leadflow.domain.nurture.state import Enrollment


class DueNowQueue(Protocol):
    def push(self, pairs: list[tuple[str, str]]) -> None:
        """Have these (lead id, sequence id) enrollments stepped now, not at the next tick."""
        ...


class PointsAwarder(Protocol):
    def award(self, lead_id: str, points: int, model: str | None, reason: str, award_id: str) -> None:
        """Add points to the lead's score, once per ``award_id``."""
        ...


class BroadcastRunner(Protocol):
    def start(self, name: str, parts: list[dict[str, Any]]) -> None:
        """Run a broadcast's parts in parallel, a hop of each at a time, until every part is done
        (the broadcast state machine); started once per ``name``, a second start is a no-op."""
        ...


@dataclass
class ProfileChange:
    """Changes to a lead's profile made together (one write), and the events that announce them
    (stored with it). An attribute appears once: a second change of it is another ``ProfileChange``."""

    assign: dict[str, Any] = field(default_factory=dict)
    """Attributes set to a value."""
    add_to: dict[str, set[str]] = field(default_factory=dict)
    """Set attributes (tags, segments) given these members."""
    remove_from: dict[str, set[str]] = field(default_factory=dict)
    """Set attributes these members are taken out of."""
    events: list[DomainEvent] = field(default_factory=list)

    def touches(self, attribute: str) -> bool:
        return attribute in self.assign or attribute in self.add_to or attribute in self.remove_from

    def __bool__(self) -> bool:
        return bool(self.assign or self.add_to or self.remove_from)


@dataclass
class ScannedPage:
    """One page of a broadcast's scan: the profiles found, the enrollments and mail logs of their
    leads that came with them, the leads whose items began before the scan's start key (their
    enrollment and log are not here: read them), the key to go on from (None: the end) and the
    key the page began after (None: the scan's start), to do the page again from."""

    after: dict[str, Any] | None
    start: dict[str, Any] | None = None
    profiles: list[dict[str, Any]] = field(default_factory=list)
    enrollments: dict[tuple[str, str], tuple[Enrollment, int]] = field(default_factory=dict)
    logs: dict[str, MailLog] = field(default_factory=dict)
    partial: set[str] = field(default_factory=set)


EnrollmentsByKey: TypeAlias = "dict[tuple[str, str], tuple[Enrollment, int]]"
"""Enrollments by (lead id, sequence id), each with the rev it was read at."""


class NurtureStore(Protocol):
    """What the nurture service and the tick read and write: leads, enrollments, mail logs,
    sequence versions, suppressions, the shared send rate, the due index and broadcast runs.

    Every write of an enrollment or a mail log is conditional on what was read (an enrollment's
    ``rev``, a log's ``version``): whoever changed it meanwhile wins, and the write says False
    (or "changed")."""

    # -- leads
    def get_lead(self, lead_id: str) -> dict[str, Any] | None: ...

    def recent_activities(self, lead_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The lead's most recent activities, newest first."""
        ...

    def update_profile(self, lead_id: str, change: ProfileChange) -> None:
        """Apply the change to the lead's profile (nothing when the lead is gone), its events with it."""
        ...

    def put_events(self, events: Sequence[DomainEvent]) -> None:
        """Write events to the outbox, for its relay to publish (what the bus refused)."""
        ...

    def record_consent(self, lead_id: str, record_id: str, consent: Mapping[str, Any]) -> None:
        """Add one record (``purpose``, ``granted``, ``at``, ``source``...) to the lead's consent history."""
        ...

    def suppress(self, address_key: str, reason: str, at: str) -> None:
        """List an address key (its keyed hash, never the address); the first reason is kept."""
        ...

    def suppressed(self, address_keys: Iterable[str]) -> set[str]:
        """Which of these address keys are suppressed."""
        ...

    def suppression_items(self, address_keys: Iterable[str]) -> list[dict[str, Any]]:
        """The entries of these address keys (``PK`` ``SUPPRESS#<key>``, ``reason``, ``at``)."""
        ...

    def unsuppress_erased(self, address_key: str) -> None:
        """Delete the entry if its reason is ``erased`` (the person consented again since)."""
        ...

    def suppressions_listed(self, since: str | None, most: int) -> list[str] | None:
        """The address keys suppressed at or after ``since`` (None: all); None when more than ``most``."""
        ...

    # -- sequence versions
    def version_of(self, sequence_id: str, content_hash: str, definition: dict[str, Any]) -> int:
        """The version number of this content of the sequence; a new content gets the next number."""
        ...

    def version_definition(self, sequence_id: str, number: int) -> dict[str, Any] | None: ...

    def versions(self, sequence_id: str) -> list[dict[str, Any]]:
        """Every registered version: ``number``, ``hash``, ``created_at``, by number."""
        ...

    # -- enrollments
    def enrollment(self, lead_id: str, sequence_id: str) -> tuple[Enrollment, int] | None: ...

    def lead_enrollments(self, lead_id: str) -> list[tuple[Enrollment, int]]: ...

    def load_batch(
        self, pairs: list[tuple[str, str]], mail: bool = True
    ) -> tuple[EnrollmentsByKey, dict[str, dict[str, Any]], dict[str, MailLog]]:
        """The enrollments of these pairs, their leads' profiles and (with ``mail``) mail logs (an
        empty one for a lead without)."""
        ...

    def enrollments_of(
        self, pairs: list[tuple[str, str]], mail: bool = False
    ) -> tuple[EnrollmentsByKey, dict[str, MailLog]]: ...

    def put_enrollment(self, enrollment: Enrollment, rev: int, new: bool = False) -> bool:
        """Store the enrollment over the one read at ``rev`` (0: there must be none); False if it changed."""
        ...

    def put_enrollments(self, enrollments: Sequence[tuple[Enrollment, int | None]]) -> int:
        """Each written like ``put_enrollment`` (rev None: new); returns how many were written."""
        ...

    # -- the mail log
    def mail_log(self, lead_id: str) -> MailLog: ...

    def claim_send(  # noqa: PLR0917 - the claim: whose, which email, what, when, over which read
        self,
        lead_id: str,
        message_id: str,
        record: dict[str, Any],
        now: datetime,
        log: MailLog,
        held: Enrollment | None = None,
    ) -> tuple[str, MailLog]:
        """Claim one email before it is sent (``MailLog.claimed``, written over ``log``'s version).

        Returns "claimed" with the log as written, "taken" (claimed before: never send it again),
        "confirmed" with the log as written (an ambiguous send of it the provider has since
        confirmed, now marked counted: count it as sent, once), "unconfirmed" (an ambiguous send
        awaiting the provider's confirmation: ask again later) or "changed" (the log changed since
        ``log`` was read: decide again)."""
        ...

    def mark_uncertain(self, lead_id: str, message_id: str, now: datetime, until: float) -> bool:
        """Keep a claim whose send failed ambiguously, marked uncertain since ``now``; no write is
        started once ``time.monotonic()`` passes ``until`` (``UNCERTAIN_MARK_WITHIN``: the claim then
        stands as sent). False when not marked."""
        ...

    def hold(self, enrollment: Enrollment, log: MailLog) -> bool:
        """Write a held enrollment's new state over the log read; False if the log changed."""
        ...

    def release_send(self, lead_id: str, message_id: str) -> None:
        """Take a claim back (the provider refused before sending)."""
        ...

    def touch_mail(self, lead_id: str) -> None:
        """Change the log's version: any send claimed on an older read fails (an unsubscribe)."""
        ...

    # -- the shared send rate
    def take_send_slots(self, wanted: int, rate: int, now: float) -> int:
        """Up to ``wanted`` sends of the current second's ``rate``, shared by every sender."""
        ...

    # -- the due index and the ticks
    def due(self, shard: int, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(lead id, sequence id) of the shard's enrollments due at ``now``, oldest first."""
        ...

    def shards_with_due(self, now: datetime) -> list[int]: ...

    def lease_shard(self, shard: int, holder: str, now: datetime, hold: timedelta) -> bool:
        """Hold one shard for one tick until ``now + hold``; False while another tick holds it."""
        ...

    def release_shard(self, shard: int, holder: str) -> None: ...

    # -- broadcasts
    def scan_leads(
        self, sequence_id: str, segment: int, segments: int, start: dict[str, Any] | None = None
    ) -> Iterable[ScannedPage]:
        """Every lead profile of one of ``segments`` scan segments, with its enrollment in the
        sequence and its mail log, page by page, from ``start`` (a page's ``after``)."""
        ...

    def table_items(self) -> int | None:
        """About how many items the table holds (DynamoDB updates the figure every ~6 hours;
        None when unknown): a broadcast runs no more parts than its Scan has pages of work for."""
        ...

    def start_broadcast_run(self, sequence_id: str, run: str, at: str, parts: int) -> bool:
        """Record a broadcast run (once: False when it exists)."""
        ...

    def claim_broadcast(self, sequence_id: str, name: str, at: str) -> bool:
        """Claim one named step of a sequence's broadcasts once (a scheduled time)."""
        ...

    def release_broadcast(self, sequence_id: str, name: str) -> None:
        """Take a claim or a run back (the run's state machine could not be started)."""
        ...

    def record_broadcast(self, sequence_id: str, run: str, counts: dict[str, int], parts_done: int) -> None:
        """Add one part's counts to the run's progress."""
        ...

    def broadcast_run(self, sequence_id: str, run: str) -> dict[str, Any] | None: ...


class VariantWinners(Protocol):
    def winner(self, sequence: SequenceConfig, version: int, step_id: str, now: datetime) -> str | None: ...
