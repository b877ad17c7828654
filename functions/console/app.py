"""The console for people: ``GET|POST /console/...`` on the HTTP API (sign-in with Amazon Cognito).

Pages and forms of ``leadflow.transport.console``: sign-in (and a first sign-in's new password),
leads with search and filters, a lead's profile, score, timeline, sequences and hand-offs, the
sequences, the audit log; a hand-off with a confirmation. The route is public: the function
checks the person's ID token (a cookie) against the user pool on every request.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.pages import console

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return console().handle(event)
