"""Click-to-updated-score latency on the local stack.

For each of N leads: issue a signed click link (``POST /_dev/tokens``), follow it
(``GET /t/c/{token}``, as the recipient's browser does), then poll the score API until the
lead's ledger holds the click's entries. The path measured is the whole pipeline as
deployed: track function -> table (activity + outbox) -> stream -> outbox relay -> bus ->
scoring queue -> scoring function -> table; the local stack's pollers run on their own
(every 0.2 s), nobody calls ``/_dev/tick``.

    cd /work/main && .venv/bin/python bench/click_to_score_latency.py [--leads 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from leadflow.dev.stack import LocalStack

    stack = LocalStack(ROOT, ROOT / "workspace", parameters={"RateLimitPerMinute": "100000"}).start()
    http = requests.Session()
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    latencies: list[float] = []
    missed = 0
    try:
        for n in range(args.leads):
            email = f"latency.{uuid.uuid4().hex[:10]}@example.com"
            http.post(
                f"{stack.url}/forms/demo-signup",
                json={"email": email},
                headers={"X-Forwarded-For": f"10.9.{n // 250}.{n % 250 + 1}"},
                timeout=30,
            ).raise_for_status()
            # the public answer names no lead: the admin API finds it by the address
            found = http.get(f"{stack.url}/api/v1/leads", params={"email": email}, headers=headers, timeout=30)
            lead_id = found.json()["leads"][0]["lead_id"]
            stack.tick()  # the form's own scoring settles first
            before = http.get(f"{stack.url}/api/v1/leads/{lead_id}/score", headers=headers, timeout=30).json()
            token = http.post(
                f"{stack.url}/_dev/tokens",
                json={
                    "kind": "c",
                    "lead_id": lead_id,
                    "message_id": uuid.uuid4().hex,
                    "link_id": "pricing",
                    "url": "https://www.example.com/pricing",
                },
                timeout=30,
            ).json()["token"]
            started = time.perf_counter()
            assert http.get(f"{stack.url}/t/c/{token}", allow_redirects=False, timeout=30).status_code == 302
            while True:
                now = http.get(f"{stack.url}/api/v1/leads/{lead_id}/score", headers=headers, timeout=30).json()
                if now["ledger_entries"] > before["ledger_entries"]:
                    latencies.append((time.perf_counter() - started) * 1000)
                    break
                if time.perf_counter() - started > args.timeout:
                    missed += 1
                    break
                time.sleep(0.02)
    finally:
        stack.stop()
    result = {
        "leads": args.leads,
        "missed": missed,
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
        "min_ms": round(min(latencies), 1),
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"click -> updated score on the local stack, {args.leads} leads (pollers every 0.2 s, no tick):")
        print(
            f"  p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, min {result['min_ms']} ms, "
            f"max {result['max_ms']} ms; missed (> {args.timeout:.0f} s): {missed}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
