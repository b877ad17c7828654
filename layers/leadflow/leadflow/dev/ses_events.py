"""SES event publishing for the local stack: the ``Send`` event SES publishes for every message it takes.

moto's SESv2 keeps what ``SendEmail`` sends but publishes no events. In AWS, the configuration
set publishes ``Send`` to the account's default event bus as SES takes a message (an ``aws.ses``
event, detail-type ``Email Sent``, the record in ``detail``), and the delivery policy
relies on it: an email whose ``SendEmail`` failed ambiguously (a 5xx, a lost answer) is sent
again only if no Send event confirms it (``adapters.ses``). So the local stack publishes the
same event, shaped as SES's own (``../shared/external/ses/awsdocs_eventpublishing_Send.json``),
for every message moto takes with a configuration set, also when a fault injected "after"
answers the caller with an error. Events that depend on the recipient's server (Delivery,
Bounce, Complaint) are not invented.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.parser import HeaderParser
from typing import Any


def send_event(request: dict[str, Any], ses_message_id: str, now: datetime) -> dict[str, Any] | None:
    """The Send event SES publishes for a raw ``SendEmail`` request it took (None: not a raw send)."""
    raw = ((request.get("Content") or {}).get("Raw") or {}).get("Data")
    if not raw:
        return None
    headers = HeaderParser().parsestr(base64.b64decode(raw).decode("utf-8", "replace"))
    destination = (request.get("Destination") or {}).get("ToAddresses") or []
    source = str(headers.get("From") or request.get("FromEmailAddress") or "")
    tags = {str(t["Name"]): [str(t["Value"])] for t in request.get("EmailTags") or []}
    tags["ses:configuration-set"] = [str(request.get("ConfigurationSetName"))]
    return {
        "eventType": "Send",
        "mail": {
            "timestamp": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "source": source,
            "messageId": ses_message_id,
            "destination": list(destination),
            "headersTruncated": False,
            "headers": [{"name": name, "value": str(value)} for name, value in headers.items()],
            "commonHeaders": {"from": [source], "to": list(destination), "subject": str(headers.get("Subject") or "")},
            "tags": tags,
        },
        "send": {},
    }


def install(account_id: str, region: str, now: Callable[[], datetime] | None = None) -> None:
    """Put a Send event on the default event bus for every raw message moto's SESv2 takes with a configuration set,
    stamped with ``now()`` (the local stack's clock, which its functions read: real time by default)."""
    from moto.events.models import events_backends
    from moto.sesv2.responses import SESV2Response

    clock = now or (lambda: datetime.now(UTC))
    original = SESV2Response.send_email

    def send_email(self: Any) -> str:
        answer = original(self)
        request = json.loads(self.body)
        if request.get("ConfigurationSetName"):
            event = send_event(request, json.loads(answer)["MessageId"], clock())
            if event is not None:
                entry = {"Source": "aws.ses", "DetailType": "Email Sent", "Detail": json.dumps(event)}
                events_backends[account_id][region].put_events([entry])
        return answer

    SESV2Response.send_email = send_email  # type: ignore[method-assign]
