"""Leads through the admin API: create or merge, update, tag, list by segment / stage / tag, export.

Every change goes through the rules of capture (``domain.audience``) and is recorded as an
activity naming who made it, with its events on the bus (``leadflow.api``), so scoring, nurture
and segment membership react as they do to a form post.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from leadflow.config.workspace import Workspace
from leadflow.domain.audience import (
    API,
    CustomValue,
    StatedConsent,
    plan_update,
    stated_plan,
    stated_submission,
    tag_activity,
    tag_events,
)
from leadflow.domain.errors import FieldError, InvalidSubmission, LeadNotFound, SegmentNotFound
from leadflow.domain.ids import new_id
from leadflow.ports.clock import Clock
from leadflow.ports.leads import AudienceStore, ListIndex
from leadflow.services.leads import PROFILE_KEYS, LeadQueries, lead_view

EXPORT_COLUMNS = (
    "lead_id",
    *PROFILE_KEYS,
    "stage",
    "grade",
    "tags",
    "account_domain",
    "created_at",
    "updated_at",
)
EXPORT_PAGE = 100


class AudienceService:
    def __init__(self, store: AudienceStore, workspace: Workspace, clock: Clock) -> None:
        self.store = store
        self.workspace = workspace
        self.clock = clock

    def save(
        self,
        profile: Mapping[str, str | None],
        custom: Mapping[str, CustomValue | None],
        consent: StatedConsent | None,
        actor: str,
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Create the lead of this address, or merge into it (its values replace known ones,
        blanks never do). Returns (the lead as the API shows it, whether it was created).

        Raises:
            InvalidSubmission: a bad field (each named).
            IdempotencyConflict: the key was used for another request.
        """
        purposes = [p.id for p in self.workspace.consent.purposes]
        if consent is not None and consent.purpose not in purposes:
            raise InvalidSubmission([FieldError("consent.purpose", f"must be one of {', '.join(purposes)}")])
        now = self.clock.now()
        submission = stated_submission(API, profile, custom, now, consent)
        ids = (new_id(now), new_id(now), new_id(now), new_id(now))
        key = f"api:{idempotency_key}" if idempotency_key else None
        plan = stated_plan(submission, API, actor, ids, key)
        stored = self.store.capture(plan, None, now.date().isoformat())
        return self.view(stored.lead_id), stored.created

    def update(
        self, lead_id: str, profile: Mapping[str, str | None], custom: Mapping[str, CustomValue | None], actor: str
    ) -> dict[str, Any]:
        """Set the given fields, clear those given as null. Raises LeadNotFound, InvalidSubmission,
        AddressTaken."""
        lead = self._lead(lead_id)
        now = self.clock.now()
        update = plan_update(lead, profile, custom, actor, now, (new_id(now), new_id(now)))
        if update.changed:
            self.store.update_lead(update)
        return self.view(lead_id)

    def tag(self, lead_id: str, tag: str, add: bool, actor: str) -> dict[str, Any]:
        """Add or remove a tag (nothing recorded when the lead had it, or did not). Raises LeadNotFound."""
        now = self.clock.now()
        activity = tag_activity(lead_id, tag, add, actor, now, new_id(now))
        self.store.change_tag(lead_id, tag, add, activity, tag_events(activity, (new_id(now), new_id(now)), now))
        return self.view(lead_id)

    def find_by_email(self, email: str) -> list[dict[str, Any]]:
        """The lead of this address (none or one)."""
        return LeadQueries(self.store, self.workspace).find_by_email(email)  # type: ignore[arg-type]

    def view(self, lead_id: str) -> dict[str, Any]:
        lead = self._lead(lead_id)
        return lead_view(lead, self.workspace)

    def _lead(self, lead_id: str) -> dict[str, Any]:
        lead = self.store.get_lead(lead_id)
        if lead is None:
            raise LeadNotFound(lead_id)
        return lead

    def page(
        self, segment: str | None, stage: str | None, tag: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the leads in a segment, with a tag, or in a stage (the first given is read
        through its index, the others filter that page), else of the newest leads.

        Raises:
            SegmentNotFound: no such segment. BadCursor: a cursor this list did not hand out.
        """
        profiles, after = self._profiles(segment, stage, tag, limit, cursor)
        return [lead_view(p, self.workspace) for p in profiles], after

    def _profiles(
        self, segment: str | None, stage: str | None, tag: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        if segment is not None and segment not in {s.id for s in self.workspace.segments.segments}:
            raise SegmentNotFound(segment)
        index: ListIndex = "recent"
        value = ""
        for name, given in (("segment", segment), ("tag", tag), ("stage", stage)):
            if given is not None:
                index, value = name, given  # type: ignore[assignment]
                break
        profiles, after = self.store.leads_page(index, value, limit, cursor, self.clock.now())
        if stage is not None and index != "stage":
            profiles = [p for p in profiles if p.get("stage") == stage]
        if tag is not None and index not in ("tag",):
            profiles = [p for p in profiles if tag in (p.get("tags") or ())]
        return profiles, after

    def export_page(
        self, segment: str | None, stage: str | None, tag: str | None, rows: int, cursor: str | None
    ) -> tuple[str, str | None]:
        """Up to ``rows`` leads of a segment (tag, stage; else every lead) as CSV with its header,
        and the cursor of the rest (None: no more). Read page by page through the index."""
        out = [_csv_line(EXPORT_COLUMNS)]
        written = 0
        while True:
            profiles, cursor = self._profiles(segment, stage, tag, min(EXPORT_PAGE, rows - written), cursor)
            out += [_csv_line(export_row(p)) for p in profiles]
            written += len(profiles)
            if cursor is None or written >= rows:
                return "".join(out), cursor

    def export_all(self, segment: str | None, stage: str | None = None, tag: str | None = None) -> Iterator[str]:
        """Every lead of a segment (tag, stage) as CSV lines, the header first, read page by page
        (what ``leadflow segment export`` writes to a file)."""
        yield _csv_line(EXPORT_COLUMNS)
        cursor: str | None = None
        while True:
            profiles, cursor = self._profiles(segment, stage, tag, EXPORT_PAGE, cursor)
            yield from (_csv_line(export_row(p)) for p in profiles)
            if cursor is None:
                return


def export_row(item: Mapping[str, Any]) -> list[str]:
    """One lead as an export row (``EXPORT_COLUMNS``; tags joined with ``;``)."""
    values = {**{k: item.get(k) for k in EXPORT_COLUMNS}, "tags": ";".join(sorted(item.get("tags") or ()))}
    return [_cell(values.get(k)) for k in EXPORT_COLUMNS]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula (CSV injection) is kept as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_line(values: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(list(values))
    return out.getvalue()
