"""The local stack: the real template.yaml on an embedded moto, handlers in this process.

``LocalStack.start()`` transforms the template with aws-sam-translator, creates it in
moto's CloudFormation, wires the handlers in, detaches moto's synchronous event source
mappings in favour of pollers with Lambda's batch semantics, reads what moto skips
(HTTP API routes, schedules) from the template itself (all in ``leadflow.dev.deploy``), and
serves the HTTP gateway. Here: the stack's lifecycle, its schedules and event pump on the
local clock (``tick``), and what the ``/_dev/`` routes look at.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from leadflow.dev.clock import DevClock
from leadflow.dev.faults import FaultInjector
from leadflow.dev.pollers import SqsMapping, StreamMapping
from leadflow.dev.runner import LambdaRunner
from leadflow.dev.template import http_routes, load_template

log = logging.getLogger("leadflow.dev")
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PUMP_INTERVAL_SECONDS = 0.2
MAX_CATCH_UP = 10
FREQUENT_SECONDS = 15 * 60  # a manual tick runs schedules this frequent even when not due (see tick)


def ref_target(value: Any) -> str | None:
    """The logical id a Ref / GetAtt points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


@dataclass
class LocalSchedule:
    """An EventBridge Scheduler schedule, fired on the local clock."""

    name: str
    period_seconds: float
    target: str  # logical id of a state machine or function
    input: str
    next_due: datetime


