"""The due-now queue: enrollments whose step is due at once (a welcome email) skip the tick."""

from __future__ import annotations

import json
from typing import Any

from leadflow.adapters.aws import LazyClient

PAIRS_PER_MESSAGE = 50


class SqsDueNowQueue(LazyClient):
    SERVICE = "sqs"

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def push(self, pairs: list[tuple[str, str]]) -> None:
        """Send (lead id, sequence id) pairs, 50 a message, 10 messages a request."""
        bodies = [
            json.dumps({"pairs": [list(p) for p in pairs[i : i + PAIRS_PER_MESSAGE]]})
            for i in range(0, len(pairs), PAIRS_PER_MESSAGE)
        ]
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[start : start + 10])]
            answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = answer.get("Failed") or []
            if failed:  # the tick picks these up anyway (they are due); say so loudly
                raise RuntimeError(f"{len(failed)} due-now messages not queued")
