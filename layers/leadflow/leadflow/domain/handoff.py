"""Sales hand-off, pure: the record and its statuses, assignment, the payload, SSRF checks,
delivery outcomes and the retry schedule, the SLA.

No boto3, no environment, no clock reads: the service passes ``now``, resolved addresses,
round-robin tickets and random fractions in, so every rule here is testable as is.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from leadflow.domain.definitions.handoff import (
    DAYS,
    Assignment,
    Destination,
    HandoffConfig,
    Owner,
    Retry,
    Sla,
    Team,
    WorkingHours,
)
from leadflow.domain.errors import LeadflowError

PAYLOAD_VERSION = 1
PAYLOAD_TYPE = "lead.handoff"
SCHEMA_ID = "https://leadflow.dev/schemas/handoff-payload.v1.json"

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
SQS_MAX_VISIBILITY_SECONDS = 43_200


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


# ---------------------------------------------------------------------------- payload


def _touch(touch: dict[str, Any] | None) -> dict[str, Any] | None:
    if not touch:
        return None
    keys = ("channel", "form_id", "at", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
    result = {k: touch[k] for k in keys if touch.get(k) not in (None, "")}
    for key in ("page_url", "referrer", "ref"):
        if touch.get(key):
            result[key] = touch[key]
    return result


PROFILE_FIELDS = ("email", "first_name", "last_name", "company", "title", "phone", "country")


def build_payload(  # noqa: PLR0917 - what the payload is made of
    record: dict[str, Any],
    profile: dict[str, Any],
    explanation: dict[str, Any],
    timeline: list[dict[str, Any]],
    consent: dict[str, Any],
    now: datetime,
    top_reasons: int = 5,
) -> dict[str, Any]:
    """The versioned hand-off payload (``PAYLOAD_SCHEMA``): what sales needs to act, nothing more.

    Args:
        record: the hand-off record.
        profile: the lead's profile item.
        explanation: ``ScoringService.explain_lead`` of the lead (scores, reasons, grade, stage).
        timeline: recent activities, newest first.
        consent: purpose -> latest state (``consent_<purpose>`` of the profile).
        now: when the payload is built.
        top_reasons: reasons kept per model.
    """
    custom = {k[3:]: v for k, v in sorted(profile.items()) if k.startswith("cf_") and isinstance(v, str | int | float)}
    scores = {
        name: {"score": model["score"], "reasons": model["reasons"][:top_reasons]}
        for name, model in sorted((explanation.get("models") or {}).items())
    }
    grade = explanation.get("grade") or {}
    owner = record.get("owner")
    return {
        "type": PAYLOAD_TYPE,
        "schema_version": PAYLOAD_VERSION,
        "handoff_id": record["handoff_id"],
        "created_at": record["created_at"],
        "sent_at": now.isoformat(),
        "trigger": record["trigger"],
        "reason": record.get("reason", ""),
        "lead": {
            "id": record["lead_id"],
            **{k: str(profile[k]) for k in PROFILE_FIELDS if profile.get(k)},
            "custom_fields": custom,
            "created_at": profile.get("created_at"),
        },
        "attribution": {
            "first_touch": _touch(profile.get("first_touch")),
            "last_touch": _touch(profile.get("last_touch")),
            "referred_by": profile.get("referred_by"),
        },
        "consent": {purpose: dict(state) if isinstance(state, dict) else state for purpose, state in consent.items()},
        "stage": explanation.get("stage") or profile.get("stage") or "lead",
        "grade": {"letter": grade.get("letter", ""), "points": grade.get("points", 0)},
        "scores": scores,
        "mql_model": explanation.get("mql_model"),
        "timeline": [
            {
                "type": str(a.get("type", "")),
                "at": str(a.get("at", "")),
                **{k: a[k] for k in ("form_id", "url", "title", "asset", "campaign", "link_tag") if a.get(k)},
            }
            for a in timeline
        ],
        "owner": (
            {"id": owner["id"], "name": owner["name"], "email": owner["email"], "team": owner.get("team", "")}
            if owner
            else None
        ),
        "queue": record.get("queue"),
    }


def payload_value(payload: dict[str, Any], source: str) -> Any:
    """One named value of a payload, for CRM property mappings (``config.handoff.PAYLOAD_SOURCES``)."""
    lead, owner = payload["lead"], payload.get("owner") or {}
    model = payload.get("mql_model") or next(iter(payload["scores"]), None)
    reasons = payload["scores"].get(model, {}).get("reasons", []) if model else []
    values: dict[str, Any] = {
        **{k: lead.get(k) for k in ("email", "first_name", "last_name", "company", "title", "phone", "country")},
        "stage": payload["stage"],
        "grade": payload["grade"]["letter"],
        "score": payload["scores"].get(model, {}).get("score") if model else None,
        "lead_id": lead["id"],
        "handoff_id": payload["handoff_id"],
        "owner_email": owner.get("email"),
        "owner_id": owner.get("id"),
        "reason": payload.get("reason"),
        "top_reasons": "; ".join(r.get("description") or r.get("rule_id", "") for r in reasons),
        "first_touch_source": (payload["attribution"]["first_touch"] or {}).get("utm_source"),
        "last_touch_source": (payload["attribution"]["last_touch"] or {}).get("utm_source"),
        "referred_by": payload["attribution"].get("referred_by"),
    }
    return values.get(source)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_TOUCH = {
    "type": "object",
    "properties": {
        "channel": {"type": "string"},
        "form_id": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        **{f"utm_{k}": {"type": "string"} for k in ("source", "medium", "campaign", "term", "content")},
        "page_url": {"type": "string"},
        "referrer": {"type": "string"},
        "ref": {"type": "string"},
    },
    "additionalProperties": False,
}
_REASON = {
    "type": "object",
    "required": ["rule_id", "points", "value"],
    "properties": {
        "rule_id": {"type": "string"},
        "description": {"type": "string"},
        "activities": {"type": "integer"},
        "points": {"type": "number"},
        "value": {"type": "number"},
        "last_at": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": False,
}
PAYLOAD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "leadflow hand-off payload, version 1",
    "description": "The body of every hand-off webhook (and the source of CRM property mappings).",
    "type": "object",
    "required": [
        "type",
        "schema_version",
        "handoff_id",
        "created_at",
        "sent_at",
        "trigger",
        "lead",
        "attribution",
        "consent",
        "stage",
        "grade",
        "scores",
        "timeline",
        "owner",
    ],
    "properties": {
        "type": {"const": PAYLOAD_TYPE},
        "schema_version": {"const": PAYLOAD_VERSION},
        "handoff_id": {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$"},
        "created_at": {"type": "string", "format": "date-time"},
        "sent_at": {"type": "string", "format": "date-time"},
        "trigger": {"enum": list(TRIGGERS)},
        "reason": {"type": "string"},
        "lead": {
            "type": "object",
            "required": ["id", "email", "custom_fields"],
            "properties": {
                "id": {"type": "string"},
                **{k: {"type": "string"} for k in PROFILE_FIELDS},
                "custom_fields": {"type": "object", "additionalProperties": {"type": ["string", "number"]}},
                "created_at": _nullable({"type": "string", "format": "date-time"}),
            },
            "additionalProperties": False,
        },
        "attribution": {
            "type": "object",
            "required": ["first_touch", "last_touch", "referred_by"],
            "properties": {
                "first_touch": _nullable(_TOUCH),
                "last_touch": _nullable(_TOUCH),
                "referred_by": _nullable({"type": "string"}),
            },
            "additionalProperties": False,
        },
        "consent": {"type": "object", "additionalProperties": {"type": ["object", "boolean", "string"]}},
        "stage": {"type": "string"},
        "grade": {
            "type": "object",
            "required": ["letter", "points"],
            "properties": {"letter": {"type": "string"}, "points": {"type": "number"}},
            "additionalProperties": False,
        },
        "scores": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["score", "reasons"],
                "properties": {"score": {"type": "number"}, "reasons": {"type": "array", "items": _REASON}},
                "additionalProperties": False,
            },
        },
        "mql_model": _nullable({"type": "string"}),
        "timeline": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "at"],
                "properties": {
                    "type": {"type": "string"},
                    "at": {"type": "string"},
                    "form_id": {"type": "string"},
                    "url": {"type": "string"},
                    "title": {"type": "string"},
                    "asset": {"type": "string"},
                    "campaign": {"type": "string"},
                    "link_tag": {"type": "string"},
                },
                "additionalProperties": False,
            },
        },
        "owner": _nullable(
            {
                "type": "object",
                "required": ["id", "name", "email", "team"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "email": {"type": "string"},
                    "team": {"type": "string"},
                },
                "additionalProperties": False,
            }
        ),
        "queue": _nullable({"type": "string"}),
    },
    "additionalProperties": False,
}


# ---------------------------------------------------------------------------- SSRF


METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str


def parse_target(url: str) -> Target:
    """Scheme, host, port and path of a destination URL.

    Raises:
        DestinationRefused: not an absolute http(s) URL, or it carries credentials.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise DestinationRefused(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused("only absolute http(s) URLs")
    if parts.username or parts.password:
        raise DestinationRefused("credentials in the URL are not allowed")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


def check_address(address: str, allow_private: bool) -> None:
    """Refuse an address a destination may not resolve to.

    Raises:
        DestinationRefused: a metadata address (always), or a private, loopback, link-local,
            reserved, multicast or unspecified one unless ``allow_private``.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise DestinationRefused(f"{address!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        raise DestinationRefused(f"{ip} is a cloud metadata address")
    if ip.is_unspecified or ip.is_multicast:
        raise DestinationRefused(f"{ip} is not a unicast address")
    internal = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or not ip.is_global
    if internal and not allow_private:
        raise DestinationRefused(f"{ip} is a private, loopback or link-local address")


def check_destination(url: str, addresses: list[str], local_mode: bool, allow_private: bool) -> Target:
    """The checked target of a delivery: https (http only under ``leadflow dev``), every resolved address allowed.

    Args:
        url: the destination URL.
        addresses: every address the host resolved to (all are checked: the connection
            then goes to the first, never to a fresh lookup).
        local_mode: running under ``leadflow dev`` (plain http allowed).
        allow_private: the destination explicitly allows private addresses.

    Raises:
        DestinationRefused: naming the rule that refused it.
    """
    target = parse_target(url)
    if target.scheme != "https" and not local_mode:
        raise DestinationRefused("only https destinations outside local mode")
    if not addresses:
        raise DestinationRefused(f"{target.host} does not resolve")
    for address in addresses:
        check_address(address, allow_private)
    return target


# ---------------------------------------------------------------------------- delivery


OutcomeKind = Literal["delivered", "retry", "final", "disable"]


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to."""

    kind: OutcomeKind
    status_code: int | None = None
    error: str = ""
    retry_after_seconds: float | None = None
    external_id: str | None = None


def retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - now).total_seconds(), 0.0)


