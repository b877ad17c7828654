"""Load on the local stack (``leadflow dev`` in this process, RateLimitPerMinute 100000).

(a) Throughput: ``--posts`` (1,000) JSON form posts with distinct emails and client IPs
    from ``--threads`` (8) client threads, each on its own keep-alive connection; latency
    p50/p95/p99 and posts per second. A few warm-up posts (the handler's cold start) are
    sent first and not counted.
(b) Contention: ``--same-email`` (200) posts of ONE email, each from its own thread,
    connection and X-Forwarded-For address, released together by a threading.Barrier.
    Then, after ``POST /_dev/tick`` drains the queues, the admin API must show exactly one
    lead for the address, every response must be the same ``200 received`` without a lead
    id (the public answer names nobody), a scan of the table must find one profile with the address, and the lead's
    ``submissions`` counter and its activity items must both equal the posts accepted.

Both phases count TransactWriteItems calls, HTTP attempts and the errors botocore caught,
with hooks on boto3's default session registered before the stack starts.

Everything (client threads, gateway, handlers, moto, the event pump) shares this one
Python process and its GIL: the figures are the local stack's, not AWS's.

Exit status: 0 if all is well; 1 if any check of (b) fails (first of all: not exactly one
lead, by the admin API and in the table), or any request got a 5xx or no answer.

    cd /work/main && .venv/bin/python bench/local_stack_load.py [--threads 8] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FORM = "demo-signup"
WARMUP_POSTS = 10


class Client:
    """One keep-alive HTTP connection to the stack."""

    def __init__(self, url: str, token: str = "") -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.token = token
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def connect(self) -> None:
        self.conn.connect()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise

    def post_form(self, email: str, ip: str, n: int) -> tuple[int, dict[str, Any]]:
        body = {
            "email": email,
            "first_name": f"Load{n}",
            "company": "Example Inc",
            "utm_source": "bench",
            "utm_campaign": "local-stack-load",
        }
        headers = {"Content-Type": "application/json", "Accept": "application/json", "X-Forwarded-For": ip}
        status, raw = self.request("POST", f"/forms/{FORM}", json.dumps(body).encode(), headers)
        try:
            return status, json.loads(raw) if raw else {}
        except ValueError:
            return status, {"raw": raw[:200].decode("utf-8", "replace")}

    def get_json(self, path: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        status, raw = self.request("GET", path, headers=headers)
        return status, json.loads(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


class AwsCalls:
    """botocore hooks on boto3's default session: API calls, HTTP attempts and errors, by operation.

    Registered before the stack starts, so every client made afterwards (the handlers'
    included) carries them. Errors are what botocore caught on an attempt (read timeouts,
    connection errors, 5xx); standard retry mode retries them up to 3 attempts in all.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def install(self) -> None:
        import boto3

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        events.register("before-call", self.before_call, unique_id="bench-load-calls")
        events.register("before-send", self.before_send, unique_id="bench-load-attempts")
        events.register("needs-retry", self.needs_retry, unique_id="bench-load-errors")

    @staticmethod
    def _operation(event_name: str) -> str:
        parts = event_name.split(".")
        return ":".join(parts[1:3]) if len(parts) >= 3 else event_name

    def before_call(self, event_name: str = "", **_: Any) -> None:
        with self.lock:
            self.calls[self._operation(event_name)] += 1

    def before_send(self, event_name: str = "", **_: Any) -> None:
        with self.lock:
            self.attempts[self._operation(event_name)] += 1

    def needs_retry(self, event_name: str = "", response: Any = None, caught_exception: Any = None, **_: Any) -> None:
        cause = None
        if caught_exception is not None:
            cause = type(caught_exception).__name__
        elif response is not None and getattr(response[0], "status_code", 200) >= 500:
            cause = f"HTTP {response[0].status_code}"
        if cause:
            with self.lock:
                self.errors[f"{self._operation(event_name)} {cause}"] += 1

    def snapshot(self) -> dict[str, Counter[str]]:
        with self.lock:
            return {"calls": Counter(self.calls), "attempts": Counter(self.attempts), "errors": Counter(self.errors)}

    def since(self, before: dict[str, Counter[str]], operation: str = "dynamodb:TransactWriteItems") -> dict[str, Any]:
        now = self.snapshot()
        calls = now["calls"][operation] - before["calls"][operation]
        attempts = now["attempts"][operation] - before["attempts"][operation]
        return {
            "operation": operation,
            "calls": calls,
            "http_attempts": attempts,
            "retries": attempts - calls,
            "errors": dict(now["errors"] - before["errors"]),
        }


