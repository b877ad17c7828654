"""handoff.yaml: when a lead goes to sales, to whom, where it is sent, and the SLA.

Validated by pydantic (every bad field named, JSON Schema exported for editors); the
dataclasses themselves are plain so the delivery function reads them without pydantic
once the workspace is compiled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from leadflow.domain.definitions import models
from leadflow.domain.definitions.models import ConfigProblem

if TYPE_CHECKING:  # config.models provides these when pydantic validates
    from annotated_types import Ge, Le

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
PAYLOAD_SOURCES = (
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "stage",
    "grade",
    "score",
    "lead_id",
    "handoff_id",
    "owner_email",
    "owner_id",
    "reason",
    "top_reasons",
    "first_touch_source",
    "last_touch_source",
    "referred_by",
)


def _check_name(value: str, where: str) -> None:
    if not NAME_PATTERN.match(value):
        raise ConfigProblem(where, f"'{value}' must be 1-64 of a-z, 0-9, - and _ (starting with a letter or digit)")


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """When an owner takes new leads, in their own timezone."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    timezone: str = "UTC"
    """IANA timezone name, e.g. Europe/Berlin."""
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = ("mon", "tue", "wed", "thu", "fri")
    """Working days."""
    start: str = "09:00"
    """First minute of the working day (HH:MM)."""
    end: str = "17:00"
    """End of the working day (HH:MM, exclusive)."""

    def __post_init__(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        for name in ("start", "end"):
            if not TIME_PATTERN.match(getattr(self, name)):
                raise ConfigProblem(name, "must be HH:MM (24-hour clock)")
        if self.start >= self.end:
            raise ConfigProblem("end", "must be after start")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigProblem("timezone", f"'{self.timezone}' is not an IANA timezone") from None


@dataclass(frozen=True, slots=True)
class Owner:
    """A sales rep who can be assigned leads."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    """Stable id (also the CRM owner id if you map it)."""
    name: str
    """Display name."""
    email: str
    """Where reminders go."""
    capacity: Annotated[int, Ge(1), Le(100_000)] = 50
    """At most this many open hand-offs at once; a full owner is skipped."""
    working_hours: WorkingHours | None = None
    """Takes new leads only in these hours (the team's hours when absent; always when neither)."""

    def __post_init__(self) -> None:
        _check_name(self.id, "id")


@dataclass(frozen=True, slots=True)
class Team:
    """Owners who share leads round-robin."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    """Team id, named by territories."""
    members: tuple[str, ...]
    """Owner ids, in rotation order."""
    working_hours: WorkingHours | None = None
    """Default hours of the members."""
    escalate_to: str | None = None
    """Owner id told when a hand-off of this team misses its SLA."""

    def __post_init__(self) -> None:
        _check_name(self.id, "id")
        if not self.members:
            raise ConfigProblem("members", "a team needs at least one owner")


@dataclass(frozen=True, slots=True)
class Territory:
    """Leads matching every given criterion go to ``team`` (first matching territory wins)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    name: str
    """What the territory is called (shown in the hand-off's assignment reason)."""
    team: str
    """Team id."""
    countries: tuple[str, ...] = ()
    """ISO country codes (the lead's country field)."""
    regions: tuple[str, ...] = ()
    """Region names of the ``regions`` map."""
    industries: tuple[str, ...] = ()
    """Values of the lead's industry field (case-insensitive)."""
    company_sizes: tuple[str, ...] = ()
    """Values of the lead's company size field (e.g. 201-1000)."""


@dataclass(frozen=True, slots=True)
class Assignment:
    """Who gets a lead: named account, then territory, then the default team, else the fallback queue."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    owners: tuple[Owner, ...] = ()
    """Every sales rep."""
    teams: tuple[Team, ...] = ()
    """Round-robin teams."""
    named_accounts: dict[str, str] = field(default_factory=dict)
    """Company domain -> owner id (key accounts always go to their owner)."""
    territories: tuple[Territory, ...] = ()
    """Routing rules, first match wins."""
    regions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Region name -> ISO country codes (for territories by region)."""
    default_team: str | None = None
    """Team of leads no territory matches (fallback queue when absent)."""
    fallback_queue: str = "unassigned"
    """Name of the queue of leads nobody could take (no match, everybody full or off hours)."""
    industry_field: str = "industry"
    """Lead field holding the industry (a form field name)."""
    company_size_field: str = "company_size"
    """Lead field holding the company size (a form field name)."""

    def __post_init__(self) -> None:
        owner_ids = {o.id for o in self.owners}
        team_ids = {t.id for t in self.teams}
        if len(owner_ids) != len(self.owners):
            raise ConfigProblem("owners", "owner ids must be unique")
        for team in self.teams:
            for member in (*team.members, *([team.escalate_to] if team.escalate_to else [])):
                if member not in owner_ids:
                    raise ConfigProblem("teams", f"team '{team.id}' names unknown owner '{member}'")
        for domain, owner in self.named_accounts.items():
            if owner not in owner_ids:
                raise ConfigProblem("named_accounts", f"'{domain}' names unknown owner '{owner}'")
        for territory in self.territories:
            if territory.team not in team_ids:
                raise ConfigProblem(
                    "territories", f"territory '{territory.name}' names unknown team '{territory.team}'"
                )
            for region in territory.regions:
                if region not in self.regions:
                    raise ConfigProblem("territories", f"territory '{territory.name}': unknown region '{region}'")
        if self.default_team is not None and self.default_team not in team_ids:
            raise ConfigProblem("default_team", f"unknown team '{self.default_team}'")

    def owner(self, owner_id: str) -> Owner | None:
        return next((o for o in self.owners if o.id == owner_id), None)

    def team(self, team_id: str) -> Team | None:
        return next((t for t in self.teams if t.id == team_id), None)


@dataclass(frozen=True, slots=True)
class Sla:
    """How long an owner has, and what happens after."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    accept_within_hours: Annotated[float, Ge(0.1), Le(24 * 30)] = 4
    """Remind the owner when the hand-off is not accepted within this many hours."""
    escalate_after_hours: Annotated[float, Ge(0.1), Le(24 * 60)] = 8
    """Escalate to the team's ``escalate_to`` when still not accepted after this many hours."""
    recycle_after_days: Annotated[float, Ge(0.1), Le(365)] = 14
    """Recycle the lead into nurture after this many days without sales action."""

    def __post_init__(self) -> None:
        if self.escalate_after_hours <= self.accept_within_hours:
            raise ConfigProblem("escalate_after_hours", "must be after accept_within_hours")
        if self.recycle_after_days * 24 <= self.escalate_after_hours:
            raise ConfigProblem("recycle_after_days", "must be after escalate_after_hours")


@dataclass(frozen=True, slots=True)
class Retry:
    """Delivery retries: exponential backoff with jitter until ``give_up_after_hours``."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    initial_seconds: Annotated[float, Ge(1), Le(3600)] = 10
    """Delay after the first failed attempt (before jitter)."""
    multiplier: Annotated[float, Ge(1.1), Le(10)] = 2
    """Each further delay is this many times the previous one."""
    max_delay_seconds: Annotated[float, Ge(10), Le(43_200)] = 4 * 3600
    """Longest delay between two attempts (SQS visibility allows at most 12 hours)."""
    give_up_after_hours: Annotated[float, Ge(1), Le(24 * 13)] = 26
    """Stop retrying (DLQ, replayable) this long after the first attempt: at least 24 hours by default."""


@dataclass(frozen=True, slots=True)
class Destination:
    """Where hand-offs are sent: a Standard Webhooks endpoint, HubSpot or Salesforce."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    name: str
    """Destination id (a-z, 0-9, - and _): part of every webhook-id and of the delivery state."""
    type: Literal["webhook", "hubspot", "salesforce"]
    """Kind of destination."""
    url: str | None = None
    """webhook: the endpoint (https); hubspot: API base (default https://api.hubapi.com); salesforce: instance URL."""
    enabled: bool = True
    """A disabled destination receives nothing (a 410 answer disables it at run time, too)."""
    timeout_seconds: Annotated[float, Ge(1), Le(30)] = 10
    """Connect + read timeout of one attempt."""
    allow_private_network: bool = False
    """Allow private, loopback and link-local addresses (a destination inside your VPC). Metadata addresses never."""
    local_fake_crm: bool = False
    """Under `leadflow dev`, send to the dev stack's fake CRM instead of ``url``."""
    property_mapping: dict[str, str] = field(default_factory=dict)
    """hubspot / salesforce: CRM property or field name -> payload value (one of the names in the README)."""
    token_url: str | None = None
    """salesforce: OAuth2 token endpoint (default <url>/services/oauth2/token)."""
    auth: Literal["client_credentials", "jwt_bearer"] = "client_credentials"
    """salesforce: OAuth2 flow (jwt_bearer signs an assertion with salesforce_private_key for salesforce_username)."""
    audience: str = "https://login.salesforce.com"
    """salesforce jwt_bearer: the assertion's aud (https://test.salesforce.com for a sandbox)."""
    external_id_field: str = "Leadflow_Id__c"
    """salesforce: the Lead external id field the upsert keys on (so a retry never creates a duplicate)."""
    api_version: str = "v60.0"
    """salesforce: REST API version."""

    def __post_init__(self) -> None:
        _check_name(self.name, "name")
        if self.type == "webhook" and not self.url and not self.local_fake_crm:
            raise ConfigProblem("url", "a webhook destination needs a url")
        if self.type == "salesforce" and not self.url:
            raise ConfigProblem("url", "a salesforce destination needs its instance url")
        if self.url and not re.match(r"^https?://[^\s/]+(/\S*)?$", self.url):
            raise ConfigProblem("url", f"'{self.url}' is not an http(s) URL")
        for target, source in self.property_mapping.items():
            if source not in PAYLOAD_SOURCES:
                raise ConfigProblem("property_mapping", f"'{target}': unknown payload value '{source}'")
        if self.type == "salesforce" and not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", self.external_id_field):
            raise ConfigProblem("external_id_field", "must be a Salesforce field API name")


@dataclass(frozen=True, slots=True)
class HandoffConfig:
    """handoff.yaml: the sales hand-off of a workspace."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    enabled: bool = True
    """When false, no hand-off starts (requests are logged and dropped)."""
    trigger_stage: Literal["subscriber", "lead", "mql", "sql", "opportunity", "customer"] = "mql"
    """A lead reaching this lifecycle stage is handed off."""
    destinations: tuple[Destination, ...] = ()
    """Where each hand-off is delivered (each independently, with its own retries)."""
    assignment: Assignment = field(default_factory=Assignment)
    """Owners, teams, territories, named accounts."""
    sla: Sla = field(default_factory=Sla)
    """Reminders, escalation and recycling."""
    retry: Retry = field(default_factory=Retry)
    """Delivery retry schedule."""
    timeline_limit: Annotated[int, Ge(0), Le(100)] = 20
    """Recent activities in the payload."""
    top_reasons: Annotated[int, Ge(0), Le(20)] = 5
    """Score reasons per model in the payload."""

    def __post_init__(self) -> None:
        names = [d.name for d in self.destinations]
        if len(set(names)) != len(names):
            raise ConfigProblem("destinations", "destination names must be unique")

    def destination(self, name: str) -> Destination | None:
        return next((d for d in self.destinations if d.name == name), None)

    @classmethod
    def model_validate(cls, data: Any) -> HandoffConfig:
        return models.validate(cls, data if data is not None else {})

    @classmethod
    def from_trusted(cls, data: dict[str, Any]) -> HandoffConfig:
        """A compiled (already validated) config; validated again, cheaply, for the nested types."""
        return models.validate(cls, data)
