"""Automatic redrive: EventBridge Scheduler (every 6 hours) -> this.

Moves what the dead-letter queues of the work queues hold back to those queues (intake,
scoring, nurture, SES feedback, reporting), each message at most ``MAX_REDRIVES`` times: an
outage longer than a queue's own retries is waited out, and a message that fails again
after that stays in its DLQ for an operator (its depth alarm stays on; ``leadflow replay``).
Hand-off deliveries are not redriven automatically: a DLQ'd delivery is a final answer of
a CRM, replayed when an operator decides (``leadflow replay handoff``). The OutboxDLQ holds no
events, only where a failed stream batch is: its records are read back from the table's stream
(kept 24 hours, so a 6-hourly run reaches them) and published again (``leadflow replay outbox``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.intake import dead_letter_redrive, outbox_replay_parts
from leadflow.services.outbox import replay_outbox_dead_letters

logger = Logger()
metrics = Metrics()
MAX_REDRIVES = 3  # with the intake queue's 24 hours of backoff each: about 4 days of outage


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    redrive, pairs = dead_letter_redrive()
    summary: dict[str, Any] = {}
    for dlq_url, queue_url in pairs.items():
        result = redrive.move_back(dlq_url, queue_url, max_redrives=MAX_REDRIVES)
        name = dlq_url.rsplit("/", 1)[-1]
        summary[name] = {"moved": result.moved, "kept": result.kept}
        metrics.add_metric(name="DeadLettersRedriven", unit=MetricUnit.Count, value=result.moved)
        metrics.add_metric(name="DeadLettersKept", unit=MetricUnit.Count, value=result.kept)
    outbox = replay_outbox_dead_letters(*outbox_replay_parts())
    summary["OutboxDLQ"] = {"moved": outbox.batches, "kept": outbox.expired + outbox.refused + outbox.unreadable}
    metrics.add_metric(name="DeadLettersRedriven", unit=MetricUnit.Count, value=outbox.batches)
    logger.info("dead letters redriven", queues=summary)
    return summary
