"""CPU per lead of a broadcast's first email, on the local stack (what the cost meter's
``NurtureDueFunction[broadcast]`` line prices).

Seeds ``--leads`` profiles (the cost meter's: as form capture stores them) into the local stack's table, then
invokes ``NurtureDueFunction`` with one broadcast part of ``push-discount`` covering the whole
table: scan pages, segment test, the BatchGetItem of enrollments and mail logs, the gates,
rendering with signed links, the mail-log claim (PutItem), SESv2 SendEmail, the enrollment
PutItem, the send-rate counter. It reports the CPU time of the handler's thread and of the
threads of its pools (not moto's, which serves the calls from other threads of this process),
per lead, and where it goes:

- ``--profile`` works the leads on the handler's thread alone (``workers = 1``) and prints the
  cProfile of that thread (timed in thread CPU time, so waits on moto do not show), sorted by
  ``--sort`` (tottime or cumtime);
- ``--repeat N`` runs N broadcasts (a fresh table of leads each) and reports the median.

    cd /work/main && .venv/bin/python bench/broadcast_cpu.py [--leads 400] [--repeat 3] [--profile] [--json]

Like ``nurture_cost.py`` the process runs moto and the handler at once, so a shared machine
moves the figures; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextvars
import cProfile
import io
import json
import logging
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from campaign_stack import prepare_workspace, seed  # the cost meter's profiles and workspace: the same leads

ROOT = Path(__file__).resolve().parent.parent
SEQUENCE = "push-discount"
SEND_RATE = 10_000

_measured: contextvars.ContextVar[bool] = contextvars.ContextVar("broadcast_cpu_measured", default=False)


class CpuMeter:
    """CPU time of the measured thread and of the pool tasks it starts (their context is copied),
    and the part of it spent inside boto3 calls, by operation (request building, signing, HTTP,
    response parsing: everything between the adapter's call and its answer)."""

    def __init__(self) -> None:
        self.pool_seconds = 0.0
        self.calls: dict[str, list[float]] = {}  # operation -> [calls, CPU seconds]
        self.lock = threading.Lock()
        from botocore.client import BaseClient

        make_api_call = BaseClient._make_api_call

        def timed(client: Any, operation: str, params: Any) -> Any:
            if not _measured.get():
                return make_api_call(client, operation, params)
            cpu = time.thread_time()
            try:
                return make_api_call(client, operation, params)
            finally:
                spent = time.thread_time() - cpu
                name = f"{client.meta.service_model.service_name}:{operation}"
                with meter.lock:
                    row = meter.calls.setdefault(name, [0, 0.0])
                    row[0] += 1
                    row[1] += spent

        BaseClient._make_api_call = timed  # type: ignore[method-assign]
        original = concurrent.futures.ThreadPoolExecutor.submit
        meter = self

        def submit(pool: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            def run(*inner: Any, **named: Any) -> Any:
                cpu = time.thread_time()
                try:
                    return fn(*inner, **named)
                finally:
                    if _measured.get():
                        with meter.lock:
                            meter.pool_seconds += time.thread_time() - cpu

            return original(pool, contextvars.copy_context().run, run, *args, **kwargs)

        concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]


def clear(stack: Any, table: str) -> None:
    """Every item of the table deleted (a fresh campaign for the next repeat)."""
    client = stack.client("dynamodb")
    keys: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": "PK, SK"}
    while True:
        answer = client.scan(**kwargs)
        keys += answer.get("Items", [])
        if not answer.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    for start in range(0, len(keys), 25):
        pending: dict[str, Any] = {table: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def quiet() -> None:
    for name in ("werkzeug", "moto", ""):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from leadflow.bootstrap.nurture import nurture_service
    from leadflow.dev.stack import LocalStack

    quiet()
    meter = CpuMeter()
    workspace = prepare_workspace(SEND_RATE)
    stack = LocalStack(ROOT, workspace, port=0, parameters={"RateLimitPerMinute": "1000000"}, log_level="ERROR")
    stack.start()
    rows: list[dict[str, Any]] = []
    profile_text = ""
    try:
        stack._stop.set()  # no background pump: nothing but the broadcast runs
        for thread in stack._threads:
            if thread.name == "leadflow-pump":
                thread.join(timeout=10)
        table = stack.physical["LeadsTable"]
        now = stack.clock.now()
        nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
        stack.clock.advance(((nine if nine > now else nine + timedelta(days=1)) - now).total_seconds())
        rng = random.Random(args.seed)
        # Warm-up: imports, clients, templates compiled, the sequence version stored.
        seed(stack, table, 20, rng)
        stack.runner.invoke("NurtureDueFunction", part_event("warm-up"))
        service = nurture_service()
        if args.profile:
            service.workers = 1
        for n in range(args.repeat):
            clear(stack, table)
            seed(stack, table, args.leads, rng)
            meter.pool_seconds = 0.0
            meter.calls = {}
            profiler = cProfile.Profile(time.thread_time) if args.profile else None  # CPU, not waits
            token = _measured.set(True)
            wall, cpu = time.perf_counter(), time.thread_time()
            if profiler is not None:
                profiler.enable()
            counts = stack.runner.invoke("NurtureDueFunction", part_event(f"run-{n}"))
            if profiler is not None:
                profiler.disable()
            cpu = time.thread_time() - cpu
            wall = time.perf_counter() - wall
            _measured.reset(token)
            total = cpu + meter.pool_seconds
            in_calls = sum(seconds for _, seconds in meter.calls.values())
            rows.append(
                {
                    "leads": args.leads,
                    "sent": counts.get("sent", 0),
                    "counts": counts,
                    "wall_s": round(wall, 3),
                    "cpu_ms_per_lead": round(total * 1000 / args.leads, 3),
                    "handler_thread_ms_per_lead": round(cpu * 1000 / args.leads, 3),
                    "pool_threads_ms_per_lead": round(meter.pool_seconds * 1000 / args.leads, 3),
                    "boto3_calls_ms_per_lead": round(in_calls * 1000 / args.leads, 3),
                    "other_ms_per_lead": round((total - in_calls) * 1000 / args.leads, 3),
                    "calls": {
                        op: {"per_lead": round(n / args.leads, 3), "cpu_us_per_call": round(sec * 1e6 / n)}
                        for op, (n, sec) in sorted(meter.calls.items())
                    },
                    "load": [round(x, 2) for x in os.getloadavg()],
                    "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                }
            )
            if profiler is not None and n == args.repeat - 1:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
                profile_text = out.getvalue()
    finally:
        stack.stop()
        shutil.rmtree(workspace.parent, ignore_errors=True)
    median = statistics.median(r["cpu_ms_per_lead"] for r in rows)
    return {
        "commit": commit(),
        "leads": args.leads,
        "repeat": args.repeat,
        "profile": args.profile,
        "median_cpu_ms_per_lead": median,
        "rows": rows,
        "profile_text": profile_text,
    }


def part_event(run: str) -> dict[str, Any]:
    """One broadcast part over the whole table (one scan segment): what a hop invocation gets."""
    return {"broadcast": SEQUENCE, "run": run, "segment": 0, "segments": 1, "hop": 0}


def text(report: dict[str, Any]) -> str:
    lines = [
        f"broadcast CPU per lead: {report['leads']:,} leads, one part of {SEQUENCE} on the local stack, "
        f"{report['repeat']} run(s), code {report['commit']}"
        + (" (profiled: workers = 1, cProfile on)" if report["profile"] else ""),
        f"{'finished (UTC)':<20} {'sent':>6} {'wall s':>8} {'CPU ms/lead':>12} {'in boto3':>9} {'other':>8}  load",
    ]
    for row in report["rows"]:
        lines.append(
            f"{row['finished_utc']:<20} {row['sent']:>6} {row['wall_s']:>8.2f} {row['cpu_ms_per_lead']:>12.3f} "
            f"{row['boto3_calls_ms_per_lead']:>9.3f} {row['other_ms_per_lead']:>8.3f}  "
            f"{' '.join(str(x) for x in row['load'])}"
        )
    last = report["rows"][-1]
    lines.append("boto3 calls of the last run: per lead, CPU per call")
    lines += [f"  {op:<32} {c['per_lead']:>7.3f}  {c['cpu_us_per_call']:>7,} µs" for op, c in last["calls"].items()]
    lines.append(f"median CPU per lead: {report['median_cpu_ms_per_lead']:.3f} ms")
    if report["profile_text"]:
        lines.append(report["profile_text"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="one thread, cProfile of the last run")
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumtime"))
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(text(report))
    bad = [r for r in report["rows"] if r["sent"] != r["leads"]]
    if bad:
        print(f"warning: {len(bad)} run(s) did not send one email per lead", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
