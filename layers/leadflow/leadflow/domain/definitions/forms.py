"""Form definitions: what a landing-page form may post and what happens to it.

Plain dataclasses (no pydantic at import: form capture's cold start reads them); untrusted
YAML is validated into them by ``FormDefinition.model_validate`` (see ``config.models``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from leadflow.domain.definitions import models
from leadflow.domain.definitions.models import ConfigProblem

if TYPE_CHECKING:  # config.models provides these when pydantic validates: off the cold-start path
    from annotated_types import Ge, Le, MinLen

# Fields every form accepts without declaring them (the public contract).
PROFILE_FIELDS = ("email", "first_name", "last_name", "company", "title", "phone", "country")
ATTRIBUTION_FIELDS = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "page_url", "referrer", "ref",
)  # fmt: skip
# Hidden fields the leadflow form snippet adds: render time (for the minimum fill time)
# and a nonce (one submission per rendered form, however often it is posted).
TIMESTAMP_FIELD = "_lf_ts"
NONCE_FIELD = "_lf_nonce"
# The anonymous visitor id the tracking snippet adds to forms: ties earlier visits to the lead.
VISITOR_FIELD = "_lf_vid"
RESERVED_FIELDS = frozenset((*PROFILE_FIELDS, *ATTRIBUTION_FIELDS, TIMESTAMP_FIELD, NONCE_FIELD, VISITOR_FIELD))
# What a form can never set, whatever it declares.
PROTECTED_FIELDS = frozenset(
    {"score", "grade", "stage", "owner", "lead_id", "created_at", "updated_at", "consent", "tags"}
)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FORM_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# A share code (the ``ref`` attribution field; referrers.yaml lists them): 1-64 of A-Z, a-z, 0-9, - and _.
REF_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ORIGIN_PATTERN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d+)?$")


class FieldType(StrEnum):
    TEXT = "text"
    TEXTAREA = "textarea"
    EMAIL = "email"
    PHONE = "phone"
    NUMBER = "number"
    URL = "url"
    SELECT = "select"
    CHECKBOX = "checkbox"
    COUNTRY = "country"
    HIDDEN = "hidden"


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of a form: a standard profile field, an attribution field or a custom one."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    name: str
    """Field name as posted: a lowercase identifier (a-z, 0-9, _)."""
    type: FieldType | None = None
    """How the value is checked; text by default (email for the field named email)."""
    label: str | None = None
    """The label a landing page shows."""
    required: bool = False
    """Refuse the submission when the field is blank."""
    max_length: Annotated[int, Ge(1), Le(10_000)] = 500
    """Longest accepted value, in characters."""
    options: tuple[str, ...] | None = None
    """Allowed values of a select."""
    aliases: tuple[str, ...] = ()
    """Other posted names for this field, e.g. mauticform[email_address]."""

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ConfigProblem("name", "must be a lowercase identifier: a-z, 0-9 and _, starting with a letter")
        if self.name in PROTECTED_FIELDS:
            raise ConfigProblem("name", f"'{self.name}' is managed by leadflow and cannot be set by a form")
        if self.name == "email" and self.type not in (None, FieldType.EMAIL):
            raise ConfigProblem("type", "the 'email' field must have type: email")
        if self.type is None:
            object.__setattr__(self, "type", FieldType.EMAIL if self.name == "email" else FieldType.TEXT)
        if self.type is FieldType.SELECT and not self.options:
            raise ConfigProblem("options", "a select field needs options")

    @property
    def kind(self) -> FieldType:
        return self.type or FieldType.TEXT

    @property
    def is_custom(self) -> bool:
        return self.name not in RESERVED_FIELDS


@dataclass(frozen=True, slots=True)
class Consent:
    """The consent checkbox: its wording is versioned so every record says what was agreed to."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    text: Annotated[str, MinLen(1)]
    """The wording shown next to the checkbox."""
    version: Annotated[str, MinLen(1)]
    """Version of the wording, e.g. a date."""
    field: str = "consent"
    """Name of the checkbox field."""
    purpose: str = "marketing_email"
    """What the person agrees to (a lowercase identifier)."""
    required: bool = False
    """Refuse the submission when the box is not ticked."""

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.purpose):
            raise ConfigProblem("purpose", "must be a lowercase identifier")


