"""Large imports: the import state machine (``infra/statemachines/import.asl.json``) -> this.

One function for the run's three kinds of step, named by the task's ``action``: ``plan`` (read the
uploaded file once, write its chunks' manifest), ``chunk`` (a Distributed Map worker: one chunk's
rows imported and counted once), ``finish`` (the rejected-rows CSV, status done) and ``fail``
(status failed). The work is ``leadflow.services.import_engine.ImportEngine``'s.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.admin_api import import_engine

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    engine = import_engine()
    action = event.get("action")
    if action == "chunk":
        done = engine.chunk(event["job"], event["chunk"])
        metrics.add_metric(name="ImportChunksCounted", unit=MetricUnit.Count, value=int(done["counted"]))
        return done
    import_id = str(event["import_id"])
    logger.append_keys(import_id=import_id)
    if action == "plan":
        job = engine.plan(import_id)
        logger.info("import planned", ndjson=job["ndjson"], mapping=job["mapping"])
        return job
    if action == "finish":
        return engine.finish(import_id)
    if action == "fail":
        error = event.get("error") or {}
        logger.warning("import failed", error=error.get("Error"))
        return engine.fail(import_id, str(error.get("Error") or "Failed"))
    raise ValueError(f"unknown action {action!r}")
