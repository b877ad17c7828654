"""The cost meter's campaign: the push sequence run on the local stack, phase by phase, and where it ended.

Apart from the pricing and the report (``nurture_cost.py``) because other benchmarks run it too:
``soak.py`` runs it under faults and ``deploy_cost.py`` runs its own scenario, both as subclasses
of ``Campaign`` (its ticks, its phases, its meter). What it drives: an idle tick first (priced
apart), the seeded leads, the broadcast, the simulated opens and clicks a day apart, and the
ticks until every enrollment has ended; ``outcome`` reads from moto where each one ended.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from campaign_stack import (  # bench/, beside this script
    ROOT,
    Harness,
    Invocations,
    Outbox,
    execution_events,
    fetch_all,
    patient_clients,
    prepare_workspace,
    propagate_context_to_threads,
    reset_invocations,
    seed,
    table_indexes,
    template_queue_delays,
    watch_retries,
    wrap_runner,
)
from metering import QUEUE_GROUP, DynamoModel, Meter, reset_meter  # bench/, beside this script

SEQUENCE = "push-discount"
MAX_FOLLOW_UP_TICKS = 2000

# ---------------------------------------------------------------------------- the campaign


def quiet_logs() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


@dataclass
class Phase:
    name: str
    wall_s: float
    calls: int
    invocations: int
    clock: str


class Campaign:
    SCHEDULES: tuple[str, ...] = ("NurtureTickStateMachine",)
    """The schedules that run: the meter prices the campaign's nurture tick only."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.meter = Meter()
        self.invocations = Invocations()
        self.phases: list[Phase] = []
        self.follow_up_ticks = 0
        self.rng = random.Random(args.seed)
        self.stack: Any = None

    def _totals(self) -> tuple[int, int]:
        calls = sum(n for (owner, _), n in self.meter.calls.items() if owner != "bench")
        return calls, sum(self.invocations.count.values())

    def phase(self, name: str, action: Any) -> Any:
        calls, invoked = self._totals()
        started = time.perf_counter()
        result = action()
        after_calls, after_invoked = self._totals()
        self.phases.append(
            Phase(
                name,
                round(time.perf_counter() - started, 2),
                after_calls - calls,
                after_invoked - invoked,
                self.stack.clock.now().isoformat(timespec="seconds"),
            )
        )
        if self.args.verbose:
            print(f"  {name}: {self.phases[-1]}", file=sys.stderr, flush=True)
        return result

    def broadcast(self) -> Any:
        """What the admin API's asynchronous invoke starts: the run, whose parts the broadcast state
        machine runs (a Distributed Map of hops, round after round); waits until it is done.

        ``--parts`` parts, not the ``broadcast_parts`` of the run's SES rate (500 at the 10,000/s
        the meter runs at, to be quick: 4 leads a part here). What a part costs per lead does not
        depend on their number; the rounds' Step Functions charges are priced from the model of
        ``bench/broadcast_drain.py`` (section "broadcast state machine" of the price)."""
        event = {"broadcast": SEQUENCE, "run": "bench-run", "segments": self.args.parts}
        started = self.stack.runner.invoke("NurtureDueFunction", event)
        with Harness():
            while self.stack.running_executions():
                time.sleep(0.1)
        return started

    def tick(self) -> int:
        """One tick, then, as the 5-minute schedule would, another every 5 minutes while
        enrollments are due within the next 5 minutes (sends deferred by the SES rate, backed
        off after an error). Returns the number of ticks."""
        ticks = self.tick_once()
        while ticks < MAX_FOLLOW_UP_TICKS and self.due_within(timedelta(minutes=5)):
            self.stack.clock.advance(300)
            ticks += self.tick_once()
        self.follow_up_ticks += ticks - 1
        return ticks

    def due_within(self, window: timedelta) -> int:
        """Active enrollments of the campaign due before now + ``window`` (read from moto, not counted)."""
        assert self.meter.dynamo is not None
        limit = (self.stack.clock.now() + window).isoformat()
        with self.meter.dynamo.lock:
            items = list(self.meter.dynamo.table.all_items())
        due = 0
        for item in items:
            attrs = item.attrs
            status, due_at = attrs.get("status"), attrs.get("due_at")
            if status is not None and status.value == "active" and due_at is not None and due_at.value <= limit:
                due += 1
        return due

    def tick_once(self) -> int:
        """Fire the due schedules, then pump the event sources until the stack is idle.

        Before 27f6520 ``LocalStack.tick()`` did not wait for state machine executions (its
        ``running_executions()`` looked in moto's plain Step Functions backend while the
        executions run in the interpreting one, ``stepfunctions_parser_backends``); this waits
        for them in the right backend whatever the stack does. New ticks are not fired
        meanwhile (in AWS one would fire every 5 minutes of a long wave).
        """
        stack = self.stack
        with stack._pump_lock:
            fired = int(stack.fire_due_schedules())
            idle = 0
            while idle < 3:
                delivered = stack.pump_once()
                running = stack.running_executions()
                idle = idle + 1 if delivered == 0 and running == 0 else 0
                if delivered == 0:
                    time.sleep(0.05 if running else 0.01)
        return fired

    def finish(self) -> int:
        """Move the clock to the next due enrollment and tick, until none is active (normally none is)."""
        rounds = ticks = 0
        while rounds < MAX_FOLLOW_UP_TICKS and self.due_within(timedelta(days=30)):
            rounds += 1
            if not self.due_within(timedelta(minutes=5)):
                self.stack.clock.advance(6 * 3600)
                continue
            self.stack.clock.advance(300)
            ticks += self.tick()
        return ticks

    def _watch_sleeps(self) -> None:
        """The nurture functions' shared service (one per process here, as in a warm Lambda): count its sleeps."""
        from leadflow.bootstrap.nurture import nurture_service

        with Harness():
            service = nurture_service()
        invocations = self.invocations

        def sleep(seconds: float) -> None:
            invocations.slept(seconds)
            time.sleep(seconds)

        service._sleep = sleep
        service.store._sleep = sleep
        if hasattr(service.sender, "_sleep"):
            service.sender._sleep = sleep

    def advance_to(self, target: datetime) -> None:
        seconds = (target - self.stack.clock.now()).total_seconds()
        if seconds > 0:
            self.stack.clock.advance(seconds)

    def run(self) -> dict[str, Any]:
        from leadflow.dev.stack import LocalStack
        from leadflow.domain.nurture import message_id_for

        args = self.args
        quiet_logs()
        propagate_context_to_threads(self.invocations)
        patient_clients()
        self.meter.install()  # before any client exists: every client copies the session's hooks
        workspace = prepare_workspace(args.send_rate)
        wall = time.perf_counter()
        stack = LocalStack(
            ROOT,
            workspace,
            port=0,
            parameters={"RateLimitPerMinute": "1000000", "NurtureShards": str(args.shards)},
            log_level="ERROR",
        )
        self.stack = stack
        with Harness():  # deploying the stack is no part of the campaign
            stack.start()
            template_queue_delays(stack)
        try:
            return self._campaign(stack, message_id_for, wall)
        finally:
            stack.stop()
            shutil.rmtree(workspace.parent, ignore_errors=True)

    def _campaign(self, stack: Any, message_id_for: Any, wall: float) -> dict[str, Any]:
        args = self.args
        # The bench drives the stack with tick() alone: no background pump racing it.
        stack._stop.set()
        for thread in stack._threads:
            if thread.name == "leadflow-pump":
                thread.join(timeout=10)
        # Only the schedules the campaign needs run (the daily decay sweep is no part of it).
        stack.schedules = [s for s in stack.schedules if s.target in self.SCHEDULES]
        missing = set(self.SCHEDULES) - {s.target for s in stack.schedules}
        if missing:  # a name the template no longer schedules: the run would quietly go without it
            raise SystemExit(f"no schedule of the template targets {sorted(missing)}")
        self.meter.tap_queue = stack._tap_url
        wrap_runner(stack, self.invocations)
        watch_retries(self.invocations)
        self._watch_sleeps()
        table = stack.physical["LeadsTable"]
        machine = stack.physical["NurtureTickStateMachine"]
        self.meter.dynamo = DynamoModel(table, table_indexes(stack, table))
        outbox = Outbox()

        # Daytime for every lead (UTC+0/+1) from here on: the next 09:00 UTC.
        now = stack.clock.now()
        nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
        self.advance_to(nine if nine > now else nine + timedelta(days=1))

        # One tick with nothing due: what every idle tick costs (kept apart from the campaign).
        self.phase("idle tick (nothing due)", self.tick)
        idle = {
            "calls": {f"{o} {op}": n for (o, op), n in self.meter.calls.items() if o != "bench"},
            "invocations": dict(self.invocations.count),
            "local_ms": dict(self.invocations.local_ms),
            "modelled_ms": dict(self.meter.modelled_ms),
            "rru": sum(u.rru for u in self.meter.ddb.values()),
            "wru": sum(u.wru for u in self.meter.ddb.values()),
        }
        idle_runs = execution_events(stack, machine, set())
        idle["transitions"] = sum(idle_runs.entered.values()) + idle_runs.children
        idle["states"] = dict(idle_runs.entered)
        self.meter = reset_meter(self.meter)
        self.invocations = reset_invocations(self.invocations)

        ids = self.phase("seed leads (not counted)", lambda: seed(stack, table, args.leads, self.rng))
        self.meter.dynamo.measure_average_item_size()
        self.phase("broadcast: enroll the segment (parallel parts)", self.broadcast)
        stack.clock.advance(300)
        self.phase("tick 5 min later (leads the broadcast left due)", self.tick)
        discount_end = stack.clock.now()
        outbox.refresh()

        openers = self.rng.sample(ids, round(len(ids) * args.open_rate))
        clickers = self.rng.sample(openers, round(len(openers) * args.click_rate))
        redeemers = self.rng.sample(clickers, round(len(clickers) * args.redeem_rate))
        reactions: dict[str, Any] = {}

        def react(leads: list[str], step: str, tag: str | None) -> None:
            urls = []
            missing = 0
            for lead_id in leads:
                pixel, clicks = outbox.links(message_id_for(lead_id, SEQUENCE, 1, step))
                url = pixel if tag is None else next((u for t, u in clicks if tag in (t, "*")), None)
                if url is None:
                    missing += 1
                else:
                    urls.append(url)
            statuses = fetch_all(urls)
            reactions[step] = {
                "leads": len(leads),
                "requests": len(urls),
                "no_email": missing,
                "statuses": dict(statuses),
            }

        stack.clock.advance(86400)
        self.phase(f"{len(openers)} open the discount email (open pixel)", lambda: react(openers, "discount", None))
        self.phase("tick: product email to openers", self.tick)
        product_end = stack.clock.now()
        outbox.refresh()
        stack.clock.advance(86400)
        self.phase(f"{len(clickers)} click in the product email", lambda: react(clickers, "product", "*"))
        self.phase("tick: coupon to clickers", self.tick)
        coupon_end = stack.clock.now()
        outbox.refresh()
        stack.clock.advance(86400)
        self.phase(f"{len(redeemers)} click the coupon's redeem link", lambda: react(redeemers, "coupon", "redeem"))
        self.phase("tick: tag + hand-off for redeemers", self.tick)
        for name, end in (
            ("tick: 7-day waits of the discount run out", discount_end),
            ("tick: waits of the product email run out", product_end),
            ("tick: waits of the coupon run out", coupon_end),
        ):
            self.advance_to(end + timedelta(days=7, minutes=10))
            self.phase(name, self.tick)
        self.phase("ticks until no enrollment is active", self.finish)
        outbox.refresh()
        wall_s = time.perf_counter() - wall

        runs = execution_events(stack, machine, set(idle_runs.arns))
        return {
            "leads": args.leads,
            "rates": {"open": args.open_rate, "click": args.click_rate, "redeem": args.redeem_rate},
            "send_rate_per_second": args.send_rate,
            "shards": args.shards,
            "queues": {name: stack.physical[name] for name in QUEUE_GROUP},
            "wall_s": round(wall_s, 1),
            "reactions": reactions,
            "outcome": outcome(self.meter.dynamo, stack, outbox, ids),
            "idle_tick": idle,
            "executions": len(runs.arns),
            "follow_up_ticks": self.follow_up_ticks,
            "map_children": runs.children,
            "history_event_types": dict(runs.types),
            "states_entered": dict(runs.entered),
            "phases": [vars(p) for p in self.phases],
        }


