"""The cost meter: what a push campaign costs in AWS calls, per lead, priced for 1,000,000 leads.

Runs N seeded leads through the demo workspace's push sequence (``sequences/push-discount.yaml``:
discount email to everyone -> wait up to 7 days for an open -> product email to openers ->
wait for a click -> coupon -> wait for a click on the ``redeem`` link -> tag + hand-off) on the
local stack (the real ``template.yaml`` on an embedded moto, every handler in this process),
with simulated reactions: ``--open-rate`` of the leads open the discount email (the open pixel
of the email that was really sent, fetched through the local gateway), ``--click-rate`` of
those click a link in the product email, ``--redeem-rate`` of those click the coupon's redeem
link. Then the waits of everyone else run out (the clock is moved 7 days on) and every
enrollment ends.

Every botocore call made in this process is counted by service and operation, through
``before-call`` / ``after-call`` hooks on boto3's default session, registered before any
client exists. Each call is attributed to the Lambda function whose handler made it (a
context variable set around ``LambdaRunner.invoke``, copied into worker threads), to the
benchmark itself (seeding, reading results: not counted), or to the local stack's own
plumbing (its SQS pollers stand in for Lambda event source mappings, its scheduler starts
the tick executions). DynamoDB capacity is *estimated* from item sizes (moto reports no
real consumed capacity): the before and after image of every item written is read from
moto, and read units from the sizes of the items returned; GSI writes are derived from
the table's index definitions. Step Functions state transitions are counted from the
execution histories of the tick executions.

The counts per lead do not depend on N (compare two sizes); the price of a 1,000,000-lead
campaign scales them, with the public us-east-1 prices below, and is compared with the SES
price of the emails the campaign sends. Goal from the issues: orchestration + reporting <= 1% of it (reporting:
the ReportingFunction, its queue, and the nurture functions' `nurture.counted` events).

    cd /work/main && .venv/bin/python bench/nurture_cost.py [--leads N] [--json]
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextvars
import http.client
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pinning import pin, reference_loop_ms  # bench/, beside this script

ROOT = Path(__file__).resolve().parent.parent
SEQUENCE = "push-discount"
ACCOUNT = "123456789012"
REGION = "us-east-1"
CAMPAIGN_LEADS = 1_000_000
SLOWEST_RATE = 14  # SES's default sending rate out of the sandbox; messaging.yaml's default
GOAL_SHARE = 0.01
MAX_FOLLOW_UP_TICKS = 2000

# ---------------------------------------------------------------------------- prices
# Public on-demand prices, us-east-1, as listed on the AWS pricing pages (read 2026-11-23;
# free tiers ignored). DynamoDB: the November 2024 on-demand price cut.
PRICE = {
    "sfn_standard_transition": 0.025 / 1_000,  # Step Functions Standard, per state transition
    "sfn_express_request": 1.00 / 1_000_000,  # Express (Distributed Map children), per execution
    "sfn_express_gb_s": 0.00001667,  # Express duration, per GB-second (first 1,000 GB-hours)
    "lambda_request": 0.20 / 1_000_000,  # Lambda, per request
    "lambda_gb_s_arm64": 0.0000133334,  # Lambda arm64, per GB-second
    "ddb_wru": 0.625 / 1_000_000,  # DynamoDB on-demand, per write request unit
    "ddb_rru": 0.125 / 1_000_000,  # DynamoDB on-demand, per read request unit
    "sqs_request": 0.40 / 1_000_000,  # SQS standard, per request (64 KB chunk)
    "scheduler_invocation": 1.00 / 1_000_000,  # EventBridge Scheduler, per invocation
    "eventbridge_event": 1.00 / 1_000_000,  # EventBridge custom events (PutEvents), per event
    "apigw_http_request": 1.00 / 1_000_000,  # API Gateway HTTP API, per request (first 300M)
    "ses_email": 0.10 / 1_000,  # SES outbound email, per message
    "secrets_api_call": 0.05 / 10_000,  # Secrets Manager, per API call
    # Per month, whatever the traffic (bench/deploy_cost.py's month at rest; read 2026-12-05):
    "kms_key_month": 1.00,  # KMS, per customer managed key
    "secret_month": 0.40,  # Secrets Manager, per secret
    "alarm_month": 0.10,  # CloudWatch, per standard-resolution metric alarm
    # Lambda SnapStart (Python): its snapshot's cache while a version is active, and each restore (read 2026-12-07)
    "snapstart_cache_gb_s": 0.0000015046,  # per GB-second of the function's memory, per active version
    "snapstart_restore_gb": 0.0001397998,  # per GB of the function's memory, per restore (a cold start)
    "ssm_standard_parameter_month": 0.0,  # Systems Manager Parameter Store, standard tier
}
LAMBDA_GB = 0.5  # template.yaml Globals: MemorySize 512, arm64
EXPRESS_GB = 0.0625  # Express bills memory in 64 MB steps; a tick child's payload is tiny
EXPRESS_MIN_S = 0.1  # Express rounds each execution up to the next 100 ms

# Assumed typical in-region latencies of one call from Lambda (ms), used only to model how
# long the handlers would run in AWS (the local durations include moto's own work in this
# process). Not measured here; change them and the modelled Lambda cost moves with them.
ASSUMED_LATENCY_MS = {
    "dynamodb:GetItem": 4,
    "dynamodb:PutItem": 6,
    "dynamodb:UpdateItem": 6,
    "dynamodb:DeleteItem": 6,
    "dynamodb:Query": 6,
    "dynamodb:Scan": 60,
    "dynamodb:BatchGetItem": 12,
    "dynamodb:BatchWriteItem": 20,
    "dynamodb:TransactWriteItems": 15,
    "sesv2:SendEmail": 40,
    "sqs:SendMessage": 8,
    "sqs:SendMessageBatch": 10,
    "events:PutEvents": 15,
    "secretsmanager:GetSecretValue": 20,
    "lambda:Invoke": 20,
}
DEFAULT_LATENCY_MS = 10

NURTURE_FUNCTIONS = ("NurtureDueFunction", "NurtureStepFunction", "NurtureEventsFunction")
TRACKING_FUNCTIONS = ("TrackFunction", "ScoringFunction", "SesEventsFunction", "SegmentsFunction")
"""Priced as tracking: opens and clicks, SES's events of every email, the scoring and the segment
updates they cause (the last two were missing from the meter before issue 17's step 1)."""
HANDOFF_FUNCTIONS = ("CrmHandoffFunction",)
RELAY = "OutboxRelayFunction"

_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_function", default=None)
_harness: contextvars.ContextVar[bool] = contextvars.ContextVar("bench_harness", default=False)
_parallel: contextvars.ContextVar[int] = contextvars.ContextVar("bench_parallel", default=1)
"""Worker threads of the pool the current call is made from (1 on the handler's own thread)."""


# ---------------------------------------------------------------------------- DynamoDB sizes


def _value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value, by DynamoDB's item size rules (DynamoDB JSON)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = len(str(raw).lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(base64.b64decode(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in raw.items())
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(_value_size({"N": n}) for n in raw)
    if kind == "BS":
        return sum(_value_size({"B": b}) for b in raw)
    return 0


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _units(size: int, per: int) -> int:
    return max(1, math.ceil(size / per))


@dataclass
class Index:
    name: str
    hash_key: str
    range_key: str | None
    projection: str
    """ALL, KEYS_ONLY or INCLUDE."""
    non_key_attributes: tuple[str, ...] = ()
    """What an INCLUDE index copies besides the keys (its NonKeyAttributes)."""

    def entry(self, image: dict[str, Any]) -> dict[str, Any]:
        """What the index keeps of an item it holds: all of it, or the table's and the index's keys
        (and, for INCLUDE, its non-key attributes the item has)."""
        if self.projection == "ALL":
            return image
        names = {"PK", "SK", self.hash_key, *([self.range_key] if self.range_key else [])}
        if self.projection == "INCLUDE":
            names.update(self.non_key_attributes)
        return {k: v for k, v in image.items() if k in names}


@dataclass
class DdbUsage:
    calls: Counter[str] = field(default_factory=Counter)
    rru: float = 0.0
    wru: float = 0.0
    gsi_wru: float = 0.0
    failed_writes: int = 0
    wru_by_item: Counter[str] = field(default_factory=Counter)
    """Write units (table + GSI) by operation and item kind: where the writes go."""


class DynamoModel:
    """Reads item images from moto's backend (in this process) to estimate capacity units."""

    def __init__(self, table: str, indexes: list[Index]) -> None:
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.dynamo_type import DynamoType

        from leadflow.dev import moto_dynamodb

        self.table_name = table
        self.table = dynamodb_backends[ACCOUNT][REGION].get_table(table)
        self.dynamo_type = DynamoType
        self.indexes = indexes
        self.lock = moto_dynamodb.DYNAMODB_LOCK
        self._avg_size: tuple[int, float] = (-1, 0.0)

    def image(self, key: dict[str, Any]) -> dict[str, Any] | None:
        hash_key = self.dynamo_type(key["PK"])
        range_key = self.dynamo_type(key["SK"])
        with self.lock:
            partition = self.table.items.get(hash_key) if hash_key in self.table.items else None
            item = partition.get(range_key) if partition else None
            return item.to_json()["Attributes"] if item is not None else None

    def measure_average_item_size(self) -> None:
        """Average size of the table's items, taken once after seeding (what the broadcast's Scan reads per item)."""
        with self.lock:
            sizes = [item_size(i.to_json()["Attributes"]) for i in self.table.all_items()]
        self._avg_size = (len(sizes), sum(sizes) / len(sizes) if sizes else 0.0)

    def average_item_size(self) -> float:
        return self._avg_size[1]

    def gsi_units(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> int:
        return gsi_units(self.indexes, old, new)


def gsi_units(indexes: list[Index], old: dict[str, Any] | None, new: dict[str, Any] | None) -> int:
    """The index write units of one item's write, from its images before and after (None: absent):
    an entry removed costs 1; an entry written (new keys, or the same keys with something it keeps
    changed: anything for ALL, a NonKeyAttribute for INCLUDE, never for KEYS_ONLY) costs its size
    (what the index keeps of the item, plus 100 bytes) in 1 KB units."""
    units = 0
    for index in indexes:
        names = [index.hash_key] + ([index.range_key] if index.range_key else [])

        def keys(image: dict[str, Any] | None, names: list[str] = names) -> tuple[Any, ...] | None:
            if not image or any(n not in image for n in names):
                return None
            return tuple(json.dumps(image[n], sort_keys=True) for n in names)

        before, after = keys(old), keys(new)
        if before is None and after is None:
            continue
        entry = index.entry(new or {})
        if before == after:
            if index.entry(old or {}) != entry:
                units += _units(item_size(entry) + 100, 1024)
            continue
        if before is not None:
            units += 1
        if after is not None:
            units += _units(item_size(entry) + 100, 1024)
    return units


# ---------------------------------------------------------------------------- the meter


@dataclass
class Meter:
    """Counts every botocore call of this process, attributed to a function, the stack or the bench."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    ddb: dict[str, DdbUsage] = field(default_factory=lambda: defaultdict(DdbUsage))
    aws_ms: Counter[str] = field(default_factory=Counter)
    modelled_ms: Counter[str] = field(default_factory=Counter)
    put_events_entries: Counter[tuple[str, str]] = field(default_factory=Counter)
    sqs_received: Counter[str] = field(default_factory=Counter)
    sqs_nonempty_receives: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    hook_cpu_ms: Counter[str] = field(default_factory=Counter)
    """CPU the meter's own hooks spent in a handler's thread (taken off the handler's CPU)."""
    dynamo: DynamoModel | None = None
    tap_queue: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    # owner: a function's logical id, "bench" (not counted) or "stack:<role>"
    def owner(self, operation: str, params: dict[str, Any]) -> str:
        function = _function.get()
        if function:
            return function
        if _harness.get():
            return "bench"
        if operation.startswith("sqs:"):
            if self.tap_queue and params.get("QueueUrl") == self.tap_queue:
                return "stack:dev console tap"
            return "stack:event source mapping"
        if operation == "stepfunctions:StartExecution":
            return "stack:scheduler"
        if operation == "lambda:Invoke":
            return "stack:step functions task"
        return "stack:other"

    def before_parameter_build(self, params: Any = None, context: Any = None, **_: Any) -> None:
        # The API parameters (before-call only sees the serialized request).
        if context is not None and isinstance(params, dict):
            context["bench_params"] = params

    def before_call(self, model: Any = None, context: Any = None, **_: Any) -> None:
        cpu = time.thread_time()
        try:
            self._before_call(model, context)
        except Exception as error:  # noqa: BLE001 - a meter bug must never break the handler it watches
            self.errors[f"bench hook before-call {type(error).__name__}: {error}"] += 1
        self._hook_cpu(cpu)

    def _hook_cpu(self, since: float) -> None:
        owner = _function.get()
        if owner:
            spent = (time.thread_time() - since) * 1000
            with self.lock:
                self.hook_cpu_ms[owner] += spent

    def _before_call(self, model: Any, context: Any) -> None:
        if model is None or context is None:
            return
        params = context.get("bench_params") or {}
        operation = f"{model.service_model.service_name}:{model.name}"
        owner = self.owner(operation, params)
        context["bench"] = {"owner": owner, "op": operation, "t0": time.perf_counter(), "old": None}
        with self.lock:
            self.calls[(owner, operation)] += 1
            if operation == "events:PutEvents" and owner != "bench":
                for entry in params.get("Entries", []):
                    source = str(entry.get("Source"))
                    if entry.get("DetailType") == COUNTED:  # the nurture functions' counts for the reports
                        source = f"{source} {COUNTED}"
                    self.put_events_entries[(owner, source)] += 1
        if owner != "bench" and operation.startswith("dynamodb:") and self.dynamo is not None:
            context["bench"]["old"] = [(k, self.dynamo.image(k)) for k in _written_keys(model.name, params)]

    def after_call(
        self, http_response: Any = None, parsed: Any = None, model: Any = None, context: Any = None, **_: Any
    ) -> None:
        cpu = time.thread_time()
        try:
            self._after_call(http_response, parsed, model, context)
        except Exception as error:  # noqa: BLE001 - a meter bug must never break the handler it watches
            self.errors[f"bench hook after-call {type(error).__name__}: {error}"] += 1
        self._hook_cpu(cpu)

    def _after_call(self, http_response: Any, parsed: Any, model: Any, context: Any) -> None:
        info = (context or {}).get("bench")
        if not info or info["owner"] == "bench":
            return
        owner, operation = info["owner"], info["op"]
        elapsed_ms = (time.perf_counter() - info["t0"]) * 1000
        status = getattr(http_response, "status_code", 500) if http_response is not None else 500
        with self.lock:
            self.aws_ms[owner] += elapsed_ms
            # Calls made by the k threads of a pool wait at the same time: each adds 1/k of its
            # latency to the invocation's modelled duration (the pool is full while a batch is worked).
            self.modelled_ms[owner] += ASSUMED_LATENCY_MS.get(operation, DEFAULT_LATENCY_MS) / _parallel.get()
            if status >= 300:
                self.errors[f"{owner} {operation} {status}"] += 1
            if operation == "sqs:ReceiveMessage" and isinstance(parsed, dict):
                got = len(parsed.get("Messages") or [])
                if got:
                    url = str((context.get("bench_params") or {}).get("QueueUrl") or "")
                    self.sqs_nonempty_receives[url] += 1
                    self.sqs_received[url] += got
        if operation.startswith("dynamodb:") and self.dynamo is not None:
            self._dynamodb(owner, model.name, context, parsed if isinstance(parsed, dict) else {}, status)

    def after_call_error(self, context: Any = None, exception: Any = None, **_: Any) -> None:
        info = (context or {}).get("bench")
        if info and info["owner"] != "bench":
            with self.lock:
                self.errors[f"{info['owner']} {info['op']} {type(exception).__name__}"] += 1

    def _dynamodb(self, owner: str, name: str, context: dict[str, Any], parsed: dict[str, Any], status: int) -> None:
        assert self.dynamo is not None
        params = context.get("bench_params") or {}
        usage = DdbUsage()
        usage.calls[name] += 1
        ok = status < 300
        if name in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"):
            factor = 2 if name == "TransactWriteItems" else 1
            kinds = _written_kinds(name, params)
            for (key, old), kind in zip(context["bench"]["old"] or [], kinds, strict=False):
                new = self.dynamo.image(key) if ok else old
                units = factor * _units(max(item_size(old), item_size(new)), 1024)
                gsi = self.dynamo.gsi_units(old, new) if ok else 0
                usage.wru += units
                usage.gsi_wru += gsi
                usage.wru_by_item[f"{name} {kind} {_item_kind(key)}"] += units + gsi
            if not ok:
                usage.failed_writes += 1
        elif name == "GetItem":
            factor = 1.0 if params.get("ConsistentRead") else 0.5
            usage.rru += factor * _units(item_size(parsed.get("Item")), 4096)
        elif name == "BatchGetItem":
            for table, request in (params.get("RequestItems") or {}).items():
                factor = 1.0 if request.get("ConsistentRead") else 0.5
                found = {
                    (i["PK"]["S"], i["SK"]["S"]): item_size(i)
                    for i in (parsed.get("Responses") or {}).get(table, [])
                    if "PK" in i and "SK" in i
                }
                unprocessed = len(((parsed.get("UnprocessedKeys") or {}).get(table) or {}).get("Keys") or [])
                for key in request.get("Keys", [])[: max(0, len(request.get("Keys", [])) - unprocessed)]:
                    usage.rru += factor * _units(found.get((key["PK"]["S"], key["SK"]["S"]), 0), 4096)
        elif name == "Query":
            factor = 1.0 if params.get("ConsistentRead") else 0.5
            usage.rru += factor * _units(sum(item_size(i) for i in parsed.get("Items") or []), 4096)
        elif name == "Scan":
            factor = 1.0 if params.get("ConsistentRead") else 0.5
            scanned = int(parsed.get("ScannedCount") or 0)
            usage.rru += factor * _units(int(scanned * self.dynamo.average_item_size()), 4096)
        with self.lock:
            total = self.ddb[owner]
            total.calls.update(usage.calls)
            total.rru += usage.rru
            total.wru += usage.wru
            total.gsi_wru += usage.gsi_wru
            total.failed_writes += usage.failed_writes
            total.wru_by_item.update(usage.wru_by_item)

    def install(self) -> None:
        import boto3

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        events.register("before-parameter-build", self.before_parameter_build, unique_id="bench-cost-params")
        events.register("before-call", self.before_call, unique_id="bench-cost-before")
        events.register("after-call", self.after_call, unique_id="bench-cost-after")
        events.register("after-call-error", self.after_call_error, unique_id="bench-cost-error")


def _item_kind(key: dict[str, Any]) -> str:
    pk, sk = key["PK"]["S"], key["SK"]["S"]
    if sk.startswith("EVENT#"):
        return "outbox event"
    if sk in ("PROFILE", "SUPPRESS", "RATE", "EVENT", "HEAD"):
        return "outbox event" if sk == "EVENT" else ("send-rate counter" if pk.startswith("SESRATE#") else sk.lower())
    return sk.split("#", 1)[0].lower() if "#" in sk else sk.lower()


def _written_kinds(operation: str, params: dict[str, Any]) -> list[str]:
    """For each written key (in ``_written_keys`` order), the kind of write."""
    if operation == "TransactWriteItems":
        return [next(iter(entry)) for entry in params.get("TransactItems") or []]
    if operation == "BatchWriteItem":
        return [
            "Put" if "PutRequest" in r else "Delete" for rs in (params.get("RequestItems") or {}).values() for r in rs
        ]
    return [operation.removesuffix("Item")] * len(_written_keys(operation, params))


def _written_keys(operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    def key(item: dict[str, Any]) -> dict[str, Any]:
        return {"PK": item["PK"], "SK": item["SK"]}

    if operation == "PutItem":
        return [key(params["Item"])]
    if operation in ("UpdateItem", "DeleteItem"):
        return [key(params["Key"])]
    if operation == "BatchWriteItem":
        keys = []
        for requests in (params.get("RequestItems") or {}).values():
            for request in requests:
                if "PutRequest" in request:
                    keys.append(key(request["PutRequest"]["Item"]))
                elif "DeleteRequest" in request:
                    keys.append(key(request["DeleteRequest"]["Key"]))
        return keys
    if operation == "TransactWriteItems":
        keys = []
        for entry in params.get("TransactItems") or []:
            ((kind, body),) = entry.items()
            keys.append(key(body["Item"] if kind == "Put" else body["Key"]))
        return keys
    return []


# ---------------------------------------------------------------------------- the stack


def prepare_workspace(send_rate: int) -> Path:
    """A copy of the demo workspace, with the SES send rate of the run (everything else as shipped)."""
    folder = Path(tempfile.mkdtemp(prefix="leadflow-bench-ws-"))
    workspace = folder / "workspace"
    shutil.copytree(ROOT / "workspace", workspace)
    messaging = workspace / "messaging.yaml"
    text, count = re.subn(
        r"^send_rate_per_second:\s*\d+", f"send_rate_per_second: {send_rate}", messaging.read_text(), flags=re.M
    )
    if count != 1:
        raise SystemExit("messaging.yaml has no send_rate_per_second line to change")
    messaging.write_text(text)
    return workspace


def propagate_context_to_threads(invocations: Invocations) -> None:
    """Worker threads (``shards_with_due`` queries shards in a pool, the step works the leads of a
    batch in a pool, a broadcast writes a page in a pool) keep the caller's attribution; their CPU
    time is added to the function's, and their calls are marked with the pool's size (their
    latencies overlap: see ``Meter._after_call``)."""
    original = concurrent.futures.ThreadPoolExecutor.submit

    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        workers = int(getattr(self, "_max_workers", 1) or 1)

        def run(*inner: Any, **named: Any) -> Any:
            _parallel.set(workers)
            cpu = time.thread_time()
            try:
                return fn(*inner, **named)
            finally:
                owner = _function.get()
                if owner and not _harness.get():
                    with invocations.lock:
                        invocations.cpu_ms[owner] += (time.thread_time() - cpu) * 1000

        return original(self, contextvars.copy_context().run, run, *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]


@dataclass
class Invocations:
    count: Counter[str] = field(default_factory=Counter)
    local_ms: Counter[str] = field(default_factory=Counter)
    cpu_ms: Counter[str] = field(default_factory=Counter)
    """CPU time of the handler's own thread (not moto's, which serves it from other threads)."""
    sleep_ms: Counter[str] = field(default_factory=Counter)
    """Time the handlers slept (waiting for a send slot, backing off)."""
    failed: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    """Step Functions retries of a task state, by error (a failed Lambda call, a timeout...)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def slept(self, seconds: float) -> None:
        """A handler slept; k pool threads sleeping at once add 1/k each (the invocation's time is billed once)."""
        owner = _function.get()
        if owner:
            with self.lock:
                self.sleep_ms[owner] += seconds * 1000 / _parallel.get()


def watch_retries(invocations: Invocations) -> None:
    """Count the retries moto's Step Functions interpreter makes (the children keep no history we can read)."""
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state

    original = execute_state.ExecutionState._handle_retry

    def handle_retry(self: Any, env: Any, failure_event: Any) -> Any:
        error = getattr(failure_event, "error_name", None)
        name = getattr(error, "error_name", None) or str(error)
        with invocations.lock:
            invocations.retries[f"{getattr(self, 'name', '?')}: {name}"] += 1
        return original(self, env, failure_event)

    execute_state.ExecutionState._handle_retry = handle_retry  # type: ignore[method-assign]


def label_of(logical_id: str, event: Any) -> str:
    """The function, and for the two nurture functions with two triggers, which one."""
    if logical_id == "NurtureStepFunction":
        return f"{logical_id}[{'due-now queue' if isinstance(event, dict) and 'Records' in event else 'tick'}]"
    if logical_id == "NurtureDueFunction":
        return f"{logical_id}[{'broadcast' if isinstance(event, dict) and event.get('broadcast') else 'plan'}]"
    return logical_id


def wrap_runner(stack: Any, invocations: Invocations) -> None:
    original = stack.runner.invoke

    def invoke(function_ref: str, event: Any) -> Any:
        label = label_of(stack.runner.functions[function_ref].logical_id, event)
        token, harness = _function.set(label), _harness.set(False)
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(function_ref, event)
        except Exception:
            with invocations.lock:
                invocations.failed[label] += 1
            raise
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            cpu_ms = (time.thread_time() - cpu) * 1000
            with invocations.lock:
                invocations.count[label] += 1
                invocations.local_ms[label] += elapsed
                invocations.cpu_ms[label] += cpu_ms
            _function.reset(token)
            _harness.reset(harness)

    stack.runner.invoke = invoke


class Harness:
    """Marks the calls the benchmark itself makes (seeding, reading results): never counted."""

    def __enter__(self) -> None:
        self._token = _harness.set(True)

    def __exit__(self, *_: object) -> None:
        _harness.reset(self._token)


def table_indexes(stack: Any, table: str) -> list[Index]:
    with Harness():
        described = stack.client("dynamodb").describe_table(TableName=table)["Table"]
    indexes = []
    for gsi in described.get("GlobalSecondaryIndexes", []):
        schema = {k["KeyType"]: k["AttributeName"] for k in gsi["KeySchema"]}
        projection = gsi["Projection"]
        indexes.append(
            Index(
                gsi["IndexName"],
                schema["HASH"],
                schema.get("RANGE"),
                projection["ProjectionType"],
                tuple(projection.get("NonKeyAttributes", ())),
            )
        )
    return indexes


# ---------------------------------------------------------------------------- seeding (not counted)

FIRST = ("Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Kim", "Lena")
LAST = ("Schmidt", "Martin", "Jansen", "Garcia", "Rossi", "Huber", "Peeters", "Smith", "Murphy", "Silva")
# Countries whose timezone is UTC+0 or UTC+1: at 09:00-17:00 UTC it is daytime for all of them.
COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "AT", "BE", "GB", "IE", "PT")
PERSONAL = ("gmail.com", "outlook.com", "web.de", "yahoo.fr", "gmx.net")


def profile_item(n: int, lead_id: str, at: str, rng: random.Random) -> dict[str, Any]:
    """A lead profile as form capture stores it (adapters/dynamo_capture.py), in DynamoDB JSON."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    company = n % 2 == 0
    domain = f"company{n % 9973}.example" if company else rng.choice(PERSONAL)
    email = f"{first}.{last}.{n}@{domain}".lower()
    touch = {"M": {"channel": {"S": "form"}, "form_id": {"S": "demo-signup"}, "at": {"S": at}}}
    item: dict[str, Any] = {
        "PK": {"S": f"LEAD#{lead_id}"},
        "SK": {"S": "PROFILE"},
        "lead_id": {"S": lead_id},
        "email": {"S": email},
        "email_domain": {"S": domain},
        "first_name": {"S": first},
        "last_name": {"S": last},
        "country": {"S": rng.choice(COUNTRIES)},
        "stage": {"S": "lead"},
        # The push campaign's database: everyone gave consent on the form (checked at every send).
        "consent_marketing_email": {
            "M": {"granted": {"BOOL": True}, "at": {"S": at}, "form_id": {"S": "demo-signup"}, "version": {"S": "1"}}
        },
        "created_at": {"S": at},
        "updated_at": {"S": at},
        "first_touch": touch,
        "last_touch": touch,
        "last_form_id": {"S": "demo-signup"},
        "submissions": {"N": "1"},
        "scores": {"M": {"smb": {"N": "20.0"}, "key_account": {"N": "20.0"}, "customer": {"N": "10.0"}}},
        "grade": {"S": "D"},
        "score_version": {"N": "1"},
        "scored_at": {"S": at},
        "GSI2PK": {"S": f"LEADS#{at[:7]}"},
        "GSI2SK": {"S": f"{at}#{lead_id}"},
        "GSI3PK": {"S": "STAGE#lead"},
        "GSI3SK": {"S": lead_id},
    }
    if company:
        item["company"] = {"S": f"Company {n % 9973}"}
        item["account_domain"] = {"S": domain}
        item["GSI5PK"] = {"S": f"ACCOUNT#{domain}"}
        item["GSI5SK"] = {"S": f"LEAD#{lead_id}"}
    return item


def seed(stack: Any, table: str, leads: int, rng: random.Random) -> list[str]:
    from leadflow.domain.ids import new_id

    created = stack.clock.now() - timedelta(days=30)
    ids = []
    requests = []
    for n in range(leads):
        at = (created + timedelta(seconds=n)).isoformat()
        lead_id = new_id(created + timedelta(seconds=n))
        ids.append(lead_id)
        requests.append({"PutRequest": {"Item": profile_item(n, lead_id, at, rng)}})
    client = stack.client("dynamodb")
    with Harness():
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {table: requests[start : start + 25]}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    seed_memberships(stack, table)
    return ids


def seed_memberships(stack: Any, table: str) -> dict[str, int]:
    """What each lead's capture left besides its profile: the segments function evaluated the new
    lead then (``lead.captured``), so a database the campaign starts from has its segments' members
    (``all-subscribers``: everyone who may get marketing email). The product's own back-fill writes
    them (``leadflow segment refresh``), not counted: they are the capture's, not the campaign's.
    Without them, a lead's first tracked open joined it to ``all-subscribers``, and the campaign paid
    for it (the meter read 3.41 write units per open or click in the segments function)."""
    from leadflow.bootstrap.admin_api import segment_service_for
    from leadflow.config.workspace import Workspace

    with Harness():
        return segment_service_for(table, Workspace(stack.workspace)).refresh()


# ---------------------------------------------------------------------------- reactions (through the gateway)


class Outbox:
    """The emails moto's SES kept, indexed by leadflow's message id (X-Leadflow-Message)."""

    HEADER = re.compile(r"^X-Leadflow-Message: (\S+)", re.M)

    def __init__(self) -> None:
        from moto.ses.models import ses_backends

        self.messages = ses_backends[ACCOUNT][REGION].sent_messages
        self.by_id: dict[str, Any] = {}
        self._seen = 0

    def refresh(self) -> int:
        for message in self.messages[self._seen :]:
            raw = getattr(message, "raw_data", "")
            found = self.HEADER.search(raw[:4000])
            if found:
                self.by_id[found.group(1)] = message
        self._seen = len(self.messages)
        return self._seen

    def links(self, message_id: str) -> tuple[str | None, list[tuple[str, str]]]:
        """The open pixel URL and the (link tag, URL) of every tracked link of one email."""
        from email import message_from_string, policy

        message = self.by_id.get(message_id)
        if message is None:
            return None, []
        parsed = message_from_string(message.raw_data, policy=policy.default)
        body = parsed.get_body(preferencelist=("html",))
        html = body.get_content() if body is not None else ""
        pixel = re.search(r'src="([^"]*/t/o/[^"]+)"', html)
        clicks = []
        for url in re.findall(r'href="([^"]*/t/c/[^"]+)"', html):
            payload = url.rsplit("/t/c/", 1)[1].split(".", 1)[0]
            try:
                data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            except ValueError:
                data = {}
            clicks.append((str(data.get("k") or ""), url))
        return (pixel.group(1) if pixel else None), clicks


def fetch_all(urls: list[str], threads: int = 4) -> Counter[int]:
    """GET every URL through the local gateway (as a mail client or browser would); statuses counted."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    chunks = [urls[i::threads] for i in range(threads)]

    def work(part: list[str], worker: int) -> None:
        connection: http.client.HTTPConnection | None = None
        for n, url in enumerate(part):
            parsed = urllib.parse.urlsplit(url)
            if connection is None:
                connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
            headers = {"X-Forwarded-For": f"203.0.{worker}.{n % 250 + 1}", "User-Agent": "bench-mail-client"}
            try:
                connection.request("GET", parsed.path, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = None
                status = 0
            with lock:
                statuses[status] += 1
        if connection is not None:
            connection.close()

    pool = [threading.Thread(target=work, args=(chunk, i)) for i, chunk in enumerate(chunks)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return statuses


# ---------------------------------------------------------------------------- Step Functions


@dataclass
class Executions:
    arns: list[str] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)
    entered: Counter[str] = field(default_factory=Counter)
    """StateEntered events of the tick executions, by state name (the parent's states)."""
    children: int = 0
    """Distributed Map child executions: the shards PlanShards handed to the map."""


def execution_events(stack: Any, machine_arn: str, skip: set[str]) -> Executions:
    """The tick executions (but ``skip``), their history events, states entered and map children.

    moto keeps the Distributed Map children out of the parent's history (AWS too: each child
    execution has its own); the number of children is the ``count`` PlanShards returned,
    for every execution that entered the map.
    """
    sfn = stack.client("stepfunctions")
    found = Executions()
    types, entered, arns = found.types, found.entered, found.arns
    with Harness():
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine_arn):
            for execution in page["executions"]:
                if execution["executionArn"] in skip:
                    continue
                arns.append(execution["executionArn"])
                token = None
                while True:
                    kwargs: dict[str, Any] = {"executionArn": execution["executionArn"], "maxResults": 1000}
                    if token:
                        kwargs["nextToken"] = token
                    history = sfn.get_execution_history(**kwargs)
                    planned = 0
                    for event in history["events"]:
                        types[event["type"]] += 1
                        if event["type"].endswith("StateEntered"):
                            entered[event.get("stateEnteredEventDetails", {}).get("name", "?")] += 1
                        if event["type"] == "TaskSucceeded":
                            output = json.loads(event.get("taskSucceededEventDetails", {}).get("output") or "{}")
                            payload = output.get("Payload", output) if isinstance(output, dict) else {}
                            if isinstance(payload, dict) and "shards" in payload:
                                planned += int(payload.get("count") or 0)
                        if event["type"] == "MapRunStarted":
                            found.children += planned
                    token = history.get("nextToken")
                    if not token:
                        break
    return found


# ---------------------------------------------------------------------------- local stack speed


def patient_clients() -> None:
    """The product's boto3 clients wait up to 120 s for an answer (5 s in ``leadflow/adapters/aws.py``).

    moto on this machine answers some calls of a large run (a Scan page of a table of tens of
    thousands of items, under the local stack's DynamoDB lock) slower than that, which AWS
    does not; a timeout would make botocore retry and count calls AWS would not see. Set
    before any handler creates its clients.
    """
    from botocore.config import Config

    from leadflow.adapters import aws

    aws.CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=120)


# ---------------------------------------------------------------------------- the campaign


def quiet_logs() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


@dataclass
class Phase:
    name: str
    wall_s: float
    calls: int
    invocations: int
    clock: str


class Campaign:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.meter = Meter()
        self.invocations = Invocations()
        self.phases: list[Phase] = []
        self.follow_up_ticks = 0
        self.rng = random.Random(args.seed)
        self.stack: Any = None

    def _totals(self) -> tuple[int, int]:
        calls = sum(n for (owner, _), n in self.meter.calls.items() if owner != "bench")
        return calls, sum(self.invocations.count.values())

    def phase(self, name: str, action: Any) -> Any:
        calls, invoked = self._totals()
        started = time.perf_counter()
        result = action()
        after_calls, after_invoked = self._totals()
        self.phases.append(
            Phase(
                name,
                round(time.perf_counter() - started, 2),
                after_calls - calls,
                after_invoked - invoked,
                self.stack.clock.now().isoformat(timespec="seconds"),
            )
        )
        if self.args.verbose:
            print(f"  {name}: {self.phases[-1]}", file=sys.stderr, flush=True)
        return result

    def broadcast(self) -> Any:
        """What the admin API's asynchronous invoke starts: the run, whose parts the broadcast state
        machine runs (a Distributed Map of hops, round after round); waits until it is done.

        ``--parts`` parts, not the ``broadcast_parts`` of the run's SES rate (500 at the 10,000/s
        the meter runs at, to be quick: 4 leads a part here). What a part costs per lead does not
        depend on their number; the rounds' Step Functions charges are priced from the model of
        ``bench/broadcast_drain.py`` (section "broadcast state machine" of the price)."""
        event = {"broadcast": SEQUENCE, "run": "bench-run", "segments": self.args.parts}
        started = self.stack.runner.invoke("NurtureDueFunction", event)
        with Harness():
            while self.stack.running_executions():
                time.sleep(0.1)
        return started

    def tick(self) -> int:
        """One tick, then, as the 5-minute schedule would, another every 5 minutes while
        enrollments are due within the next 5 minutes (sends deferred by the SES rate, backed
        off after an error). Returns the number of ticks."""
        ticks = self.tick_once()
        while ticks < MAX_FOLLOW_UP_TICKS and self.due_within(timedelta(minutes=5)):
            self.stack.clock.advance(300)
            ticks += self.tick_once()
        self.follow_up_ticks += ticks - 1
        return ticks

    def due_within(self, window: timedelta) -> int:
        """Active enrollments of the campaign due before now + ``window`` (read from moto, not counted)."""
        assert self.meter.dynamo is not None
        limit = (self.stack.clock.now() + window).isoformat()
        with self.meter.dynamo.lock:
            items = list(self.meter.dynamo.table.all_items())
        due = 0
        for item in items:
            attrs = item.attrs
            status, due_at = attrs.get("status"), attrs.get("due_at")
            if status is not None and status.value == "active" and due_at is not None and due_at.value <= limit:
                due += 1
        return due

    def tick_once(self) -> int:
        """Fire the due schedules, then pump the event sources until the stack is idle.

        Before 27f6520 ``LocalStack.tick()`` did not wait for state machine executions (its
        ``running_executions()`` looked in moto's plain Step Functions backend while the
        executions run in the interpreting one, ``stepfunctions_parser_backends``); this waits
        for them in the right backend whatever the stack does. New ticks are not fired
        meanwhile (in AWS one would fire every 5 minutes of a long wave).
        """
        stack = self.stack
        with stack._pump_lock:
            fired = int(stack.fire_due_schedules())
            idle = 0
            while idle < 3:
                delivered = stack.pump_once()
                running = stack.running_executions()
                idle = idle + 1 if delivered == 0 and running == 0 else 0
                if delivered == 0:
                    time.sleep(0.05 if running else 0.01)
        return fired

    def finish(self) -> int:
        """Move the clock to the next due enrollment and tick, until none is active (normally none is)."""
        rounds = ticks = 0
        while rounds < MAX_FOLLOW_UP_TICKS and self.due_within(timedelta(days=30)):
            rounds += 1
            if not self.due_within(timedelta(minutes=5)):
                self.stack.clock.advance(6 * 3600)
                continue
            self.stack.clock.advance(300)
            ticks += self.tick()
        return ticks

    def _watch_sleeps(self) -> None:
        """The nurture functions' shared service (one per process here, as in a warm Lambda): count its sleeps."""
        from leadflow.bootstrap.nurture import nurture_service

        with Harness():
            service = nurture_service()
        invocations = self.invocations

        def sleep(seconds: float) -> None:
            invocations.slept(seconds)
            time.sleep(seconds)

        service._sleep = sleep
        service.store._sleep = sleep
        if hasattr(service.sender, "_sleep"):
            service.sender._sleep = sleep

    def advance_to(self, target: datetime) -> None:
        seconds = (target - self.stack.clock.now()).total_seconds()
        if seconds > 0:
            self.stack.clock.advance(seconds)

    def run(self) -> dict[str, Any]:
        from leadflow.dev.stack import LocalStack
        from leadflow.domain.nurture import message_id_for

        args = self.args
        quiet_logs()
        propagate_context_to_threads(self.invocations)
        patient_clients()
        self.meter.install()  # before any client exists: every client copies the session's hooks
        workspace = prepare_workspace(args.send_rate)
        wall = time.perf_counter()
        stack = LocalStack(
            ROOT,
            workspace,
            port=0,
            parameters={"RateLimitPerMinute": "1000000", "NurtureShards": str(args.shards)},
            log_level="ERROR",
        )
        self.stack = stack
        with Harness():  # deploying the stack is no part of the campaign
            stack.start()
            template_queue_delays(stack)
        try:
            return self._campaign(stack, message_id_for, wall)
        finally:
            stack.stop()
            shutil.rmtree(workspace.parent, ignore_errors=True)

    def _campaign(self, stack: Any, message_id_for: Any, wall: float) -> dict[str, Any]:
        args = self.args
        # The bench drives the stack with tick() alone: no background pump racing it.
        stack._stop.set()
        for thread in stack._threads:
            if thread.name == "leadflow-pump":
                thread.join(timeout=10)
        # Only the nurture tick's schedule runs (the daily decay sweep is no part of a campaign).
        stack.schedules = [s for s in stack.schedules if s.target == "NurtureTickStateMachine"]
        self.meter.tap_queue = stack._tap_url
        wrap_runner(stack, self.invocations)
        watch_retries(self.invocations)
        self._watch_sleeps()
        table = stack.physical["LeadsTable"]
        machine = stack.physical["NurtureTickStateMachine"]
        self.meter.dynamo = DynamoModel(table, table_indexes(stack, table))
        outbox = Outbox()

        # Daytime for every lead (UTC+0/+1) from here on: the next 09:00 UTC.
        now = stack.clock.now()
        nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
        self.advance_to(nine if nine > now else nine + timedelta(days=1))

        # One tick with nothing due: what every idle tick costs (kept apart from the campaign).
        self.phase("idle tick (nothing due)", self.tick)
        idle = {
            "calls": {f"{o} {op}": n for (o, op), n in self.meter.calls.items() if o != "bench"},
            "invocations": dict(self.invocations.count),
            "local_ms": dict(self.invocations.local_ms),
            "modelled_ms": dict(self.meter.modelled_ms),
            "rru": sum(u.rru for u in self.meter.ddb.values()),
            "wru": sum(u.wru for u in self.meter.ddb.values()),
        }
        idle_runs = execution_events(stack, machine, set())
        idle["transitions"] = sum(idle_runs.entered.values()) + idle_runs.children
        idle["states"] = dict(idle_runs.entered)
        self.meter = _reset(self.meter)
        self.invocations = _reset_invocations(self.invocations)

        ids = self.phase("seed leads (not counted)", lambda: seed(stack, table, args.leads, self.rng))
        self.meter.dynamo.measure_average_item_size()
        self.phase("broadcast: enroll the segment (parallel parts)", self.broadcast)
        stack.clock.advance(300)
        self.phase("tick 5 min later (leads the broadcast left due)", self.tick)
        discount_end = stack.clock.now()
        outbox.refresh()

        openers = self.rng.sample(ids, round(len(ids) * args.open_rate))
        clickers = self.rng.sample(openers, round(len(openers) * args.click_rate))
        redeemers = self.rng.sample(clickers, round(len(clickers) * args.redeem_rate))
        reactions: dict[str, Any] = {}

        def react(leads: list[str], step: str, tag: str | None) -> None:
            urls = []
            missing = 0
            for lead_id in leads:
                pixel, clicks = outbox.links(message_id_for(lead_id, SEQUENCE, 1, step))
                url = pixel if tag is None else next((u for t, u in clicks if tag in (t, "*")), None)
                if url is None:
                    missing += 1
                else:
                    urls.append(url)
            statuses = fetch_all(urls)
            reactions[step] = {
                "leads": len(leads),
                "requests": len(urls),
                "no_email": missing,
                "statuses": dict(statuses),
            }

        stack.clock.advance(86400)
        self.phase(f"{len(openers)} open the discount email (open pixel)", lambda: react(openers, "discount", None))
        self.phase("tick: product email to openers", self.tick)
        product_end = stack.clock.now()
        outbox.refresh()
        stack.clock.advance(86400)
        self.phase(f"{len(clickers)} click in the product email", lambda: react(clickers, "product", "*"))
        self.phase("tick: coupon to clickers", self.tick)
        coupon_end = stack.clock.now()
        outbox.refresh()
        stack.clock.advance(86400)
        self.phase(f"{len(redeemers)} click the coupon's redeem link", lambda: react(redeemers, "coupon", "redeem"))
        self.phase("tick: tag + hand-off for redeemers", self.tick)
        for name, end in (
            ("tick: 7-day waits of the discount run out", discount_end),
            ("tick: waits of the product email run out", product_end),
            ("tick: waits of the coupon run out", coupon_end),
        ):
            self.advance_to(end + timedelta(days=7, minutes=10))
            self.phase(name, self.tick)
        self.phase("ticks until no enrollment is active", self.finish)
        outbox.refresh()
        wall_s = time.perf_counter() - wall

        runs = execution_events(stack, machine, set(idle_runs.arns))
        return {
            "leads": args.leads,
            "rates": {"open": args.open_rate, "click": args.click_rate, "redeem": args.redeem_rate},
            "send_rate_per_second": args.send_rate,
            "shards": args.shards,
            "queues": {name: stack.physical[name] for name in QUEUE_GROUP},
            "wall_s": round(wall_s, 1),
            "reactions": reactions,
            "outcome": outcome(self.meter.dynamo, stack, outbox, ids),
            "idle_tick": idle,
            "executions": len(runs.arns),
            "follow_up_ticks": self.follow_up_ticks,
            "map_children": runs.children,
            "history_event_types": dict(runs.types),
            "states_entered": dict(runs.entered),
            "phases": [vars(p) for p in self.phases],
        }


def template_queue_delays(stack: Any) -> None:
    """Put back the ``DelaySeconds`` the local stack leaves out (``leadflow.dev.deploy.SES_EVENTS_QUEUE``):
    the meter prices what AWS does, where SES events wait 75 s and a Send event then writes only
    for an uncertain send. The campaign's clock moves minutes and days between its waves, so every
    delayed event is applied within the run."""
    from leadflow.dev.deploy import SES_EVENTS_QUEUE

    delay = stack.template["Resources"][SES_EVENTS_QUEUE]["Properties"].get("DelaySeconds", 0)
    stack.client("sqs").set_queue_attributes(
        QueueUrl=stack.physical[SES_EVENTS_QUEUE], Attributes={"DelaySeconds": str(delay)}
    )


def _reset(meter: Meter) -> Meter:
    fresh = Meter(dynamo=meter.dynamo, tap_queue=meter.tap_queue)
    # The hooks are bound methods of the first meter: move its counters, keep the object.
    meter.calls, meter.ddb, meter.aws_ms, meter.modelled_ms = fresh.calls, fresh.ddb, fresh.aws_ms, fresh.modelled_ms
    meter.put_events_entries, meter.sqs_received = fresh.put_events_entries, fresh.sqs_received
    meter.sqs_nonempty_receives, meter.errors = fresh.sqs_nonempty_receives, fresh.errors
    meter.hook_cpu_ms = fresh.hook_cpu_ms
    return meter


def _reset_invocations(invocations: Invocations) -> Invocations:
    with invocations.lock:
        for counter in (
            invocations.count,
            invocations.local_ms,
            invocations.cpu_ms,
            invocations.sleep_ms,
            invocations.failed,
            invocations.retries,
        ):
            counter.clear()
    return invocations


def outcome(dynamo: DynamoModel | None, stack: Any, outbox: Outbox, ids: list[str]) -> dict[str, Any]:
    """Where every enrollment ended, and the emails SES took per step (read from moto directly)."""
    from boto3.dynamodb.types import TypeDeserializer

    from leadflow.config.workspace import Workspace
    from leadflow.domain.nurture import held_state
    from leadflow.domain.nurture.mail_log import held_from

    assert dynamo is not None
    statuses: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    sends: Counter[str] = Counter()
    tagged = handoffs = 0
    with dynamo.lock:
        items = [i.to_json()["Attributes"] for i in dynamo.table.all_items()]
    # An enrollment is its item, or the one the lead's mail log holds when that is a later entry
    # (what NurtureService reads): held ones are worked out as of the stack's clock.
    stored: dict[str, tuple[int, str, str]] = {}
    held: dict[str, dict[str, Any]] = {}
    deserializer = TypeDeserializer()
    for item in items:
        sk = item["SK"]["S"]
        lead = item["PK"]["S"].removeprefix("LEAD#")
        if sk == f"ENR#{SEQUENCE}":
            status = f"{item['status']['S']}/{item.get('exit_reason', {}).get('S', '-')}"
            stored[lead] = (int(item["entry"]["N"]), status, item["step_id"]["S"])
        elif sk == "MAIL":
            entry = item.get("held", {}).get("M", {}).get(SEQUENCE)
            if entry is not None:
                held[lead] = deserializer.deserialize(entry)
            for send in item.get("sends", {}).get("L") or []:
                entry = send["M"]
                if entry.get("s", {}).get("S") == SEQUENCE:
                    sends[entry["p"]["S"]] += 1
        elif sk == "PROFILE":
            if "push-responder" in (item.get("tags", {}).get("SS") or []):
                tagged += 1
            if "handoff_requested_at" in item:
                handoffs += 1
    sequence = Workspace(stack.workspace).sequences[SEQUENCE]
    now = stack.clock.now()
    held_count = 0
    for lead in stored.keys() | held.keys():
        entry = held.get(lead)
        if entry is not None and (lead not in stored or stored[lead][0] < int(entry["e"])):
            state = held_state(sequence, held_from(lead, SEQUENCE, entry), now)
            statuses[f"{state.status}/{state.exit_reason or '-'}"] += 1
            steps[state.step_id] += 1
            held_count += 1
        else:
            statuses[stored[lead][1]] += 1
            steps[stored[lead][2]] += 1
    return {
        "enrollments": dict(statuses),
        "held_by_mail_log": held_count,
        "final_steps": dict(steps),
        "send_ledger": dict(sends),
        "ses_messages": outbox.refresh(),
        "tagged_push_responder": tagged,
        "handoff_requested": handoffs,
    }


# ---------------------------------------------------------------------------- pricing

ORCHESTRATION = "orchestration"
TRACKING = "tracking"
REPORTING = "reporting"
HANDOFF = "hand-off"
COUNTED = "nurture.counted"
QUEUE_GROUP = {
    "NurtureNowQueue": ORCHESTRATION,
    "NurtureEventsQueue": ORCHESTRATION,
    "ScoringQueue": TRACKING,
    "SegmentsQueue": TRACKING,
    "SesEventsQueue": TRACKING,
    "ReportingQueue": REPORTING,
    "HandoffQueue": HANDOFF,
}
RULE_QUEUES = ("NurtureEventsQueue", "ScoringQueue", "SegmentsQueue", "ReportingQueue", "SesEventsQueue")
"""Queues an EventBridge rule delivers to (SesEventsQueue: SesEventsRule on the default bus, where
SES puts its events: AWS service events, free on the bus and its rules; the queue's request is not)."""
LAMBDA_CPU_SCALE = 1769 / 512
"""Lambda gives a function one vCPU at 1,769 MB: at 512 MB its CPU work takes ~3.5x as long as on one core here."""


def group_of(owner: str) -> str | None:
    if owner.startswith(("NurtureDueFunction", "NurtureStepFunction", "NurtureEventsFunction")):
        return ORCHESTRATION
    if owner in TRACKING_FUNCTIONS:
        return TRACKING
    if owner == "ReportingFunction":
        return REPORTING
    if owner in HANDOFF_FUNCTIONS:
        return HANDOFF
    return None


def queue_names(data: dict[str, Any]) -> dict[str, str]:
    """The stack's queue URLs by logical name: those the run recorded, and the rest from the URLs
    the functions received from (``leadflow-<LogicalName>-<suffix>``)."""
    names = {url: name for name, url in data["queues"].items()}
    for url in data["counts"]["sqs_received"]:
        match = re.search(r"/leadflow-([A-Za-z]+Queue)-[A-Z0-9]+$", url)
        if url not in names and match:
            names[url] = match.group(1)
    return {url: name for url, name in names.items() if name in QUEUE_GROUP}


def write_units_per_reaction(counts: dict[str, Any]) -> dict[str, float]:
    """Write units (table + GSIs) per tracked open or click (TrackFunction's requests) of the
    functions that record and score them. ScoringFunction's and SegmentsFunction's include what
    they did for other events of the run (before issue 17's step 1: every email's Send event)."""
    reactions = counts["invocations"].get("TrackFunction", 0)
    if not reactions:
        return {}
    units = {
        owner: (counts["ddb"].get(owner, {}).get("wru", 0) + counts["ddb"].get(owner, {}).get("gsi_wru", 0)) / reactions
        for owner in ("TrackFunction", "ScoringFunction", "SegmentsFunction")
    }
    return {k: round(v, 2) for k, v in units.items()}


def modelled_ms(counts: dict[str, Any], owner: str) -> float:
    """How long ``owner``'s invocations would run in Lambda: CPU scaled to 512 MB, assumed call latencies, sleeps."""
    cpu = max(0.0, counts["cpu_ms"].get(owner, 0) - counts["hook_cpu_ms"].get(owner, 0))
    return cpu * LAMBDA_CPU_SCALE + counts["modelled_aws_ms"].get(owner, 0) + counts["sleep_ms"].get(owner, 0)


def price(data: dict[str, Any]) -> dict[str, Any]:
    """Dollar lines of the measured run, per lead, and scaled to CAMPAIGN_LEADS leads."""
    counts = data["counts"]
    leads = data["leads"]
    lines: list[dict[str, Any]] = []

    def line(  # noqa: PLR0917 - a local helper, called positionally on purpose
        group: str, service: str, what: str, quantity: float, unit_price: float, fixed: bool = False
    ) -> None:
        """A priced quantity: scaled by leads, or ``fixed`` (per tick, not per lead: taken as measured)."""
        lines.append(
            {
                "group": group,
                "service": service,
                "what": what + (" [per tick, not scaled]" if fixed else ""),
                "quantity": quantity,
                "per_lead": quantity / leads,
                "fixed": fixed,
                "usd_campaign": (quantity if fixed else quantity / leads * CAMPAIGN_LEADS) * unit_price,
            }
        )

    calls = Counter({k: v for k, v in counts["calls"].items()})
    ses = sum(n for k, n in calls.items() if k.endswith("sesv2:SendEmail"))
    # Step Functions: the tick executions (Standard), their Distributed Map children (Express).
    parent = sum(data["states_entered"].values())
    children = data["map_children"]
    line(
        ORCHESTRATION,
        "Step Functions",
        "Standard state transitions (tick states + 1 per map child)",
        parent + children,
        PRICE["sfn_standard_transition"],
        fixed=True,
    )
    line(
        ORCHESTRATION,
        "Step Functions",
        "Express child executions (requests)",
        children,
        PRICE["sfn_express_request"],
        True,
    )
    child_s = max(modelled_ms(counts, "NurtureStepFunction[tick]") / 1000, children * EXPRESS_MIN_S)
    line(
        ORCHESTRATION,
        "Step Functions",
        "Express child duration (GB-s at 64 MB)",
        child_s * EXPRESS_GB,
        PRICE["sfn_express_gb_s"],
    )
    # The broadcast state machine: its rounds depend on the SES rate, not on this run's size (one
    # round of --parts parts here); priced from the drain model at the slowest rate, 14/s (the
    # most rounds): Standard parent (Round, AnyMore) and child (PartOpen, Hop, end) transitions.
    from leadflow.services.nurture import HOP_SECONDS, broadcast_parts

    parts = broadcast_parts(SLOWEST_RATE)
    rounds = math.ceil(CAMPAIGN_LEADS / SLOWEST_RATE / HOP_SECONDS)
    line(
        ORCHESTRATION,
        "Step Functions",
        f"broadcast state machine: {rounds} rounds of {parts} part(s) at {SLOWEST_RATE}/s (transitions)",
        rounds * (2 + 3 * parts),
        PRICE["sfn_standard_transition"],
        fixed=True,
    )
    line(
        ORCHESTRATION,
        "Scheduler",
        "tick schedule firings that found work",
        data["executions"],
        PRICE["scheduler_invocation"],
        fixed=True,
    )
    # Lambda, per function (the relay split by the sources of the events it published).
    entries = Counter(counts["put_events_entries"])
    relay_total = sum(entries.values()) or 1
    relay_share = {
        ORCHESTRATION: sum(n for k, n in entries.items() if k.endswith("leadflow.nurture")) / relay_total,
    }
    relay_share[TRACKING] = 1 - relay_share[ORCHESTRATION]
    for owner, invoked in sorted(counts["invocations"].items()):
        shares = {group_of(owner): 1.0} if owner != RELAY else relay_share
        fixed = owner == "NurtureDueFunction[plan]"  # one per tick, whatever the number of leads
        for group, share in shares.items():
            if group is None or share == 0:
                continue
            label = owner if share == 1.0 else f"{owner} ({share:.0%} of it: {group} events)"
            line(group, "Lambda", f"{label}: requests", invoked * share, PRICE["lambda_request"], fixed)
            gb_s = modelled_ms(counts, owner) / 1000 * LAMBDA_GB * share
            line(group, "Lambda", f"{label}: GB-s (modelled)", gb_s, PRICE["lambda_gb_s_arm64"], fixed)
    # DynamoDB, per function.
    for owner, usage in sorted(counts["ddb"].items()):
        group = group_of(owner)
        if group is None:
            continue
        line(group, "DynamoDB", f"{owner}: write units (table)", usage["wru"], PRICE["ddb_wru"])
        line(group, "DynamoDB", f"{owner}: write units (GSIs)", usage["gsi_wru"], PRICE["ddb_wru"])
        line(
            group,
            "DynamoDB",
            f"{owner}: read units",
            usage["rru"],
            PRICE["ddb_rru"],
            owner == "NurtureDueFunction[plan]",
        )
    # SQS: sends by the functions, deliveries by EventBridge rules, and the event source mappings.
    url_name = queue_names(data)
    url_group = {url: QUEUE_GROUP[name] for url, name in url_name.items()}
    sends: Counter[str] = Counter()
    for key, n in calls.items():
        owner, _, operation = key.rpartition(" ")
        if operation in ("sqs:SendMessage", "sqs:SendMessageBatch") and group_of(owner):
            sends[str(group_of(owner))] += n
    for group, n in sends.items():
        line(group, "SQS", "SendMessage(Batch) by the functions (due-now pushes)", n, PRICE["sqs_request"])
    for url, received in counts["sqs_received"].items():
        if url not in url_group:
            continue
        name = url_name[url]
        if name in RULE_QUEUES:
            line(url_group[url], "SQS", f"{name}: deliveries by the EventBridge rule", received, PRICE["sqs_request"])
        batches = counts["sqs_nonempty_receives"].get(url, 0)
        line(
            url_group[url],
            "SQS",
            f"{name}: event source mapping receive + delete batch",
            2 * batches,
            PRICE["sqs_request"],
        )
    # EventBridge: events put on the bus, by source.
    for key, n in sorted(entries.items()):
        source = key.split(" ", 1)[1]
        group = REPORTING if source.endswith(COUNTED) else ORCHESTRATION if source == "leadflow.nurture" else TRACKING
        line(group, "EventBridge", f"PutEvents entries from {source}", n, PRICE["eventbridge_event"])
    line(
        TRACKING,
        "API Gateway",
        "HTTP API requests (open pixel, tracked clicks)",
        counts["invocations"].get("TrackFunction", 0),
        PRICE["apigw_http_request"],
    )
    line("email", "SES", "emails sent", ses, PRICE["ses_email"])

    totals: Counter[str] = Counter()
    for entry in lines:
        totals[entry["group"]] += entry["usd_campaign"]
    email_usd = totals["email"]
    idle = data["idle_tick"]
    idle_ms = sum(idle["modelled_ms"].get(k, 0) for k in idle["invocations"])
    idle_tick_usd = (
        idle["transitions"] * PRICE["sfn_standard_transition"]
        + PRICE["scheduler_invocation"]
        + sum(idle["invocations"].values()) * PRICE["lambda_request"]
        + idle_ms / 1000 * LAMBDA_GB * PRICE["lambda_gb_s_arm64"]
        + idle["rru"] * PRICE["ddb_rru"]
    )
    ticks_per_day = 24 * 60 / 5
    return {
        "lines": lines,
        "totals_usd": dict(totals),
        "emails_per_lead": ses / leads,
        "orchestration_share_of_email": totals[ORCHESTRATION] / email_usd if email_usd else None,
        "reporting_share_of_email": totals[REPORTING] / email_usd if email_usd else None,
        "orchestration_and_reporting_share_of_email": (
            (totals[ORCHESTRATION] + totals[REPORTING]) / email_usd if email_usd else None
        ),
        "tracking_share_of_email": totals[TRACKING] / email_usd if email_usd else None,
        "whole_share_of_email": (sum(v for k, v in totals.items() if k != "email") / email_usd if email_usd else None),
        "write_units_per_open_or_click": write_units_per_reaction(counts),
        "goal_met": bool(email_usd) and totals[ORCHESTRATION] + totals[REPORTING] <= GOAL_SHARE * email_usd,
        "idle_tick_usd": idle_tick_usd,
        "idle_ticks_10_days_usd": idle_tick_usd * ticks_per_day * 10,
    }


# ---------------------------------------------------------------------------- main


def raw_counts(campaign: Campaign) -> dict[str, Any]:
    meter, inv = campaign.meter, campaign.invocations
    return {
        "calls": {f"{o} {op}": n for (o, op), n in sorted(meter.calls.items()) if o != "bench"},
        "ddb": {
            o: {
                "calls": dict(u.calls),
                "rru": u.rru,
                "wru": u.wru,
                "gsi_wru": u.gsi_wru,
                "failed": u.failed_writes,
                "wru_by_item": dict(u.wru_by_item),
            }
            for o, u in meter.ddb.items()
        },
        "invocations": dict(inv.count),
        "local_ms": {k: round(v) for k, v in inv.local_ms.items()},
        "cpu_ms": {k: round(v) for k, v in inv.cpu_ms.items()},
        "sleep_ms": {k: round(v) for k, v in inv.sleep_ms.items()},
        "failed_invocations": dict(inv.failed),
        "sfn_retries": dict(inv.retries),
        "aws_ms": {k: round(v) for k, v in meter.aws_ms.items()},
        "modelled_aws_ms": dict(meter.modelled_ms),
        "hook_cpu_ms": {k: round(v) for k, v in meter.hook_cpu_ms.items()},
        "put_events_entries": {f"{o} {s}": n for (o, s), n in meter.put_events_entries.items()},
        "sqs_received": dict(meter.sqs_received),
        "sqs_nonempty_receives": dict(meter.sqs_nonempty_receives),
        "errors": dict(meter.errors),
    }


def report(data: dict[str, Any], priced: dict[str, Any]) -> str:
    leads = data["leads"]
    counts = data["counts"]
    out = []
    rates = data["rates"]
    out.append(
        f"nurture cost meter: {leads:,} leads through {SEQUENCE} on the local stack "
        f"(open {rates['open']:.0%}, click {rates['click']:.0%} of openers, redeem {rates['redeem']:.0%} of clickers; "
        f"SES send rate {data['send_rate_per_second']}/s, {data['shards']} shards)"
    )
    run = data.get("run") or {}
    cpu = run.get("pinned_cpu")
    pinning = f"pinned to CPU {cpu}" if cpu is not None else "not pinned"
    speed = run.get("reference_loop_ms")
    host = f"; host speed: reference loop {speed[0]} ms before, {speed[1]} ms after (lower is faster)" if speed else ""
    out.append(f"wall time {data['wall_s']:.0f} s (stack start and seeding included); {pinning}{host}")
    o = data["outcome"]
    out.append(
        f"outcome: enrollments {o['enrollments']}; mail logs (sends claimed) {o['send_ledger']}; "
        f"SES messages {o['ses_messages']}; tagged push-responder {o['tagged_push_responder']}, "
        f"hand-offs requested {o['handoff_requested']}"
    )
    r = data["reactions"]
    out.append(
        "reactions sent through the gateway: "
        + ", ".join(f"{k}: {v['requests']} of {v['leads']} {v['statuses']}" for k, v in r.items())
    )
    out.append("")
    out.append("phases:")
    for phase in data["phases"]:
        out.append(
            f"  {phase['name']:<48} {phase['wall_s']:>8.1f} s  {phase['calls']:>8} calls"
            f"  {phase['invocations']:>6} invocations"
        )
    out.append("")
    out.append(
        f"AWS calls made by the product, per lead ({sum(counts['calls'].values()):,} in all;"
        " 'stack:' = the local stack's stand-ins):"
    )
    for key, n in sorted(counts["calls"].items(), key=lambda kv: -kv[1]):
        if key.startswith("stack:dev console tap"):
            continue
        out.append(f"  {n / leads:>9.4f}  {key}  ({n:,})")
    out.append("")
    out.append("DynamoDB capacity (estimated from item sizes), per lead:")
    for owner, usage in sorted(counts["ddb"].items()):
        out.append(
            f"  {owner:<36} read {usage['rru'] / leads:7.3f} RRU   write {usage['wru'] / leads:7.3f} WRU"
            f" + GSI {usage['gsi_wru'] / leads:6.3f} WRU"
        )
    out.append("  write units (table + GSI) per lead by operation and item, where they go:")
    by_item: Counter[str] = Counter()
    for owner, usage in counts["ddb"].items():
        for key, units in usage.get("wru_by_item", {}).items():
            by_item[f"{owner}: {key}"] += units
    for key, units in by_item.most_common(14):
        out.append(f"    {units / leads:7.3f}  {key}")
    out.append("")
    out.append(
        f"Step Functions: {data['executions']} tick executions with work, {sum(data['states_entered'].values())} "
        f"states entered {data['states_entered']}, {data['map_children']} Distributed Map children"
        f"; {data.get('follow_up_ticks', 0)} of the ticks were follow-ups 5 minutes apart (work still due)"
    )
    if counts["sfn_retries"] or counts["failed_invocations"] or counts["errors"]:
        out.append(
            f"  retries {counts['sfn_retries']}, failed invocations {counts['failed_invocations']},"
            f" call errors {counts['errors']}"
        )
    out.append("")
    out.append(
        "Lambda (local = wall time here incl. waiting on moto;"
        " modelled = CPU x3.45 for 512 MB + assumed latencies + sleeps):"
    )
    for owner, invoked in sorted(counts["invocations"].items()):
        out.append(
            f"  {owner:<36} {invoked:>6} invocations  local {counts['local_ms'].get(owner, 0) / leads:8.2f} ms/lead"
            f"  CPU {max(0, counts['cpu_ms'].get(owner, 0) - counts['hook_cpu_ms'].get(owner, 0)) / leads:6.2f} ms/lead"
            f"  modelled {modelled_ms(counts, owner) / leads:7.2f} ms/lead"
        )
    out.append("")
    out.append(
        f"priced for a {CAMPAIGN_LEADS:,}-lead campaign (per-lead counts x {CAMPAIGN_LEADS:,}; us-east-1 list prices):"
    )
    for group in (ORCHESTRATION, REPORTING, TRACKING, HANDOFF, "email"):
        entries = sorted((e for e in priced["lines"] if e["group"] == group), key=lambda e: -e["usd_campaign"])
        out.append(f"  {group}: ${priced['totals_usd'].get(group, 0):,.2f}")
        for e in entries:
            if e["usd_campaign"] < 0.005:
                continue
            out.append(f"    ${e['usd_campaign']:>9,.2f}  {e['service']:<14} {e['what']}  ({e['per_lead']:.4g}/lead)")
    share = priced["orchestration_share_of_email"]
    both = priced["orchestration_and_reporting_share_of_email"]
    verdict = "MET" if priced["goal_met"] else "MISSED"
    out.append("")
    out.append(
        f"emails per lead {priced['emails_per_lead']:.4f};"
        f" orchestration ${priced['totals_usd'].get(ORCHESTRATION, 0):,.2f} = {share:.2%},"
        f" reporting ${priced['totals_usd'].get(REPORTING, 0):,.2f} = {priced['reporting_share_of_email']:.2%},"
        f" together {both:.2%} of the SES cost ${priced['totals_usd'].get('email', 0):,.2f};"
        f" goal <= {GOAL_SHARE:.0%}: {verdict}"
    )
    out.append(
        f"tracking (opens/clicks, SES events, scoring, segments): ${priced['totals_usd'].get(TRACKING, 0):,.2f}"
        f" = {priced['tracking_share_of_email']:.2%} of SES; hand-off ${priced['totals_usd'].get(HANDOFF, 0):,.2f};"
        f" the whole campaign {priced['whole_share_of_email']:.2%} of SES (goal <= 1.5%)"
    )
    per_reaction = priced["write_units_per_open_or_click"]
    if per_reaction:
        out.append(
            "write units per tracked open or click (goal <= 5): "
            + ", ".join(f"{owner} {units}" for owner, units in per_reaction.items())
            + f"; together {sum(per_reaction.values()):.2f}"
        )
    out.append(
        f"idle ticks (every 5 minutes, nothing due): ${priced['idle_tick_usd']:.6f} each, "
        f"${priced['idle_ticks_10_days_usd']:.2f} over a 10-day campaign (not in the totals above)"
    )
    return "\n".join(out)


def run_record(script: str, argv: list[str] | None, pinned: Any) -> dict[str, Any]:
    """What a run's figures need beside them: the command, when it finished, the load, the CPU."""
    return {
        "command": " ".join([script, *(argv if argv is not None else sys.argv[1:])]),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_1min": os.getloadavg()[0],
        "pinned_cpu": pinned,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--open-rate", type=float, default=0.05)
    parser.add_argument("--click-rate", type=float, default=0.40)
    parser.add_argument("--redeem-rate", type=float, default=0.40)
    parser.add_argument("--send-rate", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--parts", type=int, default=8, help="parts (Scan segments) the broadcast runs as")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", metavar="PATH", help="also write the raw results as JSON to PATH")
    parser.add_argument("--report-from", metavar="PATH", help="print the report of results saved with --save")
    parser.add_argument(
        "--cpu",
        default="one",
        choices=("one", "all"),
        help="one (the default): pin the process to one CPU, as a Lambda function has its own; all: do not pin",
    )
    args = parser.parse_args(argv)
    if args.report_from:
        data = json.loads(Path(args.report_from).read_text())
    else:
        # One CPU: moto serves the handlers' calls from threads of this process; on two cores their
        # GIL hand-offs showed as the handlers' CPU (the same broadcast read 16.7 ms of CPU per lead
        # unpinned and 4.2 ms pinned, Dec 2 04:10-04:14 UTC), which a Lambda function never spends.
        pinned = pin("first" if args.cpu == "one" else "all")[0]
        reference_before = reference_loop_ms()
        campaign = Campaign(args)
        data = campaign.run()
        data["counts"] = raw_counts(campaign)
        data["run"] = run_record("bench/nurture_cost.py", argv, pinned)
        data["run"]["reference_loop_ms"] = [round(reference_before, 2), round(reference_loop_ms(), 2)]
        if args.save:
            Path(args.save).write_text(json.dumps(data, indent=1, default=str))
    priced = price(data)
    data["priced"] = priced
    if args.json:
        print(json.dumps(data, indent=1, default=str))
    else:
        print(report(data, priced))
    failed = data["outcome"]["enrollments"].keys() - {"completed/completed"}
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
