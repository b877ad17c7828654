"""Fault injection for the local stack: make an AWS operation fail, to prove nothing is lost.

``POST /_dev/faults`` with ``{"service": "dynamodb", "operation": "TransactWriteItems",
"error": "ProvisionedThroughputExceededException", "count": 10}`` makes the next ten
calls fail as AWS would fail them (``count`` -1: until cleared with ``DELETE``). With
``"after": true`` the call is carried out first and then answered with the error: a
timeout whose write landed anyway, the case idempotency exists for. ``"skip": N`` lets the next N
matching calls through first. The error ``LambdaCrash`` is no AWS error: the call is carried out,
then the invocation that made it dies (``LambdaCrash``). ``{"service": "sesv2", "operation":
"SendEmail", "error": "LambdaCrash", "count": 1, "skip": 40}`` lets 40 emails go out, sends the 41st
and kills the invocation that sent it, in the middle of its page.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

CRASH = "LambdaCrash"


class LambdaCrash(BaseException):
    """The function's invocation dies here (``error: LambdaCrash``): not an error the function's
    code can catch and handle (a ``BaseException``), it ends the invocation, which the local
    runner reports as failed, as Lambda reports an unhandled error. The handler's ``finally``
    blocks still run, as they do when a Python runtime ends an invocation on an error; a runtime
    killed outright (out of memory, timed out) runs none: docs/reliability.md."""


@dataclass
class Fault:
    service: str
    operation: str
    error: str
    count: int = -1
    status: int = 400
    after: bool = False
    skip: int = 0


class FaultInjector:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.fired: Counter[str] = Counter()
        """How many times each fault was applied (``service:Operation:error``), cleared faults too:
        ``GET /_dev/faults?fired=1``, so a test can tell that the crash it asked for happened."""
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear(self, service: str | None = None) -> None:
        """Disarm every fault, or every fault of one service (an outage over, the others still armed)."""
        with self._lock:
            self.faults = [f for f in self.faults if service is not None and f.service != service]

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self.faults]

    def take(self, service: str, operation: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.service == service and fault.operation == operation and fault.count != 0:
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    if fault.count > 0:
                        fault.count -= 1
                    self.fired[f"{service}:{operation}:{fault.error}"] += 1
                    return fault
            self.faults = [f for f in self.faults if f.count != 0]
        return None

    def install(self) -> None:
        """Wrap moto's request dispatch so matching calls fail before reaching the backend."""
        from moto.core.responses import BaseResponse

        injector = self
        original = BaseResponse.call_action

        def call_action(self: Any) -> Any:
            fault = injector.take(str(self.service_name), self._get_action()) if injector.faults else None
            if fault is None:
                return original(self)
            if fault.error == CRASH:
                original(self)
                raise LambdaCrash(f"injected by leadflow dev after {self._get_action()}")
            if fault.after:
                original(self)
            body = json.dumps({"__type": fault.error, "message": f"injected by leadflow dev: {fault.error}"})
            return (
                fault.status,
                {"status": fault.status, "x-amzn-ErrorType": fault.error, "content-type": "application/x-amz-json-1.0"},
                body,
            )

        BaseResponse.call_action = call_action  # type: ignore[method-assign]
