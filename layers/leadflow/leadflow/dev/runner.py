"""Running Lambda handlers in this process, as moto's Lambda would run them in containers.

Every invocation (HTTP gateway, queue and stream pollers, moto's Invoke API, Step Functions
tasks, SNS deliveries) comes through ``LambdaRunner.invoke``, which also counts them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from leadflow.dev.faults import LambdaCrash

log = logging.getLogger("leadflow.dev")

# Variables read when a handler module is imported (so they may differ per function), each with the
# value its library takes when it is unset (Powertools' ``service_undefined``).
IMPORT_TIME_VARIABLES = {"POWERTOOLS_SERVICE_NAME": "service_undefined"}


class HandlerError(Exception):
    """The handler raised: the invocation failed as a Lambda function error."""

    def __init__(self, function: str, error: BaseException) -> None:
        super().__init__(f"{function}: {type(error).__name__}: {error}")
        self.error = error
        self.payload = {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_tb(error.__traceback__),
        }


@dataclass
class LocalFunction:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int
    module: ModuleType | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set on load: the handler module keeps the current invocation's state on a module-level object
    # (a Powertools resolver or batch processor), so it runs one invocation at a time (see ``invoke``).
    serial: bool = False
    invocation_lock: threading.RLock = field(default_factory=threading.RLock)


class LambdaContext:
    """The parts of the Lambda context object handlers and Powertools read."""

    def __init__(self, function: LocalFunction) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + function.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LambdaRunner:
    def __init__(self, overrides: dict[str, str]) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self.overrides = overrides
        self.invocations: Counter[str] = Counter()
        self.durations_ms: Counter[str] = Counter()
        self._env_lock = threading.Lock()
        # An import-time variable stays in the environment for the life of the process, and a load
        # only changes its value: adding or removing a variable while another thread walks the
        # environment raises in that thread, and botocore walks it (for proxies) whenever it makes a
        # client (a handler's first request answered 500 in CI so).
        for key, unset in IMPORT_TIME_VARIABLES.items():
            os.environ.setdefault(key, unset)

    def add(self, function: LocalFunction) -> None:
        function.environment = {**function.environment, **self.overrides}
        self.functions[function.name] = function
        self.functions[function.arn] = function
        self.functions[function.logical_id] = function

    def shared_environment(self) -> dict[str, str]:
        """The variables every function agrees on, set once for the whole process.

        Raises:
            ValueError: two functions give one variable different values (other than the
                import-time ones), which one process cannot honour.
        """
        merged: dict[str, str] = {}
        for function in {id(f): f for f in self.functions.values()}.values():
            for key, value in function.environment.items():
                if key in IMPORT_TIME_VARIABLES:
                    continue
                if key in merged and merged[key] != value:
                    raise ValueError(f"{key} differs between functions; the local stack runs them in one process")
                merged[key] = value
        return merged

    def load(self, function: LocalFunction) -> ModuleType:
        with function.lock:
            if function.module is not None:
                return function.module
            module_file, _, _ = function.handler.rpartition(".")
            path = function.code_dir / f"{module_file.replace('.', '/')}.py"
            spec = importlib.util.spec_from_file_location(f"leadflow_fn_{function.logical_id}", path)
            if spec is None or spec.loader is None:
                raise FileNotFoundError(path)
            module = importlib.util.module_from_spec(spec)
            with self._env_lock:  # import-time variables are per function
                saved = {key: os.environ[key] for key in IMPORT_TIME_VARIABLES}
                os.environ.update(
                    {key: function.environment.get(key, unset) for key, unset in IMPORT_TIME_VARIABLES.items()}
                )
                try:
                    spec.loader.exec_module(module)
                finally:
                    os.environ.update(saved)
            function.serial = keeps_invocation_state(module)
            function.module = module
            return module

    def invoke(self, function_ref: str, event: Any) -> Any:
        """Run the function's handler on ``event``.

        Raises:
            KeyError: no such function.
            HandlerError: the handler raised.
        """
        function = self.functions[function_ref]
        module = self.load(function)
        handler = getattr(module, function.handler.rpartition(".")[2])
        # A JSON round trip, as across the Lambda API: handlers get plain data.
        payload = json.loads(json.dumps(event, default=str))
        # In Lambda an execution environment runs one invocation at a time, and concurrency comes from
        # more environments. Here a function has one module, so a handler that keeps the invocation's
        # state on a module-level object runs one invocation at a time: two requests crossing one
        # resolver's state failed with KeyError '_route' (a copy of the module per invocation does not
        # work either: the transport routers are shared modules, tied to the last resolver that
        # included them). The others stay concurrent, so races between invocations stay testable.
        with function.invocation_lock if function.serial else nullcontext():
            started = time.perf_counter()
            self.invocations[function.logical_id] += 1
            try:
                result = handler(payload, LambdaContext(function))
            except (Exception, LambdaCrash) as error:
                raise HandlerError(function.logical_id, error) from error
            finally:
                self.durations_ms[function.logical_id] += int((time.perf_counter() - started) * 1000)
        return json.loads(json.dumps(result, default=str)) if result is not None else None

    def invoke_quietly(self, name: str, event: dict[str, Any]) -> None:
        """An asynchronous invocation: its failure is logged (Lambda would retry, then drop it)."""
        try:
            self.invoke(name, event)
        except HandlerError:
            log.exception("asynchronous invocation of %s failed", name)

    def patch_moto(self) -> None:
        """Make moto's Lambda (Invoke API, SNS, Step Functions tasks) run handlers here."""
        from moto.awslambda.models import LambdaFunction

        runner = self

        def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
            event = json.loads(body) if body else {}
            if (request_headers or {}).get("X-Amz-Invocation-Type") == "Event":
                # Asynchronous, as in AWS: the caller gets its 202 now, the handler runs on.
                threading.Thread(
                    target=runner.invoke_quietly, args=(self.function_name, event), name="leadflow-async", daemon=True
                ).start()
                return ""
            try:
                result = runner.invoke(self.function_name, event)
            except HandlerError as error:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(error.payload)
            return json.dumps(result)

        LambdaFunction.invoke = invoke  # type: ignore[method-assign]


def keeps_invocation_state(module: ModuleType) -> bool:
    """Whether a handler module holds an object that keeps the current invocation's state.

    Powertools' resolvers keep the current event and the matched route on themselves, and its
    batch processors keep the records and their outcomes: one such object cannot serve two
    invocations at once.
    """
    from aws_lambda_powertools.event_handler import ApiGatewayResolver
    from aws_lambda_powertools.utilities.batch import BasePartialProcessor

    return any(isinstance(value, (ApiGatewayResolver, BasePartialProcessor)) for value in vars(module).values())


def quiet_disabled_metrics() -> None:
    """Keep disabled Powertools metrics from piling up and printing every 100 values.

    The local stack disables metrics (POWERTOOLS_METRICS_DISABLED), but Powertools 3.37
    still publishes a metric set once it holds 100 values, and a disabled flush never
    empties it: every function in this one process would print EMF lines now and then.
    """
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    original = AmazonCloudWatchEMFProvider.flush_metrics

    def flush_metrics(self: Any, raise_on_empty_metrics: bool = False) -> None:
        original(self, raise_on_empty_metrics)
        self.clear_metrics()

    AmazonCloudWatchEMFProvider.flush_metrics = flush_metrics  # type: ignore[method-assign]
