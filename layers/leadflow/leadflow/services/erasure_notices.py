"""Telling the CRM that a lead was erased: one signed ``lead.erased`` webhook per webhook destination.

The erasure queues the notices on the hand-off queue (``kind: erased``) before it deletes the
hand-off records, so the notice carries the hand-off ids and CRM record ids the receiver
filed the lead under (never the address or any other personal data). Delivery is the
hand-off's: Standard Webhooks signature, ``webhook-id`` ``msg_<erasure id>_<destination>`` (the
same on every retry), the same SSRF checks and answer handling; retries back off on the
message's visibility (attempts: SQS's receive count; the schedule starts at the erasure), then
the DLQ.
HubSpot and Salesforce get no call: the erasure's answer and audit record list their record
ids, and deleting those is the operator's step (README, GDPR).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadflow.domain.definitions.handoff import HandoffConfig
from leadflow.domain.handoff_delivery import effective_url, next_attempt_at, visibility_seconds
from leadflow.ports.clock import Clock
from leadflow.ports.handoff import Delivery, DeliverySender
from leadflow.services.handoff import Decision


def deliver_erasure_notice(  # noqa: PLR0917 - one attempt's inputs
    message: dict[str, Any],
    attempts: int,
    config: HandoffConfig,
    sender: DeliverySender,
    clock: Clock,
    local_mode: bool = False,
    local_base_url: str = "",
    jitter: Callable[[], float] = random.random,
) -> Decision:
    """Attempt number ``attempts`` to send a ``lead.erased`` notice, and what to do with its message."""
    now = clock.now()
    destination = config.destination(str(message["destination"]))
    if destination is None or not destination.enabled or destination.type != "webhook":
        return Decision("done", reason="the destination is gone or takes no webhooks")
    payload = dict(message["payload"])
    first = datetime.fromisoformat(str(payload["erased_at"]))
    url, allow_private = effective_url(destination, local_mode, local_base_url)
    delivery = Delivery(
        destination,
        url,
        allow_private,
        {**payload, "sent_at": now.isoformat()},
        str(message["erasure_id"]),
        str(payload["lead_id"]),
    )
    outcome = sender.send(delivery, now)
    if outcome.kind == "delivered":
        return Decision("done")
    if outcome.kind == "retry":
        due = next_attempt_at(config.retry, attempts, first, now, jitter(), outcome.retry_after_seconds)
        if due is not None:
            return Decision("retry", visibility_seconds(due, now), outcome.error)
    return Decision("dead_letter", reason=outcome.error or "refused")
