"""Reporting: bus events into report aggregates (counted once), and the reports read from them.

The reporting function hands a whole SQS batch to ``ReportingService.record``: each event
becomes facts (``domain.reporting``); facts whose marker exists are dropped (a redelivery or
a replay); the rest are written in as few transactions as fit (a marker per fact, one
``ADD`` per counter item and batch). A report reads counter items only: O(days x keys).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflow.config.workspace import Workspace
from leadflow.domain.events import SOURCE_TRACKING
from leadflow.domain.form_reports import form_posted, forms_report
from leadflow.domain.nurture import choose_variant, message_id_for
from leadflow.domain.report_views import days_between, funnel_report, period
from leadflow.domain.reporting import Fact, Key, attribution, lead_created, merge_increments, stage_reached
from leadflow.domain.reporting import stages_reached as reached_by_move
from leadflow.domain.sales_reports import handoff_created, handoff_outcome, handoff_report, reps_report
from leadflow.domain.sequence_reports import (
    ENGAGEMENT,
    SendRecord,
    email_engaged,
    latest_send,
    nurture_counted,
    sends_of,
    sequence_report,
)
from leadflow.ports.reporting import LeadFacts, ReportWriter

log = logging.getLogger(__name__)
TRANSACTION_ITEMS = 100
CONFLICT_RETRIES = 5
MAX_ENTRIES_GUESSED = 5


@dataclass(frozen=True)
class BusEvent:
    """One bus event of a batch: ``record_id`` names its SQS message (for partial failures)."""

    record_id: str
    detail_type: str
    detail: Mapping[str, Any]
    source: str = ""

    @property
    def engagement(self) -> str | None:
        """The kind of email engagement this is, if the reports count it: opens and clicks from the
        tracking pixel and links (SES's own open and click events would count them twice), and
        SES's deliveries, bounces and complaints."""
        if self.detail_type != "activity.recorded":
            return None
        kind = str(self.detail.get("type") or "")
        if kind in ("email_opened", "email_clicked"):
            return kind if self.source == SOURCE_TRACKING and self.detail.get("message_id") else None
        return kind if kind in ENGAGEMENT and self.detail.get("sequence") else None

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromisoformat(str(self.detail["occurred_at"]))


class ReportingService:
    def __init__(
        self, workspace: Workspace, reports: ReportWriter, leads: LeadFacts, conflict: type[Exception]
    ) -> None:
        """``conflict``: the exception the writer raises when markers exist (it carries ``keys``)."""
        self.workspace = workspace
        self.reports = reports
        self.leads = leads
        self.conflict = conflict
        self.form_ids = frozenset(workspace.form_ids())

    # ------------------------------------------------------------------ counting
    def facts(self, events: list[BusEvent]) -> list[tuple[str, Fact]]:
        """``(record id, fact)`` for every event, earliest first (so a lead's first time wins).

        Raises:
            KeyError, ValueError: an event lacks what its type promises (the record fails).
        """
        moved = [e.detail["lead_id"] for e in events if e.detail_type == "lead.stage_changed"]
        profiles = self.leads.profiles([str(i) for i in moved]) if moved else {}
        engaged = [str(e.detail["lead_id"]) for e in events if e.engagement and e.detail.get("lead_id")]
        logs = {k: sends_of(v) for k, v in self.leads.mail_logs(engaged).items()} if engaged else {}
        feedback = [(f"HANDOFFRPT#{e.detail['handoff_id']}", "CREATED") for e in events if _is_feedback(e)]
        handoffs = self.reports.items(feedback) if feedback else {}
        found: list[tuple[str, Fact]] = []
        for event in sorted(events, key=lambda e: str(e.detail.get("occurred_at", ""))):
            for fact in self._event_facts(event, profiles, logs, handoffs):
                found.append((event.record_id, fact))
                if fact.marker[0].startswith("HANDOFFRPT#") and fact.marker[1] == "CREATED":
                    handoffs.setdefault(fact.marker, fact.marker_item)  # feedback later in this batch
        return found

    def _event_facts(
        self,
        event: BusEvent,
        profiles: Mapping[str, Mapping[str, Any]],
        logs: Mapping[str, list[SendRecord]],
        handoffs: dict[Key, dict[str, Any]],
    ) -> list[Fact]:
        detail = event.detail
        if event.detail_type == "handoff.created":
            return [
                handoff_created(
                    str(detail["handoff_id"]), event.occurred_at, detail.get("owner_id"), detail.get("team")
                )
            ]
        if _is_feedback(event):
            handoff_id = str(detail["handoff_id"])
            at = datetime.fromisoformat(str(detail.get("at") or detail["occurred_at"]))
            record = handoffs.get((f"HANDOFFRPT#{handoff_id}", "CREATED"))
            outcome = handoff_outcome(handoff_id, str(detail.get("outcome")), detail.get("reason"), at, record)
            return [outcome] if outcome is not None else []
        if event.detail_type == "nurture.counted":
            return [nurture_counted(str(detail["event_id"]), event.occurred_at, detail["counts"])]
        kind = event.engagement
        if kind is not None:
            return self.engagement_facts(kind, event, logs.get(str(detail.get("lead_id")), []))
        if event.detail_type == "lead.captured":
            touch = detail.get("touch") or {}
            form_id = str(touch.get("form_id") or detail.get("form_id") or "")
            is_new = detail.get("new") is True
            posted = form_posted(str(detail["event_id"]), event.occurred_at, form_id, touch, is_new)
            if not is_new:
                return [posted]
            stage = self.workspace.form(form_id).lifecycle_stage if form_id in self.form_ids else "lead"
            return [*lead_created(str(detail["lead_id"]), event.occurred_at, touch, stage), posted]
        if event.detail_type == "lead.stage_changed":
            profile = profiles.get(str(detail["lead_id"]))
            if profile is None or not profile.get("created_at"):
                return []  # erased meanwhile: nothing to attribute it to
            created = datetime.fromisoformat(str(profile["created_at"]))
            dims = attribution(profile.get("first_touch"))
            at = event.occurred_at
            return [
                stage_reached(str(detail["lead_id"]), stage, max(at, created), created, dims)
                for stage in reached_by_move(str(detail.get("to", "")))
            ]
        return []

    def engagement_facts(self, kind: str, event: BusEvent, sends: list[SendRecord]) -> list[Fact]:
        """What an open, click or SES event about an email counts, given the lead's mail log (``sends``)."""
        detail = event.detail
        at = datetime.fromisoformat(str(detail.get("at") or detail["occurred_at"]))
        email_id = str(detail["message_id"])
        if kind in ("email_opened", "email_clicked"):
            send = next((s for s in sends if s.message_id == email_id), None) or self._sent_long_ago(
                str(detail["lead_id"]), str(detail.get("campaign") or ""), email_id, at
            )
            if send is None:
                return []  # not a sequence's email (a double opt-in, a test token)
            facts = [email_engaged(kind, email_id, send, at)]
            if kind == "email_clicked":  # a click is an open too (images may be blocked)
                facts.append(email_engaged("email_opened", email_id, send, at))
            return facts
        send = latest_send(sends, str(detail["sequence"]), at.isoformat())
        return [email_engaged(kind, email_id, send, at)] if send is not None else []

    def _sent_long_ago(self, lead_id: str, sequence_id: str, message_id: str, at: datetime) -> SendRecord | None:
        """An email the mail log no longer lists (it keeps 7 days): its step worked out from its id
        (ids are a hash of lead, sequence, entry and step), its variant from the lead; version 0
        (not known) and counted on the day of the engagement."""
        sequence = self.workspace.sequences.get(sequence_id)
        if sequence is None:
            return None
        for step in sequence.email_steps():
            for entry in range(1, MAX_ENTRIES_GUESSED + 1):
                if message_id_for(lead_id, sequence_id, entry, step.id) == message_id:
                    chosen = choose_variant(step.variants, lead_id, sequence_id, step.id) if step.variants else None
                    return SendRecord(message_id, sequence_id, 0, step.id, chosen.id if chosen else "-", at.isoformat())
        return None

    def record(self, events: list[BusEvent]) -> set[str]:
        """Count a batch of events, each once. Returns the record ids that could not be counted
        now (to be retried: what was written for them stays written, their markers say so)."""
        facts = self.facts(events)
        if not facts:
            return set()
        done = self.reports.existing([f.marker for _, f in facts])
        pending: list[tuple[str, Fact]] = []
        for record_id, fact in facts:
            if fact.marker not in done:
                done.add(fact.marker)  # the same lead and stage twice in one batch: the first
                pending.append((record_id, fact))
        failed: set[str] = set()
        for chunk in _chunks(pending):
            failed |= self._write(chunk)
        return failed

    def _write(self, chunk: list[tuple[str, Fact]]) -> set[str]:
        for _ in range(CONFLICT_RETRIES):
            if not chunk:
                return set()
            try:
                self.reports.apply([(f.marker, f.marker_item) for _, f in chunk], merge_increments(f for _, f in chunk))
                return set()
            except self.conflict as taken:
                keys: set[Key] = taken.keys  # type: ignore[attr-defined]
                chunk = [(r, f) for r, f in chunk if f.marker not in keys]
            except Exception:
                log.exception("report transaction failed")
                return {r for r, _ in chunk}
        return {r for r, _ in chunk}

    # ------------------------------------------------------------------ reading
    def funnel(self, start: str, end: str, by: str, view: str) -> dict[str, Any]:
        """The funnel of a period by one dimension (``domain.report_views.funnel_report``).

        Raises:
            BadPeriod: the period is not valid.
        """
        start, end = period(start, end)
        items = self.reports.query(*_period(f"FUNNEL#{view}#{by}", start, end))
        return funnel_report(_day_items(items), start=start, end=end, by=by, view=view)

    def sequence(self, sequence_id: str, start: str, end: str) -> dict[str, Any]:
        """A sequence's report over a period (``domain.sequence_reports.sequence_report``).

        Raises:
            BadPeriod: the period is not valid.
            KeyError: no such sequence in the workspace, and nothing counted for it.
        """
        start, end = period(start, end)
        items = self.reports.query(*_period(f"SEQRPT#{sequence_id}", start, end))
        sequence = self.workspace.sequences.get(sequence_id)
        if sequence is None and not items:
            raise KeyError(sequence_id)
        tests = sequence.variants if sequence is not None else None
        return sequence_report(
            items,
            sequence_id=sequence_id,
            start=start,
            end=end,
            step_order=[s.id for s in sequence.steps] if sequence is not None else (),
            confidence=tests.confidence if tests is not None else 0.95,
            metric=tests.metric if tests is not None else "click",
        )

    def forms(self, start: str, end: str) -> dict[str, Any]:
        """Forms and pages over a period (``domain.form_reports.forms_report``).

        Raises:
            BadPeriod: the period is not valid.
        """
        start, end = period(start, end)
        stats = self.leads.form_stats(days_between(start, end))
        form_ids = sorted({form_id for form_id, _ in stats} | set(self.form_ids))
        pages, *of_forms = self.reports.query_many(
            [_period("PAGES", start, end), *(_period(f"FORMPAGES#{f}", start, end) for f in form_ids)]
        )
        return forms_report(stats, pages, dict(zip(form_ids, of_forms, strict=True)), start=start, end=end)

    def reps(self, start: str, end: str, view: str = "cohort") -> dict[str, Any]:
        """Leads, MQL, SQL and won per share code (the funnel by ``ref``, with the referrers' names).

        Raises:
            BadPeriod: the period is not valid.
        """
        referrers = {code: (r.name, r.kind) for code, r in self.workspace.referrers.items()}
        return reps_report(self.funnel(start, end, "ref", view), referrers)

    def handoffs(self, start: str, end: str) -> dict[str, Any]:
        """Hand-offs per owner and team: assigned, outcomes, rejection reasons, time to accept.

        Raises:
            BadPeriod: the period is not valid.
        """
        start, end = period(start, end)
        owners, teams = self.reports.query_many(
            [_period("HANDOFFS#owner", start, end), _period("HANDOFFS#team", start, end)]
        )
        return handoff_report(owners, teams, start=start, end=end)


def _period(pk: str, start: str, end: str) -> tuple[str, str, str]:
    """The Query of a partition's day counters over a period (sort keys ``<day>#...``)."""
    return pk, f"{start}#", f"{end}#\uffff"


def _is_feedback(event: BusEvent) -> bool:
    return event.detail_type == "handoff.feedback" and bool(event.detail.get("handoff_id"))


def _day_items(items: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for item in items:
        day, _, value = str(item["SK"]).partition("#")
        yield day, value, item


def _chunks(facts: list[tuple[str, Fact]]) -> Iterator[list[tuple[str, Fact]]]:
    """Facts grouped into transactions of at most ``TRANSACTION_ITEMS`` items (markers + counters)."""
    chunk: list[tuple[str, Fact]] = []
    keys: set[Key] = set()
    for record_id, fact in facts:
        more = keys | set(fact.increments)
        if chunk and len(chunk) + 1 + len(more) > TRANSACTION_ITEMS:
            yield chunk
            chunk, more = [], set(fact.increments)
        chunk.append((record_id, fact))
        keys = more
    if chunk:
        yield chunk