def classify(status: int, headers: dict[str, str], now: datetime) -> Outcome:
    """A destination's HTTP answer as an outcome.

    2xx delivered; 410 disables the destination; 429 retries after ``Retry-After``; 3xx is a
    failure that is never followed (retried: the endpoint may be fixed); 408, 425 and 5xx
    retry; any other 4xx is final (the request itself is wrong, retrying cannot help).
    """
    if 200 <= status < 300:
        return Outcome("delivered", status)
    if status == 410:
        return Outcome("disable", status, "410 Gone: the destination asked to be disabled")
    if status == 429:
        return Outcome("retry", status, "429 Too Many Requests", retry_after(headers.get("retry-after"), now))
    if 300 <= status < 400:
        return Outcome("retry", status, f"{status} redirect (not followed)")
    if status in (408, 425) or status >= 500:
        return Outcome("retry", status, f"{status} from the destination")
    return Outcome("final", status, f"{status} from the destination")


def backoff_seconds(policy: Retry, attempts: int, random_fraction: float) -> float:
    """Delay after the ``attempts``-th failed attempt: exponential, capped, with "equal jitter".

    Half the nominal delay is fixed and half random, so retries of many hand-offs that
    failed together spread out while no retry comes sooner than half its nominal delay.
    """
    exponent = min(max(attempts - 1, 0), 60)
    nominal = min(policy.initial_seconds * policy.multiplier**exponent, policy.max_delay_seconds)
    return nominal / 2 + nominal / 2 * min(max(random_fraction, 0.0), 1.0)


