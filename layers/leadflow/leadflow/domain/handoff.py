"""Sales hand-off, pure: the record, its statuses and transitions, the hand-off errors, and
who a lead is assigned to (named account, territory, round-robin, fallback queue).

The payload is in ``handoff_payload``, delivery (SSRF checks, answers, retries) in
``handoff_delivery``, the SLA in ``handoff_sla``. No boto3, no environment, no clock reads:
the service passes ``now`` and round-robin tickets in, so every rule here is testable as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from leadflow.domain.definitions.handoff import DAYS, Assignment, Owner, Team, WorkingHours
from leadflow.domain.errors import LeadflowError

# Statuses (docs/data-model.md). Outbound, sales feedback (written by the inbound side), recycled.
ASSIGNED, DELIVERING, DELIVERED, FAILED = "assigned", "delivering", "delivered", "failed"
ACCEPTED, REJECTED, OPPORTUNITY, WON, LOST = "accepted", "rejected", "opportunity", "won", "lost"
RECYCLED = "recycled"
STATUSES = (ASSIGNED, DELIVERING, DELIVERED, FAILED, ACCEPTED, REJECTED, OPPORTUNITY, WON, LOST, RECYCLED)
AWAITING_ACCEPTANCE = frozenset({ASSIGNED, DELIVERING, DELIVERED, FAILED})
IN_PROGRESS = frozenset({ACCEPTED, OPPORTUNITY})
OPEN = AWAITING_ACCEPTANCE | IN_PROGRESS
CLOSED = frozenset({REJECTED, WON, LOST, RECYCLED})
# Sales feedback is what the CRM says happened, so it may skip ahead (a rep who works a lead
# before our delivery is confirmed), reconsider a rejection, reopen a lost deal, or pick up a
# lead the SLA recycled. Only a won hand-off is final.
_FEEDBACK = frozenset({ACCEPTED, REJECTED, OPPORTUNITY, WON, LOST})
TRANSITIONS: dict[str, frozenset[str]] = {
    ASSIGNED: frozenset({DELIVERING, DELIVERED, FAILED, RECYCLED}) | _FEEDBACK,
    DELIVERING: frozenset({DELIVERED, FAILED, RECYCLED}) | _FEEDBACK,
    DELIVERED: frozenset({DELIVERING, RECYCLED}) | _FEEDBACK,
    FAILED: frozenset({DELIVERING, DELIVERED, RECYCLED}) | _FEEDBACK,
    ACCEPTED: frozenset({OPPORTUNITY, WON, LOST, REJECTED, RECYCLED}),
    OPPORTUNITY: frozenset({WON, LOST, RECYCLED}),
    WON: frozenset(),
    LOST: frozenset({OPPORTUNITY, WON, RECYCLED}),
    REJECTED: frozenset({ACCEPTED, OPPORTUNITY, WON, RECYCLED}),
    RECYCLED: frozenset({ACCEPTED, OPPORTUNITY, WON}),
}
TRIGGERS = ("stage", "sequence", "manual")


class HandoffError(LeadflowError):
    """Base of hand-off outcomes."""


class InvalidTransition(HandoffError):
    """The hand-off cannot move from its status to the one asked for (409)."""


class HandoffNotFound(HandoffError):
    """No such hand-off (404)."""


class HandoffDisabled(HandoffError):
    """handoff.yaml switches hand-offs off (409)."""


class DestinationRefused(HandoffError):
    """The destination URL may not be called (SSRF rules): final, nothing is sent."""


# ---------------------------------------------------------------------------- the record


def history_entry(status: str, at: datetime, by: str, detail: str = "") -> dict[str, str]:
    return {"status": status, "at": at.isoformat(), "by": by, "detail": detail}


def new_record(  # noqa: PLR0917 - the record's fields
    handoff_id: str,
    lead_id: str,
    trigger: str,
    reason: str,
    assignment: Route,
    destinations: list[str],
    now: datetime,
    by: str,
    trigger_event_id: str = "",
) -> dict[str, Any]:
    """A new hand-off in status ``assigned`` (owner absent when it sits in the fallback queue)."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    detail = f"{assignment.rule}: {assignment.owner.id}" if assignment.owner else f"queue {assignment.queue}"
    record: dict[str, Any] = {
        "handoff_id": handoff_id,
        "lead_id": lead_id,
        "status": ASSIGNED,
        "history": [history_entry(ASSIGNED, now, by, detail)],
        "trigger": trigger,
        "reason": reason,
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "assigned_by": assignment.rule,
        "destinations": {name: {"status": "pending", "attempts": 0} for name in destinations},
        "rev": 1,
    }
    if trigger_event_id:
        record["trigger_event_id"] = trigger_event_id
    if assignment.owner is not None:
        owner = assignment.owner
        record["owner"] = {"id": owner.id, "name": owner.name, "email": owner.email, "team": assignment.team or ""}
    else:
        record["queue"] = assignment.queue
    return record


