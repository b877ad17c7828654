"""Broadcasts: a whole segment enrolled with conditional writes, split into as many parallel Scan
segments as the SES rate keeps busy, each run hop after hop by the broadcast state machine
(``start_broadcast``, ``broadcast_hop``) so that a segment of any size is never one Lambda
invocation, and the broadcasts scheduled for a time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from leadflow.domain.definitions.conditions import Segment, SegmentList
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.nurture import Enrollment, LeadView, enroll, in_segment
from leadflow.ports.nurture import BroadcastRunner, ScannedPage
from leadflow.services.nurture.base import HOP_SECONDS, NurtureBase, _Job, broadcast_parts


class Broadcasts(NurtureBase):
    """Enrolling a broadcast's segment, here or as parallel chains of invocations."""

    def _broadcast_target(self, sequence_id: str) -> tuple[Sequence, int, Segment]:
        """The sequence, its version and its broadcast segment.

        Raises:
            KeyError: no such sequence, it has no broadcast trigger, or its segment is unknown.
        """
        found = self.current(sequence_id)
        if found is None:
            raise KeyError(sequence_id)
        sequence, version = found
        trigger = next((t.broadcast for t in sequence.triggers if t.broadcast), None)
        if trigger is None:
            raise KeyError(f"{sequence_id} has no broadcast trigger")
        segment = next((s for s in self.workspace.segments.segments if s.id == trigger.segment), None)
        if segment is None:
            raise KeyError(trigger.segment)
        return sequence, version, segment

    def broadcast(
        self, sequence_id: str, progress: Callable[[int, int], None] | None = None, scan_segments: int = 4
    ) -> dict[str, int]:
        """Enroll every lead of the sequence's broadcast segment here and now, segment after segment
        (``leadflow broadcast``; in AWS, ``start_broadcast`` splits it over invocations).

        Raises:
            KeyError: no such sequence, or it has no broadcast trigger.
        """
        counts = Counter[str]()

        def overall(scanned: int, enrolled: int) -> None:  # a part counts from 0: add the parts done
            if progress:
                progress(counts["scanned"] + scanned, counts["enrolled"] + enrolled)

        for part in range(scan_segments):
            cursor: dict[str, Any] | None = None
            while True:
                done, cursor = self.broadcast_part(sequence_id, part, scan_segments, cursor, progress=overall)
                counts.update(done)
                if cursor is None:
                    break
        return dict(counts)

    def broadcast_part(  # noqa: PLR0917 - a resumable part: where, from which key, until when
        self,
        sequence_id: str,
        segment: int,
        segments: int,
        cursor: dict[str, Any] | None = None,
        stop: Callable[[], bool] = lambda: False,
        progress: Callable[[int, int], None] | None = None,
        first_step: bool = False,
    ) -> tuple[dict[str, int], dict[str, Any] | None]:
        """Enroll the segment's members found in one scan segment, page by page, from ``cursor``
        until the scan segment ends or ``stop()`` says the time is up.

        Each enrollment is written conditionally (new: only if the lead has none; re-entry: only
        over the ended one read), so running a part again, two broadcasts of one sequence, or a
        tick moving an enrollment on meanwhile never overwrite an enrollment.

        With ``first_step`` (the broadcast's parts in AWS) each new enrollment is not stored due now
        for a tick to read back, but taken through its first step at once, exactly as a tick
        would (gates, render, mail-log claim, SES within the shared rate) and stored once, after
        it: one enrollment write per lead instead of two, and no due-index entry to add and move.
        A lead the first step defers (quiet hours, caps, throttling) is stored due then, for the ticks.

        Returns:
            The counts (scanned, enrolled, already_enrolled, refused, taken; with ``first_step``
            also sent and the step outcomes) and the key to go on from, None when the scan
            segment is done.

        Raises:
            KeyError: no such sequence, or it has no broadcast trigger.
            PageStalled: a page's new enrollments could neither take their first step nor be
                stored (the table failing): the part is to go on from where that page began.
        """
        sequence, version, segment_rule = self._broadcast_target(sequence_id)
        wave = _Wave(sequence, version, segment_rule, self.clock.now(), first_step)
        for page in self.store.scan_leads(sequence_id, segment, segments, cursor):
            wave.counts["scanned"] += len(page.profiles)
            members = [p for p in page.profiles if wave.wants(self._lead_view, p, self.workspace.segments)]
            if members:
                self._enroll_members(wave, members, page)
            if progress:
                progress(wave.counts["scanned"], wave.counts["enrolled"])
            if page.after is None:
                return dict(wave.counts), None
            if stop():
                return dict(wave.counts), page.after
        return dict(wave.counts), None

    # Complexity C (12), kept: the page's members read (or read again), enrolled and written in one
    # of two ways (first step now, or stored due), with their counts; split, the counts would scatter.
    def _enroll_members(self, wave: _Wave, members: list[dict[str, Any]], page: ScannedPage) -> None:
        """Enroll a page's segment members: each written once, conditionally (see ``broadcast_part``)."""
        sequence_id = wave.sequence.id
        # The scan brought each member's enrollment and mail log; a lead whose items began
        # before this invocation's start key is read here (one per invocation at most).
        existing, logs = page.enrollments, page.logs
        partial = [(str(p["lead_id"]), sequence_id) for p in members if p["lead_id"] in page.partial]
        if partial:
            found, read = self.store.enrollments_of(partial, mail=True)
            existing, logs = {**existing, **found}, {**logs, **read}
        fresh: list[tuple[Enrollment, int | None]] = []
        profiles: dict[str, dict[str, Any]] = {}
        for profile in members:
            lead_id = str(profile["lead_id"])
            resolved = self._resolve(
                lead_id, sequence_id, existing.get((lead_id, sequence_id)), logs.get(lead_id), wave.now
            )
            created = wave.enroll(lead_id, (resolved[0], resolved[1]) if resolved is not None else None)
            if created is not None:
                fresh.append(created)
                profiles[lead_id] = profile
        counts = wave.counts
        if not wave.first_step:
            written = self.store.put_enrollments(fresh)
            counts["enrolled"] += written
            if fresh:
                self.counts.add(sequence_id, wave.version, fresh[0][0].step_id, None, "enrolled", written)
            counts["taken"] += len(fresh) - written
            return
        jobs = [_Job(e, rev or 0, rev is None, profiles[e.lead_id], fresh=True, enrolls=True) for e, rev in fresh]
        done = self._work(jobs, logs, wave.now)
        taken = done.outcomes.pop("conflict", 0)
        skipped = done.outcomes.pop("not_enrolled", 0)  # skipped at the first email: not written
        started = len(jobs) - taken - skipped - done.outcomes["error"]
        counts["enrolled"] += started  # the run's progress; the report's count is taken per write
        counts["taken"] += taken
        counts["sent"] += done.sent
        counts.update(done.outcomes)
        if done.outcomes["unstored"]:
            # A lead's first step failed and so did storing its enrollment for later (the table is
            # failing): nothing holds it, and a cursor moved past this page would lose it.
            raise PageStalled(dict(counts), page.start)

    def start_broadcast(  # noqa: PLR0917 - the broadcast, its run, and how it is split
        self,
        sequence_id: str,
        run: str,
        runner: BroadcastRunner,
        segments: int | None = None,
        account_rate: Callable[[], float | None] | None = None,
        hop_seconds: int = HOP_SECONDS,
    ) -> dict[str, int]:
        """Start a broadcast once per run: ``segments`` parts (parallel Scan segments) handed to the
        broadcast state machine, which runs a hop of each part at a time (``broadcast_hop``) until
        every part's scan is done.

        Without ``segments``, as many parts as the SES rate keeps busy (``broadcast_parts``: one
        per ``PART_RATE`` emails a second): the configured ``send_rate_per_second``, or the
        account's own maximum (``account_rate()``, SES ``GetAccount``, asked only here) when that
        is lower. Fewer parts would leave the rate unused (one part sends ~25-45 a second); more
        would only wait for send slots, and each wait is billed Lambda time. A small table gets
        fewer (one per ``ITEMS_PER_PART`` items, ``DescribeTable``'s count).

        The run's item (``SEQ#<id>`` / ``BROADCAST#<run>``) is written once before the state
        machine is started, so a redelivered start starts nothing; if the start fails, the item
        is taken back before the error goes up and the retried start runs it.

        Raises:
            KeyError: no such sequence, or it has no broadcast trigger.
        """
        self._broadcast_target(sequence_id)
        rate: float = self.messaging.send_rate_per_second
        allowed = account_rate() if account_rate is not None else None
        if allowed is not None and 0 < allowed < rate:
            rate = allowed
        if segments is None:
            segments = broadcast_parts(rate, self.store.table_items())
        if not self.store.start_broadcast_run(sequence_id, run, self.clock.now().isoformat(), segments):
            return {"parts": 0, "rate": int(rate)}
        parts = [
            {
                "broadcast": sequence_id,
                "run": run,
                "segment": segment,
                "segments": segments,
                "seconds": hop_seconds,
                "cursor": None,
                "more": True,
                "failures": 0,
            }
            for segment in range(segments)
        ]
        try:
            runner.start(f"{sequence_id}-{run}", parts)
        except Exception:
            self.store.release_broadcast(sequence_id, run)
            raise
        return {"parts": segments, "rate": int(rate)}

    def broadcast_hop(self, part: dict[str, Any], stop: Callable[[], bool]) -> dict[str, Any]:
        """One hop of a broadcast part (a child of the broadcast state machine): enroll and send from
        the part's cursor until ``stop()`` says its time is up, add the counts to the run's item,
        and return the part with where its scan stopped (``more``: false once it is done).

        Run again after a crash or a timeout, it redoes its pages from the same cursor: each
        enrollment and each email's claim is a conditional write, so nothing is written or sent
        twice."""
        sequence_id, run = str(part["broadcast"]), str(part["run"])
        try:
            counts, after = self.broadcast_part(
                sequence_id, int(part["segment"]), int(part["segments"]), part.get("cursor"), stop, first_step=True
            )
        except PageStalled as stalled:
            # Its page is done again next round, from where it began (as after a failed hop, with
            # the counts so far kept); a part that keeps stalling fails like one that keeps failing.
            self.store.record_broadcast(sequence_id, run, stalled.counts, 0)
            failures = int(part.get("failures") or 0) + 1
            sent = stalled.counts.get("sent", 0)
            return {**part, "cursor": stalled.cursor, "more": True, "failures": failures, "sent": sent}
        self.store.record_broadcast(sequence_id, run, counts, 0 if after else 1)
        return {**part, "cursor": after, "more": after is not None, "failures": 0, "sent": counts.get("sent", 0)}

    def scheduled_broadcasts(
        self,
        now: datetime,
        runner: BroadcastRunner | None = None,
        account_rate: Callable[[], float | None] | None = None,
    ) -> list[str]:
        """Start every broadcast whose ``at`` has come, once each (a claim item per sequence and time).

        With ``runner`` they are started on the broadcast state machine (the tick's plan must not
        spend its time enrolling); without, they run here."""
        ran = []
        for sequence in self.workspace.sequences.values():
            for trigger in sequence.triggers:
                if trigger.broadcast is None or trigger.broadcast.at is None or sequence.status != "active":
                    continue
                if datetime.fromisoformat(trigger.broadcast.at) > now:
                    continue
                if self.store.claim_broadcast(sequence.id, trigger.broadcast.at, now.isoformat()):
                    if runner is not None:
                        run = f"scheduled-{trigger.broadcast.at}"
                        self.start_broadcast(sequence.id, run, runner, account_rate=account_rate)
                    else:
                        self.broadcast(sequence.id)
                    ran.append(sequence.id)
        return ran


