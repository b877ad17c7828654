"""Outbox relay: DynamoDB stream (LeadsTable, new outbox items and announced activities) -> EventBridge bus.

Every write that should be announced stores its events as outbox items in the same
transaction, or is itself the event: a tracked open, click or site event of a lead is one
activity item with an ``event_source``, published as ``activity.recorded`` with the
activity's id as the event id (issue 17: no transaction, no outbox item), and a scored
activity's ledger item carries its ``lead.scored`` (no outbox item in the scoring
transaction). This function
publishes them, ten per PutEvents call. Events are never lost
between the write and the bus: a refused event is reported as a batch item failure, so
the stream retries from it, and after the retries the batch is recorded in OutboxDLQ
(the events stay in the table for seven days to be replayed).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.intake import outbox_publisher
from leadflow.services.outbox import relay_outbox

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = relay_outbox(DynamoDBStreamEvent(event), outbox_publisher())
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=result.published)
    if result.failures:
        logger.warning("events refused by the bus; the stream will retry", failed=len(result.failures))
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in result.failures]}
