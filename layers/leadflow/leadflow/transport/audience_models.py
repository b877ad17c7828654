"""Request bodies of the admin API's lead writes (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, StrictBool, StringConstraints

from leadflow.domain.audience import Basis, StatedConsent

Text = Annotated[str, Field(max_length=500)]
CustomValue = StrictBool | float | str
CustomName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class ConsentStatement(BaseModel):
    """A consent the lead gave elsewhere: recorded only with its lawful basis and its source."""

    model_config = ConfigDict(extra="forbid")

    purpose: str = Field("marketing_email", max_length=64, description="A purpose of consent.yaml.")
    basis: Basis = Field(description="The lawful basis (GDPR Art. 6(1)).")
    source: str = Field(min_length=1, max_length=200, description="Where it was given (a system, an event, paper).")
    text: str = Field("", max_length=2000, description="The wording the person agreed to, if known.")
    at: Annotated[AwareDatetime, Strict()] | None = Field(None, description="When it was given, if known.")
    granted: StrictBool = Field(True, description="false records a refusal or a withdrawal.")

    def stated(self) -> StatedConsent:
        at = self.at.isoformat() if self.at else None
        return StatedConsent(self.purpose, self.basis, self.source, self.granted, self.text, at)


class _Profile(BaseModel):
    """The standard fields besides the address."""

    model_config = ConfigDict(extra="forbid")

    first_name: Text | None = None
    last_name: Text | None = None
    company: Text | None = None
    title: Text | None = None
    phone: Text | None = None
    country: Text | None = None


class LeadWrite(_Profile):
    """A lead to create, or to merge into the lead of that address (one lead per person)."""

    email: str = Field(max_length=320, json_schema_extra={"format": "email"})
    custom: dict[CustomName, CustomValue] = Field(
        default_factory=dict,
        max_length=100,
        description="Custom fields: lowercase identifiers (a-z, 0-9, _).",
        json_schema_extra={"additionalProperties": False},
    )
    consent: ConsentStatement | None = Field(None, description="Absent: no consent is recorded (never implied).")

    def profile(self) -> dict[str, str | None]:
        return self.model_dump(exclude={"custom", "consent"})


class LeadPatch(_Profile):
    """Fields to change: a value sets, an explicit null clears (the email cannot be cleared)."""

    email: str | None = Field(None, max_length=320, json_schema_extra={"format": "email"})
    custom: dict[CustomName, CustomValue | None] = Field(
        default_factory=dict,
        max_length=100,
        description="Custom fields to set; a null value clears one.",
        json_schema_extra={"additionalProperties": False},
    )

    def profile(self) -> dict[str, Any]:
        """The standard fields the body names (null included: a clear)."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if k != "custom"}


class SegmentView(BaseModel):
    """A segment of segments.yaml with its member count (kept as leads change: no scan)."""

    segment_id: str
    name: str
    description: str = ""
    definition: dict[str, Any] = Field(description="The rule (segments.yaml's when).")
    member_count: int = Field(ge=0, description="Leads in the segment now, from its counter.")
    counted_at: str | None = Field(None, description="When the segment was last recounted from its index.")
    stale: bool = Field(
        description=(
            "The count was never recounted under this rule (a new or changed segment): run leadflow segment refresh."
        )
    )


class SegmentsView(BaseModel):
    segments: list[SegmentView]
