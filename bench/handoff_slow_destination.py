"""One slow destination does not delay the others: hand-off latency to a fast destination
while a second destination of the same hand-offs answers slowly, or not in time.

Starts the local stack in-process on a copy of the demo workspace with two destinations
per hand-off: ``crm-webhook`` (the fake CRM, fast) and ``slow`` (a server in this script
that waits ``delay`` seconds before answering 200; the destination's timeout is 5 s).
After a warm-up of 10 hand-offs, three phases of N hand-offs each (API calls from 4
threads): the slow server answering at once (baseline), after 3 s (slow but in time), and
after 8 s (past the timeout: the attempt is cut at 5 s and retried with backoff). For each phase: the fast destination's
latency (hand-off created -> arrival at the fake CRM) p50 / p95 / max, and what the slow one got.

Why it holds: each destination of a hand-off is its own queue message; a batch's messages
are sent in parallel threads; CrmHandoffFunction's event source runs up to 10 batches at
once (ScalingConfig, which the local pollers honour); every attempt has a timeout, and a
timed-out attempt waits out its backoff outside the queue's visible messages.

    .venv/bin/python bench/handoff_slow_destination.py [--handoffs 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from handoff_throughput import hand_off_all, make_leads, percentile  # this folder's sibling
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parent.parent
PHASES = (("slow answers at once", 0.0), ("slow answers after 3 s", 3.0), ("slow times out (8 s > 5 s)", 8.0))


class SlowServer:
    """A destination that waits ``delay`` seconds, then answers 200; it notes what arrived when."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.arrivals: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.arrivals.append((request.headers.get("webhook-id", ""), time.perf_counter()))
        time.sleep(self.delay)
        return Response('{"ok": true}', 200, content_type="application/json")(environ, start_response)


def workspace_with_slow_destination(port: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="leadflow-bench-")) / "workspace"
    shutil.copytree(ROOT / "workspace", folder)
    config = (folder / "handoff.yaml").read_text(encoding="utf-8")
    slow = (
        "  - name: slow\n    type: webhook\n"
        f"    url: http://127.0.0.1:{port}/slow\n    allow_private_network: true\n    timeout_seconds: 5\n"
    )
    (folder / "handoff.yaml").write_text(config.replace("\nassignment:", slow + "\nassignment:", 1), encoding="utf-8")
    return folder


def phase(stack: Any, slow: SlowServer, handoffs: int, delay: float) -> dict[str, Any]:
    leads = make_leads(stack.url, stack.admin_token, handoffs)
    stack.tick()
    slow.delay = delay
    began = time.perf_counter()
    created: dict[str, str] = {}
    started = hand_off_all(stack.url, stack.admin_token, leads, 4, created)
    fast: dict[str, float] = {}
    deadline = time.perf_counter() + 300
    while len(fast) < handoffs and time.perf_counter() < deadline:
        for request in stack.fake_crm.requests():
            handoff_id = json.loads(request["body"]).get("handoff_id", "")
            if handoff_id in started and handoff_id not in fast and request["answered"] == 200:
                # From the hand-off's creation to its arrival, both on the stack's clock: the
                # delivery path alone, without the API calls queueing behind each other.
                arrived = datetime.fromisoformat(request["received_at"])
                fast[handoff_id] = (arrived - datetime.fromisoformat(created[handoff_id])).total_seconds()
        time.sleep(0.05)
    latencies = list(fast.values())
    slow_ids = {f"msg_{h}_slow" for h in started}
    with slow.lock:
        slow_hits = [(w, t) for w, t in slow.arrivals if w in slow_ids and t >= began]
    return {
        "slow_delay_s": delay,
        "fast_delivered": len(fast),
        "fast_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "fast_p95_s": round(percentile(latencies, 95), 3) if latencies else None,
        "fast_max_s": round(max(latencies), 3) if latencies else None,
        "slow_requests_seen": len(slow_hits),
        "slow_distinct_handoffs": len({w for w, _ in slow_hits}),
    }


def run(handoffs: int) -> list[dict[str, Any]]:
    from leadflow.dev.stack import LocalStack

    slow = SlowServer()
    workspace = workspace_with_slow_destination(slow.server.server_port)
    stack = LocalStack(ROOT, workspace, port=0, parameters={"RateLimitPerMinute": "100000"}).start()
    try:
        phase(stack, slow, 10, 0.0)  # warm-up (cold imports, first connections): not reported
        results = []
        for name, delay in PHASES:
            result = {"phase": name, **phase(stack, slow, handoffs, delay)}
            result["load"] = [round(x, 2) for x in os.getloadavg()]
            results.append(result)
            print(json.dumps(result), file=sys.stderr)
        return results
    finally:
        slow.delay = 0
        stack.stop()
        slow.server.shutdown()
        shutil.rmtree(workspace.parent, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--handoffs", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    warnings.simplefilter("ignore")
    load_before = [round(x, 2) for x in os.getloadavg()]
    results = run(args.handoffs)
    at = datetime.now().astimezone().isoformat(timespec="seconds")
    if args.json:
        print(json.dumps({"at": at, "load_before": load_before, "phases": results}, indent=2))
        return 0
    print(f"{args.handoffs} hand-offs per phase, two destinations each; load before {load_before}")
    for r in results:
        print(
            f"{r['phase']:<28} fast destination p50 {r['fast_p50_s']} s, p95 {r['fast_p95_s']} s, "
            f"max {r['fast_max_s']} s ({r['fast_delivered']} delivered); slow destination saw "
            f"{r['slow_requests_seen']} requests for {r['slow_distinct_handoffs']} hand-offs; load {r['load']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
