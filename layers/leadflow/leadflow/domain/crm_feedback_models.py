"""The generic CRM feedback body (pydantic: loaded only when a generic webhook arrives).

Its JSON Schema is published as ``docs/schemas/crm-feedback-generic.schema.json``
(``leadflow schema`` writes it). Unknown fields are ignored, so a sender may add its own.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

LeadflowId = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]


class GenericFeedback(BaseModel):
    """What sales did with a lead leadflow handed off (POST /crm/generic/webhook, Standard Webhooks signed)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, title="CrmFeedbackGeneric")

    type: Literal["handoff.feedback"] = Field(default="handoff.feedback", description="Always handoff.feedback.")
    lead_id: LeadflowId = Field(description="leadflow's lead id (in every hand-off payload).")
    handoff_id: LeadflowId | None = Field(
        default=None, description="The hand-off it answers; the lead's latest when absent."
    )
    outcome: Literal["accepted", "rejected", "opportunity", "won", "lost"] = Field(
        description="accepted -> SQL; opportunity; won -> customer; rejected and lost -> recycled into nurture."
    )
    reason: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="Why it was rejected or lost (a reason listed in disqualify_reasons disqualifies)."
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When sales did it (ISO-8601 with offset); older feedback never overrides newer."
    )
    owner: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Who in sales did it (an id or name of the rep)."
    )
    amount: Annotated[float, Field(ge=0)] | None = Field(default=None, description="Opportunity or deal amount.")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = Field(
        default=None, description="ISO 4217 code of the amount."
    )
