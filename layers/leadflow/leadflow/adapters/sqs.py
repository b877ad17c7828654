"""The intake queue: raw submissions kept for replay when the table cannot take them."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from leadflow.adapters.aws import LazyClient
from leadflow.domain.errors import IntakeUnavailable


class SqsIntakeQueue(LazyClient):
    """The intake queue: raw submissions kept for replay (its client is only created when the table is down)."""

    SERVICE = "sqs"

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def enqueue(self, message: dict[str, Any]) -> None:
        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))
        except (ClientError, BotoCoreError) as error:
            raise IntakeUnavailable(type(error).__name__) from error

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """A received post comes back after ``seconds`` (ChangeMessageVisibility: Lambda's
        event source mapping leaves a visibility the handler set)."""
        self.client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
