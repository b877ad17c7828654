"""Hosted landing pages: ``GET /f/{form_id}`` and ``GET /f/{form_id}/embed.js`` on the HTTP API.

Each workspace form as a page of its own, styled by ``theme.yaml``, and the script of its embed
snippet (``leadflow.transport.landing``). The render time in each page is signed with the
tracking key, as ``GET /t/ts`` signs it for the snippet.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow.bootstrap.pages import landing_pages

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return landing_pages().handle(event)