@dataclass(frozen=True, slots=True)
class FormDefinition:
    """A landing-page form, one YAML file in the workspace's ``forms/`` folder."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    """The form id: the file name and the last part of POST /forms/{form_id}."""
    name: str
    """A human name for the form."""
    thank_you_url: str
    """Where an HTML form post is redirected (303) on success: absolute, or rooted (/thanks)."""
    fields: Annotated[tuple[FormField, ...], MinLen(1)]
    """The fields; one must be email."""
    consent: Consent | None = None
    """The consent checkbox, if the form has one."""
    allowed_origins: tuple[str, ...] = ()
    """Origins allowed to post with CORS (e.g. https://www.example.com, https://*.example.com)."""
    honeypot: str | None = None
    """A hidden field people leave empty; a filled one marks the post as spam."""
    min_fill_seconds: Annotated[float, Ge(0), Le(3600)] = 0
    """Posts sooner than this after the form was rendered (_lf_ts) are spam."""
    double_opt_in: bool = False
    """Ask for confirmation: a ticked consent box sends a confirmation email, and no marketing email goes
    out until its link is followed (the consent history shows both steps)."""
    lifecycle_stage: Literal["subscriber", "lead"] = "lead"
    """Stage of a lead this form creates (never changes an existing lead's stage)."""
    channel: str = "form"
    """Channel recorded in attribution (form, event, webinar...)."""

    def __post_init__(self) -> None:
        if not re.match(FORM_ID_PATTERN, self.id):
            raise ConfigProblem("id", "must be 1-64 of a-z, 0-9, - and _, starting with a letter or digit")
        if not (self.thank_you_url.startswith("/") and not self.thank_you_url.startswith("//")):
            try:
                parts = urlsplit(self.thank_you_url)
            except ValueError:
                parts = urlsplit("")
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigProblem("thank_you_url", "must be an http(s) URL or a path starting with /")
        for origin in self.allowed_origins:
            if not ORIGIN_PATTERN.match(origin):
                raise ConfigProblem("allowed_origins", f"'{origin}' is not an origin like https://www.example.com")
        names = [f.name for f in self.fields]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ConfigProblem("fields", f"fields declared twice: {sorted(duplicates)}")
        if "email" not in names:
            raise ConfigProblem("fields", "a form needs an 'email' field: it is how leads are told apart")
        if self.honeypot and self.honeypot in names:
            raise ConfigProblem("honeypot", "must not be a declared field")

    @classmethod
    def model_validate(cls, data: Any) -> FormDefinition:
        """Validate untrusted data (a parsed YAML file). Raises pydantic.ValidationError."""
        return models.validate(cls, data)

    @classmethod
    def from_trusted(cls, data: dict[str, Any]) -> FormDefinition:
        """Rebuild a form that ``model_validate`` already checked (a compiled workspace), without pydantic."""
        fields = tuple(
            FormField(
                **{
                    **f,
                    "type": FieldType(f["type"]),
                    "options": _tuple(f.get("options")),
                    "aliases": tuple(f.get("aliases", ())),
                }
            )
            for f in data["fields"]
        )
        consent = Consent(**data["consent"]) if data.get("consent") else None
        return cls(
            **{**data, "fields": fields, "consent": consent, "allowed_origins": tuple(data.get("allowed_origins", ()))}
        )

    def field_named(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser at ``origin`` may read responses of this form (CORS)."""
        return origin_matches(origin, self.allowed_origins)


def origin_matches(origin: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``origin`` is one of ``allowed`` (exact, or ``https://*.example.com`` for subdomains)."""
    for pattern in allowed:
        if pattern == origin:
            return True
        if "://*." in pattern:
            scheme, suffix = pattern.split("://*.", 1)
            if origin.startswith(scheme + "://") and origin.endswith("." + suffix):
                return True
    return False


def _tuple(value: list[str] | None) -> tuple[str, ...] | None:
    return tuple(value) if value is not None else None