class LocalStack:
    def __init__(  # noqa: PLR0917
        self,
        root: Path,
        workspace: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        parameters: dict[str, str] | None = None,
        stack_name: str = "leadflow",
        log_level: str = "WARNING",
        state_dir: Path | None = None,
    ) -> None:
        self.root = root.resolve()
        self.workspace = workspace.resolve()
        self.port = port
        self.host = host
        # moto runs Distributed Map children only as STANDARD executions (EXPRESS in AWS).
        self.parameters = {
            "NurtureChildExecutionType": "STANDARD",
            "ImportChildExecutionType": "STANDARD",
            **(parameters or {}),
        }
        self.stack_name = stack_name
        self.log_level = log_level
        self.clock = DevClock()
        self.faults = FaultInjector()
        # --state DIR: the data of the last run, put back once deployed (see leadflow.dev.state)
        from leadflow.dev import state

        self.state_dir = state_dir
        self._saved = state.load(state_dir) if state_dir else None
        self.admin_token = str((self._saved or {}).get("admin_token") or "lfdev_" + secrets.token_urlsafe(24))
        self.secret_values: dict[str, str] = {}  # every secret's value by logical id (kept by --state)
        self.restored_emails: list[dict[str, Any]] = []  # the outbox of earlier runs (--state)
        self.state_counts: dict[str, int] | None = None  # what the last restore or save moved
        self.dev_secrets: dict[str, str] = {}  # values of generated JSON secrets (CrmSecret), for /_dev/stack
        self.console_users: list[dict[str, str]] = []  # email, password, group: the console's local people
        from leadflow.dev.fake_crm import FakeCrm

        # The demo workspace's hand-off destination (/_dev/crm/...), checking signatures with the dev secret.
        self.fake_crm = FakeCrm(secret=lambda: self.dev_secrets.get("handoff_webhook_secret", ""), now=self.clock.now)
        self.template = load_template(self.root / "template.yaml")
        self.routes = http_routes(self.template)
        if "ConsoleAdminEmail" in self.template.get("Parameters", {}):  # the console's first admin, locally
            self.parameters.setdefault("ConsoleAdminEmail", "admin@example.com")
        self.cfn_template: dict[str, Any]  # the transformed template, as deployed (leadflow.dev.deploy)
        self.physical: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.sqs_mappings: list[SqsMapping] = []
        self.stream_mappings: list[StreamMapping] = []
        self.schedules: list[LocalSchedule] = []
        self.bus_events: list[dict[str, Any]] = []
        self.runner: LambdaRunner
        self._pump_lock = threading.Lock()
        self._pump_sqs: Any = None
        self._tap_url = ""
        self._tap_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._moto: Any = None
        self._http: Any = None
        self.aws_endpoint_url = ""
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalStack:
        os.environ.update(
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            AWS_ACCESS_KEY_ID="leadflow-dev",
            AWS_SECRET_ACCESS_KEY="leadflow-dev",  # noqa: S106 - moto takes any  # nosec B106
            AWS_SESSION_TOKEN="leadflow-dev",  # noqa: S106
        )
        os.environ.pop("AWS_PROFILE", None)
        self._start_moto()
        from leadflow.dev.deploy import deploy

        deploy(self)
        if self._saved is not None:
            from leadflow.dev import state

            self.state_counts = state.restore(self, self._saved)
        self._start_http()
        self.outputs["ApiUrl"] = self.url
        # moto leaves the HTTP API's id unresolved in outputs built on it (it creates no HTTP
        # API): here the gateway is that API, so its URL stands in.
        api_host = re.compile(r"https://\$\{HttpApi\}\.execute-api\.[^/\s]+")
        self.outputs = {key: api_host.sub(self.url, value) for key, value in self.outputs.items()}
        # Tracked links and unsubscribe pages in emails point at this gateway.
        # So do the hosted landing pages' embed scripts (FORMS_BASE_URL).
        for variable in ("PUBLIC_BASE_URL", "FORMS_BASE_URL"):
            self.runner.overrides[variable] = self.url
            for function in self.runner.functions.values():
                if variable in function.environment:
                    function.environment[variable] = self.url
            os.environ[variable] = self.url
        from leadflow.dev.console_users import point_at_local_cognito

        point_at_local_cognito(self)
        for target in (self._pump_forever,):
            thread = threading.Thread(target=target, name="leadflow-pump", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """Stop serving and polling within about ``timeout`` seconds.

        Handler invocations still running then (a slow CRM, a long tick) are abandoned, as
        Lambda abandons them on a shutdown: their messages were not deleted, so they come
        back after their visibility timeout. Nothing here waits on them without a bound.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for mapping in self.sqs_mappings:
            mapping.close(wait=False)
        if self.state_dir is not None and self.physical:
            from leadflow.dev import state

            self.state_counts = state.save(self, self.state_dir)
        if self._moto is not None:
            self._moto.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _start_moto(self) -> None:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        from leadflow.dev import moto_patches, ses_events

        moto_patches.apply()
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        # SES's Send events (moto publishes none); then faults, so one injected "after" a send
        # still leaves the event SES would have published.
        ses_events.install(ACCOUNT_ID, REGION, self.clock.now)
        self.faults.install()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        _, port = self._moto.get_host_and_port()
        self.aws_endpoint_url = f"http://127.0.0.1:{port}"
        os.environ["AWS_ENDPOINT_URL"] = self.aws_endpoint_url
        os.environ["MOTO_PORT"] = str(port)
        self.clock.install()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.aws_endpoint_url, region_name=REGION)

    # ------------------------------------------------------------------ resources (deployed by leadflow.dev.deploy)
    def _queue(self, logical_id: str) -> tuple[str, str]:
        url = self.physical[logical_id]
        arn = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, arn

    def resolve(self, value: Any) -> str:
        """A Ref / GetAtt of the transformed template, as CloudFormation would resolve it."""
        if isinstance(value, str):
            return value
        target = ref_target(value) or ""
        if "Ref" in value and target in self.template.get("Parameters", {}):
            return str(self.parameters.get(target, self.template["Parameters"][target].get("Default", "")))
        kind = self.cfn_template["Resources"].get(target, {}).get("Type", "")
        if "Ref" in value or kind == "AWS::StepFunctions::StateMachine":
            return self.physical[target]
        if kind == "AWS::Lambda::Function":
            return str(self.runner.functions[target].arn)
        if kind == "AWS::SQS::Queue":
            return self._queue(target)[1]
        if kind == "AWS::DynamoDB::Table":
            return str(self.client("dynamodb").describe_table(TableName=self.physical[target])["Table"]["TableArn"])
        if kind == "AWS::Events::EventBus":
            return str(self.client("events").describe_event_bus(Name=self.physical[target])["Arn"])
        raise ValueError(f"cannot resolve {value} locally")

    # ------------------------------------------------------------------ running
    def fire_due_schedules(self, frequent: bool = False) -> int:
        """Fire the schedules that are due on the local clock; with ``frequent``, also those that
        run every ``FREQUENT_SECONDS`` or more often and are not due yet (see ``tick``)."""
        fired = 0
        now = self.clock.now()
        # Early only when no state machine runs (a broadcast's parts): a tick racing them would take
        # the leads they are enrolling, which AWS's 5-minute period makes rare, not something to force.
        early = frequent and not self.running_executions()
        for schedule in self.schedules:
            missed = int((now.timestamp() - schedule.next_due.timestamp()) // schedule.period_seconds) + 1
            if missed <= 0 and early and schedule.period_seconds <= FREQUENT_SECONDS:
                self._fire(schedule)
                fired += 1
                schedule.next_due = datetime.fromtimestamp(now.timestamp() + schedule.period_seconds, now.tzinfo)
                continue
            if missed <= 0:
                continue
            # Every missed period fires, as it would have in AWS; a jump of more than
            # MAX_CATCH_UP periods (days of a 5-minute tick) fires once: each run handles
            # everything due by then, so the repeats would only cost time.
            for _ in range(missed if missed <= MAX_CATCH_UP else 1):
                self._fire(schedule)
                fired += 1
            schedule.next_due = datetime.fromtimestamp(
                schedule.next_due.timestamp() + missed * schedule.period_seconds, now.tzinfo
            )
        return fired

    def _fire(self, schedule: LocalSchedule) -> None:
        kind = self.cfn_template["Resources"][schedule.target]["Type"]
        if kind == "AWS::StepFunctions::StateMachine":
            self.client("stepfunctions").start_execution(
                stateMachineArn=self.physical[schedule.target],
                name=f"{schedule.name}-{int(time.time() * 1000)}-{secrets.token_hex(3)}",
                input=schedule.input,
            )
        else:
            self.runner.invoke(schedule.target, json.loads(schedule.input))

    def pump_once(self) -> int:
        """One pass over every event source; returns how much was delivered."""
        from moto.dynamodb.models import dynamodb_backends

        sqs = self._pump_sqs
        backend = dynamodb_backends[ACCOUNT_ID][REGION]
        delivered = 0
        for stream in self.stream_mappings:
            delivered += stream.poll(backend, sqs, self.runner)
        for queue in self.sqs_mappings:
            delivered += queue.poll(sqs, self.runner)
        self.read_bus_events()  # the console's tap: keep it drained
        return delivered

    def _pump_forever(self) -> None:
        while not self._stop.wait(PUMP_INTERVAL_SECONDS):
            try:
                with self._pump_lock:
                    self.fire_due_schedules()
                    while self.pump_once():
                        pass
            except Exception:
                log.exception("event pump")

    def tick(self, timeout: float = 60.0, frequent: bool = False) -> dict[str, Any]:
        """Run every schedule that is due, then drain the event sources until idle.

        With ``frequent`` (``POST /_dev/tick``, the console's button) the schedules that run every
        15 minutes or more often (the nurture tick, the hand-off SLA sweep) run now even when
        not due, unless a state machine execution is running: in AWS they would within minutes,
        so what ``leadflow broadcast`` enrolled goes out without advancing the clock. Daily and
        hourly schedules still wait for the clock.
        """
        deadline = time.monotonic() + timeout
        delivered = 0
        with self._pump_lock:
            fired = self.fire_due_schedules(frequent)
            idle_passes = 0
            while time.monotonic() < deadline and idle_passes < 2:
                count = self.pump_once()
                delivered += count
                running = self.running_executions() + sum(m.busy() for m in self.sqs_mappings)
                idle_passes = idle_passes + 1 if count == 0 and not running else 0
                if count == 0:
                    time.sleep(0.05 if running else 0.01)
        return {"fired_schedules": fired, "delivered": delivered, "now": self.clock.now().isoformat()}

    def running_executions(self) -> int:
        """State machine executions still running (a tick waits for them)."""
        # With execute_state_machine the API is served by the interpreting (parser) backend.
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[ACCOUNT_ID][REGION]
        running = 0
        for machine in list(getattr(backend, "state_machines", [])):
            for execution in list(getattr(machine, "executions", [])):
                if getattr(execution, "status", "") == "RUNNING":
                    running += 1
        return running

    # ------------------------------------------------------------------ looking inside
    def queue_depths(self) -> dict[str, dict[str, int]]:
        sqs = self.client("sqs")
        depths = {}
        for logical_id, resource in self.cfn_template["Resources"].items():
            if resource["Type"] != "AWS::SQS::Queue":
                continue
            attributes = sqs.get_queue_attributes(
                QueueUrl=self.physical[logical_id],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            depths[logical_id] = {
                "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
            }
        return depths

    def read_bus_events(self) -> list[dict[str, Any]]:
        """Drain the bus tap and return the last 1,000 events, oldest first.

        The pump thread and HTTP requests both drain the tap: one lock, or a reader would
        find the queue empty while the other still holds the messages it received.
        """
        sqs = self.client("sqs")
        with self._tap_lock:
            while self._tap_url:
                messages = sqs.receive_message(QueueUrl=self._tap_url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    self.bus_events.append(json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=self._tap_url, ReceiptHandle=message["ReceiptHandle"])
            del self.bus_events[:-1000]
            return list(self.bus_events)

    def sent_emails(self) -> list[dict[str, Any]]:
        """Every email sent, oldest first: those of earlier runs (``--state``), then this run's."""
        from leadflow.dev.outbox import sent_emails

        return [*self.restored_emails, *sent_emails(ACCOUNT_ID, REGION)]

    def skip_stream_records(self) -> None:
        """Start every table stream's poller after what is in the stream now (a restore's writes)."""
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[ACCOUNT_ID][REGION]
        for stream in self.stream_mappings:
            stream.skip_to_end(backend)

    def stack_info(self) -> dict[str, Any]:
        return {
            "outputs": dict(self.outputs),
            "aws_endpoint_url": self.aws_endpoint_url,
            "admin_token": self.admin_token,
            "handoff_webhook_secret": self.dev_secrets.get("handoff_webhook_secret", ""),
            "inbound_webhook_secrets": {
                "generic": self.dev_secrets.get("inbound_generic_secret", ""),
                "hubspot": self.dev_secrets.get("hubspot_client_secret", ""),
                "salesforce": self.dev_secrets.get("salesforce_endpoint_token", ""),
            },
            "console_users": list(self.console_users),
            "region": REGION,
            "stack_name": self.stack_name,
            "workspace": str(self.workspace),
        }

    def _start_http(self) -> None:
        from werkzeug.serving import make_server

        from leadflow.dev.gateway import DevGateway

        self._http = make_server(self.host, self.port, DevGateway(self), threaded=True)
        self.port = self._http.server_port
        self.url = f"http://{self.host}:{self.port}"
        thread = threading.Thread(target=self._http.serve_forever, name="leadflow-http", daemon=True)
        thread.start()
        self._threads.append(thread)
