"""Reporting: SQS (ReportingQueue, fed by the bus rule for lead and email events) -> this.

The whole batch goes to ``ReportingService.record`` at once, so counters move once per batch
and counter item (``ADD n``) in a transaction with the markers that make every event count
once (a redelivered or replayed event finds its marker). Records whose transaction failed,
and malformed ones, are reported as partial batch failures and retried (then ReportingDLQ).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.reporting import reporting_service
from leadflow.services.reporting import BusEvent

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


class UncountedEvent(Exception):
    """The batch could not count this record now; SQS delivers it again."""


def bus_event(record: dict[str, Any]) -> BusEvent | None:
    """The bus event in an SQS record; None when the body is not one (that record fails)."""
    try:
        body = json.loads(record["body"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("detail"), dict) or "detail-type" not in body:
        return None
    return BusEvent(str(record["messageId"]), str(body["detail-type"]), body["detail"], str(body.get("source") or ""))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    parsed = [e for e in (bus_event(r) for r in records) if e is not None]
    failed = {str(r.get("messageId")) for r in records} - {e.record_id for e in parsed}
    try:
        failed |= reporting_service().record(parsed)
    except (KeyError, ValueError, TypeError):
        logger.exception("a batch event lacks what its type promises: counting one by one")
        for one in parsed:
            try:
                failed |= reporting_service().record([one])
            except (KeyError, ValueError, TypeError):
                failed.add(one.record_id)
    metrics.add_metric(name="ReportEvents", unit=MetricUnit.Count, value=len(parsed))

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in failed:
            raise UncountedEvent(record.message_id)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
