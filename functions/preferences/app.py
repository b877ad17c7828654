"""Preferences: ``GET|POST /u/{token}`` from the HTTP API (unsubscribe, topics, double opt-in).

GET shows the page and never changes anything; a POST with ``List-Unsubscribe=One-Click``
(RFC 8058) unsubscribes at once; the page's own posts save topics, unsubscribe from all or
confirm a double opt-in. Tokens are HMAC-signed (keys from Secrets Manager); a forged or
expired one gets 404 and changes nothing. Calls ``NurtureService.preference_or_park``: a change
the table cannot take waits on the intake queue (the intake replay applies it).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.intake import intake_queue
from leadflow.bootstrap.nurture import nurture_admin_service, publishes_counts
from leadflow.transport.preferences import handle_preferences_request

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@publishes_counts(nurture_admin_service)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = handle_preferences_request(event, nurture_admin_service(), intake_queue())
    # Method and status only: never the token.
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method")
    logger.info("preferences request answered", method=method, status=response["statusCode"])
    metrics.add_metric(name=f"Preferences{response['statusCode']}", unit=MetricUnit.Count, value=1)
    return response
