"""Soak: the push campaign on the local stack with faults injected, checked for exactly-once.

The cost meter's campaign (``bench/nurture_cost.py``: N seeded leads, the demo push sequence
broadcast, the example's reaction rates, every wait run out) with, while the broadcast runs
(``dev/faults.py``, moto answering as AWS would fail):

- **SES throttling**: ``SendEmail`` answers ``TooManyRequestsException`` ``--throttled`` times;
- **a hop crashing mid-run**: the broadcast's ``Scan`` fails three times in a row (every SDK
  attempt), so a hop that has already enrolled and sent pages dies; the state machine retries it
  from its cursor;
- **a table outage**: every DynamoDB operation answers ``InternalServerError`` for
  ``--outage-seconds`` (60 by default).

Then it checks: every email sent exactly once (SES messages by their ``X-Leadflow-Message`` id:
no id twice, and one per send in the mail logs), every enrollment ended (none active), no
message in any dead-letter queue, the broadcast execution succeeded. The stack process's memory
(RSS) is sampled every few seconds; with ``--trace-memory``, ``tracemalloc`` tells where the growth
is: each allocation charged to the package of the most recent frame outside the standard library
(moto, botocore, leadflow...), and the 15 lines that hold most of it.

    .venv/bin/python bench/soak.py --leads 100000 --send-rate 200   # hours on a 2-core host
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

import nurture_cost as meter  # bench/, beside this script

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


class SoakCampaign(meter.Campaign):
    """The cost meter's campaign, its broadcast run under faults."""

    def broadcast(self) -> Any:
        faults = threading.Thread(target=self._inject, name="soak-faults", daemon=True)
        faults.start()
        started = super().broadcast()
        faults.join()
        return started

    def _inject(self) -> None:
        from leadflow.dev.faults import Fault

        injector = self.stack.faults
        log: list[str] = []
        self.injected = log
        while not self.stack.running_executions():  # the broadcast's parts are under way
            time.sleep(0.05)
        time.sleep(1)
        injector.add(Fault("sesv2", "SendEmail", "TooManyRequestsException", self.args.throttled, 429))
        log.append(f"SES throttling x{self.args.throttled}")
        time.sleep(2)
        injector.add(Fault("dynamodb", "Scan", "InternalServerError", 3, 500))
        log.append("broadcast Scan failing 3x (a hop crashing mid-run)")
        time.sleep(2)
        for operation in DYNAMODB_OPERATIONS:
            injector.add(Fault("dynamodb", operation, "InternalServerError", -1, 500))
        log.append(f"DynamoDB outage {self.args.outage_seconds} s")
        time.sleep(self.args.outage_seconds)
        injector.clear()


def checks(data: dict[str, Any], campaign: SoakCampaign) -> dict[str, Any]:
    """Exactly-once sends, enrollments ended, empty dead-letter queues, the broadcast succeeded."""
    from moto.ses.models import ses_backends

    messages = ses_backends[meter.ACCOUNT][meter.REGION].sent_messages
    ids: Counter[str] = Counter()
    for message in messages:
        found = meter.Outbox.HEADER.search(getattr(message, "raw_data", "")[:4000])
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
    with meter.Harness():
        runs = sfn.list_executions(stateMachineArn=stack.physical["BroadcastStateMachine"])["executions"]
    result = {
        "ses_messages": len(messages),
        "distinct_emails": len(ids),
        "sent_twice": sum(1 for n in ids.values() if n > 1),
        "mail_log_sends": ledger,
        "discount_sent": outcome["send_ledger"].get("discount", 0),
        "enrollments": outcome["enrollments"],
        "still_active": active,
        "dead_letters": dead,
        "broadcast": [r["status"] for r in runs],
    }
    result["ok"] = (
        result["sent_twice"] == 0
        and len(ids) == ledger
        and result["discount_sent"] == data["leads"]
        and not active
        and not dead
        and result["broadcast"] == ["SUCCEEDED"]
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--send-rate", type=int, default=50, help="SES rate: the broadcast lasts ~leads/rate s")
    parser.add_argument("--parts", type=int, default=0, help="broadcast parts (default: from the rate)")
    parser.add_argument("--outage-seconds", type=float, default=60)
    parser.add_argument("--throttled", type=int, default=20, help="SendEmail calls answered 429")
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
    return "\n".join(
        [
            f"soak: {result['leads']} leads at {result['send_rate']}/s, {result['parts']} part(s), "
            f"{result['wall_s']} s; faults: {'; '.join(result['faults'])}",
            f"  emails: {c['ses_messages']} SES messages, {c['distinct_emails']} distinct, "
            f"{c['sent_twice']} sent twice; mail logs {c['mail_log_sends']}; discount {c['discount_sent']}",
            f"  enrollments: {c['enrollments']}; still active: {c['still_active'] or 'none'}",
            f"  dead letters: {c['dead_letters'] or 'none'}; broadcast: {c['broadcast']}",
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
