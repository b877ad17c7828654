"""Turning posted form fields into a validated submission, or a spam verdict.

Pure: the caller passes the time of receipt and the client's details.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from leadflow.domain.definitions.forms import (
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
from leadflow.domain.tokens import InvalidToken, verify_render_time

Fields = Mapping[str, Sequence[str]]

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
URL_ATTRIBUTION_FIELDS = frozenset({"page_url", "referrer"})
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
    # leadflow's signed visitor cookie (``lf_id``), when the browser carries one.
    identity_token: str | None = None


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
    # Where the consent comes from: ``form`` (a ticked box, proven by the wording, IP and user
    # agent above), or a person's statement through the admin API or an import, which must
    # name its lawful ``basis`` and its ``source`` (the system or paper it was given in).
    source: str = "form"
    basis: str | None = None

    def as_item(self) -> dict[str, Any]:
        item = {
            "purpose": self.purpose,
            "granted": self.granted,
            "text": self.text,
            "version": self.version,
            "form_id": self.form_id,
            "at": self.at,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "source": self.source,
        }
        if self.basis is not None:
            item["basis"] = self.basis
        return item


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
    # What was dropped or doubted in this post (an unsafe page URL, a missing render time):
    # kept on the activity and counted per form and day.
    flags: list[str] = field(default_factory=list)


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


def spam_verdict(
    form: FormDefinition,
    fields: Fields,
    received_at: datetime,
    keys: Sequence[bytes] = (),
    flags: list[str] | None = None,
) -> SpamReason | None:
    """Why this post is spam, or None.

    A filled honeypot, or a post sooner than ``min_fill_seconds`` after the form was
    rendered (the ``_lf_ts`` field: the snippet's signed render time ``<ms>.<mac>``, or a
    plain epoch-ms number from other tools). What cannot be judged is not dropped silently:
    ``flags`` gets ``missing_render_time``, ``forged_render_time`` (a bad signature, not a
    time, or a time in the future) or ``unsigned_render_time`` (judged, but anyone can write
    it), and the caller counts them.
    """
    if form.honeypot and (_first(fields, [form.honeypot]) or "").strip():
        return SpamReason.HONEYPOT
    if form.min_fill_seconds > 0:
        noted = flags if flags is not None else []
        rendered_ms, signed = _render_time(_first(fields, [TIMESTAMP_FIELD]), keys, noted)
        if rendered_ms is not None:
            elapsed = received_at.timestamp() - rendered_ms / 1000
            if elapsed < -300:
                noted.append("forged_render_time")
                return None
            if not signed:
                noted.append("unsigned_render_time")
            if elapsed < form.min_fill_seconds:
                return SpamReason.TOO_FAST
    return None


def _render_time(value: str | None, keys: Sequence[bytes], flags: list[str]) -> tuple[float | None, bool]:
    """The render time (epoch ms) of ``_lf_ts`` and whether leadflow signed it; None (and
    why, in ``flags``) when there is none to judge by."""
    text = (value or "").strip()
    if not text:
        flags.append("missing_render_time")
        return None, False
    if "." in text and not text.replace(".", "", 1).isdigit():
        try:
            return float(verify_render_time(text, list(keys))), True
        except InvalidToken:
            flags.append("forged_render_time")
            return None, False
    try:
        rendered_ms = float(text)
    except ValueError:
        rendered_ms = math.nan
    if not math.isfinite(rendered_ms):
        flags.append("forged_render_time")
        return None, False
    return rendered_ms, False


def payload_digest(fields: Fields) -> str:
    """A digest of everything a post carried: an idempotency key covers exactly this payload."""
    canonical = json.dumps(
        sorted((name, list(values)) for name, values in fields.items()), ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()


def _check(form_field: FormField, raw: str) -> tuple[str | float | bool | None, str | None]:  # noqa: C901 - one branch per form field type, each with its refusal
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


def is_web_url(value: str) -> bool:
    """Whether ``value`` is an absolute http(s) URL with a host: the only page addresses kept
    (a ``javascript:`` or ``data:`` "page" would reach CRMs and consoles as a link)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in parts.netloc)


