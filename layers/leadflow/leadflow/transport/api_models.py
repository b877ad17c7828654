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
    tags: list[str] = Field(default_factory=list, description="The lead's tags (sorted).")
    grade: str | None = Field(None, description="Fit grade A-F, once scored.")
    created_at: str | None
    updated_at: str | None


class HandoffOwner(BaseModel):
    id: str
    name: str
    email: str
    team: str = ""


class HandoffHistoryEntry(BaseModel):
    status: str
    at: str
    by: str = Field(description="system, api:<who>, crm:<provider> or sla.")
    detail: str = ""


class HandoffDestination(BaseModel):
    status: str = Field(description="pending, retrying, delivered or failed.")
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: str | None = None
    next_attempt_at: str | None = None
    external_id: str | None = Field(None, description="The CRM's id of the contact or Lead (HubSpot, Salesforce).")


class HandoffView(BaseModel):
    """A hand-off to sales with its status history and delivery state per destination."""

    handoff_id: str
    lead_id: str
    status: str = Field(description="assigned, delivering, delivered, failed, accepted, rejected, ... recycled.")
    trigger: str = Field(description="stage, sequence or manual.")
    reason: str = ""
    owner: HandoffOwner | None = Field(None, description="Absent while the hand-off waits in the fallback queue.")
    queue: str | None = None
    assigned_by: str | None = Field(None, description="The assignment rule: named_account, territory:<name>...")
    created_at: str
    updated_at: str
    history: list[HandoffHistoryEntry]
    destinations: dict[str, HandoffDestination]

    @classmethod
    def of(cls, record: dict[str, Any]) -> HandoffView:
        return cls.model_validate({k: v for k, v in record.items() if k in cls.model_fields})


class HandoffList(BaseModel):
    handoffs: list[HandoffView]


class HandoffRequest(BaseModel):
    reason: str = Field("", max_length=500, description="Why the lead goes to sales now (shown to the owner).")


class LeadDetail(LeadSummary):
    consent_history: list[dict[str, Any]] = Field(description="Every consent record, oldest first (append-only).")
    activities: list[dict[str, Any]] = Field(description="Most recent activities, newest first.")
    handoffs: list[HandoffView] = Field(default_factory=list, description="Hand-offs to sales, newest first.")


class LeadList(BaseModel):
    leads: list[LeadSummary]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last page.")


class ScoreReason(BaseModel):
    rule_id: str
    description: str
    activities: int
    points: int = Field(description="Points earned, before decay.")
    value: float = Field(description="What they are worth now, after decay.")
    last_at: str


class ModelScore(BaseModel):
    score: float = Field(description="Decayed score now.")
    reasons: list[ScoreReason] = Field(description="The rules that weigh most, biggest first.")


class GradeReasonView(BaseModel):
    rule_id: str
    field: str | None
    points: int
    description: str


class GradeView(BaseModel):
    letter: str = Field(description="A (ideal buyer) to F.")
    points: int
    reasons: list[GradeReasonView]


class LeadScore(BaseModel):
    lead_id: str
    as_of: str
    stage: str | None
    mql_model: str = Field(description="The model whose score makes MQLs.")
    models: dict[str, ModelScore]
    grade: GradeView
    ledger_entries: int


class AccountView(BaseModel):
    account_domain: str
    model: str
    score: float
    best_lead_score: float
    leads: int
    engaged_leads: int
    departments: list[str] = Field(description="Buying-committee departments with an engaged lead.")
    missing_departments: list[str]
    coverage: float = Field(description="Share of the buying committee engaged, 0 to 1.")
    top_leads: list[str]


class SequenceStepView(BaseModel):
    id: str
    type: str
    purpose: str | None = Field(
        default=None, description="An email step's consent purpose (consent.yaml); none for a transactional one."
    )
    transactional: bool | None = Field(default=None, description="An email step that answers a person's request.")


class SequenceVersionView(BaseModel):
    number: int
    hash: str
    created_at: str


class SequenceView(BaseModel):
    id: str
    name: str
    status: str
    version: int | None = Field(description="The version number of the workspace's current content.")
    topic: str
    triggers: list[str]
    steps: list[SequenceStepView]
    versions: list[SequenceVersionView]


class SequenceList(BaseModel):
    sequences: list[SequenceView]


class SentEmailView(BaseModel):
    step_id: str
    message_id: str
    sent_at: str
    opened: bool
    clicked: bool
    link_tags: list[str]


class EnrollmentView(BaseModel):
    lead_id: str
    sequence_id: str
    version: int
    entry: int
    step_id: str
    status: str
    entered_at: str
    step_started_at: str
    due_at: str | None
    emails: list[SentEmailView]
    exit_reason: str | None
    ended_at: str | None

    @classmethod
    def of(cls, enrollment: Any) -> EnrollmentView:
        """The view of a ``domain.nurture.Enrollment`` (times in ISO 8601)."""
        from dataclasses import asdict

        data = asdict(enrollment)
        for key in ("entered_at", "step_started_at", "due_at", "ended_at"):
            data[key] = data[key].isoformat() if data.get(key) else None
        for email in data["emails"]:
            email["sent_at"] = email["sent_at"].isoformat()
        return cls.model_validate(data)


class EnrollmentList(BaseModel):
    enrollments: list[EnrollmentView]


class EnrollRequest(BaseModel):
    lead_id: str = Field(min_length=1, max_length=64)


class BroadcastStarted(BaseModel):
    sequence_id: str
    status: str
