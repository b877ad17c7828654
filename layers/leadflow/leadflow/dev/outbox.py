"""The emails moto's SES kept, in the shape of the public contract's ``GET /_dev/outbox``."""

from __future__ import annotations

from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any


def _from_raw(raw: str) -> dict[str, Any]:
    message = message_from_string(raw, policy=policy.default)
    if not isinstance(message, EmailMessage):  # policy.default always builds one
        raise TypeError("the email package did not build an EmailMessage")
    date = message.get("Date")
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    recipients = [a.strip() for field in ("To", "Cc") for a in str(message.get(field, "")).split(",") if a.strip()]
    return {
        "to": recipients,
        "from": str(message.get("From", "")).strip(),
        "subject": str(message.get("Subject", "")).strip(),  # a folded header keeps its fold's space
        "html": html_part.get_content() if html_part else "",
        "text": text_part.get_content() if text_part else "",
        "headers": {k: str(v) for k, v in message.items()},
        # moto keeps no send time for raw messages: the Date header the sender set (on its clock).
        "sent_at": parsedate_to_datetime(str(date)).isoformat() if date else None,
    }


def sent_emails(account_id: str, region: str) -> list[dict[str, Any]]:
    """Every email SES accepted, oldest first."""
    from moto.ses.models import ses_backends

    sent = []
    for message in ses_backends[account_id][region].sent_messages:
        sent_at = getattr(message, "sent_at", None)
        if hasattr(message, "raw_data"):
            entry = _from_raw(message.raw_data)
            if sent_at is None and entry["sent_at"]:
                sent.append(entry)
                continue
        else:
            destinations = message.destinations or {}
            body = message.body if isinstance(getattr(message, "body", None), str) else ""
            entry = {
                "to": list(destinations.get("ToAddresses", []))
                if isinstance(destinations, dict)
                else list(destinations),
                "from": message.source,
                "subject": getattr(message, "subject", ""),
                "html": body if body.lstrip().startswith("<") else "",
                "text": "" if body.lstrip().startswith("<") else body,
                "headers": {},
            }
        entry["sent_at"] = sent_at.isoformat() if sent_at else None
        sent.append(entry)
    return sent
