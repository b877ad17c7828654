"""Hand-off SLA sweep: EventBridge Scheduler (rate, HandoffSlaRate) -> this.

``HandoffService.sweep``: hand-offs not accepted within ``accept_within_hours`` get a reminder
(``handoff.reminder``), after ``escalate_after_hours`` an escalation to the team's
``escalate_to`` (``handoff.escalated``); after ``recycle_after_days`` without sales action the
lead is recycled (status and stage ``recycled``, ``lead.stage_changed`` for nurture).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.handoff import handoff_sla_service

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = asdict(handoff_sla_service().sweep())
    logger.info("hand-off SLA sweep", **result)
    return result
