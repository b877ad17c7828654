"""Turning posted form fields into a validated submission, or a spam verdict.

Pure: the caller passes the time of receipt and the client's details.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from leadflow.config.forms import (
    ATTRIBUTION_FIELDS,
    NONCE_FIELD,
    PROFILE_FIELDS,
    REF_CODE_PATTERN,
    TIMESTAMP_FIELD,
    VISITOR_FIELD,
    FieldType,
    FormDefinition,
    FormField,
)
from leadflow.domain.emails import InvalidEmail, NormalizedEmail, normalize_email
from leadflow.domain.errors import FieldError, InvalidSubmission

Fields = Mapping[str, Sequence[str]]

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
ATTRIBUTION_MAX_LENGTH = 2000
RAW_VALUE_MAX_LENGTH = 2000
RAW_FIELDS_MAX = 100
TRUE_VALUES = frozenset({"on", "true", "1", "yes", "y", "checked"})
FALSE_VALUES = frozenset({"", "off", "false", "0", "no", "n"})
_PHONE = re.compile(r"^\+?[0-9 ().\-/]{4,32}(\s*(x|ext\.?)\s*[0-9]{1,6})?$", re.IGNORECASE)
_REF = re.compile(REF_CODE_PATTERN)
_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\t\n\r")


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class ClientInfo:
    """Who posted: kept on the consent record as proof, never logged."""

    ip: str
    user_agent: str = ""
    referer: str = ""


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class FormPost:
    """A post as the transport decoded it: every field as a list of strings."""

    fields: Fields
    client: ClientInfo
    idempotency_key: str | None = None


class SpamReason(StrEnum):
    HONEYPOT = "honeypot"
    TOO_FAST = "too_fast"


@dataclass(frozen=True)
class ConsentRecord:
    purpose: str
    granted: bool
    text: str
    version: str
    form_id: str
    at: str
    ip: str
    user_agent: str

    def as_item(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "granted": self.granted,
            "text": self.text,
            "version": self.version,
            "form_id": self.form_id,
            "at": self.at,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "source": "form",
        }


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class Submission:
    """A valid submission of one form."""

    form_id: str
    email: NormalizedEmail
    profile: dict[str, str]
    custom: dict[str, str | float | bool]
    touch: dict[str, str]
    consent: ConsentRecord | None
    raw_fields: dict[str, list[str]]
    received_at: datetime
    client: ClientInfo
    idempotency_key: str | None
    referral_code: str | None = None
    visitor_id: str | None = None
    lifecycle_stage: str = "lead"
    warnings: list[str] = field(default_factory=list)


def clean_text(value: str) -> str:
    """Strip surrounding white space and invisible control characters; NFC-normalize."""
    return unicodedata.normalize("NFC", value.translate(_CONTROL)).strip()


def _is_encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first(fields: Fields, names: Sequence[str]) -> str | None:
    """The first non-blank value posted under any of ``names``; None when none was posted."""
    seen = False
    for name in names:
        for value in fields.get(name, ()):
            seen = True
            if value.strip():
                return value
    return "" if seen else None


def spam_verdict(form: FormDefinition, fields: Fields, received_at: datetime) -> SpamReason | None:
    """Why this post is spam, or None.

    A filled honeypot, or a post sooner than ``min_fill_seconds`` after the form was
    rendered (the ``_lf_ts`` field, epoch milliseconds). Posts without ``_lf_ts`` are not
    judged by time (a form embedded elsewhere may not carry it).
    """
    if form.honeypot and (_first(fields, [form.honeypot]) or "").strip():
        return SpamReason.HONEYPOT
    if form.min_fill_seconds > 0:
        rendered = _first(fields, [TIMESTAMP_FIELD])
        if rendered:
            try:
                rendered_ms = float(rendered)
            except ValueError:
                return None
            if math.isfinite(rendered_ms):
                elapsed = received_at.timestamp() - rendered_ms / 1000
                if -300 <= elapsed < form.min_fill_seconds:
                    return SpamReason.TOO_FAST
    return None


def _check(form_field: FormField, raw: str) -> tuple[str | float | bool | None, str | None]:
    """Validate one value; return (value, error message)."""
    if not _is_encodable(raw):
        return None, "contains characters that are not valid Unicode"
    value = clean_text(raw)
    kind = form_field.kind
    if kind is FieldType.CHECKBOX:
        return value.casefold() not in FALSE_VALUES, None
    if not value:
        return None, None
    if len(value) > form_field.max_length:
        return None, f"must be at most {form_field.max_length} characters"
    if kind is FieldType.NUMBER:
        try:
            number = float(value)
        except ValueError:
            return None, "must be a number"
        # DynamoDB numbers span 1e-130 to 1e126 in magnitude: refuse what it would refuse.
        if not math.isfinite(number) or abs(number) >= 1e125:
            return None, "must be a number between -1e125 and 1e125"
        return (0.0 if abs(number) < 1e-128 else number), None
    if kind is FieldType.PHONE and not _PHONE.match(value):
        return None, "must be a phone number (digits, spaces, + ( ) . - /)"
    if kind is FieldType.URL:
        try:
            parts = urlsplit(value)
        except ValueError:
            return None, "must be an http(s) URL"
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None, "must be an http(s) URL"
    if kind is FieldType.SELECT and value not in (form_field.options or ()):
        return None, "must be one of the listed options"
    if kind is FieldType.COUNTRY and len(value) == 2 and value.isalpha():
        value = value.upper()
    return value, None


def _attribution(form: FormDefinition, fields: Fields, client: ClientInfo, at: str) -> dict[str, str]:
    touch: dict[str, str] = {"channel": form.channel, "form_id": form.id, "at": at}
    for name in ATTRIBUTION_FIELDS:
        declared = form.field_named(name)
        value = _first(fields, [name, *(declared.aliases if declared else [])])
        if value and _is_encodable(value):
            cleaned = clean_text(value)[:ATTRIBUTION_MAX_LENGTH]
            if cleaned:
                touch[name] = cleaned
    if "page_url" not in touch and client.referer and _is_encodable(client.referer):
        touch["page_url"] = clean_text(client.referer)[:ATTRIBUTION_MAX_LENGTH]
    # UTM parameters left in the landing page's address count when the hidden fields were empty.
    if "page_url" in touch:
        try:
            query = parse_qs(urlsplit(touch["page_url"]).query)
        except ValueError:  # not a URL (e.g. "http://["): kept as data, no UTM to read from it
            query = {}
        for name in UTM_FIELDS:
            if name not in touch and query.get(name):
                touch[name] = clean_text(query[name][0])[:ATTRIBUTION_MAX_LENGTH]
    if "ref" in touch and not _REF.match(touch["ref"]):
        del touch["ref"]
    return touch


def trim_raw_fields(fields: Fields) -> dict[str, list[str]]:
    """The posted fields as kept on the activity: bounded in count and size, valid Unicode.

    Names that are blank once cleaned are dropped: DynamoDB refuses empty map keys.
    """
    raw: dict[str, list[str]] = {}
    for name, values in list(fields.items())[:RAW_FIELDS_MAX]:
        key = clean_text(name)[:200] if _is_encodable(name) else ""
        if not key or name in (TIMESTAMP_FIELD, NONCE_FIELD, VISITOR_FIELD):
            continue
        raw[key] = [clean_text(v)[:RAW_VALUE_MAX_LENGTH] for v in values[:10] if _is_encodable(v)]
    return raw


_VISITOR = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _visitor(fields: Fields) -> str | None:
    """The tracking snippet's visitor id, when the form carries a well-formed one."""
    value = _first(fields, [VISITOR_FIELD])
    return value if value and _VISITOR.match(value) else None