def ip_for(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255 or 1}"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    if not latencies_ms:
        return {}
    return {
        "p50_ms": round(percentile(latencies_ms, 50), 1),
        "p95_ms": round(percentile(latencies_ms, 95), 1),
        "p99_ms": round(percentile(latencies_ms, 99), 1),
        "mean_ms": round(statistics.fmean(latencies_ms), 1),
        "max_ms": round(max(latencies_ms), 1),
    }


# ---------------------------------------------------------------------- (a) throughput
def throughput(url: str, posts: int, threads: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    by_index: dict[int, float] = {}
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(posts))

    def worker() -> None:
        client = Client(url)
        try:
            while True:
                with lock:
                    n = next(next_index, None)
                if n is None:
                    return
                started = time.perf_counter()
                try:
                    status, _ = client.post_form(f"load.{run}.{n}@example.com", ip_for(1000 + n), n)
                except (OSError, http.client.HTTPException) as error:
                    with lock:
                        statuses["no answer"] += 1
                        errors.append(f"post {n}: {type(error).__name__}: {error}")
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    by_index[n] = elapsed
                    statuses[str(status)] += 1
        finally:
            client.close()

    workers = [threading.Thread(target=worker, name=f"load-{i}") for i in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    wall = time.perf_counter() - started
    tenth = max(1, posts // 10)
    ordered = [by_index[n] for n in sorted(by_index)]
    return {
        "posts": posts,
        "threads": threads,
        "wall_seconds": round(wall, 2),
        "posts_per_second": round(posts / wall, 1),
        "latency": latency_summary(latencies),
        # Does the stack slow down as the table fills? p50 of the first and the last tenth.
        "p50_first_tenth_ms": round(percentile(ordered[:tenth], 50), 1) if ordered else None,
        "p50_last_tenth_ms": round(percentile(ordered[-tenth:], 50), 1) if ordered else None,
        "statuses": dict(sorted(statuses.items())),
        "errors": errors[:20],
    }


# ---------------------------------------------------------------------- (b) one email
def same_email(url: str, token: str, posts: int, stack: Any, aws: AwsCalls) -> dict[str, Any]:
    email = f"contended.{uuid.uuid4().hex[:12]}@example.com"
    barrier = threading.Barrier(posts, timeout=120)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = Client(url)
        try:
            client.connect()  # connected before the barrier, so the posts really start together
            barrier.wait()
            started = time.perf_counter()
            try:
                status, answer = client.post_form(email, ip_for(100_000 + n), n)
                result = {"status": status, "lead_id": answer.get("lead_id"), "answer": answer}
            except (OSError, http.client.HTTPException) as error:
                result = {"status": "no answer", "lead_id": None, "answer": f"{type(error).__name__}: {error}"}
            result["ms"] = (time.perf_counter() - started) * 1000
            with lock:
                results.append(result)
        finally:
            client.close()

    workers = [threading.Thread(target=worker, args=(n,), name=f"same-{n}") for n in range(posts)]
    aws_before = aws.snapshot()
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    wall = time.perf_counter() - started
    aws_during = aws.since(aws_before)

    admin = Client(url, token)
    tick_started = time.perf_counter()
    while stack.tick(timeout=60)["delivered"]:  # a tick gives up after 60 s: until a pass delivers nothing
        pass
    tick_seconds = time.perf_counter() - tick_started
    checks_started = time.perf_counter()
    _, found = admin.get_json("/api/v1/leads?" + urllib.parse.urlencode({"email": email}))
    leads = (found or {}).get("leads", [])
    detail: dict[str, Any] = {}
    if len(leads) == 1:
        _, detail = admin.get_json(f"/api/v1/leads/{leads[0]['lead_id']}")
    admin.close()

    statuses = Counter(str(r["status"]) for r in results)
    response_ids = Counter(r["lead_id"] for r in results if r["lead_id"])
    profiles = profiles_with_email(stack, email)
    checks_seconds = time.perf_counter() - checks_started
    accepted = sum(n for s, n in statuses.items() if s in {"200", "201", "202"})
    lead = leads[0] if len(leads) == 1 else {}
    activities = activities_in_table(stack, lead["lead_id"]) if lead else None
    checks = {
        "exactly_one_lead_via_api": len(leads) == 1,
        "exactly_one_profile_in_table": len(profiles) == 1,
        # the public answer never names the lead (issue 13): every accepted post gets the same one
        "no_lead_id_in_any_response": not response_ids,
        "every_accepted_answer_the_same": set(statuses) <= {"200"},
        "submissions_equal_accepted_posts": bool(lead) and lead.get("submissions") == accepted,
        "activities_equal_accepted_posts": activities == accepted,
        "no_5xx_or_lost_answers": not any(s.startswith("5") or s == "no answer" for s in statuses),
    }
    return {
        "posts": posts,
        "email": email,
        "wall_seconds": round(wall, 2),
        "checks_seconds": round(checks_seconds, 2),
        "transact_write_items": aws_during,
        "latency": latency_summary([r["ms"] for r in results]),
        "statuses": dict(sorted(statuses.items())),
        "tick": {"seconds": round(tick_seconds, 2)},
        "leads_via_api": len(leads),
        "profiles_in_table": len(profiles),
        "distinct_lead_ids_in_responses": len(response_ids),
        "lead_id": lead.get("lead_id"),
        "submissions": lead.get("submissions"),
        "accepted_posts": accepted,
        "activities_returned": len(detail.get("activities", [])) if detail else None,
        "activities_in_table": activities,
        "activities_note": "GET /api/v1/leads/{id} returns at most 100 activities",
        "checks": checks,
        "other_answers": [r["answer"] for r in results if str(r["status"]) not in {"200", "201"}][:10],
    }


def activities_in_table(stack: Any, lead_id: str) -> int:
    """The lead's activity items, counted in the table (the API returns 100 at most)."""
    dynamodb = stack.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": stack.outputs["LeadsTableName"],
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :act)",
        "ExpressionAttributeValues": {":pk": {"S": f"LEAD#{lead_id}"}, ":act": {"S": "ACT#"}},
        "Select": "COUNT",
    }
    count = 0
    while True:
        page = dynamodb.query(**kwargs)
        count += page["Count"]
        if "LastEvaluatedKey" not in page:
            return count
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def profiles_with_email(stack: Any, email: str) -> list[dict[str, Any]]:
    """Every lead profile in the table carrying this address (the guard item aside)."""
    dynamodb = stack.client("dynamodb")
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": stack.outputs["LeadsTableName"],
        "FilterExpression": "SK = :profile AND email = :email",
        "ExpressionAttributeValues": {":profile": {"S": "PROFILE"}, ":email": {"S": email}},
    }
    while True:
        page = dynamodb.scan(**kwargs)
        found.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# ---------------------------------------------------------------------- main
