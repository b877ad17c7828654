"""Nurture plan: the first state of the nurture tick state machine (EventBridge Scheduler, rate).

Answers which shards of the due-enrollment index have anything due now (one cheap query
per shard, in parallel), as the items of the tick's Distributed Map; and runs the
broadcasts whose scheduled time has come (``NurtureService.broadcast``, once each).
Invoked asynchronously with ``{"broadcast": "<sequence id>", "run": "<request id>"}`` (by the
admin API), it enrolls that sequence's broadcast segment with batched writes, once per run.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.services.nurture_wiring import nurture_service

logger = Logger()
metrics = Metrics()
PAGE_LIMIT = 200


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = nurture_service()
    if event.get("broadcast"):
        sequence_id = str(event["broadcast"])
        run = event.get("run")
        counts = service.broadcast_once(sequence_id, str(run)) if run else service.broadcast(sequence_id)
        logger.info("broadcast enrolled", sequence_id=event["broadcast"], counts=counts)
        return counts
    now = service.clock.now()
    broadcasts = service.scheduled_broadcasts(now)
    shards = service.store.shards_with_due(now)
    logger.info("nurture tick planned", shards=len(shards), broadcasts=broadcasts)
    return {
        "now": now.isoformat(),
        "count": len(shards),
        "shards": [{"shard": s, "now": now.isoformat(), "limit": PAGE_LIMIT, "round": 0} for s in shards],
        "broadcasts": broadcasts,
    }
