"""The hand-off SLA, pure: when to remind the owner, escalate or recycle a hand-off nobody acts
on, who an escalation goes to, and the email a rep gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from leadflow.domain.definitions.handoff import HandoffConfig, Owner, Sla
from leadflow.domain.handoff import AWAITING_ACCEPTANCE, CLOSED, IN_PROGRESS

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
