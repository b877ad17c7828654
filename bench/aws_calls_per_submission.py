"""AWS API calls the form capture handler makes per submission, by service and operation.

Starts the local stack in this process, registers a botocore ``before-call`` hook (one
event per API call) and a ``before-send`` hook (one event per HTTP attempt, so retries
show) on boto3's default session *before* the handler creates its clients, and counts
only the calls made by the thread that runs the form capture handler for the HTTP
request. The background outbox relay and the other pollers run on other threads and
are not counted.

Scenarios: a new lead, a returning lead (same email again), spam (honeypot filled), a
post with an Idempotency-Key and the same post repeated, and an HTML (urlencoded) post.
The goal stated in the issue is at most 3 calls per accepted submission.

    cd /work/main && .venv/bin/python bench/aws_calls_per_submission.py [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import sys
import threading
import time
import urllib.parse
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FORM = "demo-signup"
FUNCTION = "FormCaptureFunction"
GOAL_CALLS = 3

_scope = threading.local()


class CallCounter:
    """botocore hooks that count calls made while a thread is inside the form handler."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def before_call(self, model: Any = None, **_: Any) -> None:
        calls: Counter[str] | None = getattr(_scope, "calls", None)
        if calls is not None and model is not None:
            calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def before_parameter_build(self, params: Any = None, model: Any = None, **_: Any) -> None:
        items: list[int] | None = getattr(_scope, "items", None)
        if items is not None and isinstance(params, dict) and "TransactItems" in params:
            items.append(len(params["TransactItems"]))

    def before_send(self, request: Any = None, **_: Any) -> None:
        attempts: list[int] | None = getattr(_scope, "attempts", None)
        if attempts is not None:
            attempts[0] += 1


def install_hooks(counter: CallCounter) -> None:
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    events.register("before-call", counter.before_call, unique_id="bench-count-calls")
    events.register("before-send", counter.before_send, unique_id="bench-count-attempts")
    events.register("before-parameter-build", counter.before_parameter_build, unique_id="bench-count-items")


def wrap_runner(stack: Any, records: list[dict[str, Any]]) -> None:
    """Scope counting to the form handler's invocations on the gateway's request thread."""
    original: Callable[[str, Any], Any] = stack.runner.invoke
    form_function = stack.runner.functions[FUNCTION]

    def invoke(function_ref: str, event: Any) -> Any:
        if stack.runner.functions.get(function_ref) is not form_function:
            return original(function_ref, event)
        _scope.calls, _scope.attempts, _scope.items = Counter(), [0], []
        started = time.perf_counter()
        try:
            return original(function_ref, event)
        finally:
            records.append(
                {
                    "thread": threading.get_ident(),
                    "calls": dict(_scope.calls),
                    "http_attempts": _scope.attempts[0],
                    "transaction_items": list(_scope.items),
                    "handler_ms": round((time.perf_counter() - started) * 1000, 2),
                }
            )
            _scope.calls = _scope.attempts = _scope.items = None

    stack.runner.invoke = invoke