def transition(record: dict[str, Any], status: str, at: datetime, by: str, detail: str = "") -> dict[str, Any]:
    """The record moved to ``status``, with a history entry (same status: unchanged).

    Raises:
        InvalidTransition: the move is not allowed from the current status.
    """
    current = record["status"]
    if status == current:
        return record
    if status not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"{current} -> {status}")
    return {
        **record,
        "status": status,
        "history": [*record["history"], history_entry(status, at, by, detail)],
        "updated_at": at.isoformat(),
    }


def delivery_status(destinations: dict[str, dict[str, Any]]) -> str:
    """The outbound status the destinations add up to: delivered once any got it, failed when all failed."""
    states = [d.get("status") for d in destinations.values()]
    if any(s == "delivered" for s in states):
        return DELIVERED
    if states and all(s == "failed" for s in states):
        return FAILED
    return DELIVERING


def webhook_id(handoff_id: str, destination: str) -> str:
    """The Standard Webhooks message id: the same for every retry of one hand-off to one destination."""
    return f"msg_{handoff_id}_{destination}"


# ---------------------------------------------------------------------------- assignment


@dataclass(frozen=True)
class Route:
    """Where a lead goes: an owner (named account), a team (round-robin), or the fallback queue."""

    rule: str  # named_account | territory:<name> | default_team | fallback
    owner: Owner | None = None
    team: str | None = None
    queue: str | None = None


def _field(profile: dict[str, Any], name: str) -> str:
    value = profile.get(name, profile.get(f"cf_{name}", ""))
    return str(value or "").strip()


def route(profile: dict[str, Any], config: Assignment) -> Route:
    """Which owner or team a lead belongs to: named account, then territory, then the default team."""
    domain = str(profile.get("account_domain") or profile.get("email_domain") or "").lower()
    if domain in config.named_accounts:
        owner = config.owner(config.named_accounts[domain])
        if owner is not None:
            return Route("named_account", owner=owner)
    country = _field(profile, "country").upper()
    industry = _field(profile, config.industry_field).lower()
    size = _field(profile, config.company_size_field)
    for territory in config.territories:
        region_countries = {c.upper() for r in territory.regions for c in config.regions.get(r, ())}
        checks = [
            not territory.countries or country in {c.upper() for c in territory.countries},
            not territory.regions or country in region_countries,
            not territory.industries or industry in {i.lower() for i in territory.industries},
            not territory.company_sizes or size in territory.company_sizes,
        ]
        if all(checks):
            return Route(f"territory:{territory.name}", team=territory.team)
    if config.default_team:
        return Route("default_team", team=config.default_team)
    return Route("fallback", queue=config.fallback_queue)


def hours_of(owner: Owner, team: Team | None) -> WorkingHours | None:
    return owner.working_hours or (team.working_hours if team else None)


def in_working_hours(hours: WorkingHours | None, now: datetime) -> bool:
    """True when ``now`` falls in the working hours (always, without hours)."""
    if hours is None:
        return True
    local = now.astimezone(ZoneInfo(hours.timezone))
    return DAYS[local.weekday()] in hours.days and hours.start <= local.strftime("%H:%M") < hours.end


def rotation(team: Team, ticket: int) -> list[str]:
    """The team's members in the order ticket ``ticket`` tries them: its own turn first, then the next ones.

    Tickets come from one atomic counter per team, so N concurrent assignments get N
    distinct tickets and, when everybody is available, spread exactly evenly.
    """
    members = list(team.members)
    start = (ticket - 1) % len(members)
    return members[start:] + members[:start]


def available(owner: Owner, team: Team | None, open_count: int, now: datetime) -> bool:
    """An owner takes a new lead when in working hours and under capacity."""
    return open_count < owner.capacity and in_working_hours(hours_of(owner, team), now)


def fallback(config: Assignment, rule: str) -> Route:
    return Route(f"{rule}->fallback", queue=config.fallback_queue)
