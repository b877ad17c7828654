"""Nurture step: a batch of enrollments a step on (render, check, send, advance).

Two triggers, one use case (``NurtureService.process``):
- the nurture tick state machine (Step Functions, Distributed Map over shards) invokes it
  with ``{"shard": n, "now": ISO, "limit": N, "round": k, "tick": execution id}``: it takes (or
  renews) the shard's lease for that tick, reads one page of the shard's due enrollments and
  answers ``{"more": bool, ...}`` so the map loops while there is more. A shard another tick
  is still working is skipped (``"leased": false``): overlapping ticks never work one shard twice;
- SQS (NurtureNowQueue) delivers ``{"pairs": [[lead_id, sequence_id], ...]}`` for steps due at
  once (a welcome email right after a form post), with partial batch failures reported.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.nurture import nurture_service, publishes_counts

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
DEFAULT_LIMIT = 200
MAX_ROUNDS = 500
LEASE = timedelta(seconds=330)
"""How long a shard stays with a tick without a renewal: longer than one page may take (the 300 s timeout)."""


def record_handler(record: SQSRecord) -> None:
    body = json.loads(record.body)
    pairs = [(str(lead), str(sequence)) for lead, sequence in body["pairs"]]
    result = nurture_service().process(pairs)
    metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=result.sent)
    logger.info("due-now batch", **result.as_dict())


def shard_page(event: dict[str, Any]) -> dict[str, Any]:
    service = nurture_service()
    shard = int(event["shard"])
    limit = int(event.get("limit") or DEFAULT_LIMIT)
    rounds = int(event.get("round") or 0) + 1
    now = datetime.fromisoformat(event["now"]) if event.get("now") else service.clock.now()
    tick = str(event.get("tick") or "")
    answer: dict[str, Any] = {"shard": shard, "now": now.isoformat(), "limit": limit, "round": rounds, "tick": tick}
    if tick and not service.store.lease_shard(shard, tick, service.clock.now(), LEASE):
        logger.info("shard page skipped: another tick works the shard", shard=shard, round=rounds)
        return {**answer, "more": False, "leased": False, "processed": 0, "sent": 0}
    pairs = service.store.due(shard, now, limit)
    result = service.process(pairs)
    metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=result.sent)
    logger.info("shard page", shard=shard, round=rounds, **result.as_dict())
    # Another page only while this one was full and moved something (never spin on stuck items),
    # and not once the account's send rate is used up (the next tick takes the rest up).
    saturated = result.outcomes.get("rate_limited", 0) > 0
    more = len(pairs) == limit and result.processed > 0 and not saturated and rounds < MAX_ROUNDS
    if tick and not more:
        service.store.release_shard(shard, tick)
    return {**answer, "more": more, "leased": bool(tick), "processed": result.processed, "sent": result.sent}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@publishes_counts(nurture_service)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )
    return shard_page(event)
