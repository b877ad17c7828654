"""Admin API response models (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Referral(BaseModel):
    code: str
    name: str | None = None
    kind: str | None = None


class Attribution(BaseModel):
    first_touch: dict[str, str] = Field(description="Channel, form, UTM, page and referrer of the first touch.")
    last_touch: dict[str, str] = Field(description="The same for the latest touch.")
    referred_by: Referral | None = Field(None, description="The rep's or partner's share code that brought the lead.")


class LeadSummary(BaseModel):
    lead_id: str
    profile: dict[str, str]
    custom: dict[str, Any]
    stage: str | None
    account_domain: str | None
    attribution: Attribution
    consent: dict[str, Any] = Field(description="Latest consent per purpose.")
    submissions: int
    created_at: str | None
    updated_at: str | None


class LeadDetail(LeadSummary):
    consent_history: list[dict[str, Any]] = Field(description="Every consent record, oldest first (append-only).")
    activities: list[dict[str, Any]] = Field(description="Most recent activities, newest first.")


class LeadList(BaseModel):
    leads: list[LeadSummary]


class ErrorBody(BaseModel):
    message: str