def run(posts: int, threads: int, same: int) -> dict[str, Any]:
    from leadflow.dev.stack import LocalStack

    started = time.perf_counter()
    aws = AwsCalls()
    aws.install()  # before the stack starts: before any handler creates its clients
    stack = LocalStack(ROOT, ROOT / "workspace", port=0, parameters={"RateLimitPerMinute": "100000"}).start()
    startup = time.perf_counter() - started
    try:
        admin = Client(stack.url)
        _, info = admin.get_json("/_dev/stack")
        token = info["admin_token"]
        warm = Counter(
            str(admin.post_form(f"warmup.{uuid.uuid4().hex}@example.com", ip_for(n), n)[0])
            for n in range(1, WARMUP_POSTS + 1)
        )
        admin.close()
        report: dict[str, Any] = {
            "stack_start_seconds": round(startup, 2),
            "warmup_statuses": dict(warm),
            "load_average_1min_before": round(os.getloadavg()[0], 2),
        }
        aws_before = aws.snapshot()
        report["throughput"] = throughput(stack.url, posts, threads)
        report["throughput"]["transact_write_items"] = aws.since(aws_before)
        drain_started = time.perf_counter()
        delivered = passes = 0
        while True:  # one tick gives up after 60 s: tick until a pass delivers nothing
            tick = stack.tick(timeout=60)
            delivered += tick["delivered"]
            passes += 1
            if tick["delivered"] == 0:
                break
        report["drain_after_throughput"] = {
            "seconds": round(time.perf_counter() - drain_started, 2),
            "delivered": delivered,
            "ticks": passes,
        }
        report["same_email"] = same_email(stack.url, token, same, stack, aws)
        report["invocations"] = dict(stack.runner.invocations)
        report["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    finally:
        stopping = time.perf_counter()
        stack.stop()
        stop_seconds = time.perf_counter() - stopping
    report["stack_stop_seconds"] = round(stop_seconds, 2)
    report["total_seconds"] = round(time.perf_counter() - started, 2)
    return report


def tx_line(tx: dict[str, Any]) -> str:
    errors = ", ".join(f"{k} x{v}" for k, v in tx["errors"].items()) or "none"
    return (
        f"TransactWriteItems (all threads): {tx['calls']} calls, {tx['http_attempts']} HTTP attempts "
        f"({tx['retries']} botocore retries); errors caught by botocore: {errors}"
    )


def text(report: dict[str, Any]) -> str:
    a, b = report["throughput"], report["same_email"]
    la, lb = a["latency"], b["latency"]
    lines = [
        f"local stack started in {report['stack_start_seconds']} s; warm-up {report['warmup_statuses']}; "
        f"1-minute load average before/after {report['load_average_1min_before']} / "
        f"{report['load_average_1min_after']}",
        "",
        f"(a) {a['posts']} JSON posts, distinct emails, {a['threads']} client threads:",
        f"    {a['posts_per_second']} posts/s ({a['wall_seconds']} s); latency p50 {la['p50_ms']} ms, "
        f"p95 {la['p95_ms']} ms, p99 {la['p99_ms']} ms, max {la['max_ms']} ms",
        f"    p50 of the first tenth {a['p50_first_tenth_ms']} ms, of the last tenth {a['p50_last_tenth_ms']} ms",
        f"    statuses {a['statuses']}" + (f"; errors: {a['errors']}" if a["errors"] else ""),
        "    " + tx_line(a["transact_write_items"]),
        f"    the event pump (outbox relay) was idle {report['drain_after_throughput']['seconds']} s after the last "
        "answer (POST /_dev/tick waits for the pump)",
        "",
        f"(b) {b['posts']} concurrent posts of one email (barrier, distinct client IPs):",
        f"    {b['wall_seconds']} s; latency p50 {lb['p50_ms']} ms, p95 {lb['p95_ms']} ms, max {lb['max_ms']} ms",
        f"    statuses {b['statuses']}",
        "    " + tx_line(b["transact_write_items"]),
        f"    leads via admin API: {b['leads_via_api']}; profiles in table: {b['profiles_in_table']}; "
        f"distinct lead ids in responses: {b['distinct_lead_ids_in_responses']}",
        f"    lead {b['lead_id']}: submissions {b['submissions']} (accepted posts {b['accepted_posts']}); "
        f"activities: {b['activities_in_table']} in the table, {b['activities_returned']} returned by the API "
        "(capped at 100)",
    ]
    if b["activities_in_table"] is not None and b["submissions"] is not None:
        lines.append(
            f"    stored: {b['activities_in_table']} activities for {b['posts']} posts ({b['accepted_posts']} answered "
            f"200/201/202); counter - activities = {b['submissions'] - b['activities_in_table']} "
            "(transactions applied twice)"
        )
    lines += [f"    {'ok  ' if ok else 'FAIL'} {name}" for name, ok in b["checks"].items()]
    if b["other_answers"]:
        lines.append(f"    other answers: {b['other_answers']}")
    lines += [
        "",
        f"time: {report['total_seconds']} s in all; (b) tick {b['tick']['seconds']} s, checks {b['checks_seconds']} s; "
        f"stack stop {report['stack_stop_seconds']} s",
    ]
    return "\n".join(lines)


def failed(report: dict[str, Any]) -> list[str]:
    problems = [name for name, ok in report["same_email"]["checks"].items() if not ok]
    bad = [s for s in report["throughput"]["statuses"] if s.startswith("5") or s == "no answer"]
    if bad:
        problems.append(f"(a) answered {bad}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1000, help="posts in (a) (default 1000)")
    parser.add_argument("--threads", type=int, default=8, help="client threads in (a) (default 8)")
    parser.add_argument("--same-email", type=int, default=200, help="concurrent posts of one email in (b)")
    parser.add_argument("--json", action="store_true", help="write the results as JSON to stdout")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for name in ("werkzeug", "moto", "botocore", "urllib3", "leadflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    # Handlers print (Powertools EMF lines, logs) to stdout: keep stdout for the report.
    with contextlib.redirect_stdout(sys.stderr):
        report = run(args.posts, args.threads, args.same_email)
    problems = failed(report)
    report["problems"] = problems
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(text(report))
        if problems:
            print(f"\nFAILED: {', '.join(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
