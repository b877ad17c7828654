"""crm_feedback.yaml: how what sales did in the CRM maps back onto leads.

``POST /crm/{provider}/webhook`` takes sales feedback from three kinds of sender:

- ``generic``: any system that signs with Standard Webhooks and posts leadflow's own JSON
  (``docs/schemas/crm-feedback-generic.schema.json``);
- ``hubspot``: a HubSpot app's webhook subscriptions (``contact.propertyChange``), signed with
  the app's client secret (v3 signature); the values of the contact properties listed here say
  what sales did;
- ``salesforce``: Outbound Messages (SOAP) from workflow rules or flows on Lead (or any
  object listed here), authenticated by the token in their endpoint URL (``salesforce_endpoint_token``)
  and the organization id.

What an outcome does to the lead is fixed (``leadflow.domain.crm_feedback``): accepted ->
SQL, opportunity -> opportunity, won -> customer, rejected and lost -> recycled (back to
nurture), or disqualified for a rejection whose reason is in ``disqualify_reasons``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from leadflow.domain.definitions import models
from leadflow.domain.definitions.models import ConfigProblem

Outcome = Literal["accepted", "rejected", "opportunity", "won", "lost"]
SALESFORCE_ORG_ID = re.compile(r"^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$")
SALESFORCE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


@dataclass(frozen=True, slots=True)
class GenericProvider:
    """Feedback in leadflow's own JSON, signed with Standard Webhooks (secret ``inbound_generic_secret``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    enabled: bool = True
    """Accept it (a disabled provider answers 404)."""


@dataclass(frozen=True, slots=True)
class HubSpotProvider:
    """HubSpot webhook subscriptions, v3 signatures with the app's client secret (``hubspot_client_secret``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    enabled: bool = False
    """Accept it (a disabled provider answers 404)."""
    webhook_url: str | None = None
    """The target URL exactly as set in the HubSpot app (the signature covers it); default: the URL requested."""
    properties: dict[str, dict[str, Outcome]] = field(default_factory=dict)
    """Contact property -> its value -> the outcome it means (e.g. hs_lead_status: {IN_PROGRESS: accepted})."""

    def __post_init__(self) -> None:
        if self.webhook_url is not None and not self.webhook_url.startswith("https://"):
            raise ConfigProblem("webhook_url", "must be an https:// URL (HubSpot calls https only)")
        if self.enabled and not self.properties:
            raise ConfigProblem("properties", "name at least one contact property whose values mean an outcome")


@dataclass(frozen=True, slots=True)
class SalesforceObject:
    """How one sObject type's Outbound Message says what sales did."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    status_field: str
    """The field whose value is the outcome (Status on Lead, StageName on Opportunity)."""
    values: dict[str, Outcome]
    """Field value -> outcome (values not listed are acknowledged and ignored)."""
    lead_id_field: str | None = None
    """The field holding leadflow's lead id (the hand-off's external id); else the record's Id is looked up."""
    reason_field: str | None = None
    """A field with the reason of a rejection or a loss."""

    def __post_init__(self) -> None:
        for name in ("status_field", "lead_id_field", "reason_field"):
            value = getattr(self, name)
            if value is not None and not SALESFORCE_NAME.match(value):
                raise ConfigProblem(name, f"'{value}' is not a Salesforce field API name")
        if not self.values:
            raise ConfigProblem("values", "map at least one field value to an outcome")


@dataclass(frozen=True, slots=True)
class SalesforceProvider:
    """Salesforce Outbound Messages (endpoint URL ``?token=`` the secret ``salesforce_endpoint_token``);
    a message from any other organization is refused."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    enabled: bool = False
    """Accept it (a disabled provider answers 404)."""
    organization_ids: tuple[str, ...] = ()
    """The 15- or 18-character ids of the Salesforce organizations allowed to send (00D...)."""
    objects: dict[str, SalesforceObject] = field(default_factory=dict)
    """sObject type (Lead, Opportunity, ...) -> how its messages map to outcomes."""

    def __post_init__(self) -> None:
        for org in self.organization_ids:
            if not SALESFORCE_ORG_ID.match(org):
                raise ConfigProblem("organization_ids", f"'{org}' is not a Salesforce organization id (00D...)")
        for name in self.objects:
            if not SALESFORCE_NAME.match(name):
                raise ConfigProblem("objects", f"'{name}' is not an sObject API name")
        if self.enabled and not (self.organization_ids and self.objects):
            raise ConfigProblem("organization_ids", "an enabled Salesforce provider needs organization_ids and objects")

    def organization_allowed(self, org_id: str) -> bool:
        """Whether a message's OrganizationId is one of ours (15- and 18-character forms are the same org)."""
        return any(org_id[:15] == allowed[:15] and len(org_id) in (15, 18) for allowed in self.organization_ids)


@dataclass(frozen=True, slots=True)
class CrmFeedbackConfig:
    """crm_feedback.yaml: the CRMs allowed to report back, and what their values mean."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    generic: GenericProvider = GenericProvider()
    """leadflow's own JSON format, Standard Webhooks signatures."""
    hubspot: HubSpotProvider = HubSpotProvider()
    """HubSpot webhook subscriptions."""
    salesforce: SalesforceProvider = SalesforceProvider()
    """Salesforce Outbound Messages."""
    disqualify_reasons: tuple[str, ...] = ()
    """A rejection with one of these reasons (case-insensitive) disqualifies the lead instead of recycling it."""

    @classmethod
    def model_validate(cls, data: Any) -> CrmFeedbackConfig:
        return models.validate(cls, data if data is not None else {})

    @classmethod
    def from_trusted(cls, data: dict[str, Any]) -> CrmFeedbackConfig:
        hubspot = data.get("hubspot", {})
        salesforce = data.get("salesforce", {})
        return cls(
            generic=GenericProvider(**data.get("generic", {})),
            hubspot=HubSpotProvider(**hubspot),
            salesforce=SalesforceProvider(
                enabled=salesforce.get("enabled", False),
                organization_ids=tuple(salesforce.get("organization_ids", ())),
                objects={name: SalesforceObject(**o) for name, o in salesforce.get("objects", {}).items()},
            ),
            disqualify_reasons=tuple(data.get("disqualify_reasons", ())),
        )

    def enabled(self, provider: str) -> bool:
        """Whether ``provider`` (generic, hubspot, salesforce) may post feedback."""
        sections: dict[str, GenericProvider | HubSpotProvider | SalesforceProvider] = {
            "generic": self.generic,
            "hubspot": self.hubspot,
            "salesforce": self.salesforce,
        }
        section = sections.get(provider)
        return section is not None and section.enabled
