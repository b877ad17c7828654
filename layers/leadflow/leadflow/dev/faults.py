"""Fault injection for the local stack: make an AWS operation fail, to prove nothing is lost.

``POST /_dev/faults`` with ``{"service": "dynamodb", "operation": "TransactWriteItems",
"error": "ProvisionedThroughputExceededException", "count": 10}`` makes the next ten
calls fail as AWS would fail them (``count`` -1: until cleared with ``DELETE``). With
``"after": true`` the call is carried out first and then answered with the error: a
timeout whose write landed anyway, the case idempotency exists for.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Fault:
    service: str
    operation: str
    error: str
    count: int = -1
    status: int = 400
    after: bool = False


class FaultInjector:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self.faults]

    def take(self, service: str, operation: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.service == service and fault.operation == operation and fault.count != 0:
                    if fault.count > 0:
                        fault.count -= 1
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
            if fault.after:
                original(self)
            body = json.dumps({"__type": fault.error, "message": f"injected by leadflow dev: {fault.error}"})
            return (
                fault.status,
                {"status": fault.status, "x-amzn-ErrorType": fault.error, "content-type": "application/x-amz-json-1.0"},
                body,
            )

        BaseResponse.call_action = call_action  # type: ignore[method-assign]
