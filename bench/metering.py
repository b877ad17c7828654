"""The cost meter's measuring part: what AWS charges, and what each AWS call of this process costs.

Apart from the campaign and its report because every benchmark that prices the local stack
(``nurture_cost.py``, ``deploy_cost.py``, ``broadcast_drain.py``, ``soak.py``) counts with it, and
because it is what to read when a figure looks wrong: the list prices and the Lambda time model
(CPU scaled to 512 MB, assumed call latencies), which function and queue each cost is priced as,
DynamoDB's item size rules (moto reports no consumed capacity: units are estimated from the
items' sizes), and ``Meter``, the botocore hooks that count every call and attribute it to the
Lambda function whose handler made it.
"""

from __future__ import annotations

import base64
import contextvars
import json
import math
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"

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
LAMBDA_CPU_SCALE = 1769 / 512
"""Lambda gives a function one vCPU at 1,769 MB: at 512 MB its CPU work takes ~3.5x as long as on one core here."""

# ---------------------------------------------------------------------------- cost groups
# What each function, queue and event is priced as (the groups of the cost meter's report).

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
NURTURE_FUNCTIONS = ("NurtureDueFunction", "NurtureStepFunction", "NurtureEventsFunction")
TRACKING_FUNCTIONS = ("TrackFunction", "ScoringFunction", "SesEventsFunction", "SegmentsFunction")
"""Priced as tracking: opens and clicks, SES's events of every email, the scoring and the segment
updates they cause (the last two were missing from the meter before issue 17's step 1)."""
HANDOFF_FUNCTIONS = ("CrmHandoffFunction",)
RELAY = "OutboxRelayFunction"


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


# ---------------------------------------------------------------------------- attribution
# Who makes the call in flight: set by the local stack's wrappers (campaign_stack.py), read by the meter.

current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_function", default=None)
"""The function (``label_of``'s label) whose handler runs in this context; None outside a handler."""
in_harness: contextvars.ContextVar[bool] = contextvars.ContextVar("bench_harness", default=False)
"""True while the benchmark itself calls (seeding, reading results): never counted."""
pool_workers: contextvars.ContextVar[int] = contextvars.ContextVar("bench_parallel", default=1)
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
        function = current_function.get()
        if function:
            return function
        if in_harness.get():
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
        owner = current_function.get()
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
            self.modelled_ms[owner] += ASSUMED_LATENCY_MS.get(operation, DEFAULT_LATENCY_MS) / pool_workers.get()
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


def reset_meter(meter: Meter) -> Meter:
    """Start ``meter``'s counts afresh (after the idle tick, which is priced apart from the campaign)."""
    fresh = Meter(dynamo=meter.dynamo, tap_queue=meter.tap_queue)
    # The hooks are bound methods of the first meter: move its counters, keep the object.
    meter.calls, meter.ddb, meter.aws_ms, meter.modelled_ms = fresh.calls, fresh.ddb, fresh.aws_ms, fresh.modelled_ms
    meter.put_events_entries, meter.sqs_received = fresh.put_events_entries, fresh.sqs_received
    meter.sqs_nonempty_receives, meter.errors = fresh.sqs_nonempty_receives, fresh.errors
    meter.hook_cpu_ms = fresh.hook_cpu_ms
    return meter


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