def _attribution(form: FormDefinition, fields: Fields, client: ClientInfo, at: str, flags: list[str]) -> dict[str, str]:  # noqa: C901 - one branch per attribution source (UTM, click ids, referrer, share code)
    """The touch of this post; a page or referrer that is not an http(s) URL is dropped and
    flagged (``unsafe_page_url``, ``unsafe_referrer``)."""
    touch: dict[str, str] = {"channel": form.channel, "form_id": form.id, "at": at}
    for name in ATTRIBUTION_FIELDS:
        declared = form.field_named(name)
        value = _first(fields, [name, *(declared.aliases if declared else [])])
        if value and _is_encodable(value):
            cleaned = clean_text(value)[:ATTRIBUTION_MAX_LENGTH]
            if cleaned and name in URL_ATTRIBUTION_FIELDS and not is_web_url(cleaned):
                flags.append(f"unsafe_{name}")
            elif cleaned:
                touch[name] = cleaned
    if "page_url" not in touch and client.referer and _is_encodable(client.referer):
        page = clean_text(client.referer)[:ATTRIBUTION_MAX_LENGTH]
        if is_web_url(page):
            touch["page_url"] = page
        elif page:
            flags.append("unsafe_page_url")
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


def _without_unsafe_urls(raw: dict[str, list[str]], form: FormDefinition) -> dict[str, list[str]]:
    """``raw`` without page or referrer values that are not http(s) URLs (dropped, not kept)."""
    for name in URL_ATTRIBUTION_FIELDS:
        declared = form.field_named(name)
        for posted in (name, *(declared.aliases if declared else ())):
            if posted in raw:
                raw[posted] = [v for v in raw[posted] if not v or is_web_url(v)]
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


def _fields(
    form: FormDefinition, post: FormPost, errors: list[FieldError]
) -> tuple[NormalizedEmail | None, dict[str, str], dict[str, str | float | bool]]:
    """The post's email, profile fields and custom fields, as the form declares them; each bad
    field is added to ``errors``."""
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
            email = _lead_email(raw, errors)
            continue
        value = _field_value(name, form_field, raw, errors)
        if value is None:
            continue
        if name in PROFILE_FIELDS:
            profile[name] = str(value)
        else:
            custom[name] = value
    return email, profile, custom


def _lead_email(raw: str | None, errors: list[FieldError]) -> NormalizedEmail | None:
    if not raw or not raw.strip():
        errors.append(FieldError("email", "is required"))
        return None
    try:
        return normalize_email(raw)
    except InvalidEmail as error:
        errors.append(FieldError("email", str(error)))
        return None


def _field_value(
    name: str, form_field: FormField, raw: str | None, errors: list[FieldError]
) -> str | float | bool | None:
    """One field's checked value (None: absent or refused, a refusal added to ``errors``)."""
    value, problem = _check(form_field, raw) if raw is not None else (None, None)
    if problem:
        errors.append(FieldError(name, problem))
        return None
    if form_field.required and (value is None or value is False):
        errors.append(FieldError(name, "is required"))
        return None
    if form_field.kind is FieldType.EMAIL and isinstance(value, str):
        try:
            return normalize_email(value).address
        except InvalidEmail as error:
            errors.append(FieldError(name, str(error)))
            return None
    return value


def _consent(form: FormDefinition, post: FormPost, at: str, errors: list[FieldError]) -> ConsentRecord | None:
    """The consent the post records, if the form asks for one.

    A ticked box is an opt-in, recorded with its wording; an unticked one records nothing (it is
    no withdrawal of an earlier opt-in: that is what unsubscribing is)."""
    if not form.consent:
        return None
    ticked = (_first(post.fields, [form.consent.field]) or "").strip().casefold()
    if not _is_encodable(ticked):
        errors.append(FieldError(form.consent.field, "contains characters that are not valid Unicode"))
        return None
    if ticked not in FALSE_VALUES:
        return ConsentRecord(
            purpose=form.consent.purpose,
            granted=True,
            text=form.consent.text,
            version=form.consent.version,
            form_id=form.id,
            at=at,
            ip=post.client.ip,
            user_agent=clean_text(post.client.user_agent)[:500] if _is_encodable(post.client.user_agent) else "",
        )
    if form.consent.required:
        errors.append(FieldError(form.consent.field, "must be ticked to submit this form"))
    return None


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
    email, profile, custom = _fields(form, post, errors)
    at = received_at.isoformat()
    consent = _consent(form, post, at, errors)
    if errors or email is None:
        raise InvalidSubmission(errors)
    flags: list[str] = []
    touch = _attribution(form, post.fields, post.client, at, flags)
    return Submission(
        form_id=form.id,
        email=email,
        profile=profile,
        custom=custom,
        touch=touch,
        consent=consent,
        raw_fields=_without_unsafe_urls(trim_raw_fields(post.fields), form),
        received_at=received_at,
        client=post.client,
        idempotency_key=idempotency_key(post),
        referral_code=touch.get("ref"),
        visitor_id=_visitor(post.fields),
        lifecycle_stage=form.lifecycle_stage,
        flags=flags,
    )