def outcome(dynamo: DynamoModel | None, stack: Any, outbox: Outbox, ids: list[str]) -> dict[str, Any]:
    """Where every enrollment ended, and the emails SES took per step (read from moto directly)."""
    from boto3.dynamodb.types import TypeDeserializer

    from leadflow.config.workspace import Workspace
    from leadflow.domain.nurture import held_state
    from leadflow.domain.nurture.mail_log import held_from

    assert dynamo is not None
    statuses: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    sends: Counter[str] = Counter()
    tagged = handoffs = 0
    with dynamo.lock:
        items = [i.to_json()["Attributes"] for i in dynamo.table.all_items()]
    # An enrollment is its item, or the one the lead's mail log holds when that is a later entry
    # (what NurtureService reads): held ones are worked out as of the stack's clock.
    stored: dict[str, tuple[int, str, str]] = {}
    held: dict[str, dict[str, Any]] = {}
    deserializer = TypeDeserializer()
    for item in items:
        sk = item["SK"]["S"]
        lead = item["PK"]["S"].removeprefix("LEAD#")
        if sk == f"ENR#{SEQUENCE}":
            status = f"{item['status']['S']}/{item.get('exit_reason', {}).get('S', '-')}"
            stored[lead] = (int(item["entry"]["N"]), status, item["step_id"]["S"])
        elif sk == "MAIL":
            entry = item.get("held", {}).get("M", {}).get(SEQUENCE)
            if entry is not None:
                held[lead] = deserializer.deserialize(entry)
            for send in item.get("sends", {}).get("L") or []:
                entry = send["M"]
                if entry.get("s", {}).get("S") == SEQUENCE:
                    sends[entry["p"]["S"]] += 1
        elif sk == "PROFILE":
            if "push-responder" in (item.get("tags", {}).get("SS") or []):
                tagged += 1
            if "handoff_requested_at" in item:
                handoffs += 1
    sequence = Workspace(stack.workspace).sequences[SEQUENCE]
    now = stack.clock.now()
    held_count = 0
    for lead in stored.keys() | held.keys():
        entry = held.get(lead)
        if entry is not None and (lead not in stored or stored[lead][0] < int(entry["e"])):
            state = held_state(sequence, held_from(lead, SEQUENCE, entry), now)
            statuses[f"{state.status}/{state.exit_reason or '-'}"] += 1
            steps[state.step_id] += 1
            held_count += 1
        else:
            statuses[stored[lead][1]] += 1
            steps[stored[lead][2]] += 1
    return {
        "enrollments": dict(statuses),
        "held_by_mail_log": held_count,
        "final_steps": dict(steps),
        "send_ledger": dict(sends),
        "ses_messages": outbox.refresh(),
        "tagged_push_responder": tagged,
        "handoff_requested": handoffs,
    }
