"""Tracking: ``GET /t/o/{token}`` (open pixel), ``GET /t/c/{token}`` (signed click redirect),
``POST /t/e`` (site events from the snippet) and ``GET /t/lf.js`` (the snippet), from the HTTP API.

Verifies the HMAC-signed tokens (keys from Secrets Manager through Powertools Parameters)
and records activities through ``TrackingService``: forged or expired tokens record
nothing, the pixel is always a GIF, a click goes only where its token says and only to an
allowed host.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.scoring import tracking_service
from leadflow.transport.tracking import handle_tracking_request

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = handle_tracking_request(event, tracking_service())
    # Route and status only: never the token, the URL or the visitor.
    logger.info("tracking request answered", route=event.get("routeKey"), status=response["statusCode"])
    metrics.add_metric(name=f"Tracking{response['statusCode']}", unit=MetricUnit.Count, value=1)
    return response
