"""Scoring: SQS (ScoringQueue, fed by the bus rule for activity.recorded and lead.captured) -> this.

A captured lead that carries the tracking snippet's visitor id first gets its anonymous
site activities (``stitch_visitor``), which come back here as activity events. For each
event, ``ScoringService.score``: new ledger entries per model for the activity,
the decayed score, the fit grade, the lifecycle stage; ``lead.scored`` and
``lead.stage_changed`` leave through the outbox. Batch processing reports partial
failures; a redelivered event scores nothing twice (ledger entries have fixed ids).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.scoring import scoring_parts
from leadflow.services.tracking import stitch_visitor

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    event = json.loads(record.body)
    detail = event.get("detail") or {}
    lead_id = detail.get("lead_id")
    if not lead_id:
        return  # an anonymous visitor's activity: scored once the visitor becomes a lead
    activity = detail if event.get("detail-type") == "activity.recorded" else None
    service, store = scoring_parts()
    if activity is None and detail.get("visitor_id"):
        attached = stitch_visitor(store, detail["visitor_id"], lead_id, service.clock.now())
        logger.info("visitor stitched", lead_id=lead_id, activities=attached)
    outcome = service.score(lead_id, activity)
    if outcome is None:
        logger.warning("event for a lead that does not exist", lead_id=lead_id)
        return
    logger.info(
        "lead scored",
        lead_id=lead_id,
        points_added=outcome.points_added,
        stage=outcome.stage,
        stage_changed_from=outcome.stage_changed_from,
    )
    metrics.add_metric(name="ActivitiesScored", unit=MetricUnit.Count, value=1)
    if outcome.stage_changed_from:
        metrics.add_metric(name=f"StageChangedTo_{outcome.stage}", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