def next_attempt_at(  # noqa: PLR0917 - each is one input of the schedule
    policy: Retry,
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    random_fraction: float,
    retry_after_seconds: float | None = None,
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None once ``give_up_after_hours`` is reached.

    A ``Retry-After`` wins over the schedule when it asks for longer (never past the give-up time).
    """
    give_up = first_attempt_at + timedelta(hours=policy.give_up_after_hours)
    if now >= give_up:
        return None
    delay = backoff_seconds(policy, attempts, random_fraction)
    if retry_after_seconds is not None:
        delay = max(delay, min(retry_after_seconds, SQS_MAX_VISIBILITY_SECONDS))
    return min(now + timedelta(seconds=delay), give_up)


def schedule(policy: Retry, random_fraction: float = 1.0) -> list[float]:
    """The whole retry schedule (seconds after the first attempt of each retry), for docs and tests."""
    at, attempts, times = 0.0, 0, []
    while True:
        attempts += 1
        at += backoff_seconds(policy, attempts, random_fraction)
        if at >= policy.give_up_after_hours * 3600:
            times.append(policy.give_up_after_hours * 3600)
            return times
        times.append(at)


def visibility_seconds(due: datetime, now: datetime) -> int:
    """SQS visibility timeout that brings a message back at ``due`` (at most 12 hours: longer waits wait again)."""
    return int(min(max(math.ceil((due - now).total_seconds()), 0), SQS_MAX_VISIBILITY_SECONDS))


# ---------------------------------------------------------------------------- SLA


SlaAction = Literal["remind", "escalate", "recycle"]


@dataclass(frozen=True)
class SlaStep:
    action: SlaAction | None
    next_due: datetime | None  # None: nothing more to watch (closed)


def _last_action_at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["history"][-1]["at"])


def sla_step(record: dict[str, Any], sla: Sla, now: datetime) -> SlaStep:
    """What the SLA asks for now, and when to look again.

    Not accepted: remind at ``accept_within_hours``, escalate at ``escalate_after_hours``
    (each once). Accepted or in progress: recycle ``recycle_after_days`` after the last
    action. Not accepted at all: recycle ``recycle_after_days`` after creation.
    """
    status = record["status"]
    if status in CLOSED:
        return SlaStep(None, None)
    done = {h["status"] for h in record.get("sla", [])}
    created = datetime.fromisoformat(record["created_at"])
    recycle_from = _last_action_at(record) if status in IN_PROGRESS else created
    recycle_at = recycle_from + timedelta(days=sla.recycle_after_days)
    if now >= recycle_at:
        return SlaStep("recycle", None)
    if status in AWAITING_ACCEPTANCE:
        remind_at = created + timedelta(hours=sla.accept_within_hours)
        escalate_at = created + timedelta(hours=sla.escalate_after_hours)
        if "remind" not in done and now >= remind_at:
            return SlaStep("remind", escalate_at)
        if "escalate" not in done and now >= escalate_at:
            return SlaStep("escalate", recycle_at)
        pending = [t for t, name in ((remind_at, "remind"), (escalate_at, "escalate")) if name not in done]
        return SlaStep(None, min([*pending, recycle_at]))
    return SlaStep(None, recycle_at)


def jwt_bearer_claims(client_id: str, username: str, audience: str, now: datetime) -> dict[str, Any]:
    """Claims of a Salesforce OAuth 2.0 JWT bearer assertion: the connected app, the user, 3 minutes."""
    return {"iss": client_id, "sub": username, "aud": audience, "exp": int(now.timestamp()) + 180}


def escalation_owner(config: HandoffConfig, record: dict[str, Any]) -> Owner | None:
    team = config.assignment.team(str((record.get("owner") or {}).get("team") or ""))
    return config.assignment.owner(team.escalate_to) if team and team.escalate_to else None


@dataclass(frozen=True)
class SlaNotice:
    """The email an SLA action sends a sales rep (plain text, and the same as minimal HTML)."""

    to: str
    subject: str
    text: str
    html: str


def sla_notice(action: str, record: dict[str, Any], recipient: Owner, detail: str) -> SlaNotice:
    """The reminder (to the owner) or escalation (to the team's ``escalate_to``) of a hand-off.

    It names the lead by name and company only (the rep opens the CRM or the API for the rest).
    """
    from html import escape

    lead = (record.get("payload") or {}).get("lead") or {}
    who = " ".join(str(lead.get(k, "")) for k in ("first_name", "last_name")).strip() or "a lead"
    company = f" ({lead['company']})" if lead.get("company") else ""
    owner = (record.get("owner") or {}).get("name") or "nobody yet"
    verb = "Reminder: please accept" if action == "remind" else "Escalated: nobody accepted"
    subject = f"{verb} the hand-off of {who}{company}"
    lines = [
        f"Hello {recipient.name},",
        "",
        f"{subject}.",
        f"Owner: {owner}. Handed off {record['created_at']} ({record.get('reason') or record['trigger']}).",
        f"Status: {record['status']}. {detail}.",
        f"Hand-off {record['handoff_id']}, lead {record['lead_id']}.",
    ]
    html = "".join(f"<p>{escape(line)}</p>" for line in lines if line)
    return SlaNotice(recipient.email, subject, "\n".join(lines) + "\n", html)


HUBSPOT_API = "https://api.hubapi.com"


def effective_url(destination: Destination, local_mode: bool, local_base_url: str) -> tuple[str, bool]:
    """The URL a destination is sent to, and whether private addresses are allowed for it.

    Under ``leadflow dev`` a destination marked ``local_fake_crm`` goes to the dev stack's own
    fake CRM (on loopback, which is allowed for it alone).
    """
    if local_mode and destination.local_fake_crm and local_base_url:
        suffix = {"webhook": "/_dev/crm/hook", "hubspot": "/_dev/crm/hubspot", "salesforce": "/_dev/crm/salesforce"}
        return local_base_url.rstrip("/") + suffix[destination.type], True
    if destination.type == "hubspot":
        return destination.url or HUBSPOT_API, destination.allow_private_network
    return str(destination.url), destination.allow_private_network
