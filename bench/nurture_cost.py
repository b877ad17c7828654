"""The cost meter: what a push campaign costs in AWS calls, per lead, priced for 1,000,000 leads.

Runs N seeded leads through the demo workspace's push sequence (``sequences/push-discount.yaml``:
discount email to everyone -> wait up to 7 days for an open -> product email to openers ->
wait for a click -> coupon -> wait for a click on the ``redeem`` link -> tag + hand-off) on the
local stack (the real ``template.yaml`` on an embedded moto, every handler in this process),
with simulated reactions: ``--open-rate`` of the leads open the discount email (the open pixel
of the email that was really sent, fetched through the local gateway), ``--click-rate`` of
those click a link in the product email, ``--redeem-rate`` of those click the coupon's redeem
link. Then the waits of everyone else run out (the clock is moved 7 days on) and every
enrollment ends.

Every botocore call made in this process is counted by service and operation, through
``before-call`` / ``after-call`` hooks on boto3's default session, registered before any
client exists. Each call is attributed to the Lambda function whose handler made it (a
context variable set around ``LambdaRunner.invoke``, copied into worker threads), to the
benchmark itself (seeding, reading results: not counted), or to the local stack's own
plumbing (its SQS pollers stand in for Lambda event source mappings, its scheduler starts
the tick executions). DynamoDB capacity is *estimated* from item sizes (moto reports no
real consumed capacity): the before and after image of every item written is read from
moto, and read units from the sizes of the items returned; GSI writes are derived from
the table's index definitions. Step Functions state transitions are counted from the
execution histories of the tick executions.

The counts per lead do not depend on N (compare two sizes); the price of a 1,000,000-lead
campaign scales them, with the public us-east-1 prices (``PRICE`` in ``metering.py``), and is
compared with the SES price of the emails the campaign sends. Goal from the issues: orchestration +
reporting <= 1% of it (reporting: the ReportingFunction, its queue, and the nurture functions'
`nurture.counted` events).

This script prices the run and prints its report; what it runs lives beside it in ``bench/``:
``metering.py`` (the prices, DynamoDB's size rules, the call meter), ``campaign_stack.py`` (the
local stack's wrappers, the seeded leads, the reactions, the Step Functions histories) and
``campaign.py`` (the campaign, phase by phase).

    cd /work/main && .venv/bin/python bench/nurture_cost.py [--leads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaign import SEQUENCE, Campaign  # bench/, beside this script
from metering import (  # bench/, beside this script
    COUNTED,
    EXPRESS_GB,
    EXPRESS_MIN_S,
    HANDOFF,
    LAMBDA_CPU_SCALE,
    LAMBDA_GB,
    ORCHESTRATION,
    PRICE,
    QUEUE_GROUP,
    RELAY,
    REPORTING,
    RULE_QUEUES,
    TRACKING,
    group_of,
)
from pinning import pin, reference_loop_ms  # bench/, beside this script

CAMPAIGN_LEADS = 1_000_000
SLOWEST_RATE = 14  # SES's default sending rate out of the sandbox; messaging.yaml's default
GOAL_SHARE = 0.01

# ---------------------------------------------------------------------------- pricing


def queue_names(data: dict[str, Any]) -> dict[str, str]:
    """The stack's queue URLs by logical name: those the run recorded, and the rest from the URLs
    the functions received from (``leadflow-<LogicalName>-<suffix>``)."""
    names = {url: name for name, url in data["queues"].items()}
    for url in data["counts"]["sqs_received"]:
        match = re.search(r"/leadflow-([A-Za-z]+Queue)-[A-Z0-9]+$", url)
        if url not in names and match:
            names[url] = match.group(1)
    return {url: name for url, name in names.items() if name in QUEUE_GROUP}


def write_units_per_reaction(counts: dict[str, Any]) -> dict[str, float]:
    """Write units (table + GSIs) per tracked open or click (TrackFunction's requests) of the
    functions that record and score them. ScoringFunction's and SegmentsFunction's include what
    they did for other events of the run (before issue 17's step 1: every email's Send event)."""
    reactions = counts["invocations"].get("TrackFunction", 0)
    if not reactions:
        return {}
    units = {
        owner: (counts["ddb"].get(owner, {}).get("wru", 0) + counts["ddb"].get(owner, {}).get("gsi_wru", 0)) / reactions
        for owner in ("TrackFunction", "ScoringFunction", "SegmentsFunction")
    }
    return {k: round(v, 2) for k, v in units.items()}


def modelled_ms(counts: dict[str, Any], owner: str) -> float:
    """How long ``owner``'s invocations would run in Lambda: CPU scaled to 512 MB, assumed call latencies, sleeps."""
    cpu = max(0.0, counts["cpu_ms"].get(owner, 0) - counts["hook_cpu_ms"].get(owner, 0))
    return cpu * LAMBDA_CPU_SCALE + counts["modelled_aws_ms"].get(owner, 0) + counts["sleep_ms"].get(owner, 0)


def price(data: dict[str, Any]) -> dict[str, Any]:
    """Dollar lines of the measured run, per lead, and scaled to CAMPAIGN_LEADS leads."""
    counts = data["counts"]
    leads = data["leads"]
    lines: list[dict[str, Any]] = []

    def line(  # noqa: PLR0917 - a local helper, called positionally on purpose
        group: str, service: str, what: str, quantity: float, unit_price: float, fixed: bool = False
    ) -> None:
        """A priced quantity: scaled by leads, or ``fixed`` (per tick, not per lead: taken as measured)."""
        lines.append(
            {
                "group": group,
                "service": service,
                "what": what + (" [per tick, not scaled]" if fixed else ""),
                "quantity": quantity,
                "per_lead": quantity / leads,
                "fixed": fixed,
                "usd_campaign": (quantity if fixed else quantity / leads * CAMPAIGN_LEADS) * unit_price,
            }
        )

    calls = Counter({k: v for k, v in counts["calls"].items()})
    ses = sum(n for k, n in calls.items() if k.endswith("sesv2:SendEmail"))
    # Step Functions: the tick executions (Standard), their Distributed Map children (Express).
    parent = sum(data["states_entered"].values())
    children = data["map_children"]
    line(
        ORCHESTRATION,
        "Step Functions",
        "Standard state transitions (tick states + 1 per map child)",
        parent + children,
        PRICE["sfn_standard_transition"],
        fixed=True,
    )
    line(
        ORCHESTRATION,
        "Step Functions",
        "Express child executions (requests)",
        children,
        PRICE["sfn_express_request"],
        True,
    )
    child_s = max(modelled_ms(counts, "NurtureStepFunction[tick]") / 1000, children * EXPRESS_MIN_S)
    line(
        ORCHESTRATION,
        "Step Functions",
        "Express child duration (GB-s at 64 MB)",
        child_s * EXPRESS_GB,
        PRICE["sfn_express_gb_s"],
    )
    # The broadcast state machine: its rounds depend on the SES rate, not on this run's size (one
    # round of --parts parts here); priced from the drain model at the slowest rate, 14/s (the
    # most rounds): Standard parent (Round, AnyMore) and child (PartOpen, Hop, end) transitions.
    from leadflow.services.nurture import HOP_SECONDS, broadcast_parts

    parts = broadcast_parts(SLOWEST_RATE)
    rounds = math.ceil(CAMPAIGN_LEADS / SLOWEST_RATE / HOP_SECONDS)
    line(
        ORCHESTRATION,
        "Step Functions",
        f"broadcast state machine: {rounds} rounds of {parts} part(s) at {SLOWEST_RATE}/s (transitions)",
        rounds * (2 + 3 * parts),
        PRICE["sfn_standard_transition"],
        fixed=True,
    )
    line(
        ORCHESTRATION,
        "Scheduler",
        "tick schedule firings that found work",
        data["executions"],
        PRICE["scheduler_invocation"],
        fixed=True,
    )
    # Lambda, per function (the relay split by the sources of the events it published).
    entries = Counter(counts["put_events_entries"])
    relay_total = sum(entries.values()) or 1
    relay_share = {
        ORCHESTRATION: sum(n for k, n in entries.items() if k.endswith("leadflow.nurture")) / relay_total,
    }
    relay_share[TRACKING] = 1 - relay_share[ORCHESTRATION]
    for owner, invoked in sorted(counts["invocations"].items()):
        shares = {group_of(owner): 1.0} if owner != RELAY else relay_share
        fixed = owner == "NurtureDueFunction[plan]"  # one per tick, whatever the number of leads
        for group, share in shares.items():
            if group is None or share == 0:
                continue
            label = owner if share == 1.0 else f"{owner} ({share:.0%} of it: {group} events)"
            line(group, "Lambda", f"{label}: requests", invoked * share, PRICE["lambda_request"], fixed)
            gb_s = modelled_ms(counts, owner) / 1000 * LAMBDA_GB * share
            line(group, "Lambda", f"{label}: GB-s (modelled)", gb_s, PRICE["lambda_gb_s_arm64"], fixed)
    # DynamoDB, per function.
    for owner, usage in sorted(counts["ddb"].items()):
        group = group_of(owner)
        if group is None:
            continue
        line(group, "DynamoDB", f"{owner}: write units (table)", usage["wru"], PRICE["ddb_wru"])
        line(group, "DynamoDB", f"{owner}: write units (GSIs)", usage["gsi_wru"], PRICE["ddb_wru"])
        line(
            group,
            "DynamoDB",
            f"{owner}: read units",
            usage["rru"],
            PRICE["ddb_rru"],
            owner == "NurtureDueFunction[plan]",
        )
    # SQS: sends by the functions, deliveries by EventBridge rules, and the event source mappings.
    url_name = queue_names(data)
    url_group = {url: QUEUE_GROUP[name] for url, name in url_name.items()}
    sends: Counter[str] = Counter()
    for key, n in calls.items():
        owner, _, operation = key.rpartition(" ")
        if operation in ("sqs:SendMessage", "sqs:SendMessageBatch") and group_of(owner):
            sends[str(group_of(owner))] += n
    for group, n in sends.items():
        line(group, "SQS", "SendMessage(Batch) by the functions (due-now pushes)", n, PRICE["sqs_request"])
    for url, received in counts["sqs_received"].items():
        if url not in url_group:
            continue
        name = url_name[url]
        if name in RULE_QUEUES:
            line(url_group[url], "SQS", f"{name}: deliveries by the EventBridge rule", received, PRICE["sqs_request"])
        batches = counts["sqs_nonempty_receives"].get(url, 0)
        line(
            url_group[url],
            "SQS",
            f"{name}: event source mapping receive + delete batch",
            2 * batches,
            PRICE["sqs_request"],
        )
    # EventBridge: events put on the bus, by source.
    for key, n in sorted(entries.items()):
        source = key.split(" ", 1)[1]
        group = REPORTING if source.endswith(COUNTED) else ORCHESTRATION if source == "leadflow.nurture" else TRACKING
        line(group, "EventBridge", f"PutEvents entries from {source}", n, PRICE["eventbridge_event"])
    line(
        TRACKING,
        "API Gateway",
        "HTTP API requests (open pixel, tracked clicks)",
        counts["invocations"].get("TrackFunction", 0),
        PRICE["apigw_http_request"],
    )
    line("email", "SES", "emails sent", ses, PRICE["ses_email"])

    totals: Counter[str] = Counter()
    for entry in lines:
        totals[entry["group"]] += entry["usd_campaign"]
    email_usd = totals["email"]
    idle = data["idle_tick"]
    idle_ms = sum(idle["modelled_ms"].get(k, 0) for k in idle["invocations"])
    idle_tick_usd = (
        idle["transitions"] * PRICE["sfn_standard_transition"]
        + PRICE["scheduler_invocation"]
        + sum(idle["invocations"].values()) * PRICE["lambda_request"]
        + idle_ms / 1000 * LAMBDA_GB * PRICE["lambda_gb_s_arm64"]
        + idle["rru"] * PRICE["ddb_rru"]
    )
    ticks_per_day = 24 * 60 / 5
    return {
        "lines": lines,
        "totals_usd": dict(totals),
        "emails_per_lead": ses / leads,
        "orchestration_share_of_email": totals[ORCHESTRATION] / email_usd if email_usd else None,
        "reporting_share_of_email": totals[REPORTING] / email_usd if email_usd else None,
        "orchestration_and_reporting_share_of_email": (
            (totals[ORCHESTRATION] + totals[REPORTING]) / email_usd if email_usd else None
        ),
        "tracking_share_of_email": totals[TRACKING] / email_usd if email_usd else None,
        "whole_share_of_email": (sum(v for k, v in totals.items() if k != "email") / email_usd if email_usd else None),
        "write_units_per_open_or_click": write_units_per_reaction(counts),
        "goal_met": bool(email_usd) and totals[ORCHESTRATION] + totals[REPORTING] <= GOAL_SHARE * email_usd,
        "idle_tick_usd": idle_tick_usd,
        "idle_ticks_10_days_usd": idle_tick_usd * ticks_per_day * 10,
    }


# ---------------------------------------------------------------------------- main


def raw_counts(campaign: Campaign) -> dict[str, Any]:
    meter, inv = campaign.meter, campaign.invocations
    return {
        "calls": {f"{o} {op}": n for (o, op), n in sorted(meter.calls.items()) if o != "bench"},
        "ddb": {
            o: {
                "calls": dict(u.calls),
                "rru": u.rru,
                "wru": u.wru,
                "gsi_wru": u.gsi_wru,
                "failed": u.failed_writes,
                "wru_by_item": dict(u.wru_by_item),
            }
            for o, u in meter.ddb.items()
        },
        "invocations": dict(inv.count),
        "local_ms": {k: round(v) for k, v in inv.local_ms.items()},
        "cpu_ms": {k: round(v) for k, v in inv.cpu_ms.items()},
        "sleep_ms": {k: round(v) for k, v in inv.sleep_ms.items()},
        "failed_invocations": dict(inv.failed),
        "sfn_retries": dict(inv.retries),
        "aws_ms": {k: round(v) for k, v in meter.aws_ms.items()},
        "modelled_aws_ms": dict(meter.modelled_ms),
        "hook_cpu_ms": {k: round(v) for k, v in meter.hook_cpu_ms.items()},
        "put_events_entries": {f"{o} {s}": n for (o, s), n in meter.put_events_entries.items()},
        "sqs_received": dict(meter.sqs_received),
        "sqs_nonempty_receives": dict(meter.sqs_nonempty_receives),
        "errors": dict(meter.errors),
    }


def report(data: dict[str, Any], priced: dict[str, Any]) -> str:
    leads = data["leads"]
    counts = data["counts"]
    out = []
    rates = data["rates"]
    out.append(
        f"nurture cost meter: {leads:,} leads through {SEQUENCE} on the local stack "
        f"(open {rates['open']:.0%}, click {rates['click']:.0%} of openers, redeem {rates['redeem']:.0%} of clickers; "
        f"SES send rate {data['send_rate_per_second']}/s, {data['shards']} shards)"
    )
    run = data.get("run") or {}
    cpu = run.get("pinned_cpu")
    pinning = f"pinned to CPU {cpu}" if cpu is not None else "not pinned"
    speed = run.get("reference_loop_ms")
    host = f"; host speed: reference loop {speed[0]} ms before, {speed[1]} ms after (lower is faster)" if speed else ""
    out.append(f"wall time {data['wall_s']:.0f} s (stack start and seeding included); {pinning}{host}")
    o = data["outcome"]
    out.append(
        f"outcome: enrollments {o['enrollments']}; mail logs (sends claimed) {o['send_ledger']}; "
        f"SES messages {o['ses_messages']}; tagged push-responder {o['tagged_push_responder']}, "
        f"hand-offs requested {o['handoff_requested']}"
    )
    r = data["reactions"]
    out.append(
        "reactions sent through the gateway: "
        + ", ".join(f"{k}: {v['requests']} of {v['leads']} {v['statuses']}" for k, v in r.items())
    )
    out.append("")
    out.append("phases:")
    for phase in data["phases"]:
        out.append(
            f"  {phase['name']:<48} {phase['wall_s']:>8.1f} s  {phase['calls']:>8} calls"
            f"  {phase['invocations']:>6} invocations"
        )
    out.append("")
    out.append(
        f"AWS calls made by the product, per lead ({sum(counts['calls'].values()):,} in all;"
        " 'stack:' = the local stack's stand-ins):"
    )
    for key, n in sorted(counts["calls"].items(), key=lambda kv: -kv[1]):
        if key.startswith("stack:dev console tap"):
            continue
        out.append(f"  {n / leads:>9.4f}  {key}  ({n:,})")
    out.append("")
    out.append("DynamoDB capacity (estimated from item sizes), per lead:")
    for owner, usage in sorted(counts["ddb"].items()):
        out.append(
            f"  {owner:<36} read {usage['rru'] / leads:7.3f} RRU   write {usage['wru'] / leads:7.3f} WRU"
            f" + GSI {usage['gsi_wru'] / leads:6.3f} WRU"
        )
    out.append("  write units (table + GSI) per lead by operation and item, where they go:")
    by_item: Counter[str] = Counter()
    for owner, usage in counts["ddb"].items():
        for key, units in usage.get("wru_by_item", {}).items():
            by_item[f"{owner}: {key}"] += units
    for key, units in by_item.most_common(14):
        out.append(f"    {units / leads:7.3f}  {key}")
    out.append("")
    out.append(
        f"Step Functions: {data['executions']} tick executions with work, {sum(data['states_entered'].values())} "
        f"states entered {data['states_entered']}, {data['map_children']} Distributed Map children"
        f"; {data.get('follow_up_ticks', 0)} of the ticks were follow-ups 5 minutes apart (work still due)"
    )
    if counts["sfn_retries"] or counts["failed_invocations"] or counts["errors"]:
        out.append(
            f"  retries {counts['sfn_retries']}, failed invocations {counts['failed_invocations']},"
            f" call errors {counts['errors']}"
        )
    out.append("")
    out.append(
        "Lambda (local = wall time here incl. waiting on moto;"
        " modelled = CPU x3.45 for 512 MB + assumed latencies + sleeps):"
    )
    for owner, invoked in sorted(counts["invocations"].items()):
        out.append(
            f"  {owner:<36} {invoked:>6} invocations  local {counts['local_ms'].get(owner, 0) / leads:8.2f} ms/lead"
            f"  CPU {max(0, counts['cpu_ms'].get(owner, 0) - counts['hook_cpu_ms'].get(owner, 0)) / leads:6.2f} ms/lead"
            f"  modelled {modelled_ms(counts, owner) / leads:7.2f} ms/lead"
        )
    out.append("")
    out.append(
        f"priced for a {CAMPAIGN_LEADS:,}-lead campaign (per-lead counts x {CAMPAIGN_LEADS:,}; us-east-1 list prices):"
    )
    for group in (ORCHESTRATION, REPORTING, TRACKING, HANDOFF, "email"):
        entries = sorted((e for e in priced["lines"] if e["group"] == group), key=lambda e: -e["usd_campaign"])
        out.append(f"  {group}: ${priced['totals_usd'].get(group, 0):,.2f}")
        for e in entries:
            if e["usd_campaign"] < 0.005:
                continue
            out.append(f"    ${e['usd_campaign']:>9,.2f}  {e['service']:<14} {e['what']}  ({e['per_lead']:.4g}/lead)")
    share = priced["orchestration_share_of_email"]
    both = priced["orchestration_and_reporting_share_of_email"]
    verdict = "MET" if priced["goal_met"] else "MISSED"
    out.append("")
    out.append(
        f"emails per lead {priced['emails_per_lead']:.4f};"
        f" orchestration ${priced['totals_usd'].get(ORCHESTRATION, 0):,.2f} = {share:.2%},"
        f" reporting ${priced['totals_usd'].get(REPORTING, 0):,.2f} = {priced['reporting_share_of_email']:.2%},"
        f" together {both:.2%} of the SES cost ${priced['totals_usd'].get('email', 0):,.2f};"
        f" goal <= {GOAL_SHARE:.0%}: {verdict}"
    )
    out.append(
        f"tracking (opens/clicks, SES events, scoring, segments): ${priced['totals_usd'].get(TRACKING, 0):,.2f}"
        f" = {priced['tracking_share_of_email']:.2%} of SES; hand-off ${priced['totals_usd'].get(HANDOFF, 0):,.2f};"
        f" the whole campaign {priced['whole_share_of_email']:.2%} of SES (goal <= 1.5%)"
    )
    per_reaction = priced["write_units_per_open_or_click"]
    if per_reaction:
        out.append(
            "write units per tracked open or click (goal <= 5): "
            + ", ".join(f"{owner} {units}" for owner, units in per_reaction.items())
            + f"; together {sum(per_reaction.values()):.2f}"
        )
    out.append(
        f"idle ticks (every 5 minutes, nothing due): ${priced['idle_tick_usd']:.6f} each, "
        f"${priced['idle_ticks_10_days_usd']:.2f} over a 10-day campaign (not in the totals above)"
    )
    return "\n".join(out)


def run_record(script: str, argv: list[str] | None, pinned: Any) -> dict[str, Any]:
    """What a run's figures need beside them: the command, when it finished, the load, the CPU."""
    return {
        "command": " ".join([script, *(argv if argv is not None else sys.argv[1:])]),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_1min": os.getloadavg()[0],
        "pinned_cpu": pinned,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--open-rate", type=float, default=0.05)
    parser.add_argument("--click-rate", type=float, default=0.40)
    parser.add_argument("--redeem-rate", type=float, default=0.40)
    parser.add_argument("--send-rate", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--parts", type=int, default=8, help="parts (Scan segments) the broadcast runs as")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", metavar="PATH", help="also write the raw results as JSON to PATH")
    parser.add_argument("--report-from", metavar="PATH", help="print the report of results saved with --save")
    parser.add_argument(
        "--cpu",
        default="one",
        choices=("one", "all"),
        help="one (the default): pin the process to one CPU, as a Lambda function has its own; all: do not pin",
    )
    args = parser.parse_args(argv)
    if args.report_from:
        data = json.loads(Path(args.report_from).read_text())
    else:
        # One CPU: moto serves the handlers' calls from threads of this process; on two cores their
        # GIL hand-offs showed as the handlers' CPU (the same broadcast read 16.7 ms of CPU per lead
        # unpinned and 4.2 ms pinned, Dec 2 04:10-04:14 UTC), which a Lambda function never spends.
        pinned = pin("first" if args.cpu == "one" else "all")[0]
        reference_before = reference_loop_ms()
        campaign = Campaign(args)
        data = campaign.run()
        data["counts"] = raw_counts(campaign)
        data["run"] = run_record("bench/nurture_cost.py", argv, pinned)
        data["run"]["reference_loop_ms"] = [round(reference_before, 2), round(reference_loop_ms(), 2)]
        if args.save:
            Path(args.save).write_text(json.dumps(data, indent=1, default=str))
    priced = price(data)
    data["priced"] = priced
    if args.json:
        print(json.dumps(data, indent=1, default=str))
    else:
        print(report(data, priced))
    failed = data["outcome"]["enrollments"].keys() - {"completed/completed"}
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
