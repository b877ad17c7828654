"""How long a 1,000,000-lead broadcast takes to drain, against the time its SES rate allows.

Two halves:

1. **Local run** (measured). The real ``template.yaml`` on the local stack (embedded moto,
   every handler in this process, the cost meter's call counting): N seeded leads, the demo
   push sequence broadcast at a local SES rate of R emails a second, started as the admin API
   starts it (``{"broadcast", "run"}`` to NurtureDueFunction). The broadcast state machine
   (``infra/statemachines/broadcast.asl.json``) runs the parts, a hop each per round, hops cut
   short (``--hop-seconds``) so that the run goes round several times. Measured: emails sent
   (each once), wall time against N / R, rounds, and per email the CPU and AWS calls of the
   hops.
2. **Model** (the cost meter's time model, ``bench/metering.py``). A hop's time per email in
   Lambda = its CPU here x 1769/512 (Lambda's CPU share at 512 MB) + each call's assumed in-region
   latency over the ``SEND_WORKERS`` threads. A part's capacity is 1 / that; a broadcast at rate
   R runs ``broadcast_parts(R)`` parts, each given ``slot_block(R)`` sends a second. The drain
   time of 1,000,000 leads is then the largest Scan segment over a part's rate, plus one
   round's start-up per hop (``HOP_SECONDS``, 600 s). The assumptions and the AWS limit behind each are
   printed with the result (and written in docs/benchmarks.md).

    .venv/bin/python bench/broadcast_drain.py [--leads 600] [--rate 20] [--hop-seconds 8]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess  # nosec B404 - uptime, for the load beside the figures
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from campaign import SEQUENCE, quiet_logs  # bench/, beside this script
from campaign_stack import (  # bench/, beside this script
    Harness,
    Invocations,
    patient_clients,
    prepare_workspace,
    propagate_context_to_threads,
    seed,
    wrap_runner,
)
from metering import LAMBDA_CPU_SCALE, REGION, Meter  # bench/, beside this script

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = 1_000_000
RATES = (14, 20, 50, 100, 200, 500, 1_000)
GOAL = 1.1
HOP = "NurtureDueFunction[broadcast]"

# The model's assumptions, each with the AWS limit or figure it rests on.
ROUND_START_S = 3.0
"""Seconds between two rounds' hops (the Map's results collected, a Choice, the next Map run and its
children started, the Lambda invoked, the first Scan page read). Not measured in AWS here: Step
Functions documents no start latency for Map Run children; 3 s is a generous guess (a warm Lambda
invoke is tens of ms, a Scan page ~60 ms in the meter's latencies), and the result says how much of
the drain it is."""
ASSUMPTIONS = (
    (
        "Lambda concurrency",
        "one concurrent execution per part: 1 / 5 / 50 at 14 / 100 / 1,000 a second, at most 500",
        "1,000 concurrent executions per account and Region by default (Lambda quotas)",
    ),
    (
        "Lambda CPU",
        "512 MB gets 512/1769 of a vCPU: a hop's CPU here x3.46",
        "Lambda allocates CPU in proportion to memory, one vCPU at 1,769 MB",
    ),
    (
        "DynamoDB partition throughput",
        "the hottest item is the send-slot counter of the current second: one write per part a second "
        "(50/s at 1,000 emails/s); every other write goes to the lead's own partition",
        "1,000 write units and 3,000 read units per second per partition",
    ),
    (
        "DynamoDB table throughput",
        "~1.1 write units per email (the mail-log claim, which holds the enrollment, and the send-slot "
        "counter: 1.05 in the cost meter, docs/benchmarks.md section 6): ~1,100/s at 1,000 emails/s",
        "on-demand tables serve up to 40,000 write request units/s per table by default; a new "
        "table at once up to 4,000 writes/s (and double its previous peak)",
    ),
    (
        "Scan segments",
        "one Scan segment per part; the largest of P segments of N leads is taken as N/P + 3 sqrt(N/P) "
        "(the table's keys are hashed across segments)",
        "parallel Scan: TotalSegments up to 1,000,000; a page is at most 1 MB",
    ),
    (
        "Step Functions Map concurrency",
        "one child execution per part a round, up to MaxConcurrency 1,000",
        "a Distributed Map runs up to 10,000 child executions in parallel",
    ),
    (
        "Child execution type",
        "Standard children, hops of 600 s (HOP_SECONDS): a child costs its ~3 state transitions; an "
        "Express child would be billed the 600 s it waits for the Lambda, and may not last it",
        "an Express workflow runs at most 5 minutes and is billed per GB-second; Standard per transition",
    ),
)


def local_run(args: argparse.Namespace) -> dict[str, Any]:
    """The broadcast on the local stack at ``args.rate``: emails, wall time, rounds, per-email costs."""
    from leadflow.dev.stack import LocalStack

    quiet_logs()
    invocations = Invocations()
    propagate_context_to_threads(invocations)
    patient_clients()
    counting = Meter()
    counting.install()
    workspace = prepare_workspace(args.rate)
    stack = LocalStack(ROOT, workspace, port=0, parameters={"RateLimitPerMinute": "1000000"}, log_level="ERROR")
    with Harness():
        stack.start()
    try:
        stack.schedules = []  # no tick: the broadcast alone
        wrap_runner(stack, invocations)
        from leadflow.bootstrap.nurture import nurture_service

        with Harness():
            # Small Scan pages, so that a short hop stops after a few leads, as a 600-second one
            # stops after a few thousand (a hop looks at its time after every page).
            nurture_service().store.scan_page_limit = args.page_items
        table = stack.physical["LeadsTable"]
        machine = stack.physical["BroadcastStateMachine"]
        now = stack.clock.now()
        nine = now.replace(hour=9, minute=0, second=0, microsecond=0)  # daytime for every seeded lead
        stack.clock.advance(((nine if nine > now else nine + timedelta(days=1)) - now).total_seconds())
        ids = seed(stack, table, args.leads, random.Random(7))
        start: dict[str, Any] = {"broadcast": SEQUENCE, "run": "drain", "seconds": args.hop_seconds}
        if args.parts:
            start["segments"] = args.parts
        started = time.perf_counter()
        planned = stack.runner.invoke("NurtureDueFunction", start)
        sfn = stack.client("stepfunctions")
        with Harness():
            while True:
                runs = sfn.list_executions(stateMachineArn=machine)["executions"]
                if runs and all(r["status"] != "RUNNING" for r in runs):
                    break
                time.sleep(0.05)
            wall = time.perf_counter() - started
            (run,) = runs
            history = sfn.get_execution_history(executionArn=run["executionArn"], maxResults=1000)["events"]
        rounds = sum(1 for e in history if e.get("stateEnteredEventDetails", {}).get("name") == "Round")
        sent = sum(n for (owner, op), n in counting.calls.items() if op == "sesv2:SendEmail" and owner == HOP)
        return {
            "leads": len(ids),
            "rate": args.rate,
            "parts": planned["parts"],
            "status": run["status"],
            "rounds": rounds,
            "sent": sent,
            "wall_s": round(wall, 2),
            "ses_s": round(len(ids) / args.rate, 2),
            "hops": invocations.count[HOP] - 1,  # the start is the same function
            "cpu_ms": invocations.cpu_ms[HOP] - counting.hook_cpu_ms[HOP],
            "aws_ms": counting.modelled_ms[HOP],
            "sleep_ms": invocations.sleep_ms[HOP],
            "calls": {op: n for (owner, op), n in sorted(counting.calls.items()) if owner == HOP},
        }
    finally:
        stack.stop()
        shutil.rmtree(workspace.parent, ignore_errors=True)


def model(measured: dict[str, Any], round_start_s: float = ROUND_START_S) -> list[dict[str, Any]]:
    """The drain time of a 1,000,000-lead broadcast at each rate, from the measured cost of an email."""
    from leadflow.services.nurture import HOP_SECONDS, broadcast_parts, slot_block

    emails = max(1, measured["sent"])
    ms_per_email = (measured["cpu_ms"] * LAMBDA_CPU_SCALE + measured["aws_ms"]) / emails
    capacity = 1000 / ms_per_email  # emails a second one part sends when it never waits for a slot
    rows = []
    for rate in RATES:
        parts = broadcast_parts(rate)
        per_part = min(capacity, slot_block(rate), rate / parts)
        segment = CAMPAIGN / parts
        largest = segment + 3 * math.sqrt(segment)
        sending_s = largest / per_part
        rounds = math.ceil(sending_s / HOP_SECONDS)
        drain_s = sending_s + rounds * round_start_s
        ses_s = CAMPAIGN / rate
        rows.append(
            {
                "rate": rate,
                "parts": parts,
                "part_capacity": round(capacity, 1),
                "part_rate": round(per_part, 1),
                "rounds": rounds,
                "drain_s": round(drain_s),
                "ses_s": round(ses_s),
                "ratio": round(drain_s / ses_s, 3),
            }
        )
    return rows


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()  # nosec B603 B607


def report(measured: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    from leadflow.services.nurture import HOP_SECONDS

    emails = max(1, measured["sent"])
    out = [
        f"local run: {measured['leads']} leads at {measured['rate']}/s, {measured['parts']} part(s), "
        f"{measured['rounds']} rounds of {measured['hops'] // max(1, measured['rounds'])} hop(s), "
        f"execution {measured['status']}",
        f"  {measured['sent']} emails in {measured['wall_s']} s; the SES rate allows {measured['ses_s']} s: "
        f"{measured['wall_s'] / measured['ses_s']:.2f}x",
        f"  per email in the hops: {measured['cpu_ms'] / emails:.2f} ms CPU here, "
        f"{measured['aws_ms'] / emails:.2f} ms of modelled call latency, "
        f"{sum(measured['calls'].values()) / emails:.2f} AWS calls "
        + ", ".join(f"{op} {n / emails:.3f}" for op, n in measured["calls"].items()),
        "",
        f"model: {CAMPAIGN:,} leads (round start-up {ROUND_START_S} s, hops of {HOP_SECONDS} s)",
        f"{'rate/s':>7} {'parts':>5} {'part cap/s':>10} {'part rate/s':>11} {'rounds':>6} {'drain s':>8} "
        f"{'SES s':>7} {'ratio':>6}  goal <= {GOAL}",
    ]
    for row in rows:
        verdict = "MET" if row["ratio"] <= GOAL else "MISSED"
        out.append(
            f"{row['rate']:>7} {row['parts']:>5} {row['part_capacity']:>10} {row['part_rate']:>11} "
            f"{row['rounds']:>6} {row['drain_s']:>8} {row['ses_s']:>7} {row['ratio']:>6}  {verdict}"
        )
    out += ["", "assumptions (and the AWS limit each rests on):"]
    out += [f"- {name}: {what} [{limit}]" for name, what, limit in ASSUMPTIONS]
    out.append(f"load: {load()}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=600)
    parser.add_argument("--rate", type=int, default=20, help="the local run's SES rate (emails a second)")
    parser.add_argument("--hop-seconds", type=int, default=8, help="a hop's length in the local run")
    parser.add_argument("--parts", type=int, default=0, help="parts of the local run (default: from the rate)")
    parser.add_argument("--page-items", type=int, default=30, help="items a Scan page reads (a lead is ~3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    measured = local_run(args)
    rows = model(measured)
    if args.json:
        print(json.dumps({"local": measured, "model": rows, "load": load()}, indent=2))
    else:
        print(report(measured, rows))
    ok = measured["status"] == "SUCCEEDED" and measured["sent"] == measured["leads"]
    return 0 if ok and all(r["ratio"] <= GOAL for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
