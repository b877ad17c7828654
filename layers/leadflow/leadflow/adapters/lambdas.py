"""Starting a broadcast in the background: an asynchronous invoke of the nurture plan function."""

from __future__ import annotations

import json
from typing import Any

from leadflow.adapters.aws import LazyClient


class LambdaBroadcasts(LazyClient):
    SERVICE = "lambda"

    def __init__(self, function_name: str, client: Any = None) -> None:
        self.function_name = function_name
        self._client = client

    def start(self, sequence_id: str, run_id: str) -> None:
        """Enroll the sequence's broadcast segment once (``run_id`` makes a redelivery a no-op)."""
        self.client.invoke(
            FunctionName=self.function_name,
            InvocationType="Event",
            Payload=json.dumps({"broadcast": sequence_id, "run": run_id}).encode(),
        )
