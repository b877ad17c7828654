"""The report aggregates on the ReportsTable (key design: docs/data-model.md, "ReportsTable").

Markers (``LEADRPT#...``, ``EVT#...``) are written with ``attribute_not_exists`` in the same
``TransactWriteItems`` as the counter ``ADD``s they stand for: an event counts entirely or not
at all, and a redelivered one finds its marker and counts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from leadflow.adapters.aws import LazyClient
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.domain.reporting import Key

BATCH_GET_KEYS = 100
READ_WORKERS = 16
"""Queries a report runs at once (``concurrently``): the forms report's day Queries, its pages'."""

T = TypeVar("T")
R = TypeVar("R")


def concurrently(call: Callable[[T], R], inputs: list[T]) -> list[R]:
    """``call`` of every input, ``READ_WORKERS`` at a time, the answers in the order of ``inputs``.

    A report reads some things one Query each (the forms report: a Query a day, one a form): one
    after another, a quarter's forms report waited out 100 round trips (about 1 s at 10 ms each,
    against 10-20 ms for the other reports); at once, 7 (``bench/report_latency.py``,
    docs/benchmarks.md section 19). The caller makes its client first: creating a boto3 client is
    not thread-safe, using one is."""
    if len(inputs) <= 1:
        return [call(one) for one in inputs]
    with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(inputs))) as pool:
        return list(pool.map(call, inputs))


TRANSACTION_ITEMS = 100


class MarkersTaken(Exception):
    """Some markers of a transaction exist already (another delivery counted their events)."""

    def __init__(self, keys: set[Key]) -> None:
        super().__init__(f"{len(keys)} marker(s) already written")
        self.keys = keys


class DynamoReportStore(LazyClient):
    SERVICE = "dynamodb"

    def __init__(self, table_name: str, client: Any = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.table = table_name
        self._client = client
        self.sleep = sleep

    # ------------------------------------------------------------------ writing
    def existing(self, keys: list[Key]) -> set[Key]:
        """Which of these items exist (markers already written)."""
        found: set[Key] = set()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_KEYS):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [serialize({"PK": pk, "SK": sk}) for pk, sk in unique[start : start + BATCH_GET_KEYS]],
                    "ProjectionExpression": "PK, SK",
                    "ConsistentRead": True,
                }
            }
            for attempt in range(8):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table, []):
                    found.add((item["PK"]["S"], item["SK"]["S"]))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self.sleep(min(0.05 * 2**attempt, 1.0))
        return found

    def items(self, keys: list[Key]) -> dict[Key, dict[str, Any]]:
        """The items of these keys that exist (a hand-off's creation record, for its outcomes)."""
        found: dict[Key, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_KEYS):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [serialize({"PK": pk, "SK": sk}) for pk, sk in unique[start : start + BATCH_GET_KEYS]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table, []):
                    loaded = deserialize(item)
                    found[(str(loaded["PK"]), str(loaded["SK"]))] = loaded
                request = response.get("UnprocessedKeys") or {}
        return found

    def apply(self, markers: list[tuple[Key, dict[str, Any]]], counters: dict[Key, dict[str, int]]) -> None:
        """Write markers (each only if absent) and add the counters, all in one transaction.

        Raises:
            MarkersTaken: a marker exists; nothing was written.
            ValueError: more than ``TRANSACTION_ITEMS`` items.
        """
        if len(markers) + len(counters) > TRANSACTION_ITEMS:
            raise ValueError("a report transaction holds at most 100 items")
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": serialize({"PK": pk, "SK": sk, **item}),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
            for (pk, sk), item in markers
        ]
        for (pk, sk), fields in counters.items():
            names = {f"#f{i}": name for i, name in enumerate(fields)}
            values = {f":v{i}": n for i, n in enumerate(fields.values())}
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": serialize({"PK": pk, "SK": sk}),
                        "UpdateExpression": "ADD " + ", ".join(f"#f{i} :v{i}" for i in range(len(fields))),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": serialize(values),
                    }
                }
            )
        if not actions:
            return
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            taken = {
                markers[i][0]
                for i, reason in enumerate(reasons[: len(markers)])
                if (reason or {}).get("Code") == "ConditionalCheckFailed"
            }
            if taken:
                raise MarkersTaken(taken) from error
            raise

    # ------------------------------------------------------------------ reading
    def query(self, pk: str, sk_from: str, sk_to: str) -> list[dict[str, Any]]:
        """Every item of a partition whose sort key lies between the two (inclusive)."""
        return list(
            self._pages(
                "query",
                TableName=self.table,
                KeyConditionExpression="PK = :pk AND SK BETWEEN :a AND :b",
                ExpressionAttributeValues=serialize({":pk": pk, ":a": sk_from, ":b": sk_to}),
            )
        )

    def query_many(self, ranges: list[tuple[str, str, str]]) -> list[list[dict[str, Any]]]:
        """``query`` of each ``(pk, sk_from, sk_to)``, in that order (``concurrently``)."""
        _ = self.client
        return concurrently(lambda r: self.query(*r), ranges)

    def scan_prefix(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every item whose partition key starts with ``prefix`` (``leadflow report verify``)."""
        return self._pages(
            "scan",
            TableName=self.table,
            FilterExpression="begins_with(PK, :p)",
            ExpressionAttributeValues=serialize({":p": prefix}),
        )

    def scan_all(self) -> Iterator[dict[str, Any]]:
        """Every item of the table: counters and markers (``leadflow report verify``)."""
        return self._pages("scan", TableName=self.table)

    def _pages(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator(operation)
        for page in paginator.paginate(**kwargs):
            for item in page.get("Items", []):
                yield deserialize(item)


class DynamoPageViews(LazyClient):
    """The tracking function's page-view counter (``ADD views 1`` as each view is recorded)."""

    SERVICE = "dynamodb"

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table = table_name
        self._client = client

    def viewed(self, key: Key) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": key[0], "SK": key[1]}),
            UpdateExpression="ADD #v :one",
            ExpressionAttributeNames={"#v": "views"},
            ExpressionAttributeValues=serialize({":one": 1}),
        )


