"""SES feedback: SNS topic (the configuration set's event destination) -> SQS -> this function.

Parses each SNS-wrapped SES message, in either format (notifications and event
publishing), and applies it through ``FeedbackService``: permanent bounces and complaints
suppress the address, complaints withdraw consent, every kind with an activity type is
recorded for scoring, and a Send event confirms an email whose SendEmail failed ambiguously
(the delivery policy: it is then never sent again). Batch processing reports partial failures,
so one message's failure never holds back the rest of its batch:
- while the table is down (``StorageUnavailable``), a message backs off 1, 2, 4 ... minutes, at
  most an hour apart (``leadflow.domain.outage_backoff``): an outage of a day is waited out
  before the queue dead-letters it, as the intake replay does;
- a malformed message can never be applied: it goes straight to SesEventsDLQ, its attributes
  (the redrive count) with it, for an operator, without spending the retries an outage needs;
- duplicates change nothing twice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.scoring import feedback_queues, feedback_service
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.ses import MalformedFeedback, NotFeedback
from leadflow.domain.ses_parsing import parse_message

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    try:
        feedback = parse_message(record.body)
    except NotFeedback as skipped:
        logger.info("not SES feedback, dropped", reason=skipped.args[0] if skipped.args else "")
        return
    except MalformedFeedback:
        _, dead_letters = feedback_queues()
        dead_letters.send(record.body, record.raw_event.get("messageAttributes"))  # kept for a replay
        metrics.add_metric(name="SesFeedbackMalformed", unit=MetricUnit.Count, value=1)
        return
    for item in feedback:
        try:
            applied = feedback_service().handle(item)
        except StorageUnavailable:
            queue, _ = feedback_queues()
            queue.retry_after_outage(record.receipt_handle, record.attributes.approximate_receive_count)
            metrics.add_metric(name="SesFeedbackRetryLater", unit=MetricUnit.Count, value=1)
            raise
        # Kinds and ids only: never the address.
        logger.info("SES feedback", kind=item.kind.value, message_id=item.message_id, applied=applied)
        metrics.add_metric(name=f"SesFeedback_{item.kind.value}", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
