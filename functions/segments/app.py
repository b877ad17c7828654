"""Segment membership: SQS (SegmentsQueue, fed by the bus rule for every change of a lead) -> this.

For each event about a lead, ``SegmentService.on_change``: the lead's segments (segments.yaml)
are evaluated on the lead as it is now and the differences written (membership items in GSI1,
counters moved in the same transaction; the lead's tag index items too). Idempotent: a
redelivered event finds nothing left to change. Batch processing reports partial failures.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.admin_api import segment_service

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    detail = (json.loads(record.body).get("detail")) or {}
    lead_id = detail.get("lead_id")
    if not lead_id:
        return  # an anonymous visitor's activity: no lead to place in segments yet
    changed = segment_service().on_change(str(lead_id))
    if changed:
        logger.info("membership changed", lead_id=lead_id, joined=changed.joined, left=changed.left)
        metrics.add_metric(name="SegmentsJoined", unit=MetricUnit.Count, value=len(changed.joined))
        metrics.add_metric(name="SegmentsLeft", unit=MetricUnit.Count, value=len(changed.left))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
