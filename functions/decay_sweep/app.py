"""Decay sweep: EventBridge Scheduler (daily) -> this.

Scores decay with time, not only when a lead acts: every MQL is re-evaluated at the
current time, and the stage rules say what happens to one whose decayed score fell
below the threshold (recycled, or kept). Calls ``ScoringService.score`` without an activity.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.adapters.clock import SystemClock
from leadflow.adapters.dynamo import DynamoLeadStore
from leadflow.config.workspace import Workspace
from leadflow.services.scoring import ScoringService
from leadflow.settings import ScoringSettings

logger = Logger()
metrics = Metrics()


@cache
def dependencies() -> tuple[ScoringService, DynamoLeadStore]:
    settings = ScoringSettings.from_env()
    store = DynamoLeadStore(settings.leads_table)
    return ScoringService(Workspace(settings.leadflow_workspace), store, SystemClock()), store


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service, store = dependencies()
    checked = moved = 0
    for lead_id in store.leads_in_stage("mql"):
        outcome = service.score(lead_id)
        checked += 1
        if outcome is not None and outcome.stage_changed_from:
            moved += 1
    logger.info("decay sweep", checked=checked, moved=moved)
    metrics.add_metric(name="DecaySweepMoved", unit=MetricUnit.Count, value=moved)
    return {"checked": checked, "moved": moved}
