"""Event source mappings, as Lambda runs them: SQS queues and DynamoDB streams.

moto's own mappings fire synchronously inside the write and drop partial-failure
semantics, so the local stack detaches them and polls here instead: batches of the
mapping's size, ``batchItemFailures`` honoured, failed SQS messages retried until the
queue's redrive policy moves them to the DLQ, failed stream batches retried and then
recorded in the on-failure destination.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadflow.dev.runner import HandlerError, LambdaRunner

log = logging.getLogger("leadflow.dev")
SQS_RETRY_DELAY_SECONDS = 2


def matches(pattern: Any, data: Any) -> bool:
    """EventBridge-style pattern matching (the subset filter criteria use: nested keys, value lists,
    ``{"prefix": ...}`` and ``{"exists": ...}``)."""
    if isinstance(pattern, dict) and set(pattern) == {"prefix"}:
        return isinstance(data, str) and data.startswith(str(pattern["prefix"]))
    if isinstance(pattern, dict):
        return isinstance(data, dict) and all(k in data and matches(v, data[k]) for k, v in pattern.items())
    if isinstance(pattern, list):
        return any(
            (matches(p, data) if isinstance(p, dict) else data == p)
            or (isinstance(p, dict) and "exists" in p and p["exists"] == (data is not None))
            for p in pattern
        )
    return bool(pattern == data)


def _moto_message(queue_url: str, receipt_handle: str) -> Any:
    """moto's message behind a receipt handle (the local stack runs moto in this process)."""
    from moto.sqs.models import sqs_backends

    account, name = queue_url.rstrip("/").split("/")[-2:]
    for backend in sqs_backends[account].values():
        queue = backend.queues.get(name)
        if queue is not None:
            return next((m for m in list(queue._messages) if m.receipt_handle == receipt_handle), None)
    return None


def _visible_at(queue_url: str, receipt_handle: str) -> float | None:
    message = _moto_message(queue_url, receipt_handle)
    return float(message.visible_at) if message is not None else None


def _visibility_changed(queue_url: str, message: dict[str, Any], received_at: dict[str, float | None]) -> bool:
    before = received_at.get(message["MessageId"])
    after = _visible_at(queue_url, message["ReceiptHandle"])
    return before is not None and after is not None and after != before


