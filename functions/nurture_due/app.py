"""Nurture plan: the first state of the nurture tick state machine (EventBridge Scheduler, rate).

Answers which shards of the due-enrollment index have anything due now (one cheap query
per shard, in parallel), as the items of the tick's Distributed Map, each carrying the tick's
execution id (the shard lease holder); and starts the broadcasts whose scheduled time has come.

Broadcasts:
- ``{"broadcast": "<sequence id>", "run": "<request id>"}`` (asynchronous, from the admin API)
  starts the run once: as many parts (parallel Scan segments) as the account's SES rate keeps
  busy, handed to the broadcast state machine (``NurtureService.start_broadcast``); an operator
  (or a benchmark) may add ``"segments"`` (the parts) and ``"seconds"`` (a hop's length);
- ``{"broadcast", "run", "segment", "segments", "seconds", "cursor", "more", "failures"}`` is one
  hop of a part, a child of that state machine's Distributed Map: it enrolls and sends from the
  cursor for ``seconds`` (or until two minutes of its own time are left), then returns the part
  with where its scan stopped (``NurtureService.broadcast_hop``). A broadcast of any size is never
  one invocation.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.nurture import (
    broadcast_runner,
    hop_seconds,
    nurture_service,
    publishes_counts,
    ses_account_rate,
)
from leadflow.services.nurture import HOP_SECONDS

logger = Logger()
metrics = Metrics()
PAGE_LIMIT = 200
TIME_LEFT_MS = 120_000
"""A hop returns once less than this is left of its 900 s, whatever its ``seconds``."""


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@publishes_counts(nurture_service)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = nurture_service()
    if event.get("broadcast"):
        sequence_id = str(event["broadcast"])
        if "segment" in event:
            deadline = time.monotonic() + int(event.get("seconds") or HOP_SECONDS)
            part = service.broadcast_hop(
                event,
                lambda: time.monotonic() >= deadline or context.get_remaining_time_in_millis() < TIME_LEFT_MS,
            )
            logger.info("broadcast hop", sequence_id=sequence_id, segment=event["segment"], more=part["more"])
            return part
        run = str(event.get("run") or context.aws_request_id)
        counts = service.start_broadcast(
            sequence_id,
            run,
            broadcast_runner(),
            segments=int(event["segments"]) if event.get("segments") else None,
            account_rate=ses_account_rate,
            hop_seconds=int(event.get("seconds") or hop_seconds()),
        )
        logger.info("broadcast started", sequence_id=sequence_id, counts=counts)
        return counts
    now = service.clock.now()
    broadcasts = service.scheduled_broadcasts(now, broadcast_runner(), ses_account_rate)
    shards = service.store.shards_with_due(now)
    tick = str(event.get("execution") or context.aws_request_id)
    logger.info("nurture tick planned", shards=len(shards), broadcasts=broadcasts)
    return {
        "now": now.isoformat(),
        "count": len(shards),
        "shards": [{"shard": s, "now": now.isoformat(), "limit": PAGE_LIMIT, "round": 0, "tick": tick} for s in shards],
        "broadcasts": broadcasts,
    }
