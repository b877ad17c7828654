"""Daily sweep: EventBridge Scheduler (daily) -> this.

Scores decay with time, not only when a lead acts: every MQL is re-evaluated at the
current time, and the stage rules say what happens to one whose decayed score fell
below the threshold (recycled, or kept). Calls ``ScoringService.score`` without an activity.
Then ``GdprService.sweep``: erasures that were interrupted are finished, and, when the
workspace's ``retention.yaml`` enables it, leads inactive for longer than the retention are
erased (the same erasure as ``DELETE /api/v1/leads/{lead_id}``), within the time left.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.gdpr import gdpr_service
from leadflow.bootstrap.scoring import scoring_parts

logger = Logger()
metrics = Metrics()
GDPR_TIME_RESERVE_MS = 60_000  # stop starting erasures a minute before the timeout (the rest: tomorrow)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service, store = scoring_parts()
    checked = moved = 0
    for lead_id in store.leads_in_stage("mql"):
        outcome = service.score(lead_id)
        checked += 1
        if outcome is not None and outcome.stage_changed_from:
            moved += 1
    logger.info("decay sweep", checked=checked, moved=moved)
    metrics.add_metric(name="DecaySweepMoved", unit=MetricUnit.Count, value=moved)
    gdpr = gdpr_service().sweep(deadline=lambda: context.get_remaining_time_in_millis() < GDPR_TIME_RESERVE_MS)
    logger.info("retention sweep", resumed=gdpr.resumed, erased=gdpr.erased, checked=gdpr.checked)
    metrics.add_metric(name="RetentionErased", unit=MetricUnit.Count, value=gdpr.erased)
    return {"checked": checked, "moved": moved, "erasures_resumed": gdpr.resumed, "erased": gdpr.erased}