def post(
    url: str, body: dict[str, Any], *, ip: str, as_json: bool = True, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    sent = {"X-Forwarded-For": ip, **(headers or {})}
    if as_json:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    else:
        data = urllib.parse.urlencode(body).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request("POST", f"/forms/{FORM}", body=data, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        status = response.status
    finally:
        conn.close()
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = {"raw": raw[:200].decode("utf-8", "replace")}
    return status, answer


def fields(email: str) -> dict[str, Any]:
    return {
        "email": email,
        "first_name": "Bench",
        "company": "Example Inc",
        "utm_source": "bench",
        "utm_campaign": "aws-calls",
    }


def email() -> str:
    return f"bench.calls.{uuid.uuid4().hex[:12]}@example.com"


def ip(n: int) -> str:
    return f"198.51.100.{n}"


def scenarios(url: str) -> list[tuple[str, bool, Callable[[], tuple[int, dict[str, Any]]]]]:
    """(name, accepted, post) in the order they run; each post is one HTTP request."""
    returning = email()
    key = f"bench-{uuid.uuid4().hex}"
    keyed = email()
    spam = {**fields(email()), "website": "http://spam.example"}
    return [
        ("warm-up (new lead, first request: imports the handler)", True, lambda: post(url, fields(email()), ip=ip(1))),
        ("new lead (JSON)", True, lambda: post(url, fields(returning), ip=ip(2))),
        ("returning lead (same email again)", True, lambda: post(url, fields(returning), ip=ip(3))),
        ("spam (honeypot `website` filled)", False, lambda: post(url, spam, ip=ip(4))),
        (
            "Idempotency-Key, first post (new lead)",
            True,
            lambda: post(url, fields(keyed), ip=ip(5), headers={"Idempotency-Key": key}),
        ),
        (
            "Idempotency-Key repeated (same post again)",
            True,
            lambda: post(url, fields(keyed), ip=ip(5), headers={"Idempotency-Key": key}),
        ),
        ("new lead (HTML urlencoded post, 303)", True, lambda: post(url, fields(email()), ip=ip(6), as_json=False)),
    ]


def run() -> dict[str, Any]:
    from leadflow.dev.stack import LocalStack

    counter = CallCounter()
    install_hooks(counter)  # before the stack starts: no handler client exists yet
    stack = LocalStack(ROOT, ROOT / "workspace", port=0, parameters={"RateLimitPerMinute": "100000"}).start()
    records: list[dict[str, Any]] = []
    results = []
    try:
        wrap_runner(stack, records)
        for name, accepted, send in scenarios(stack.url):
            before = len(records)
            status, answer = send()
            invoked = records[before:]
            calls: Counter[str] = Counter()
            for record in invoked:
                calls.update(record["calls"])
            results.append(
                {
                    "scenario": name,
                    "accepted_submission": accepted,
                    "status": status,
                    "answer": answer,
                    "handler_invocations": len(invoked),
                    "calls": dict(sorted(calls.items())),
                    "total_calls": sum(calls.values()),
                    "http_attempts": sum(r["http_attempts"] for r in invoked),
                    "transaction_items": [n for r in invoked for n in r["transaction_items"]],
                    "handler_ms": sum(r["handler_ms"] for r in invoked),
                    "within_goal": sum(calls.values()) <= GOAL_CALLS,
                }
            )
    finally:
        stack.stop()
    return {"goal_calls_per_accepted_submission": GOAL_CALLS, "scenarios": results}


def table(report: dict[str, Any]) -> str:
    lines = [
        f"AWS API calls by the form capture handler per request (goal <= {GOAL_CALLS} per accepted submission)",
        "",
        f"{'scenario':56} {'HTTP':>4} {'calls':>5} {'attempts':>8} {'tx items':>8}  by service:operation",
    ]
    for row in report["scenarios"]:
        detail = ", ".join(f"{op} x{n}" for op, n in row["calls"].items()) or "-"
        mark = "" if not row["accepted_submission"] else ("  ok" if row["within_goal"] else "  OVER GOAL")
        items = "+".join(str(n) for n in row["transaction_items"]) or "-"
        lines.append(
            f"{row['scenario']:56} {row['status']:>4} {row['total_calls']:>5} {row['http_attempts']:>8} {items:>8}"
            f"  {detail}{mark}"
        )
    lines += [
        "",
        "calls: API calls (botocore before-call); attempts: HTTP requests sent, retries included (before-send);",
        "tx items: items in each TransactWriteItems call. Only the form handler's own thread is counted.",
    ]
    return "\n".join(lines)


def quiet() -> None:
    logging.basicConfig(level=logging.ERROR)
    for name in ("werkzeug", "moto", "botocore", "urllib3", "leadflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="moto")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="write the results as JSON to stdout")
    args = parser.parse_args()
    quiet()
    with contextlib.redirect_stdout(sys.stderr):  # handlers print logs and EMF lines
        report = run()
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(table(report))
    unexpected = [
        r
        for r in report["scenarios"]
        if r["status"] >= 500
        or r["handler_invocations"] != 1
        or (r["accepted_submission"] and r["total_calls"] == 0)  # the hooks did not see the handler's client
    ]
    for row in unexpected:
        print(f"unexpected: {row['scenario']}: HTTP {row['status']}, {row['total_calls']} calls", file=sys.stderr)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
