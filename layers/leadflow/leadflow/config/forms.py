"""Form definitions: what a landing-page form may post and what happens to it."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

# Fields every form accepts without declaring them (the public contract).
PROFILE_FIELDS = ("email", "first_name", "last_name", "company", "title", "phone", "country")
ATTRIBUTION_FIELDS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "page_url",
    "referrer",
    "ref",
)
# Hidden fields the leadflow form snippet adds: render time (for the minimum fill time)
# and a nonce (one submission per rendered form, however often it is posted).
TIMESTAMP_FIELD = "_lf_ts"
NONCE_FIELD = "_lf_nonce"
RESERVED_FIELDS = frozenset((*PROFILE_FIELDS, *ATTRIBUTION_FIELDS, TIMESTAMP_FIELD, NONCE_FIELD))
# What a form can never set, whatever it declares.
PROTECTED_FIELDS = frozenset(
    {"score", "grade", "stage", "owner", "lead_id", "created_at", "updated_at", "consent", "tags"}
)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FORM_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FormField(_Strict):
    """One field of a form: a standard profile field, an attribution field or a custom one."""

    name: Annotated[str, Field(description="Field name as posted (lowercase identifier).")]
    type: FieldType = FieldType.TEXT
    label: str | None = None
    required: bool = False
    max_length: Annotated[int, Field(ge=1, le=10_000)] = 500
    options: list[str] | None = Field(default=None, description="Allowed values of a select.")
    aliases: list[str] = Field(
        default_factory=list,
        description="Other posted names for this field, e.g. mauticform[email_address].",
    )

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("must be a lowercase identifier: a-z, 0-9 and _, starting with a letter")
        if value in PROTECTED_FIELDS:
            raise ValueError(f"'{value}' is managed by leadflow and cannot be set by a form")
        return value

    @model_validator(mode="before")
    @classmethod
    def _email_is_an_email(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("name") == "email":
            if data.get("type", "email") != "email":
                raise ValueError("the 'email' field must have type: email")
            data = {**data, "type": "email"}
        return data

    @model_validator(mode="after")
    def _select_has_options(self) -> FormField:
        if self.type is FieldType.SELECT and not self.options:
            raise ValueError("a select field needs options")
        return self

    @property
    def is_custom(self) -> bool:
        return self.name not in RESERVED_FIELDS


class Consent(_Strict):
    """The consent checkbox: its wording is versioned so every record says what was agreed to."""

    field: str = "consent"
    purpose: str = Field("marketing_email", pattern=r"^[a-z][a-z0-9_]{0,63}$", description="What the person agrees to.")
    text: str = Field(min_length=1, description="The wording shown next to the checkbox.")
    version: str = Field(min_length=1, description="Version of the wording, e.g. a date.")
    required: bool = Field(False, description="Refuse the submission when not ticked.")


class FormDefinition(_Strict):
    """A landing-page form, one YAML file in the workspace's ``forms/`` folder."""

    id: Annotated[str, Field(pattern=FORM_ID_PATTERN)]
    name: str
    thank_you_url: str = Field(description="Where an HTML form post is redirected (303) on success.")
    fields: list[FormField] = Field(min_length=1)
    consent: Consent | None = None
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to post with CORS (e.g. https://www.example.com, https://*.example.com).",
    )
    honeypot: str | None = Field(
        None, description="A hidden field people leave empty; a filled one marks the post as spam."
    )
    min_fill_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        0, description="Posts faster than this after the form was rendered are spam."
    )
    lifecycle_stage: Literal["subscriber", "lead"] = Field(
        "lead", description="Stage of a lead this form creates (never changes an existing lead's stage)."
    )
    channel: str = Field("form", description="Channel recorded in attribution (form, event, webinar...).")

    @field_validator("thank_you_url")
    @classmethod
    def _absolute_or_rooted(cls, value: str) -> str:
        if value.startswith("/") and not value.startswith("//"):
            return value
        HttpUrl(value)
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.match(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d+)?$", value):
                raise ValueError(f"'{value}' is not an origin like https://www.example.com")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> FormDefinition:
        names = [f.name for f in self.fields]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"fields declared twice: {sorted(duplicates)}")
        if "email" not in names:
            raise ValueError("a form needs an 'email' field: it is how leads are told apart")
        if self.honeypot and self.honeypot in names:
            raise ValueError("the honeypot must not be a declared field")
        return self

    def field_named(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser at ``origin`` may read responses of this form (CORS)."""
        for allowed in self.allowed_origins:
            if allowed == origin:
                return True
            if "://*." in allowed:
                scheme, suffix = allowed.split("://*.", 1)
                if origin.startswith(scheme + "://") and origin.endswith("." + suffix):
                    return True
        return False
