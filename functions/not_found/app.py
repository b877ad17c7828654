"""Unknown URLs: the HTTP API's ``$default`` route (any method, any path no other route takes).

A page a person can read (where to go: the console, the API explorer) for a browser, JSON
``{"message": "Not Found"}`` for a program: ``leadflow.transport.not_found``. Always ``404``.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.pages import not_found_pages

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return not_found_pages().handle(event)
