"""CRM hand-off: SQS (HandoffQueue) -> this.

Two kinds of message arrive on the queue. Bus events (``lead.stage_changed`` from scoring,
``lead.handoff_requested`` from a nurture ``handoff`` action) start a hand-off
(``HandoffService.on_event``: assign, build the payload, queue one delivery per destination).
Delivery messages make one attempt to one destination (``HandoffService.deliver``): a retry
sets the message's visibility to the backoff delay and reports it as a batch item failure,
so SQS brings it back then; a final failure goes to the HandoffDLQ for ``leadflow replay``.
The records of a batch are sent in parallel: a slow destination does not hold up the others.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.services.handoff_wiring import handoff_queue, handoff_service

logger = Logger()
metrics = Metrics()
PARALLEL_DELIVERIES = 10


def process(record: dict[str, Any]) -> bool:
    """Handle one SQS record; False when it must come back (a retry or an error)."""
    body = json.loads(record["body"])
    service = handoff_service()
    if body.get("kind") != "deliver":
        started = service.on_event(body)
        if started is not None:
            logger.info("hand-off", lead_id=started["lead_id"], handoff_id=started["handoff_id"])
        return True
    decision = service.deliver(body)
    log = {"handoff_id": body["handoff_id"], "destination": body["destination"], "reason": decision.reason}
    if decision.action == "retry":
        handoff_queue().retry_later(record["receiptHandle"], decision.delay_seconds)
        logger.info("delivery retried", delay_seconds=decision.delay_seconds, **log)
        metrics.add_metric(name="HandoffRetries", unit=MetricUnit.Count, value=1)
        return False
    if decision.action == "dead_letter":
        handoff_queue().dead_letter(record["body"], decision.reason)
        logger.warning("delivery failed for good", **log)
        metrics.add_metric(name="HandoffFailures", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="HandoffDeliveries", unit=MetricUnit.Count, value=1)
    return True


def safe_process(record: dict[str, Any]) -> bool:
    try:
        return process(record)
    except Exception:
        logger.exception("hand-off message failed", message_id=record.get("messageId"))
        return False


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    with ThreadPoolExecutor(max_workers=PARALLEL_DELIVERIES) as pool:
        results = list(pool.map(safe_process, records))
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r, ok in zip(records, results, strict=True) if not ok
        ]
    }