class DynamoLeadFacts(LazyClient):
    """What reporting reads of leads (LeadsTable): a profile's creation and first touch."""

    SERVICE = "dynamodb"
    FIELDS = ("lead_id", "created_at", "first_touch", "referred_by", "stage")

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table = table_name
        self._client = client

    def profiles(self, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Profiles by lead id (only what reports need); erased leads are absent."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(lead_ids))
        names = {f"#a{i}": name for i, name in enumerate(self.FIELDS)}
        for start in range(0, len(unique), BATCH_GET_KEYS):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [serialize({"PK": f"LEAD#{i}", "SK": "PROFILE"}) for i in unique[start : start + 100]],
                    "ProjectionExpression": ", ".join(names),
                    "ExpressionAttributeNames": names,
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table, []):
                    profile = deserialize(item)
                    found[str(profile["lead_id"])] = profile
                request = response.get("UnprocessedKeys") or {}
        return found

    def mail_logs(self, lead_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The ``sends`` of the leads' mail logs (which email went out when, its step and variant)."""
        found: dict[str, list[dict[str, Any]]] = {}
        unique = list(dict.fromkeys(lead_ids))
        for start in range(0, len(unique), BATCH_GET_KEYS):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [serialize({"PK": f"LEAD#{i}", "SK": "MAIL"}) for i in unique[start : start + 100]],
                    "ProjectionExpression": "PK, sends",
                }
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table, []):
                    log = deserialize(item)
                    found[str(log["PK"]).removeprefix("LEAD#")] = list(log.get("sends") or [])
                request = response.get("UnprocessedKeys") or {}
        return found

    def form_stats(self, days: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """The capture transaction's counters of these days, per form (``STATS#<day>`` / ``FORM#<id>``),
        in the order of ``days``: each day is its own partition, a Query each (``concurrently``)."""
        client = self.client
        return [row for rows in concurrently(lambda day: self._form_stats_of(client, day), days) for row in rows]

    def _form_stats_of(self, client: Any, day: str) -> list[tuple[str, dict[str, Any]]]:
        paginator = client.get_paginator("query")
        found = []
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :f)",
            ExpressionAttributeValues=serialize({":pk": f"STATS#{day}", ":f": "FORM#"}),
        ):
            for item in page.get("Items", []):
                stats = deserialize(item)
                found.append((str(stats["SK"]).removeprefix("FORM#"), stats))
        return found

    def scan_profiles(self) -> Iterator[dict[str, Any]]:
        """Every lead profile (``leadflow report verify`` recomputes from them)."""
        names = {f"#a{i}": name for i, name in enumerate(self.FIELDS)}
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table,
            FilterExpression="SK = :p",
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize({":p": "PROFILE"}),
        ):
            for item in page.get("Items", []):
                yield deserialize(item)

    def scan_records(self, activity_types: Iterable[str]) -> Iterator[dict[str, Any]]:
        """What ``leadflow report verify`` recomputes the reports from: profiles, mail logs, hand-offs,
        and the activities of these types (of leads and of anonymous visitors)."""
        types = sorted(activity_types)
        values: dict[str, Any] = {":profile": "PROFILE", ":mail": "MAIL", ":handoff": "HANDOFF#", ":act": "ACT#"}
        values.update({f":t{i}": t for i, t in enumerate(types)})
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table,
            FilterExpression=(
                "SK = :profile OR SK = :mail OR begins_with(SK, :handoff) OR "
                f"(begins_with(SK, :act) AND #t IN ({', '.join(f':t{i}' for i in range(len(types)))}))"
            ),
            ExpressionAttributeNames={"#t": "type"},
            ExpressionAttributeValues=serialize(values),
        ):
            for item in page.get("Items", []):
                yield deserialize(item)
