"""Moving dead letters back to the queue they came from (SQS receive, send, delete).

Used by the scheduled ``DeadLetterRedriveFunction`` (automatic, a bounded number of times per
message) and by ``leadflow replay`` (an operator's decision, unbounded). SQS's own
StartMessageMoveTask would do the move, but it cannot count redrives per message (a poison
message would cycle forever) and the local stack's moto does not implement it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.aws import LazyClient

REDRIVES_ATTRIBUTE = "leadflow_redrives"


def hide(client: Any, queue_url: str, receipt: str, seconds: int) -> bool:
    """Keep a received message hidden for ``seconds`` more; False when SQS refuses because the
    message's total visibility timeout would pass its 12-hour limit (a dead letter kept for days
    and looked at every hour reaches it). It then becomes visible again at the end of its current
    timeout: nothing is lost, it is only seen again sooner."""
    try:
        client.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=seconds)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("InvalidParameterValue", "InvalidParameterValueException"):
            return False
        raise
    return True


@dataclass(frozen=True)
class RedriveResult:
    moved: int
    kept: int  # redriven as often as allowed: left for an operator (the DLQ's alarm stays on)


class SqsRedrive(LazyClient):
    SERVICE = "sqs"

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def move_back(  # noqa: PLR0917 - the two queues, how many, and what to do per message
        self,
        dlq_url: str,
        queue_url: str,
        limit: int = 0,
        max_redrives: int = 0,
        step: Callable[[], None] | None = None,
        transform: Callable[[str], str] | None = None,
        keep_seconds: int = 3600,
    ) -> RedriveResult:
        """Move up to ``limit`` (0: all) messages from ``dlq_url`` to ``queue_url``.

        Each is sent before it is deleted (a crash in between sends one twice; consumers are
        idempotent) and carries how often it was redriven. With ``max_redrives``, a message
        redriven that often stays, hidden for ``keep_seconds`` so this run does not see it again.
        """
        moved = kept = 0
        while not limit or moved < limit:
            want = 10 if not limit else min(10, limit - moved)
            messages = self.client.receive_message(
                QueueUrl=dlq_url, MaxNumberOfMessages=want, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                attributes = dict(message.get("MessageAttributes") or {})
                redrives = int((attributes.get(REDRIVES_ATTRIBUTE) or {}).get("StringValue", "0") or 0)
                if max_redrives and redrives >= max_redrives:
                    hide(self.client, dlq_url, message["ReceiptHandle"], keep_seconds)
                    kept += 1
                    continue
                attributes[REDRIVES_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(redrives + 1)}
                body = transform(message["Body"]) if transform else message["Body"]
                self.client.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes)
                self.client.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
                if step:
                    step()
        return RedriveResult(moved, kept)

    def depth(self, queue_url: str) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


class SqsDeadLetters(LazyClient):
    """One dead-letter queue read message by message (``services.outbox.DeadLetters``)."""

    SERVICE = "sqs"

    def __init__(self, queue_url: str, client: Any = None, keep_seconds: int = 3600) -> None:
        self.queue_url = queue_url
        self.keep_seconds = keep_seconds
        self._client = client

    def receive(self) -> list[tuple[str, str]]:
        messages = self.client.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        return [(m["ReceiptHandle"], m["Body"]) for m in messages]

    def delete(self, receipt: str) -> None:
        self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)

    def keep(self, receipt: str) -> None:
        hide(self.client, self.queue_url, receipt, self.keep_seconds)
