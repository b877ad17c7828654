"""Hand-offs per second through the local pipeline, from the API call to the fake CRM.

Starts the local stack in-process (the real template on moto, handlers in this process),
creates N leads through the demo form, then hands all N off through
``POST /api/v1/leads/{id}/handoff`` from T client threads and waits until the fake CRM
(the demo workspace's Standard Webhooks destination) has received every one. The path is
the deployed one: admin API (assignment: round-robin ticket + owner capacity, payload from
the score ledger, record + outbox in one transaction, delivery message) -> HandoffQueue ->
CrmHandoffFunction (lease, signed POST, record update) -> fake CRM. The local stack's
pollers run on their own every 0.2 s; nobody calls ``/_dev/tick``.

Reported: start rate (API calls per second), end-to-end rate (hand-offs delivered per
second, first call to last arrival), per-hand-off latency (call to arrival) p50 / p95, and
duplicates (must be 0: each webhook-id once). One machine, moto in the same process: the
absolute figures say what `leadflow dev` does, not what AWS does.

    .venv/bin/python bench/handoff_throughput.py [--handoffs 200] [--threads 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def make_leads(url: str, token: str, count: int) -> list[str]:
    """``count`` new leads through the demo form (each from its own client address)."""
    net = uuid.uuid4().int % 200
    admin = {"Authorization": f"Bearer {token}"}

    def one(i: int) -> str:
        body = {"email": f"bench.{uuid.uuid4().hex[:10]}@example.com", "first_name": "Bench", "country": "US"}
        headers = {"X-Forwarded-For": f"10.{net}.{i // 250}.{i % 250 + 1}"}
        response = requests.post(f"{url}/forms/demo-signup", json=body, headers=headers, timeout=30)
        response.raise_for_status()
        # the public answer names no lead: the admin API finds it by the address
        found = requests.get(f"{url}/api/v1/leads", params={"email": body["email"]}, headers=admin, timeout=30).json()[
            "leads"
        ]
        return str(found[0]["lead_id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def hand_off_all(
    url: str, token: str, leads: list[str], threads: int, created: dict[str, str] | None = None
) -> dict[str, float]:
    """Hand every lead off through the admin API from ``threads`` clients: handoff_id -> time of the call.

    ``created`` (when given) gets each hand-off's ``created_at`` (the stack's clock).
    """
    started: dict[str, float] = {}

    def hand_off(lead_id: str) -> None:
        at = time.perf_counter()
        response = requests.post(
            f"{url}/api/v1/leads/{lead_id}/handoff",
            json={"reason": "benchmark"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        response.raise_for_status()
        record = response.json()
        started[record["handoff_id"]] = at
        if created is not None:
            created[record["handoff_id"]] = record["created_at"]

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(hand_off, leads))
    return started


def mean_ms(stack: Any, logical_id: str) -> float:
    calls = stack.runner.invocations.get(logical_id, 0)
    return round(stack.runner.durations_ms.get(logical_id, 0) / calls, 1) if calls else 0.0


def run(handoffs: int, threads: int) -> dict[str, Any]:
    from leadflow.dev.stack import LocalStack

    stack = LocalStack(ROOT, ROOT / "workspace", port=0, parameters={"RateLimitPerMinute": "100000"}).start()
    try:
        url, token = stack.url, stack.admin_token
        leads = make_leads(url, token, handoffs)
        stack.tick()
        stack.fake_crm.clear()
        first = time.perf_counter()
        started = hand_off_all(url, token, leads, threads)
        api_done = time.perf_counter()
        arrived: dict[str, float] = {}
        seen: Counter[str] = Counter()
        deadline = time.perf_counter() + 600
        consumed = 0
        while len(arrived) < handoffs and time.perf_counter() < deadline:
            received = stack.fake_crm.requests()
            fresh, consumed = received[consumed:], len(received)
            for request in fresh:
                seen[request["headers"].get("webhook-id", "")] += 1
                handoff_id = json.loads(request["body"]).get("handoff_id", "")
                if handoff_id in started and request["answered"] == 200 and handoff_id not in arrived:
                    arrived[handoff_id] = time.perf_counter()
            time.sleep(0.02)
        last = max(arrived.values()) if arrived else time.perf_counter()
        latencies = [arrived[h] - started[h] for h in arrived]
        return {
            "handoffs": handoffs,
            "threads": threads,
            "delivered": len(arrived),
            "duplicates": sum(n - 1 for n in seen.values() if n > 1),
            "api_rate_per_s": round(handoffs / (api_done - first), 1),
            "end_to_end_rate_per_s": round(len(arrived) / (last - first), 1),
            "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "latency_p95_s": round(percentile(latencies, 95), 3) if latencies else None,
            "handler_invocations": stack.runner.invocations.get("CrmHandoffFunction", 0),
            "api_handler_ms_mean": mean_ms(stack, "LeadApiFunction"),
            "delivery_handler_ms_mean": mean_ms(stack, "CrmHandoffFunction"),
        }
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--handoffs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    warnings.simplefilter("ignore")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    load_before = os.getloadavg()
    result = run(args.handoffs, args.threads)
    result.update(
        load_before=[round(x, 2) for x in load_before],
        load_after=[round(x, 2) for x in os.getloadavg()],
        at=datetime.now().astimezone().isoformat(timespec="seconds"),
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['delivered']}/{result['handoffs']} hand-offs delivered, {result['duplicates']} duplicates")
    print(f"API: {result['api_rate_per_s']} hand-offs started per second ({args.threads} client threads)")
    print(f"end to end: {result['end_to_end_rate_per_s']} hand-offs delivered per second")
    print(
        f"handler time: API {result['api_handler_ms_mean']} ms per call, "
        f"delivery {result['delivery_handler_ms_mean']} ms per batch ({result['handler_invocations']} batches)"
    )
    print(f"latency call -> fake CRM: p50 {result['latency_p50_s']} s, p95 {result['latency_p95_s']} s")
    print(f"load average before {result['load_before']}, after {result['load_after']}")
    return 0 if result["delivered"] == result["handoffs"] and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
