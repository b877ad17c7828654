"""The hand-off payload, pure: what is sent to sales (``build_payload``), its published JSON
schema (``PAYLOAD_SCHEMA``), and the named values CRM property mappings read from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadflow.domain.handoff import TRIGGERS

PAYLOAD_VERSION = 1
PAYLOAD_TYPE = "lead.handoff"
SCHEMA_ID = "https://leadflow.dev/schemas/handoff-payload.v1.json"


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
