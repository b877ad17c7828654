"""Work queues a function sends to or backs off on: the intake queue (raw submissions kept for
replay when the table cannot take them) and the SES events queue (with its DLQ)."""

from __future__ import annotations

import base64
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from leadflow.adapters.aws import LazyClient
from leadflow.domain.errors import IntakeUnavailable
from leadflow.domain.outage_backoff import outage_retry_delay


class SqsQueue(LazyClient):
    """One queue (its client is only created when a message is sent or backed off)."""

    SERVICE = "sqs"

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, body: str, attributes: dict[str, Any] | None = None) -> None:
        """Send ``body``; ``attributes`` as a Lambda SQS record holds them (``messageAttributes``),
        so a received message is passed on with its own (a dead letter keeps its redrive count)."""
        extra = {"MessageAttributes": api_attributes(attributes)} if attributes else {}
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body, **extra)

    def retry_after_outage(self, receipt_handle: str, receive_count: str | None) -> None:
        """A message received ``receive_count`` times, failed because the table is down, comes back
        after the outage backoff (``outage_retry_delay``: ChangeMessageVisibility; Lambda's event
        source mapping leaves a visibility the handler set)."""
        self.client.change_message_visibility(
            QueueUrl=self.queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=outage_retry_delay(int(receive_count or 1)),
        )


class SqsIntakeQueue(SqsQueue):
    """The intake queue: raw submissions kept for replay."""

    def enqueue(self, message: dict[str, Any]) -> None:
        try:
            self.send(json.dumps(message))
        except (ClientError, BotoCoreError) as error:
            raise IntakeUnavailable(type(error).__name__) from error


def api_attributes(record_attributes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A Lambda SQS record's ``messageAttributes`` as SendMessage takes them."""
    sent: dict[str, dict[str, Any]] = {}
    for name, value in record_attributes.items():
        attribute = {"DataType": value["dataType"]}
        if value.get("stringValue") is not None:
            attribute["StringValue"] = value["stringValue"]
        if value.get("binaryValue") is not None:  # base64 in the record, bytes to SendMessage
            attribute["BinaryValue"] = base64.b64decode(value["binaryValue"])
        sent[name] = attribute
    return sent
