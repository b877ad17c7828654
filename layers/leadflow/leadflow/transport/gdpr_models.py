"""Admin API models of the GDPR routes (they make the OpenAPI document): the export and the
erasure's answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Item = dict[str, Any]


class ExportAttribution(BaseModel):
    first_touch: Item = Field(description="Channel, form, UTM, page and referrer of the first touch.")
    last_touch: Item = Field(description="The same for the latest touch.")
    referred_by: Item | None = Field(None, description="The share code that brought the lead, with its owner.")


class ExportGrade(BaseModel):
    grade: str | None = None
    points: int | float | None = None


class ExportedEmail(BaseModel):
    message_id: str
    sequence_id: str | None = None
    step_id: str | None = None
    variant: str | None = None
    subject: str | None = Field(None, description="The step's subject line, rendered with the lead's fields.")
    sent_at: str | None = None
    opened: bool
    clicked: bool
    link_tags: list[str] | None = None


class ExportSuppression(BaseModel):
    suppressed: bool
    reason: str | None = None
    at: str | None = None


class LeadExport(BaseModel):
    """Everything leadflow holds about one person (GDPR Art. 15 and 20), from every store."""

    type: Literal["leadflow.personal_data_export"]
    schema_version: Literal[1]
    exported_at: str
    lead_id: str
    profile: dict[str, str] = Field(description="Email, names, company, title, phone, country.")
    custom_fields: Item
    lead_record: Item = Field(description="The whole stored profile (scores, tags, consent, stage, timestamps...).")
    attribution: ExportAttribution
    stage: str | None
    grade: ExportGrade
    scores: Item
    consent: Item = Field(description="The latest consent state per purpose.")
    consent_history: list[Item] = Field(description="Every consent record: granted, withdrawn, confirmed, with source.")
    activities: list[Item]
    score_ledger: list[Item] = Field(description="Every point given: rule, activity, model, time.")
    enrollments: list[Item]
    mail_log: list[Item] = Field(description="The send ledger: recent sends and the enrollments it holds.")
    memberships: list[Item] = Field(
        default_factory=list, description="The segments the lead is in and its tags' index items (since)."
    )
    emails_sent: list[ExportedEmail]
    handoffs: list[Item] = Field(description="Hand-offs to sales with the payload sent, delivery state and history.")
    crm_feedback: list[Item] = Field(description="What sales reported back (sales_feedback activities).")
    crm_references: list[Item] = Field(description="CRM records (HubSpot contact, Salesforce Lead) of the lead.")
    crm_events_seen: list[Item] = Field(description="Sales feedback events applied (kept 30 days against replays).")
    spam_records: list[Item] = Field(description="Posts of the address kept as spam for review (30 days).")
    report_markers: list[Item] = Field(description="The reports' once-per-lead markers (created, stages reached).")
    change_audit: list[Item] = Field(
        default_factory=list,
        description="Changes made to the lead through the console or the admin API: who, what, when.",
    )
    suppression: ExportSuppression
    visitor_ids: list[str] = Field(description="Anonymous visitor ids of the tracking snippet stitched to the lead.")
    visitor_links: list[Item] = Field(
        description="The links of those visitor ids to the lead (when each was stitched)."
    )
    visitor_activities: list[Item] = Field(description="What the visitors did on the site before they were the lead.")
    email_guard: Item | None
    idempotency_records: list[Item]
    pending_events: list[Item] = Field(description="Events about the lead not yet expired from the outbox.")
    other_records: list[Item]
    counts: dict[str, int] = Field(description="How many items of each kind the export holds.")


class CrmRecord(BaseModel):
    destination: str
    provider: str = Field(description="hubspot or salesforce: delete the record there (the operator's step).")
    record_id: str


class ErasureView(BaseModel):
    """What an erasure did: counts per kind, never the data."""

    lead_id: str
    status: Literal["erased", "already_erased"]
    erasure_id: str
    erased_at: str
    counts: dict[str, int] = Field(description="Items erased per kind (profile, activities, enrollments...).")
    notified: list[str] = Field(description="Webhook destinations sent a lead.erased event.")
    crm_records: list[CrmRecord] = Field(description="Records to delete in HubSpot / Salesforce.")