class PageStalled(StorageUnavailable):
    """A broadcast page whose new enrollments the table failed to store: the part must not go past
    it. Carries the part's counts so far and the cursor the page began at (None: the scan's start)."""

    def __init__(self, counts: dict[str, int], cursor: dict[str, Any] | None) -> None:
        super().__init__("a broadcast page's new enrollments could not be stored: it is to be done again")
        self.counts = counts
        self.cursor = cursor


@dataclass
class _Wave:
    """One ``broadcast_part`` call: the sequence and segment it enrolls, when, and what it counted."""

    sequence: Sequence
    version: int
    segment: Segment
    now: datetime
    first_step: bool
    counts: Counter[str] = field(default_factory=Counter)

    @cached_property
    def needs_activity(self) -> bool:
        return any(p.key == "activity" for p in self.segment.when.walk())

    def wants(
        self, view: Callable[[dict[str, Any], bool, bool], LeadView], profile: dict[str, Any], segments: SegmentList
    ) -> bool:
        """Whether the lead is in the broadcast's segment now."""
        return in_segment(self.segment, view(profile, False, self.needs_activity), self.now, segments)

    def enroll(self, lead_id: str, previous: tuple[Enrollment, int] | None) -> tuple[Enrollment, int | None] | None:
        """The lead's new enrollment and the rev to write it over (None: new), or None (counted) when
        it is enrolled already or the sequence's re-entry policy refuses."""
        if previous is not None and previous[0].status == "active":
            self.counts["already_enrolled"] += 1
            return None
        created = enroll(self.sequence, self.version, lead_id, self.now, previous[0] if previous else None)
        if created is None:
            self.counts["refused"] += 1
            return None
        return created, (previous[1] or None) if previous else None
