"""CRM hand-off: SQS (HandoffQueue) -> this.

Two kinds of message arrive on the queue. Bus events (``lead.stage_changed`` from scoring,
``lead.handoff_requested`` from a nurture ``handoff`` action) start a hand-off
(``HandoffService.on_event``: assign, build the payload, queue one delivery per destination).
Delivery messages make one attempt to one destination (``HandoffService.deliver``): a retry
sets the message's visibility to the backoff delay and reports it as a batch item failure,
so SQS brings it back then; a final failure goes to the HandoffDLQ for ``leadflow replay``.
Erasure notices (``kind: erased``, queued by a GDPR erasure) send one signed ``lead.erased``
webhook (``deliver_erasure_notice``), retried the same way.
The records of a batch are sent in parallel: a slow destination does not hold up the others.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.handoff import handoff_queue, handoff_service
from leadflow.services.erasure_notices import deliver_erasure_notice

logger = Logger()
metrics = Metrics()
PARALLEL_DELIVERIES = 10


METRIC_NAMES = {"started": "HandoffsStarted", "done": "HandoffDeliveries", "retry": "HandoffRetries"}


def process(record: dict[str, Any]) -> str:
    """Handle one SQS record; returns started / ignored / done / retry / dead_letter / error."""
    body = json.loads(record["body"])
    service = handoff_service()
    if body.get("kind") == "erased":
        return notice(record, body)
    if body.get("kind") != "deliver":
        started = service.on_event(body)
        if started is None:
            return "ignored"
        logger.info("hand-off", lead_id=started["lead_id"], handoff_id=started["handoff_id"])
        return "started"
    decision = service.deliver(body)
    log = {"handoff_id": body["handoff_id"], "destination": body["destination"], "reason": decision.reason}
    if decision.action == "retry":
        handoff_queue().retry_later(record["receiptHandle"], decision.delay_seconds)
        logger.info("delivery retried", delay_seconds=decision.delay_seconds, **log)
    elif decision.action == "dead_letter":
        handoff_queue().dead_letter(record["body"], decision.reason)
        logger.warning("delivery failed for good", **log)
    return decision.action


def notice(record: dict[str, Any], body: dict[str, Any]) -> str:
    """One attempt of a ``lead.erased`` webhook (retried on the message's visibility, like a delivery)."""
    service = handoff_service()
    attempts = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
    decision = deliver_erasure_notice(
        body, attempts, service.config, service.sender, service.clock, service.local_mode, service.local_base_url
    )
    log: dict[str, Any] = {"erasure_id": body["erasure_id"], "destination": body["destination"]}
    log["reason"] = decision.reason
    if decision.action == "retry":
        handoff_queue().retry_later(record["receiptHandle"], decision.delay_seconds)
        logger.info("erasure notice retried", delay_seconds=decision.delay_seconds, **log)
    elif decision.action == "dead_letter":
        handoff_queue().dead_letter(record["body"], decision.reason)
        logger.warning("erasure notice failed for good", **log)
    return decision.action


def safe_process(record: dict[str, Any]) -> str:
    try:
        return process(record)
    except Exception:
        logger.exception("hand-off message failed", message_id=record.get("messageId"))
        return "error"


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    with ThreadPoolExecutor(max_workers=PARALLEL_DELIVERIES) as pool:
        results = list(pool.map(safe_process, records))
    for outcome in set(results):  # metrics from this thread only (Powertools metrics are not thread-safe)
        name = METRIC_NAMES.get(outcome, "HandoffFailures" if outcome in ("dead_letter", "error") else "")
        if name:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=results.count(outcome))
    # A retry comes back when its visibility (set above) runs out; an error after the queue's.
    failed = [r["messageId"] for r, outcome in zip(records, results, strict=True) if outcome in ("retry", "error")]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
