"""One lead per person: how a submission merges into the lead record.

The merge rules, in one place:
- a known value is never overwritten by a blank (blanks are simply not written);
- a newer non-blank value replaces an older one (people change jobs and phones);
- first-touch attribution, creation time, the first share code and the initial stage are
  written once; last-touch attribution is replaced on every submission.

``LeadChanges`` says this declaratively: the DynamoDB adapter turns it into one update
expression, and ``apply_changes`` is the same semantics on a plain dict (used by tests and
by anything that merges in memory), so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.events import SOURCE_API, SOURCE_FORMS, DomainEvent, activity_recorded, lead_captured
from leadflow.domain.submissions import Submission

CUSTOM_PREFIX = "cf_"
FORM = "form"
"""The origin of a form post; a lead written by a person through the admin API is ``api``, by an
import ``import`` (``domain.audience``)."""


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class LeadChanges:
    """What one submission does to a lead record."""

    set_always: dict[str, Any]
    set_if_absent: dict[str, Any]
    increment: dict[str, int]
    add_to_sets: dict[str, frozenset[str]] = field(default_factory=dict)
    """Strings added to set attributes (the forms a lead used: soft opt-in rests on them)."""


def plan_changes(submission: Submission, lead_id: str, overwrite: bool = True, origin: str = FORM) -> LeadChanges:
    """The changes a valid submission makes to the lead ``lead_id``.

    With ``overwrite`` False (an unidentified post for a lead that exists: anyone can type an
    address; an import), profile and custom fields only fill blanks; what the person told us
    before stays. A lead written through the API or an import (``origin`` ``api`` / ``import``)
    is no form submission: it counts no submission, names no form (soft opt-in rests on the
    forms a lead used) and leaves the last touch alone.
    """
    at = submission.received_at.isoformat()
    always: dict[str, Any] = {
        "email": submission.email.address,
        "email_domain": submission.email.domain,
        "updated_at": at,
    }
    if origin == FORM:
        always.update(last_touch=dict(submission.touch), last_form_id=submission.form_id)
    stated: dict[str, Any] = dict(submission.profile)
    stated.update({CUSTOM_PREFIX + name: value for name, value in submission.custom.items()})
    if overwrite:
        always.update(stated)
    consent = submission.consent
    if consent:
        state: dict[str, Any] = {"granted": consent.granted, "version": consent.version, "at": consent.at}
        if consent.source == FORM:
            state["form_id"] = submission.form_id
        else:
            state.update(source=consent.source, basis=consent.basis)
        always[f"consent_{consent.purpose}"] = state
    if_absent: dict[str, Any] = {
        "lead_id": lead_id,
        "created_at": at,
        "first_touch": dict(submission.touch),
        "stage": submission.lifecycle_stage,
    }
    if submission.email.company_domain:
        if_absent["account_domain"] = submission.email.company_domain
    if submission.referral_code:
        if_absent["referred_by"] = submission.referral_code
    if not overwrite:
        if_absent.update(stated)
    if origin != FORM:
        return LeadChanges(set_always=always, set_if_absent=if_absent, increment={})
    return LeadChanges(
        set_always=always,
        set_if_absent=if_absent,
        increment={"submissions": 1},
        add_to_sets={"forms_submitted": frozenset({submission.form_id})},
    )


def apply_changes(existing: dict[str, Any] | None, changes: LeadChanges) -> dict[str, Any]:
    """The lead record after ``changes`` (the semantics the DynamoDB update expression has)."""
    lead = dict(existing or {})
    lead.update(changes.set_always)
    for name, value in changes.set_if_absent.items():
        lead.setdefault(name, value)
    for name, amount in changes.increment.items():
        lead[name] = lead.get(name, 0) + amount
    for name, members in changes.add_to_sets.items():
        lead[name] = set(lead.get(name) or ()) | members
    return lead


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class CaptureWrite:
    """Everything one accepted submission writes, for one lead id."""

    lead_id: str
    is_new: bool
    email_key: str
    changes: LeadChanges
    activity: dict[str, Any]
    consent: dict[str, Any] | None
    events: list[DomainEvent]


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class CapturePlan:
    """A submission ready to be stored; the store tells which lead it belongs to."""

    submission: Submission
    activity_id: str
    new_lead_id: str
    event_ids: tuple[str, str]
    idempotency_key: str | None
    submission_id: str = ""
    # The lead this browser is known to be (leadflow's signed visitor cookie), if any.
    identified_lead_id: str | None = None
    # What the idempotency key covers (``submissions.payload_digest``).
    payload_digest: str = ""
    # ``form``, or ``api`` / ``import`` (``domain.audience``): then ``activity_type`` names the
    # activity, ``actor`` who made the change, and ``overwrite`` whether stated values replace
    # known ones (the API: yes; an import: it only fills blanks).
    origin: str = FORM
    actor: str = ""
    activity_type: str = "form_submitted"
    overwrite: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    """More attributes of the activity (an import's id and row)."""
    tags: frozenset[str] = frozenset()
    """Tags the write adds (an import's ``--tag`` and the file's tags)."""

    def _changes(self, lead_id: str, identified: bool) -> LeadChanges:
        changes = plan_changes(self.submission, lead_id, overwrite=identified, origin=self.origin)
        return _with_tags(changes, self.tags)

    def for_lead(self, lead_id: str, is_new: bool) -> CaptureWrite:
        """The writes for ``lead_id`` (new, or the existing lead of this email).

        Only a new lead, or the lead the visitor is identified as, takes the posted values
        over what it had; otherwise they fill blanks, and the activity keeps them for review.
        """
        submission = self.submission
        identified = is_new or (self.identified_lead_id == lead_id if self.origin == FORM else self.overwrite)
        activity: dict[str, Any] = {
            "activity_id": self.activity_id,
            "lead_id": lead_id,
            "type": self.activity_type,
            "at": submission.received_at.isoformat(),
            "form_id": submission.form_id,
            "touch": dict(submission.touch),
            "fields": submission.raw_fields,
            "user_agent": submission.client.user_agent[:500],
        }
        if submission.flags:
            activity["flags"] = list(submission.flags)
        if not identified:  # the profile was filled, not overwritten: the posted values are in "fields"
            activity["unverified"] = True
        if self.origin != FORM:
            activity.update(via=self.origin, by=self.actor, **self.extra)
        source = SOURCE_FORMS if self.origin == FORM else SOURCE_API
        events = [
            lead_captured(self.event_ids[0], submission, lead_id, is_new, source, self.origin),
            activity_recorded(self.event_ids[1], activity, submission.received_at, source),
        ]
        return CaptureWrite(
            lead_id=lead_id,
            is_new=is_new,
            email_key=submission.email.key,
            changes=self._changes(lead_id, identified),
            activity=activity,
            consent=submission.consent.as_item() if submission.consent else None,
            events=events,
        )


def _with_tags(changes: LeadChanges, tags: frozenset[str]) -> LeadChanges:
    if not tags:
        return changes
    return LeadChanges(
        changes.set_always, changes.set_if_absent, changes.increment, {**changes.add_to_sets, "tags": tags}
    )


def custom_fields(item: dict[str, Any]) -> dict[str, Any]:
    """The custom fields of a stored lead record."""
    return {k[len(CUSTOM_PREFIX) :]: v for k, v in item.items() if k.startswith(CUSTOM_PREFIX)}
