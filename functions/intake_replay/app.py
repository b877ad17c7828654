"""Intake replay: SQS (IntakeQueue) -> DynamoDB.

Form posts the table could not take at the time wait on the intake queue; this stores
them through the same ``CaptureService.replay`` as a live post. Tracked hits (opens, clicks,
site events) the table could not take wait there too, and ``TrackingService.replay`` stores
them as they came (their ids and times kept); so do unsubscribes and confirmations from the
preference page, which ``NurtureService.replay_preference`` applies as of when they were asked for
(the counts of the sequences they end are published as the nurture functions publish theirs).
Batch processing reports
partial failures, so a message that fails again (table still down) is retried alone and
lands in the IntakeDLQ after five tries; a post that is invalid is dropped with a log
line (it would never succeed). Idempotent: each queued post carries its own key.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.intake import intake_queue, replay_capture_service
from leadflow.bootstrap.nurture import nurture_admin_service, publish_nurture_counts
from leadflow.bootstrap.scoring import replay_tracking_service
from leadflow.domain.errors import FormNotFound, IdempotencyConflict, InvalidSubmission, StorageUnavailable
from leadflow.services.nurture.preferences import is_parked_preference
from leadflow.services.tracking import is_parked_hit

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    message = json.loads(record.body)
    try:
        if is_parked_hit(message):
            replay_tracking_service().replay(message)
            logger.info("queued tracked hit stored", hit=message.get("hit"))
            metrics.add_metric(name="IntakeHitReplayed", unit=MetricUnit.Count, value=1)
            return
        if is_parked_preference(message):
            service = nurture_admin_service()  # built only for a preference change: a form replay needs none
            try:
                service.replay_preference(message)
            finally:  # the sequences it ended, counted for the reports
                publish_nurture_counts(service)
            logger.info("queued preference change applied", action=message.get("action"))
            metrics.add_metric(name="IntakePreferenceReplayed", unit=MetricUnit.Count, value=1)
            return
        result = replay_capture_service().replay(message)
    except StorageUnavailable:
        # Still down: back off (1, 2, 4 ... minutes, at most an hour) instead of the queue's
        # 60 s, so an outage of a day is waited out before the message is dead-lettered.
        intake_queue().retry_after_outage(record.receipt_handle, record.attributes.approximate_receive_count)
        metrics.add_metric(name="IntakeRetryLater", unit=MetricUnit.Count, value=1)
        raise
    except (InvalidSubmission, FormNotFound, IdempotencyConflict) as error:
        logger.error(
            "queued submission can never be stored",
            submission_id=message.get("submission_id"),
            error=type(error).__name__,
        )
        metrics.add_metric(name="IntakeDropped", unit=MetricUnit.Count, value=1)
        return
    logger.info(
        "queued submission stored",
        submission_id=message.get("submission_id"),
        lead_id=result.lead_id,
        outcome=result.outcome.value,
        replayed=result.replayed,
    )
    metrics.add_metric(name="IntakeReplayed", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