def idempotency_key(post: FormPost) -> str | None:
    """The key that makes a double click one submission: the header, else the form nonce."""
    key = post.idempotency_key or _first(post.fields, [NONCE_FIELD])
    return key if key and _KEY.match(key) else None


def validate_submission(form: FormDefinition, post: FormPost, received_at: datetime) -> Submission:
    """Check a post against its form.

    Args:
        form: the form definition.
        post: decoded fields and client details.
        received_at: when the post arrived (UTC).

    Returns:
        The valid submission: normalized email, non-blank profile and custom fields,
        the attribution touch, the consent record.

    Raises:
        InvalidSubmission: naming every bad field.
    """
    errors: list[FieldError] = []
    profile: dict[str, str] = {}
    custom: dict[str, str | float | bool] = {}
    email: NormalizedEmail | None = None
    declared = {f.name: f for f in form.fields}
    for name in PROFILE_FIELDS:
        if name not in declared:
            declared[name] = FormField(name=name, type=FieldType.EMAIL if name == "email" else FieldType.TEXT)

    for name, form_field in declared.items():
        if name in ATTRIBUTION_FIELDS:
            continue
        raw = _first(post.fields, [name, *form_field.aliases])
        if form_field.kind is FieldType.EMAIL and name == "email":
            if not raw or not raw.strip():
                errors.append(FieldError(name, "is required"))
                continue
            try:
                email = normalize_email(raw)
            except InvalidEmail as error:
                errors.append(FieldError(name, str(error)))
            continue
        value, problem = _check(form_field, raw) if raw is not None else (None, None)
        if problem:
            errors.append(FieldError(name, problem))
            continue
        if form_field.required and (value is None or value is False):
            errors.append(FieldError(name, "is required"))
            continue
        if value is None:
            continue
        if form_field.kind is FieldType.EMAIL and isinstance(value, str):
            try:
                value = normalize_email(value).address
            except InvalidEmail as error:
                errors.append(FieldError(name, str(error)))
                continue
        if name in PROFILE_FIELDS:
            profile[name] = str(value)
        else:
            custom[name] = value

    at = received_at.isoformat()
    consent: ConsentRecord | None = None
    if form.consent:
        # A ticked box is an opt-in, recorded with its wording; an unticked one records
        # nothing (it is no withdrawal of an earlier opt-in: that is what unsubscribing is).
        ticked = (_first(post.fields, [form.consent.field]) or "").strip().casefold()
        if not _is_encodable(ticked):
            errors.append(FieldError(form.consent.field, "contains characters that are not valid Unicode"))
        elif ticked not in FALSE_VALUES:
            consent = ConsentRecord(
                purpose=form.consent.purpose,
                granted=True,
                text=form.consent.text,
                version=form.consent.version,
                form_id=form.id,
                at=at,
                ip=post.client.ip,
                user_agent=clean_text(post.client.user_agent)[:500] if _is_encodable(post.client.user_agent) else "",
            )
        elif form.consent.required:
            errors.append(FieldError(form.consent.field, "must be ticked to submit this form"))
    if errors or email is None:
        raise InvalidSubmission(errors)
    touch = _attribution(form, post.fields, post.client, at)
    return Submission(
        form_id=form.id,
        email=email,
        profile=profile,
        custom=custom,
        touch=touch,
        consent=consent,
        raw_fields=trim_raw_fields(post.fields),
        received_at=received_at,
        client=post.client,
        idempotency_key=idempotency_key(post),
        referral_code=touch.get("ref"),
        visitor_id=_visitor(post.fields),
        lifecycle_stage=form.lifecycle_stage,
    )
