"""Form capture: ``POST /forms/{form_id}`` and its CORS preflight, from the HTTP API.

Decodes the post (urlencoded, multipart or JSON) and calls ``CaptureService``: validate
against the workspace form, de-duplicate on the email, store lead, activity, consent and
outbox events in one DynamoDB transaction, or keep the post on the intake queue when the
table cannot take it. Answers 303 / 201 / 200 / 202, or a 4xx naming what is wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from snapshot_restore_py import register_after_restore, register_before_snapshot

from leadflow.bootstrap.intake import capture_service, prime_capture_service
from leadflow.bootstrap.snapstart import reseed_random
from leadflow.transport.forms import handle_form_request

if TYPE_CHECKING:  # an annotation only: one module fewer to load on the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()

# Lambda SnapStart (template.yaml): the snapshot is taken once the imports and the DynamoDB client
# are done, and every environment restored from it draws its own random numbers again.
register_before_snapshot(prime_capture_service)
register_after_restore(reseed_random)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = handle_form_request(event, capture_service())
    status = response["statusCode"]
    # Ids and status only: no field values, no email, no IP in logs.
    logger.info("form post answered", form_id=(event.get("pathParameters") or {}).get("form_id"), status=status)
    metrics.add_metric(name=f"FormPost{status}", unit=MetricUnit.Count, value=1)
    return response
