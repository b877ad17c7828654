"""Nurture plan: the first state of the nurture tick state machine (EventBridge Scheduler, rate).

Answers which shards of the due-enrollment index have anything due now (one cheap query
per shard, in parallel), as the items of the tick's Distributed Map, each carrying the tick's
execution id (the shard lease holder); and starts the broadcasts whose scheduled time has come.

Broadcasts (invoked asynchronously, by the admin API or by this function itself):
- ``{"broadcast": "<sequence id>", "run": "<request id>"}`` starts the run: one part per scan
  segment, each an asynchronous invocation of this function, claimed once per run
  (``NurtureService.start_broadcast``);
- ``{"broadcast", "run", "segment", "segments", "hop", "cursor"?}`` is one invocation of a part:
  it enrolls the segment's members with conditional writes until about two minutes of its time
  are left, then hands the rest to a new invocation from where its scan stopped
  (``NurtureService.broadcast_hop``). A broadcast of any size is never one invocation.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.services.nurture_wiring import broadcast_parts, nurture_service

logger = Logger()
metrics = Metrics()
PAGE_LIMIT = 200
TIME_LEFT_MS = 120_000
"""A part hands on to the next invocation once less than this is left of its 900 s."""


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = nurture_service()
    if event.get("broadcast"):
        sequence_id = str(event["broadcast"])
        run = str(event.get("run") or context.aws_request_id)
        if "segment" in event:
            counts = service.broadcast_hop(
                sequence_id,
                run,
                int(event["segment"]),
                int(event["segments"]),
                int(event.get("hop") or 0),
                event.get("cursor"),
                lambda: context.get_remaining_time_in_millis() < TIME_LEFT_MS,
                broadcast_parts(),
            )
            logger.info("broadcast part", sequence_id=sequence_id, segment=event["segment"], counts=counts)
        else:
            counts = service.start_broadcast(sequence_id, run, broadcast_parts())
            logger.info("broadcast started", sequence_id=sequence_id, counts=counts)
        return counts
    now = service.clock.now()
    broadcasts = service.scheduled_broadcasts(now, broadcast_parts())
    shards = service.store.shards_with_due(now)
    tick = str(event.get("execution") or context.aws_request_id)
    logger.info("nurture tick planned", shards=len(shards), broadcasts=broadcasts)
    return {
        "now": now.isoformat(),
        "count": len(shards),
        "shards": [{"shard": s, "now": now.isoformat(), "limit": PAGE_LIMIT, "round": 0, "tick": tick} for s in shards],
        "broadcasts": broadcasts,
    }
