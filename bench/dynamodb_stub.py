"""A DynamoDB endpoint that answers at once: the cold-start bench's equal, negligible round trip.

moto executes a DynamoDB request in Python (a ``TransactWriteItems`` of 8 items copies the
tables it touches and checks every condition), so against moto a handler that writes a
transaction waits longer than a floor that reads one item, although in AWS both are one
round trip of about the same few milliseconds. This stub is a separate process speaking
DynamoDB's JSON protocol (``X-Amz-Target: DynamoDB_20120810.<Operation>``) that parses
each request body and answers with a valid, empty, successful response straight away, so
both sides of the comparison pay the same small local round trip and what remains is the
client process's own work (imports, botocore loading and serializing, the handler's code).

It checks what it can cheaply: the body must be JSON naming a table, and it counts the
operations (and the items of each transaction) it saw, which the bench reads at
``GET /_ops`` to show the handler really made its one 8-item transaction.

    python bench/dynamodb_stub.py      # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TARGET_PREFIX = "DynamoDB_20120810."
# Valid empty answers, as DynamoDB gives them for a successful call that found nothing.
ANSWERS: dict[str, dict[str, Any]] = {
    "GetItem": {},
    "PutItem": {},
    "UpdateItem": {},
    "DeleteItem": {},
    "TransactWriteItems": {},
    "TransactGetItems": {"Responses": []},
    "BatchGetItem": {"Responses": {}, "UnprocessedKeys": {}},
    "BatchWriteItem": {"UnprocessedItems": {}},
    "Query": {"Items": [], "Count": 0, "ScannedCount": 0},
    "Scan": {"Items": [], "Count": 0, "ScannedCount": 0},
}

_ops: Counter[str] = Counter()
_lock = threading.Lock()


class StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # The headers and the body go out as two writes: without TCP_NODELAY, Nagle's algorithm holds
    # the body until the client's delayed ACK, ~40 ms a call (measured: 46 ms a row of an import).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", uuid.uuid4().hex)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/_ops":
            with _lock:
                self._answer(200, dict(_ops))
        else:
            self._answer(404, {"message": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        target = self.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX)
        try:
            request = json.loads(raw)
        except ValueError:
            self._answer(400, {"__type": "com.amazon.coral.service#SerializationException", "message": "bad JSON"})
            return
        if not target.startswith(TARGET_PREFIX) or operation not in ANSWERS:
            self._answer(400, {"__type": "com.amazon.coral.service#UnknownOperationException", "message": target})
            return
        names_table = "TableName" in request or "TransactItems" in request or "RequestItems" in request
        if not names_table:
            self._answer(400, {"__type": "com.amazon.coral.validate#ValidationException", "message": "no table"})
            return
        with _lock:
            _ops[operation] += 1
            if operation == "TransactWriteItems":
                _ops[f"TransactWriteItems items={len(request['TransactItems'])}"] += 1
        self._answer(200, ANSWERS[operation])


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
