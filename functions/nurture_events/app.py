"""Nurture events: SQS (NurtureEventsQueue, fed by a bus rule) -> enrollments, engagement, wake-ups.

For each lead event (``lead.captured``, ``lead.stage_changed``, ``lead.scored``, ``lead.tagged``,
``lead.consent_confirmed``, ``activity.recorded`` of opens and clicks) ``NurtureService.handle_event``
enrolls the lead where a sequence's trigger matches, marks an email opened or clicked (a
wait for it ends at once) and wakes the lead's enrollments so goals hold at once. An open or click
that wakes an enrollment its mail log holds (a broadcast's) takes that enrollment's next step here,
at once (render, claim, SES within the shared send rate), as ``NurtureStepFunction`` would.
Partial batch failures are reported (a step that failed unexpectedly fails its record, which SQS
delivers again); enrollment is idempotent (one enrollment per lead per sequence, conditionally
written), and so is every step (its email is claimed in the mail log before SES is called).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.nurture import nurture_service, publishes_counts

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    event = json.loads(record.body)
    done = nurture_service().handle_event(str(event.get("detail-type", "")), event.get("detail") or {})
    logger.info("nurture event", detail_type=event.get("detail-type"), **done)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@publishes_counts(nurture_service)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
