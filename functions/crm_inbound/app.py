"""CRM inbound: ``POST /crm/{provider}/webhook`` from the HTTP API (sales feedback closes the loop).

HubSpot (v3 signatures), Salesforce Outbound Messages (organization id, SOAP Ack) and any
system speaking leadflow's generic JSON with Standard Webhooks signatures report what sales
did with a lead: accepted, rejected, opportunity, won, lost. Signatures are checked on the raw
body before it is parsed; each event is applied once. Calls ``CrmFeedbackService.apply``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.handoff import crm_feedback_service, crm_secret
from leadflow.transport.crm_inbound import handle_crm_request

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response, counts = handle_crm_request(event, crm_feedback_service(), crm_secret().get)
    provider = (event.get("pathParameters") or {}).get("provider")
    # Provider, status and counts only: never the body, names or addresses.
    logger.info("crm feedback answered", provider=provider, status=response["statusCode"], results=counts)
    metrics.add_metric(name=f"CrmFeedback{response['statusCode']}", unit=MetricUnit.Count, value=1)
    for result, count in counts.items():
        metrics.add_metric(name=f"CrmFeedback_{result}", unit=MetricUnit.Count, value=count)
    return response
