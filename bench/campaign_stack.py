"""The local stack as the cost meter runs it: attribution wrappers, seeded leads, reactions, histories.

Apart from the meter (``metering.py``) and the campaign (``campaign.py``) because the other
benchmarks on the local stack use these pieces without the campaign (``broadcast_drain.py``,
``broadcast_cpu.py``, ``deploy_cost.py``, ``soak.py``): the wrappers that tell the meter which
function makes a call and what the handlers' CPU and sleeps were, the leads seeded as their capture
left them (not counted), the emails' open pixels and links fetched through the local gateway, the
tick executions' Step Functions histories, and the two settings that make the local stack behave
as AWS would for the meter.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextvars
import http.client
import json
import random
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from metering import ACCOUNT, REGION, Index, current_function, in_harness, pool_workers  # bench/, beside this script

ROOT = Path(__file__).resolve().parent.parent


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
    latencies overlap: see ``metering.Meter._after_call``)."""
    original = concurrent.futures.ThreadPoolExecutor.submit

    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        workers = int(getattr(self, "_max_workers", 1) or 1)

        def run(*inner: Any, **named: Any) -> Any:
            pool_workers.set(workers)
            cpu = time.thread_time()
            try:
                return fn(*inner, **named)
            finally:
                owner = current_function.get()
                if owner and not in_harness.get():
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
        owner = current_function.get()
        if owner:
            with self.lock:
                self.sleep_ms[owner] += seconds * 1000 / pool_workers.get()


def reset_invocations(invocations: Invocations) -> Invocations:
    """Start the invocation counts afresh (with ``metering.reset_meter``, after the idle tick)."""
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
        token, harness = current_function.set(label), in_harness.set(False)
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
            current_function.reset(token)
            in_harness.reset(harness)

    stack.runner.invoke = invoke


class Harness:
    """Marks the calls the benchmark itself makes (seeding, reading results): never counted."""

    def __enter__(self) -> None:
        self._token = in_harness.set(True)

    def __exit__(self, *_: object) -> None:
        in_harness.reset(self._token)


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


# ---------------------------------------------------------------------------- the local stack, closer to AWS


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
