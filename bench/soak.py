"""Soak: the push campaign on the local stack with faults injected, checked for exactly-once.

The cost meter's campaign (``bench/campaign.py``: N seeded leads, the demo push sequence
broadcast, the example's reaction rates, every wait run out) with, while the broadcast runs
(``dev/faults.py``, moto answering as AWS would fail):

- **SES throttling**: ``SendEmail`` answers ``TooManyRequestsException`` ``--throttled`` times;
- **a hop dying at its scan**: the broadcast's ``Scan`` fails three times in a row (every SDK
  attempt), armed as the broadcast starts; the state machine retries the hop from its cursor;
- **hops dying mid-page** (``LambdaCrash``, twice): the ``SendEmail`` of an email goes out and the
  invocation that made it dies there, in the middle of its page, with an error its code cannot
  catch; the state machine retries the hop, which redoes the page;
- **a table outage**: every DynamoDB operation answers ``InternalServerError`` for
  ``--outage-seconds`` (60 by default);
- with ``--tick-outage-seconds N``, **every tick after the broadcast** too (the product email, the
  coupon, the hand-off, the SES events and reports they cause), N s into it: DynamoDB and
  EventBridge out for N s, SES throttling, the CRM answering 503. The clock then moves past the
  queues' visibility timeouts until no queue holds a message.

The nurture tick and the 6-hourly dead-letter redrive run on their schedules (the stack's clock), as
deployed; ``--verbose`` prints each phase, then the dead-letter queues holding messages, the SES
events function's failed invocations and the redrive's runs so far.

Then it checks: every email sent exactly once (SES messages by their ``X-Leadflow-Message`` id:
no id twice, and one per send in the mail logs), every enrollment ended (none active), no
message in any dead-letter queue and none left in any other, the broadcast execution succeeded,
every requested hand-off delivered to the CRM, every fault asked for applied (the injector's count),
and the campaign's reports (its sequence's, with the
A/B variants', and the hand-offs') recomputed from the raw records by ``leadflow report verify``:
0 drift, and every day's and step's ``sent`` equal to the mail logs' sends. The stack process's memory
(RSS) is sampled every few seconds; with ``--trace-memory``, ``tracemalloc`` tells where the growth
is: each allocation charged to the package of the most recent frame outside the standard library
(moto, botocore, leadflow...), and the 15 lines that hold most of it.

    .venv/bin/python bench/soak.py --leads 100000 --send-rate 100 --tick-outage-seconds 10  # hours, ~9 GB
    .venv/bin/python bench/soak.py --leads 2000 --send-rate 50 --outage-seconds 10

Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from campaign import SEQUENCE, Campaign  # bench/, beside this script
from campaign_stack import Harness, Outbox  # bench/, beside this script
from metering import ACCOUNT, REGION  # bench/, beside this script

DYNAMODB_OPERATIONS = (
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
)
SAMPLE_SECONDS = 5.0


def rss_mb() -> float:
    """This process's resident memory (Linux ``/proc``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Memory:
    """RSS every ``SAMPLE_SECONDS``; tracemalloc snapshots at the start and the end of the campaign."""

    def __init__(self, trace: bool) -> None:
        self.trace = trace
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="soak-memory", daemon=True)
        self._start = time.monotonic()
        self.first: tracemalloc.Snapshot | None = None

    def start(self) -> None:
        if self.trace:
            tracemalloc.start(TRACE_FRAMES)
            self.first = tracemalloc.take_snapshot()
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.samples.append((round(time.monotonic() - self._start, 1), round(rss_mb(), 1)))

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        growth: Counter[str] = Counter()
        sites: Counter[str] = Counter()
        if self.first is not None:
            last = tracemalloc.take_snapshot()
            for stat in last.compare_to(self.first, "traceback"):
                frame = _caller(stat.traceback)
                growth[_owner(frame.filename)] += stat.size_diff
                sites[f"{_short(frame.filename)}:{frame.lineno}"] += stat.size_diff
            tracemalloc.stop()
        rss = [mb for _, mb in self.samples] or [rss_mb()]
        return {
            "rss_mb": {"first": rss[0], "peak": max(rss), "last": rss[-1]},
            "samples": self.samples[:: max(1, len(self.samples) // 40)],
            "traced_growth_mb_by_owner": {k: round(v / 2**20, 1) for k, v in growth.most_common()},
            "traced_growth_mb_by_site": {k: round(v / 2**20, 1) for k, v in sites.most_common(15)},
        }


# An allocation made by the standard library (json, copy, threading...) on a library's behalf is the
# library's: each is charged to the most recent frame of its traceback outside the standard library.
TRACE_FRAMES = 30
_STDLIB = sysconfig.get_paths()["stdlib"]


def _caller(traceback: tracemalloc.Traceback) -> tracemalloc.Frame:
    for frame in reversed(traceback):  # most recent first
        name = frame.filename
        if not (name.startswith("<frozen") or (name.startswith(_STDLIB) and "site-packages" not in name)):
            return frame
    return traceback[-1]


def _owner(filename: str) -> str:
    for name in ("moto", "botocore", "boto3", "werkzeug", "leadflow", "aws_lambda_powertools", "jinja2"):
        if f"/{name}/" in filename:
            return name
    if filename.startswith(_STDLIB) and "site-packages" not in filename:
        return "stdlib"
    return "bench" if "/bench/" in filename else "other"


def _short(filename: str) -> str:
    """A path from its package on (``moto/ses/models.py``), or as it is."""
    for marker in ("/site-packages/", "/layers/leadflow/", "/bench/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


class SoakCampaign(Campaign):
    """The cost meter's campaign, its broadcast run under faults (and, with ``--tick-outage-seconds``,
    every tick after it)."""

    SCHEDULES = ("NurtureTickStateMachine", "DeadLetterRedriveFunction")
    """The nurture tick, and the 6-hourly redrive: what a fault dead-letters comes back as it would in
    AWS (before this, the soak ran the tick alone, and dead letters it left were never redriven)."""

    broadcast_done = False
    tick_faults = 0  # ticks run under faults so far

    def phase(self, name: str, action: Any) -> Any:
        """A phase; with ``--verbose``, then the dead-letter queues holding messages and the
        failures and redrives so far (where a dead letter came from, and whether a redrive ran)."""
        result = super().phase(name, action)
        if self.args.verbose:
            with Harness():
                dead = {k: v for k, v in self.stack.queue_depths().items() if "DLQ" in k and any(v.values())}
            counts = self.invocations.count
            print(
                f"    dead letters: {dead or 'none'}; SesEventsFunction failed "
                f"{self.invocations.failed['SesEventsFunction']} time(s); redrive runs "
                f"{counts['DeadLetterRedriveFunction']}",
                file=sys.stderr,
                flush=True,
            )
        return result

    def broadcast(self) -> Any:
        faults = threading.Thread(target=self._inject, name="soak-faults", daemon=True)
        faults.start()
        started = super().broadcast()
        faults.join()
        self.broadcast_done = True
        return started

    def _inject(self) -> None:
        from leadflow.dev.faults import CRASH, Fault

        injector = self.stack.faults
        log: list[str] = []
        self.injected = log
        # Armed before the parts start: a part's scan is one page of up to 1 MB, so a small run
        # scans only as its parts begin (a Scan fault armed later never fired: the faults applied
        # are checked at the end).
        injector.add(Fault("dynamodb", "Scan", "InternalServerError", 3, 500))
        log.append("broadcast Scan failing 3x (a hop dying at its scan)")
        while not self.stack.running_executions():  # the broadcast's parts are under way
            time.sleep(0.05)
        time.sleep(1)
        injector.add(Fault("sesv2", "SendEmail", "TooManyRequestsException", self.args.throttled, 429))
        log.append(f"SES throttling x{self.args.throttled}")
        for _ in range(CRASHES):  # one after the other: the second counts its emails after the first
            injector.add(Fault("sesv2", "SendEmail", CRASH, 1, 500, skip=CRASH_EVERY))
        log.append(f"{CRASHES} hops dying mid-page (after {CRASH_EVERY} emails each)")
        time.sleep(4)
        for operation in DYNAMODB_OPERATIONS:
            injector.add(Fault("dynamodb", operation, "InternalServerError", -1, 500))
        log.append(f"DynamoDB outage {self.args.outage_seconds} s")
        time.sleep(self.args.outage_seconds)
        injector.clear("dynamodb")  # the outage is over; the crashes asked for may be still to come

    def tick(self) -> int:
        """A tick (and its follow-ups). With ``--tick-outage-seconds``, each tick after the broadcast
        runs under faults of its own, starting ``TICK_FAULT_AFTER`` s into it: DynamoDB and
        EventBridge (``PutEvents``) out for that long, SES throttling, and the CRM answering 503. The
        work they fail goes back to its queue (or stays due) and is done when the clock has passed the
        queues' visibility timeouts (``drain``)."""
        if not (self.args.tick_outage_seconds and self.broadcast_done):
            return super().tick()
        faults = threading.Thread(target=self._inject_in_tick, name="soak-tick-faults", daemon=True)
        faults.start()
        ticks = super().tick()
        faults.join()
        return ticks + self.drain()

    def _inject_in_tick(self) -> None:
        from leadflow.dev.faults import Fault

        injector, crm = self.stack.faults, self.stack.fake_crm
        throttled = max(1, self.args.throttled // 4)
        time.sleep(TICK_FAULT_AFTER)
        injector.add(Fault("sesv2", "SendEmail", "TooManyRequestsException", throttled, 429))
        for operation in DYNAMODB_OPERATIONS:
            injector.add(Fault("dynamodb", operation, "InternalServerError", -1, 500))
        injector.add(Fault("events", "PutEvents", "InternalException", -1, 500))
        crm.set_mode({"status": 503})
        time.sleep(self.args.tick_outage_seconds)
        injector.clear("dynamodb")
        injector.clear("events")
        crm.set_mode({"status": 200})
        self.tick_faults += 1
        if self.tick_faults == 1:
            self.injected.append(
                "in every tick after the broadcast: DynamoDB and EventBridge outage "
                f"{self.args.tick_outage_seconds} s, SES throttling x{throttled}, the CRM answering 503"
            )

    def drain(self) -> int:
        """Move the clock past the queues' longest visibility timeout and pump, until no queue but a
        dead-letter queue holds a message (visible, in flight or delayed); returns the ticks fired."""
        ticks = 0
        for _ in range(DRAIN_ROUNDS):
            if not waiting(self.stack):
                break
            self.stack.clock.advance(DRAIN_STEP_SECONDS)
            ticks += self.tick_once()
        return ticks

    def finish(self) -> int:
        """Tick until no enrollment is active and no queue holds a message: the soak's end state."""
        ticks = super().finish()
        for _ in range(DRAIN_ROUNDS):
            if not waiting(self.stack):
                break
            ticks += self.drain() + super().finish()
        return ticks


TICK_FAULT_AFTER = 0.5
"""Seconds into a tick when its faults begin (``--tick-outage-seconds``): its work is under way."""
CRASHES = 2
CRASH_EVERY = 150
"""Emails let through before each ``LambdaCrash`` (after the throttling): mid-page, as a scan page of
the broadcast holds up to 1 MB of items."""
DRAIN_STEP_SECONDS = 400
"""How far ``drain`` moves the clock a round: past the longest visibility timeout (360 s)."""
DRAIN_ROUNDS = 20


def waiting(stack: Any) -> dict[str, dict[str, int]]:
    """The queues, dead-letter queues aside, that hold a message (visible, in flight or delayed)."""
    with Harness():
        depths = stack.queue_depths()
    return {name: depth for name, depth in depths.items() if "DLQ" not in name and any(depth.values())}


def handoffs_delivered(stack: Any) -> Counter[str]:
    """The leads the fake CRM took a hand-off of (answered 200), and how many times each."""
    leads: Counter[str] = Counter()
    for request in stack.fake_crm.requests():
        if request["answered"] == 200:
            lead = (json.loads(request["body"] or "{}").get("lead") or {}).get("id")
            if lead:
                leads[str(lead)] += 1
    return leads


def checks(data: dict[str, Any], campaign: SoakCampaign) -> dict[str, Any]:
    """Exactly-once sends, enrollments ended, empty dead-letter queues, the broadcast succeeded."""
    from moto.ses.models import ses_backends

    from leadflow.dev.faults import CRASH

    messages = ses_backends[ACCOUNT][REGION].sent_messages
    ids: Counter[str] = Counter()
    for message in messages:
        found = Outbox.HEADER.search(getattr(message, "raw_data", "")[:4000])
        if found:
            ids[found.group(1)] += 1
    outcome = data["outcome"]
    ledger = sum(outcome["send_ledger"].values())
    active = {k: v for k, v in outcome["enrollments"].items() if k.startswith("active")}
    stack = campaign.stack
    dead = {
        name: depth
        for name, depth in stack.queue_depths().items()
        if "DLQ" in name and (depth["visible"] or depth["in_flight"])
    }
    sfn = stack.client("stepfunctions")
    with Harness():
        runs = sfn.list_executions(stateMachineArn=stack.physical["BroadcastStateMachine"])["executions"]
    delivered = handoffs_delivered(stack)
    drift = report_drift(stack)
    result = {
        "ses_messages": len(messages),
        "distinct_emails": len(ids),
        "sent_twice": sum(1 for n in ids.values() if n > 1),
        "mail_log_sends": ledger,
        "discount_sent": outcome["send_ledger"].get("discount", 0),
        "enrollments": outcome["enrollments"],
        "still_active": active,
        "dead_letters": dead,
        "queues_left": waiting(stack),
        "broadcast": [r["status"] for r in runs],
        "handoffs_requested": outcome["handoff_requested"],
        "handoffs_delivered": len(delivered),
        "handoffs_posted_again": sum(n - 1 for n in delivered.values()),
        "report_drift": drift,
        "faults_fired": dict(stack.faults.fired),
        "enrolled_reported": enrolled_reported(stack),
    }
    result["ok"] = (
        result["sent_twice"] == 0
        and len(ids) == ledger
        and result["discount_sent"] == data["leads"]
        and not active
        and not dead
        and not result["queues_left"]
        and result["broadcast"] == ["SUCCEEDED"]
        and result["handoffs_delivered"] == result["handoffs_requested"]
        and drift["drift"] == 0
        and not drift["sends_unlike_sent"]
        and result["enrolled_reported"] == data["leads"]
        and result["faults_fired"].get(f"sesv2:SendEmail:{CRASH}") == CRASHES
        and result["faults_fired"].get("dynamodb:Scan:InternalServerError", 0) >= 3
        and result["faults_fired"].get("sesv2:SendEmail:TooManyRequestsException", 0) >= campaign.args.throttled
    )
    return result


def report_drift(stack: Any) -> dict[str, Any]:
    """``leadflow report verify`` on the stack's tables, for the reports the campaign makes: its
    sequence's (with the A/B variants') and the hand-offs'. The funnel's are not compared: the meter
    seeds its leads straight into the table, as their capture left them, without the events of
    their capture."""
    from leadflow.config.workspace import Workspace
    from leadflow.dev.report_cli import verify_tables
    from leadflow.services.report_drift import report_of

    with Harness():
        summary = verify_tables(
            stack.physical["LeadsTable"],
            stack.physical["ReportsTable"],
            Workspace(stack.workspace),
            stack.client("dynamodb"),
            keep=lambda key: report_of(key) in CAMPAIGN_REPORTS,
        ).summary()
    return {k: summary[k] for k in ("reports", "drift", "drifted", "sends_unlike_sent")}


CAMPAIGN_REPORTS = ("sequences", "ab", "handoffs")
FIRST_STEP = "discount"  # the push sequence's broadcast step


def enrolled_reported(stack: Any) -> int:
    """The push sequence report's ``enrolled`` at its first step, every day: what the campaign's
    broadcast enrolled, as the reports counted it (every lead once, hops that died included)."""
    from leadflow.adapters.reports import DynamoReportStore

    with Harness():
        items = DynamoReportStore(stack.physical["ReportsTable"], stack.client("dynamodb")).query(
            f"SEQRPT#{SEQUENCE}", "0", "9"
        )
    return sum(int(i.get("enrolled", 0)) for i in items if str(i["SK"]).split("#")[2] == FIRST_STEP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--send-rate", type=int, default=50, help="SES rate: the broadcast lasts ~leads/rate s")
    parser.add_argument("--parts", type=int, default=0, help="broadcast parts (default: from the rate)")
    parser.add_argument("--outage-seconds", type=float, default=60)
    parser.add_argument("--throttled", type=int, default=20, help="SendEmail calls answered 429")
    parser.add_argument(
        "--tick-outage-seconds",
        type=float,
        default=0,
        help="faults in every tick after the broadcast too: DynamoDB and EventBridge out this long, SES 429s, CRM 503s",
    )
    parser.add_argument("--open-rate", type=float, default=0.05)
    parser.add_argument("--click-rate", type=float, default=0.40)
    parser.add_argument("--redeem-rate", type=float, default=0.40)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--trace-memory", action="store_true", help="tracemalloc: where the growth is (slows the run ~2-3x)"
    )
    args = parser.parse_args(argv)
    if not args.parts:
        from leadflow.services.nurture import broadcast_parts

        args.parts = broadcast_parts(args.send_rate)
    memory = Memory(args.trace_memory)
    memory.start()
    campaign = SoakCampaign(args)
    holder: dict[str, Any] = {}
    original = campaign._campaign

    def run_and_check(stack: Any, message_id_for: Any, wall: float) -> dict[str, Any]:
        data = original(stack, message_id_for, wall)
        holder["checks"] = checks(data, campaign)  # before the stack stops
        return data

    campaign._campaign = run_and_check  # type: ignore[method-assign]
    started = time.perf_counter()
    data = campaign.run()
    result = {
        "leads": args.leads,
        "send_rate": args.send_rate,
        "parts": args.parts,
        "wall_s": round(time.perf_counter() - started, 1),
        "faults": getattr(campaign, "injected", []),
        "checks": holder["checks"],
        "memory": memory.stop(),
        "phases": data["phases"],
    }
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0 if result["checks"]["ok"] else 1


def report(result: dict[str, Any]) -> str:
    c, m = result["checks"], result["memory"]
    d = c["report_drift"]
    return "\n".join(
        [
            f"soak: {result['leads']} leads at {result['send_rate']}/s, {result['parts']} part(s), "
            f"{result['wall_s']} s; faults: {'; '.join(result['faults'])}",
            f"  emails: {c['ses_messages']} SES messages, {c['distinct_emails']} distinct, "
            f"{c['sent_twice']} sent twice; mail logs {c['mail_log_sends']}; discount {c['discount_sent']}",
            f"  enrollments: {c['enrollments']}; still active: {c['still_active'] or 'none'}",
            f"  dead letters: {c['dead_letters'] or 'none'}; queues holding messages: {c['queues_left'] or 'none'}; "
            f"broadcast: {c['broadcast']}",
            f"  hand-offs: {c['handoffs_requested']} requested, {c['handoffs_delivered']} delivered to the CRM "
            f"({c['handoffs_posted_again']} posted again: the receiver dedupes by webhook-id)",
            f"  reports (leadflow report verify, {', '.join(CAMPAIGN_REPORTS)}): "
            f"{sum(d['reports'][r]['counter_items'] for r in CAMPAIGN_REPORTS)} counters, drift {d['drift']}, "
            f"days and steps whose sent differs from the mail logs {len(d['sends_unlike_sent'])}"
            + (f"; drifted {d['drifted'][:5]}" if d["drifted"] else "")
            + (f"; sends {d['sends_unlike_sent'][:5]}" if d["sends_unlike_sent"] else ""),
            f"  faults applied: {c['faults_fired']}; enrolled in the sequence report {c['enrolled_reported']}",
            f"  memory: RSS {m['rss_mb']} MB; traced growth by owner (MB): {m['traced_growth_mb_by_owner']}",
            *(
                [f"  traced growth by site (MB, the 15 largest): {m['traced_growth_mb_by_site']}"]
                if m["traced_growth_mb_by_site"]
                else []
            ),
            f"  {'OK' if c['ok'] else 'FAILED'}",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
