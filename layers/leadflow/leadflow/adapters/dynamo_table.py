"""What every store on the lead table builds on (``DynamoTable``): its client, transactions (with
conflict retries and the errors that mean "unavailable"), a transaction's puts, outbox events and
capped counters, and reads by key, prefix, query or scan."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from leadflow.adapters.aws import LazyClient
from leadflow.adapters.dynamo_expressions import lead_key
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.events import DomainEvent

OUTBOX_TTL = timedelta(days=7)
NEW_ITEM = "attribute_not_exists(PK)"  # a Put's condition: only if no such item yet
CONFLICT_RETRIES = 6
# Errors that mean "the table cannot take this write now" (after botocore's own retries).
UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)


SINGLE_WRITES = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}
"""The single-item call that writes a transaction item of each kind on its own."""


@contextmanager
def storage_errors() -> Iterator[None]:
    """DynamoDB throttled, failing or unreachable, raised as ``StorageUnavailable``; any other error
    as it is."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in UNAVAILABLE_CODES:
            raise StorageUnavailable(code) from error
        raise
    except BotoCoreError as error:  # timeouts, connection errors
        raise StorageUnavailable(type(error).__name__) from error


class DynamoTable(LazyClient):
    """The lead table's client and the plumbing its stores share (``DynamoLeadStore`` and the
    stores built on it)."""

    SERVICE = "dynamodb"

    def __init__(self, table_name: str, client: Any = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.table = table_name
        self._client = client
        self._sleep = sleep

    def _put(
        self, item: dict[str, Any], condition: str | None = None, *, old_on_failure: bool = False
    ) -> dict[str, Any]:
        """One ``Put`` of a transaction; ``condition`` guards it (``NEW_ITEM``: only if absent), and
        ``old_on_failure`` has a failed condition return the item it met."""
        put: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if condition:
            put["ConditionExpression"] = condition
        if old_on_failure:
            put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Put": put}

    def _outbox_item(self, event: DomainEvent) -> dict[str, Any]:
        """An event waiting in the outbox. An event about a lead is kept in the lead's partition
        (``LEAD#<id>`` / ``EVENT#<event id>``), so that an erasure finds it with the lead's items;
        others under ``OUTBOX#<event id>`` / ``EVENT``. The stream relays both."""
        expires = int(datetime.fromisoformat(event.occurred_at).timestamp() + OUTBOX_TTL.total_seconds())
        lead_id = event.detail.get("lead_id")
        return {
            **(
                {"PK": f"LEAD#{lead_id}", "SK": f"EVENT#{event.event_id}"}
                if lead_id
                else {"PK": f"OUTBOX#{event.event_id}", "SK": "EVENT"}
            ),
            "source": event.source,
            "detail_type": event.detail_type,
            "detail": json.dumps(event.envelope(), separators=(",", ":")),
            "expires_at": expires,
        }

    def _capped_count(self, pk: str, sk: str, expires_at: int, limit: int) -> dict[str, Any]:
        """A transaction's count of one more on a counter item (``n``, with a TTL), refused (the
        transaction cancelled) once it holds ``limit``: a rate window, a tracking hit counter."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": serialize({"PK": pk, "SK": sk}),
                "UpdateExpression": "ADD #n :one SET #e = :exp",
                "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
                "ExpressionAttributeNames": {"#n": "n", "#e": "expires_at"},
                "ExpressionAttributeValues": serialize({":one": 1, ":exp": expires_at, ":limit": limit}),
            }
        }

    def _transact(self, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Run a transaction; None on success, else the cancellation reasons.

        Conflicts with a concurrent transaction on the same items are retried here.

        Raises:
            StorageUnavailable: throttled, down, or unreachable after retries.
        """
        for attempt in range(CONFLICT_RETRIES):
            try:
                with storage_errors():
                    self.client.transact_write_items(TransactItems=items)
                return None
            except ClientError as error:  # not one of storage_errors' (those are raised as they are)
                code = error.response.get("Error", {}).get("Code", "")
                if code != "TransactionCanceledException":
                    raise
                reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])
                codes = {r.get("Code") for r in reasons}
                if "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes:
                    self._sleep(random.uniform(0.005, 0.02) * 2**attempt)  # nosec B311 # backoff jitter, not secrecy
                    continue
                if codes & UNAVAILABLE_CODES:
                    raise StorageUnavailable(code) from error
                return reasons
        raise StorageUnavailable("TransactionConflict")

    def _transact_if(self, items: list[dict[str, Any]]) -> bool:
        """Run a transaction whose items carry conditions: False when one of them failed.

        Raises:
            StorageUnavailable: throttled, down, or cancelled for another reason.
        """
        reasons = self._transact(items)
        if reasons is None:
            return True
        if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
            return False
        raise StorageUnavailable(f"unexpected cancellation: {reasons}")

    def _write_if(self, item: dict[str, Any]) -> bool:
        """One transaction item (``Put``, ``Update`` or ``Delete``) written on its own, by its
        single-item call: False when its condition failed.

        Raises:
            StorageUnavailable: throttled, down, or unreachable.
        """
        ((kind, request),) = item.items()
        call = getattr(self.client, SINGLE_WRITES[kind])
        with storage_errors():
            return self._conditional(lambda: call(**request))

    def _write_all(self, items: list[dict[str, Any]]) -> bool:
        """Transaction items written together: one alone by its own conditional write (a transaction
        bills each item twice), more in one transaction. False when a condition failed (or the
        transaction was cancelled).

        Raises:
            StorageUnavailable: throttled, down, or unreachable.
        """
        if len(items) == 1 and "ConditionCheck" not in items[0]:
            return self._write_if(items[0])
        return self._transact(items) is None

    def _conditional(self, call: Callable[[], Any]) -> bool:
        """Run one conditional write: False when its condition failed (``StorageUnavailable`` when
        the table is throttled, failing or unreachable)."""
        try:
            with storage_errors():
                call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _all(self, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a Query or Scan, page after page, deserialized."""
        items: list[dict[str, Any]] = []
        while True:
            with storage_errors():
                response = getattr(self.client, operation)(TableName=self.table, **kwargs)
            items.extend(deserialize(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _query_prefix(self, pk: str, prefix: str, limit: int | None, newest_first: bool) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": serialize({":pk": pk, ":prefix": prefix}),
            "ScanIndexForward": not newest_first,
        }
        found: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(found)
            with storage_errors():
                response = self.client.query(**kwargs)
            found.extend(deserialize(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response or (limit is not None and len(found) >= limit):
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _index_keys(self, index: str, partition: str, limit: int, newest_first: bool) -> list[dict[str, Any]]:
        """Up to ``limit`` entries of one partition of a keys-only index (``<index>PK``), page after
        page, in its sort order (reversed when ``newest_first``): the table's and the index's keys."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": f"{index}PK = :p",
            "ExpressionAttributeValues": serialize({":p": partition}),
            "ScanIndexForward": not newest_first,
        }
        found: list[dict[str, Any]] = []
        while len(found) < limit:
            response = self.client.query(**kwargs, Limit=limit - len(found))
            found.extend(deserialize(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found

    def batch_get(self, keys: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
        """Items by key (any number; BatchGetItem 100 at a time, unprocessed keys retried)."""
        wanted = [serialize(k) for k in {(k["PK"], k["SK"]): k for k in keys}.values()]
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {self.table: {"Keys": wanted[start : start + 100]}}
            for attempt in range(8):
                answer = self.client.batch_get_item(RequestItems=request)
                found.extend(deserialize(i) for i in answer.get("Responses", {}).get(self.table, []))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(min(1.0, 0.05 * 2**attempt))
        return found

    def get_lead(self, lead_id: str) -> dict[str, Any] | None:
        with storage_errors():
            response = self.client.get_item(TableName=self.table, Key=serialize(lead_key(lead_id)))
        return deserialize(response["Item"]) if "Item" in response else None
