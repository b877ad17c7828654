"""Leads a person writes through the admin API, or an import brings: the checks and merge of capture.

A lead created or merged this way goes through the very rules of a form post
(``submissions.validate_submission`` for the values, ``leads.CapturePlan`` and the email guard for
one lead per person, ``leads.plan_changes`` for the merge), as a submission of a form that is
not in the workspace: ``api`` or ``import``. What differs:

- consent is never implied: it is recorded only when the caller states it with its lawful
  ``basis`` and its ``source`` (``StatedConsent``);
- no form was submitted: no submission is counted, no form trigger fires, soft opt-in does not
  apply (``leads.plan_changes`` with ``origin``);
- the activity names who made the change (``by``) and how (``via``).

Pure: the caller gives the time and the actor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal, get_args

from leadflow.domain.definitions.forms import (
    PROFILE_FIELDS,
    PROTECTED_FIELDS,
    RESERVED_FIELDS,
    FieldType,
    FormDefinition,
    FormField,
)
from leadflow.domain.emails import normalize_email
from leadflow.domain.errors import FieldError, InvalidSubmission
from leadflow.domain.events import SOURCE_API, DomainEvent, activity_recorded
from leadflow.domain.leads import CUSTOM_PREFIX, CapturePlan
from leadflow.domain.submissions import ClientInfo, ConsentRecord, FormPost, Submission, validate_submission

API: Final = "api"
IMPORT: Final = "import"
Basis = Literal["consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests"]
"""GDPR Art. 6(1) (a)-(f): the lawful basis a stated consent must name."""
LAWFUL_BASES: Final = get_args(Basis)
CUSTOM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TAG = re.compile(r"^[a-z0-9][a-z0-9_:.-]{0,63}$")
"""A tag (the same rule as a sequence's tag action)."""
TEXT_MAX = 500
CUSTOM_TEXT_MAX = 2000
_TYPED: Final = {"phone": FieldType.PHONE, "country": FieldType.COUNTRY}

CustomValue = str | float | bool


@dataclass(frozen=True)
class StatedConsent:
    """A consent a person states for a lead: never implied, always with its basis and source."""

    purpose: str
    basis: str
    source: str
    granted: bool = True
    text: str = ""
    at: str | None = None
    """When it was given, if the source says (ISO 8601); else when it was recorded."""


def _form(origin: str, custom: Mapping[str, CustomValue]) -> FormDefinition:
    """The form an API or import submission is checked against: the standard fields, and its
    custom fields typed by their values."""
    fields = [FormField(name=name, type=_TYPED.get(name), max_length=TEXT_MAX) for name in PROFILE_FIELDS]
    for name, value in custom.items():
        kind = (
            FieldType.CHECKBOX
            if isinstance(value, bool)
            else FieldType.NUMBER
            if isinstance(value, int | float)
            else FieldType.TEXT
        )
        fields.append(FormField(name=name, type=kind, max_length=CUSTOM_TEXT_MAX))
    return FormDefinition(id=origin, name=origin, thank_you_url="/", fields=tuple(fields), channel=origin)


def _custom_name_errors(custom: Mapping[str, Any]) -> list[FieldError]:
    return [
        FieldError(f"custom.{name}", "must be a lowercase identifier (a-z, 0-9, _) that is not a standard field")
        for name in custom
        if not CUSTOM_NAME.match(name) or name in RESERVED_FIELDS or name in PROTECTED_FIELDS
    ]


def _as_text(value: CustomValue) -> str:
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan"  # refused by the number check with its message
    return str(value)


def stated_submission(
    origin: str,
    profile: Mapping[str, str | None],
    custom: Mapping[str, CustomValue | None],
    at: datetime,
    consent: StatedConsent | None = None,
) -> Submission:
    """Check values stated through the API or an import as capture checks a form post.

    Args:
        origin: ``api`` or ``import``.
        profile: standard fields (``email`` required); None or blank values are not stated.
        custom: custom fields (strings, numbers, booleans); None values are not stated.
        at: when the values were stated.
        consent: a stated consent (its basis checked), or None: nothing recorded.

    Raises:
        InvalidSubmission: naming every bad field (``custom.<name>`` for a custom field).
    """
    stated = {k: v for k, v in custom.items() if v is not None}
    errors = _custom_name_errors(stated)
    unknown = [k for k in profile if k not in PROFILE_FIELDS]
    errors += [FieldError(k, "is not a standard field (custom fields go in custom)") for k in unknown]
    if consent is not None and consent.basis not in LAWFUL_BASES:
        errors.append(FieldError("consent.basis", f"must be one of {', '.join(LAWFUL_BASES)}"))
    if consent is not None and not consent.source.strip():
        errors.append(FieldError("consent.source", "must name where the consent was given"))
    if errors:
        raise InvalidSubmission(errors)
    fields = {k: [v] for k, v in profile.items() if v is not None}
    fields.update({k: [_as_text(v)] for k, v in stated.items()})
    try:
        submission = validate_submission(_form(origin, stated), FormPost(fields, ClientInfo(ip="")), at)
    except InvalidSubmission as invalid:
        raise InvalidSubmission(
            [FieldError(f"custom.{e.field}" if e.field in stated else e.field, e.message) for e in invalid.errors]
        ) from None
    record = None
    if consent is not None:
        record = ConsentRecord(
            purpose=consent.purpose,
            granted=consent.granted,
            text=consent.text,
            version="",
            form_id="",
            at=consent.at or at.isoformat(),
            ip="",
            user_agent="",
            source=consent.source.strip()[:200],
            basis=consent.basis,
        )
    touch = {"channel": origin, "at": at.isoformat()}
    return replace(submission, consent=record, touch=touch, referral_code=None, visitor_id=None, flags=[])


def stated_plan(  # noqa: PLR0917 - what a stated write is made of
    submission: Submission,
    origin: str,
    actor: str,
    ids: tuple[str, str, str, str],
    idempotency_key: str | None = None,
    extra: Mapping[str, Any] | None = None,
    tags: frozenset[str] = frozenset(),
) -> CapturePlan:
    """The capture plan of a stated submission (``ids``: activity, new lead, two events).

    Through the API stated values replace known ones (a person decided); an import only fills
    blanks (what the lead told us since the other system last saw them stays)."""
    return CapturePlan(
        submission=submission,
        activity_id=ids[0],
        new_lead_id=ids[1],
        event_ids=(ids[2], ids[3]),
        idempotency_key=idempotency_key,
        origin=origin,
        actor=actor,
        activity_type="lead_imported" if origin == IMPORT else "lead_saved",
        overwrite=origin != IMPORT,
        extra=dict(extra or {}),
        tags=tags,
    )


@dataclass(frozen=True)
class LeadUpdate:
    """A PATCH of a lead: values set, attributes removed (an explicit null), and its activity."""

    lead_id: str
    sets: dict[str, Any]
    removes: tuple[str, ...]
    email_key: tuple[str, str] | None
    """(old, new) de-duplication keys when the address changes: the guard moves."""
    activity: dict[str, Any]
    events: list[DomainEvent]

    @property
    def changed(self) -> bool:
        return bool(self.removes) or any(k != "updated_at" for k in self.sets)


def plan_update(  # noqa: PLR0917 - the lead, what was asked, who, when and the ids
    lead: Mapping[str, Any],
    profile: Mapping[str, str | None],
    custom: Mapping[str, CustomValue | None],
    actor: str,
    at: datetime,
    ids: tuple[str, str],
) -> LeadUpdate:
    """What a PATCH does to ``lead``: stated values are checked as on capture, a null clears.

    The address cannot be cleared (it is how leads are told apart); a new address moves the
    lead's email guard (the store refuses one that belongs to another lead).

    Raises:
        InvalidSubmission: naming every bad field.
    """
    errors = [
        FieldError(k, "is not a standard field (custom fields go in custom)")
        for k in profile
        if k not in PROFILE_FIELDS
    ]
    if "email" in profile and profile["email"] is None:
        errors.append(FieldError("email", "cannot be cleared: it is how leads are told apart"))
    errors += _custom_name_errors(custom)
    if errors:
        raise InvalidSubmission(errors)
    stated_profile = {k: v for k, v in profile.items() if v is not None}
    stated = stated_submission(
        API,
        {"email": str(lead.get("email", "")), **stated_profile},
        {k: v for k, v in custom.items() if v is not None},
        at,
    )
    sets: dict[str, Any] = {"updated_at": at.isoformat()}
    names = [k for k in stated_profile if k != "email"]
    sets.update({k: stated.profile[k] for k in names if k in stated.profile})
    sets.update({CUSTOM_PREFIX + k: v for k, v in stated.custom.items()})
    removes = [k for k, v in profile.items() if v is None]
    removes += [CUSTOM_PREFIX + k for k, v in custom.items() if v is None]
    # a value given blank is a clear too (capture never writes blanks)
    removes += [k for k in names if k not in stated.profile]
    removes += [CUSTOM_PREFIX + k for k, v in custom.items() if v is not None and k not in stated.custom]
    email_key = None
    if "email" in stated_profile and stated.email.address != lead.get("email"):
        sets.update(email=stated.email.address, email_domain=stated.email.domain)
        email_key = (normalize_email(str(lead.get("email", ""))).key, stated.email.key)
    unchanged = {k for k, v in sets.items() if k != "updated_at" and lead.get(k) == v}
    sets = {k: v for k, v in sets.items() if k not in unchanged}
    removes = sorted({k for k in removes if k in lead})
    activity = {
        "activity_id": ids[0],
        "lead_id": lead["lead_id"],
        "type": "lead_updated",
        "at": at.isoformat(),
        "via": API,
        "by": actor,
        "changed": sorted(k for k in sets if k != "updated_at"),
        "cleared": removes,
    }
    events = [activity_recorded(ids[1], activity, at, SOURCE_API)]
    return LeadUpdate(str(lead["lead_id"]), sets, tuple(removes), email_key, activity, events)


def tag_activity(  # noqa: PLR0917 - the lead, the tag, which way, who, when, and the activity's id
    lead_id: str, tag: str, added: bool, actor: str, at: datetime, activity_id: str
) -> dict[str, Any]:
    """The activity of a tag added to or removed from a lead by a person."""
    return {
        "activity_id": activity_id,
        "lead_id": lead_id,
        "type": "tag_added" if added else "tag_removed",
        "at": at.isoformat(),
        "via": API,
        "by": actor,
        "tag": tag,
    }


def tag_events(activity: dict[str, Any], event_ids: tuple[str, str], at: datetime) -> list[DomainEvent]:
    """``activity.recorded`` for a tag change, and ``lead.tagged`` for an added tag (what
    ``tag_added`` triggers of sequences enroll on)."""
    events = [activity_recorded(event_ids[0], activity, at, SOURCE_API)]
    if activity["type"] == "tag_added":
        detail = {"lead_id": activity["lead_id"], "tag": activity["tag"], "by": activity["by"]}
        events.append(DomainEvent(event_ids[1], SOURCE_API, "lead.tagged", at.isoformat(), detail))
    return events
