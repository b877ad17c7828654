"""The nurture items of the LeadsTable and their mapping to the domain's types (no AWS calls)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from leadflow.domain.nurture import Enrollment, SentEmail
from leadflow.domain.nurture.mail_log import MailLog, utc_iso

MAIL_SK = "MAIL"
DEFAULT_SHARDS = 16
DUE_INDEX = "GSI4"


def shard_of(lead_id: str, shards: int) -> int:
    return int(hashlib.sha256(lead_id.encode()).hexdigest()[:8], 16) % shards


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def enrollment_item(enrollment: Enrollment, shards: int, rev: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "PK": f"LEAD#{enrollment.lead_id}",
        "SK": f"ENR#{enrollment.sequence_id}",
        "kind": "enrollment",
        "lead_id": enrollment.lead_id,
        "sequence_id": enrollment.sequence_id,
        "version": enrollment.version,
        "entry": enrollment.entry,
        "step_id": enrollment.step_id,
        "status": enrollment.status,
        "entered_at": utc_iso(enrollment.entered_at),
        "step_started_at": utc_iso(enrollment.step_started_at),
        "emails": [
            {
                "step_id": e.step_id,
                "message_id": e.message_id,
                "sent_at": utc_iso(e.sent_at),
                "opened": e.opened,
                "clicked": e.clicked,
                "link_tags": list(e.link_tags),
            }
            for e in enrollment.emails
        ],
        "rev": rev,
    }
    if enrollment.exit_reason:
        item["exit_reason"] = enrollment.exit_reason
    if enrollment.ended_at:
        item["ended_at"] = utc_iso(enrollment.ended_at)
    if enrollment.status == "active" and enrollment.due_at is not None:
        due = utc_iso(enrollment.due_at)
        item["due_at"] = due
        item["GSI4PK"] = f"DUE#{shard_of(enrollment.lead_id, shards)}"
        item["GSI4SK"] = f"{due}#{enrollment.lead_id}#{enrollment.sequence_id}"
    return item


def enrollment_from(item: dict[str, Any]) -> tuple[Enrollment, int]:
    enrollment = Enrollment(
        lead_id=item["lead_id"],
        sequence_id=item["sequence_id"],
        version=int(item["version"]),
        entry=int(item["entry"]),
        step_id=item["step_id"],
        status=item["status"],
        entered_at=datetime.fromisoformat(item["entered_at"]),
        step_started_at=datetime.fromisoformat(item["step_started_at"]),
        due_at=_dt(item.get("due_at")),
        emails=tuple(
            SentEmail(
                step_id=e["step_id"],
                message_id=e["message_id"],
                sent_at=datetime.fromisoformat(e["sent_at"]),
                opened=bool(e.get("opened")),
                clicked=bool(e.get("clicked")),
                link_tags=tuple(e.get("link_tags") or ()),
            )
            for e in item.get("emails") or ()
        ),
        exit_reason=item.get("exit_reason"),
        ended_at=_dt(item.get("ended_at")),
    )
    return enrollment, int(item.get("rev", 0))


def mail_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": MAIL_SK}


def enrollment_key(lead_id: str, sequence_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": f"ENR#{sequence_id}"}


def mail_item(lead_id: str, log: MailLog) -> dict[str, Any]:
    """The mail log's item (``log.version`` is the version it is written as)."""
    item: dict[str, Any] = {**mail_key(lead_id), "kind": "mail", "v": log.version, "sends": list(log.sends)}
    if log.held:
        item["held"] = log.held
    return item