@dataclass
class SqsMapping:
    uuid: str
    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    max_concurrency: int = 1  # ScalingConfig.MaximumConcurrency: batches handled side by side
    _in_flight: int = 0
    _pool: ThreadPoolExecutor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self, wait: bool = True) -> None:
        """Start no more batches; with ``wait``, let running ones finish (before moto stops under them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)

    def busy(self) -> bool:
        """Batches still running in the background (concurrent mappings only)."""
        with self._lock:
            return self._in_flight > 0

    def poll(self, sqs: Any, runner: LambdaRunner) -> int:
        """Deliver one batch (or, with ``max_concurrency`` > 1, start up to that many); return the messages."""
        if self.max_concurrency <= 1:
            messages = self._receive(sqs)
            if messages:
                self._deliver(sqs, runner, messages)
            return len(messages)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=f"leadflow-{self.function}")
        started = 0
        while True:
            with self._lock:
                if self._in_flight >= self.max_concurrency:
                    return started
            messages = self._receive(sqs)
            if not messages:
                return started
            with self._lock:
                self._in_flight += 1
            self._pool.submit(self._deliver_in_background, sqs, runner, messages)
            started += len(messages)

    def _deliver_in_background(self, sqs: Any, runner: LambdaRunner, messages: list[dict[str, Any]]) -> None:
        try:
            self._deliver(sqs, runner, messages)
        except Exception:
            log.exception("%s: batch failed in the poller", self.function)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _receive(self, sqs: Any) -> list[dict[str, Any]]:
        response = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.batch_size, 10),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        return list(response.get("Messages", []))

    def _deliver(self, sqs: Any, runner: LambdaRunner, messages: list[dict[str, Any]]) -> None:
        received_at = {m["MessageId"]: _visible_at(self.queue_url, m["ReceiptHandle"]) for m in messages}
        region = self.queue_arn.split(":")[3]
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    k: {
                        "stringValue": v.get("StringValue"),
                        "binaryValue": v.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": v["DataType"],
                    }
                    for k, v in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": self.queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
        failed: set[str] = set()
        try:
            result = runner.invoke(self.function, {"Records": records})
            if self.report_failures and isinstance(result, dict):
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures") or []}
        except HandlerError as error:
            log.warning("%s failed on a batch of %d: %s", self.function, len(messages), error)
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed and _visibility_changed(self.queue_url, message, received_at):
                continue  # the handler set when it comes back (a backoff): Lambda leaves that alone
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=SQS_RETRY_DELAY_SECONDS,
                )
            else:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class StreamMapping:
    uuid: str
    function: str
    table_name: str
    stream_arn: str
    batch_size: int
    filters: list[Any]
    report_failures: bool
    max_retries: int
    on_failure_queue_url: str | None
    position: int = 0
    attempts: int = 0
    retry_after: float = 0.0

    def _records(self, backend: Any) -> list[dict[str, Any]]:
        table = backend.get_table(self.table_name)
        shard = table.stream_shard
        return [item.record for item in shard.items[self.position :]] if shard else []

    def skip_to_end(self, backend: Any) -> None:
        """Go on from the stream's end: what it holds now is not for this function."""
        self.position += len(self._records(backend))

    def poll(self, backend: Any, sqs: Any, runner: LambdaRunner) -> int:
        if time.monotonic() < self.retry_after:
            return 0
        pending = self._records(backend)
        if not pending:
            return 0
        batch_raw: list[dict[str, Any]] = []
        consumed = 0
        for record in pending:
            consumed += 1
            if not self.filters or any(matches(f, record) for f in self.filters):
                batch_raw.append(record)
            if len(batch_raw) >= self.batch_size:
                break
        if not batch_raw:
            self.position += consumed
            return consumed
        batch = [self._event_record(r) for r in batch_raw]
        try:
            result = runner.invoke(self.function, {"Records": batch})
            failures = (
                [f["itemIdentifier"] for f in (result or {}).get("batchItemFailures") or []]
                if self.report_failures and isinstance(result, dict)
                else []
            )
        except HandlerError as error:
            log.warning("%s failed on a stream batch: %s", self.function, error)
            failures = [batch[0]["dynamodb"]["SequenceNumber"]]
        if not failures:
            self.position += consumed
            self.attempts = 0
            return consumed
        first = min(int(seq) for seq in failures)
        self.attempts += 1
        if self.attempts > self.max_retries:
            self._give_up(sqs, batch, backend.get_table(self.table_name).stream_shard.id)
            self.position += consumed
            self.attempts = 0
            return consumed
        # Skip what succeeded; retry from the first failure after a pause.
        self.position += next(i for i, r in enumerate(pending) if int(r["dynamodb"]["SequenceNumber"]) >= first)
        self.retry_after = time.monotonic() + min(2**self.attempts * 0.1, 5)
        return len(batch)

    def _give_up(self, sqs: Any, batch: list[dict[str, Any]], shard_id: str) -> None:
        """Record where the batch is, as Lambda's on-failure destination does: the shard and the
        range of sequence numbers, never the records (``leadflow replay outbox`` reads them back)."""
        if not self.on_failure_queue_url:
            return
        arrivals = [r["dynamodb"].get("ApproximateCreationDateTime") for r in (batch[0], batch[-1])]
        info = {
            "requestContext": {
                "functionArn": self.function,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self.attempts,
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(arrivals[0]),
                "approximateArrivalOfLastRecord": _iso(arrivals[1]),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }
        sqs.send_message(QueueUrl=self.on_failure_queue_url, MessageBody=json.dumps(info, default=str))

    def _event_record(self, record: dict[str, Any]) -> dict[str, Any]:
        event = json.loads(json.dumps(record, default=str))
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            event["dynamodb"]["ApproximateCreationDateTime"] = int(created.timestamp())
        event["eventSourceARN"] = self.stream_arn
        return event


def _iso(value: Any) -> str:
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
    return moment.isoformat().replace("+00:00", "Z") if isinstance(moment, datetime) else str(value)
