"""``leadflow dev --state DIR``: the local stack's data kept between runs.

moto keeps everything in this process, so a stopped stack forgets it all. With ``--state DIR``
the stack writes what leadflow stores, through the same public AWS APIs the product uses, to
``DIR/leadflow-dev-state.json`` when it stops, and puts it back when it starts:

- every item of every table of the template (by logical id: physical names change per run),
- every message waiting in every queue of the template, dead-letter queues included,
- the generated secrets (tracking keys, the suppression key, webhook secrets), the admin
  token and the console's local passwords, so links in sent emails, the suppression list's
  hashes and scripts keep working,
- the outbox (emails sent), the console's recent bus events and the local clock's offset.

Not kept: messages a handler held when the stack stopped (Ctrl-C abandons them as Lambda would;
they are gone with the process), state machine executions, and anything written to the embedded
AWS endpoint outside the template's tables and queues. A restored table's stream starts after the
restore: its records were processed in the run that wrote them.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadflow.dev.stack import LocalStack

STATE_FILE = "leadflow-dev-state.json"
FORMAT = 1
_BINARY = "__b64__"


def _encode(value: Any) -> Any:
    """A DynamoDB attribute value as JSON: bytes (B, BS) as ``{"__b64__": ...}``."""
    if isinstance(value, bytes | bytearray):
        return {_BINARY: base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_BINARY}:
            return base64.b64decode(value[_BINARY])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def load(folder: Path) -> dict[str, Any] | None:
    """The state saved in ``folder``, or None on a first run.

    Raises:
        SystemExit: the file is not a state this version wrote.
    """
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise SystemExit(f"leadflow dev: {path} is not a saved state ({error}); move it away to start afresh") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SystemExit(f"leadflow dev: {path} was written by another version; move it away to start afresh")
    return state


def save(stack: LocalStack, folder: Path) -> dict[str, int]:
    """Write the stack's data to ``folder`` (atomically: a crash mid-write keeps the last state)."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {logical_id: [_encode(item) for item in _scan(stack, name)] for logical_id, name in _tables(stack)}
    queues = {logical_id: _drain(stack, url) for logical_id, url in _queues(stack)}
    outbox = stack.sent_emails()
    state = {
        "format": FORMAT,
        "admin_token": stack.admin_token,
        "secrets": stack.secret_values,
        "console_users": stack.console_users,
        "clock_offset_seconds": stack.clock.offset_seconds(),
        "tables": tables,
        "queues": queues,
        "outbox": outbox,
        "bus_events": stack.bus_events[-1000:],
    }
    target = folder / STATE_FILE
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(state, default=str), encoding="utf-8")
    os.replace(partial, target)
    return {
        "items": sum(len(items) for items in tables.values()),
        "messages": sum(len(m) for m in queues.values()),
        "emails": len(outbox),
    }


def restore(stack: LocalStack, state: dict[str, Any]) -> dict[str, int]:
    """Put a saved state's data into a freshly deployed stack (before it serves)."""
    dynamodb, sqs = stack.client("dynamodb"), stack.client("sqs")
    names, urls = dict(_tables(stack)), dict(_queues(stack))
    items = messages = 0
    for logical_id, saved in state.get("tables", {}).items():
        if logical_id not in names:
            continue  # a table the template no longer has
        for start in range(0, len(saved), 25):
            batch = [{"PutRequest": {"Item": _decode(item)}} for item in saved[start : start + 25]]
            pending: dict[str, Any] = {names[logical_id]: batch}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            items += len(batch)
    for logical_id, saved_messages in state.get("queues", {}).items():
        if logical_id not in urls:
            continue
        for start in range(0, len(saved_messages), 10):
            entries = [
                {"Id": str(n), "MessageBody": m["body"], "MessageAttributes": _decode(m["attributes"])}
                for n, m in enumerate(saved_messages[start : start + 10])
            ]
            sqs.send_message_batch(QueueUrl=urls[logical_id], Entries=entries)
            messages += len(entries)
    stack.skip_stream_records()
    stack.clock.advance(max(0.0, float(state.get("clock_offset_seconds", 0))))
    stack.restored_emails = list(state.get("outbox", []))
    stack.bus_events.extend(state.get("bus_events", []))
    return {"items": items, "messages": messages, "emails": len(stack.restored_emails)}


def _tables(stack: LocalStack) -> Iterator[tuple[str, str]]:
    for logical_id, resource in stack.cfn_template["Resources"].items():
        if resource["Type"] == "AWS::DynamoDB::Table" and logical_id in stack.physical:
            yield logical_id, stack.physical[logical_id]


def _queues(stack: LocalStack) -> Iterator[tuple[str, str]]:
    for logical_id, resource in stack.cfn_template["Resources"].items():
        if resource["Type"] == "AWS::SQS::Queue" and logical_id in stack.physical:
            yield logical_id, stack.physical[logical_id]


def _scan(stack: LocalStack, table: str) -> Iterator[dict[str, Any]]:
    for page in stack.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        yield from page["Items"]


def _drain(stack: LocalStack, url: str) -> list[dict[str, Any]]:
    """The queue's waiting messages (received once, hidden for the rest of this run)."""
    sqs = stack.client("sqs")
    kept: list[dict[str, Any]] = []
    while True:
        received = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=3600, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            return kept
        for message in received:
            attributes = {
                name: {k: _encode(v) for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
                for name, value in (message.get("MessageAttributes") or {}).items()
            }
            kept.append({"body": message["Body"], "attributes": attributes})
