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

from dataclasses import dataclass
from typing import Any

from leadflow.domain.events import DomainEvent, activity_recorded, lead_captured
from leadflow.domain.submissions import Submission

CUSTOM_PREFIX = "cf_"


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class LeadChanges:
    """What one submission does to a lead record."""

    set_always: dict[str, Any]
    set_if_absent: dict[str, Any]
    increment: dict[str, int]


def plan_changes(submission: Submission, lead_id: str) -> LeadChanges:
    """The changes a valid submission makes to the lead ``lead_id``."""
    at = submission.received_at.isoformat()
    always: dict[str, Any] = {
        "email": submission.email.address,
        "email_domain": submission.email.domain,
        "updated_at": at,
        "last_touch": dict(submission.touch),
        "last_form_id": submission.form_id,
    }
    always.update(submission.profile)
    always.update({CUSTOM_PREFIX + name: value for name, value in submission.custom.items()})
    if submission.consent:
        always[f"consent_{submission.consent.purpose}"] = {
            "granted": submission.consent.granted,
            "version": submission.consent.version,
            "at": submission.consent.at,
            "form_id": submission.form_id,
        }
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
    return LeadChanges(set_always=always, set_if_absent=if_absent, increment={"submissions": 1})


def apply_changes(existing: dict[str, Any] | None, changes: LeadChanges) -> dict[str, Any]:
    """The lead record after ``changes`` (the semantics the DynamoDB update expression has)."""
    lead = dict(existing or {})
    lead.update(changes.set_always)
    for name, value in changes.set_if_absent.items():
        lead.setdefault(name, value)
    for name, amount in changes.increment.items():
        lead[name] = lead.get(name, 0) + amount
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

    def for_lead(self, lead_id: str, is_new: bool) -> CaptureWrite:
        """The writes for ``lead_id`` (new, or the existing lead of this email)."""
        submission = self.submission
        activity = {
            "activity_id": self.activity_id,
            "lead_id": lead_id,
            "type": "form_submitted",
            "at": submission.received_at.isoformat(),
            "form_id": submission.form_id,
            "touch": dict(submission.touch),
            "fields": submission.raw_fields,
            "user_agent": submission.client.user_agent[:500],
        }
        events = [
            lead_captured(self.event_ids[0], submission, lead_id, is_new),
            activity_recorded(self.event_ids[1], activity, submission.received_at),
        ]
        return CaptureWrite(
            lead_id=lead_id,
            is_new=is_new,
            email_key=submission.email.key,
            changes=plan_changes(submission, lead_id),
            activity=activity,
            consent=submission.consent.as_item() if submission.consent else None,
            events=events,
        )


def custom_fields(item: dict[str, Any]) -> dict[str, Any]:
    """The custom fields of a stored lead record."""
    return {k[len(CUSTOM_PREFIX) :]: v for k, v in item.items() if k.startswith(CUSTOM_PREFIX)}
