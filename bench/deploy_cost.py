"""What leadflow costs in AWS: a month at rest, and per 1,000 leads that sign up and get the welcome series.

Measured with the cost meter of ``bench/metering.py`` (every botocore call of the local stack's
handlers counted and attributed to its function, DynamoDB capacity from the items' sizes, Step
Functions transitions from the executions' histories, Lambda time modelled from CPU and assumed call
latencies) and priced with its table of prices (``PRICE``); nothing here is priced by hand.

- **At rest**: each schedule of the template fires once with nothing to do, metered; its cost times
  the firings of a month (its period), plus what the stack holds whatever the traffic: the KMS keys,
  Secrets Manager secrets and CloudWatch alarms of the transformed template, by count, and the
  SnapStart cache of each function version that has one (its memory, a month). Apart from
  the total, and modelled, not metered: the empty long polls Lambda's SQS event source mappings
  make on idle queues (AWS does not publish the number of pollers; ``--pollers`` says how many are
  assumed, 20 s waits), which the local stack, which polls its queues itself, cannot show.
- **Per 1,000 leads**: ``--leads`` people sign up on the demo form (JSON, marketing consent, through
  the local gateway as API Gateway would pass them), then the clock runs on, tick after tick, until
  every enrollment has ended: the welcome series' emails, scoring, segments, reports, the outbox
  relay, SES's send and delivery events (the local stack publishes them as SES would). Scaled from
  the measured leads to 1,000 (the counts per lead do not depend on the number: compare two runs).
  Form capture's SnapStart restores are modelled as an upper bound, one per form post (a site so
  quiet that every post is a cold start); the local stack restores nothing.

    cd /work/main && .venv/bin/python bench/deploy_cost.py [--leads 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from typing import Any

from campaign import Campaign  # bench/, beside this script
from campaign_stack import (  # bench/, beside this script
    Harness,
    execution_events,
    reset_invocations,
    table_indexes,
    watch_retries,
    wrap_runner,
)
from metering import (  # bench/, beside this script
    EXPRESS_GB,
    EXPRESS_MIN_S,
    LAMBDA_GB,
    PRICE,
    QUEUE_GROUP,
    RULE_QUEUES,
    DynamoModel,
    reset_meter,
)
from nurture_cost import modelled_ms, queue_names, raw_counts, run_record  # bench/, beside this script
from pinning import pin

MONTH_S = 30 * 86400
FORM = "demo-signup"


class Lifecycle(Campaign):
    """The local stack as ``Campaign`` drives it (ticks, the meter), with this benchmark's two runs."""

    def _campaign(self, stack: Any, message_id_for: Any, wall: float) -> dict[str, Any]:
        stack._stop.set()  # the benchmark drives the stack with ticks alone
        for thread in stack._threads:
            if thread.name == "leadflow-pump":
                thread.join(timeout=10)
        self.meter.tap_queue = stack._tap_url
        wrap_runner(stack, self.invocations)
        watch_retries(self.invocations)
        self._watch_sleeps()
        table = stack.physical["LeadsTable"]
        self.meter.dynamo = DynamoModel(table, table_indexes(stack, table))
        now = stack.clock.now()
        nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
        self.advance_to(nine if nine > now else nine + timedelta(days=1))
        machines = {s.target: stack.physical[s.target] for s in stack.schedules if s.target in stack.physical}
        seen = {arn for machine in machines.values() if ":states:" in machine for arn in self._runs(machine).arns}
        at_rest = [self._idle_firing(stack, schedule, machines, seen) for schedule in list(stack.schedules)]
        # The leads' run: only the nurture tick fires (the daily and hourly sweeps are the month at rest's).
        stack.schedules = [s for s in stack.schedules if s.target == "NurtureTickStateMachine"]
        self.meter, self.invocations = reset_meter(self.meter), reset_invocations(self.invocations)
        self.meter.dynamo.measure_average_item_size()
        self.phase(f"{self.args.leads} sign up on {FORM}", lambda: self._sign_up(stack))
        self.phase("ticks until every enrollment has ended", self._play_out)
        tick_machine = stack.physical["NurtureTickStateMachine"]
        runs = execution_events(stack, tick_machine, seen)
        return {
            "leads": self.args.leads,
            "at_rest": at_rest,
            "queues": {name: stack.physical[name] for name in QUEUE_GROUP if name in stack.physical},
            "resources": resource_counts(stack.cfn_template, stack.parameters),
            "sqs_queues_with_mappings": mapped_queues(stack.cfn_template),
            "executions": len(runs.arns),
            "transitions": sum(runs.entered.values()),
            "map_children": runs.children,
            "form_posts": self.args.leads,
            "phases": [vars(p) for p in self.phases],
            "wall_s": round(time.perf_counter() - wall, 1),
        }

    def _runs(self, machine: str) -> Any:
        return execution_events(self.stack, machine, set())

    def _idle_firing(self, stack: Any, schedule: Any, machines: dict[str, str], seen: set[str]) -> dict[str, Any]:
        """One firing of ``schedule`` with nothing to do, metered (the others held back)."""
        self.meter, self.invocations = reset_meter(self.meter), reset_invocations(self.invocations)
        kept = stack.schedules
        schedule.next_due = stack.clock.now()
        stack.schedules = [schedule]
        try:
            self.tick_once()
        finally:
            stack.schedules = kept
        counts = raw_counts(self)
        transitions = children = 0
        machine = machines.get(schedule.target, "")
        if ":states:" in machine:
            runs = execution_events(stack, machine, seen)
            seen.update(runs.arns)
            transitions, children = sum(runs.entered.values()), runs.children
        per_firing = priced_lines(counts, {}, transitions=transitions, children=children, firings=1)
        return {
            "schedule": schedule.name,
            "target": schedule.target,
            "period_s": schedule.period_seconds,
            "firings_a_month": MONTH_S / schedule.period_seconds,
            "usd_a_firing": sum(line["usd"] for line in per_firing),
            "lines": per_firing,
        }

    def _sign_up(self, stack: Any) -> None:
        for n in range(self.args.leads):
            body = json.dumps(
                {"email": f"cost-{n}@example.com", "first_name": f"Lead{n}", "country": "DE", "consent": True,
                 "utm_source": "linkedin", "utm_campaign": "cost"}
            ).encode()  # fmt: skip
            request = urllib.request.Request(
                f"{stack.url}/forms/{FORM}", data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            with Harness(), urllib.request.urlopen(request, timeout=60) as answer:  # nosec B310
                if answer.status != 200:
                    raise SystemExit(f"the form answered {answer.status}")
        self.tick()

    def _play_out(self) -> None:
        """Tick every 5 minutes while something is due soon, else jump 6 hours, until no enrollment is active."""
        for _ in range(200):
            if not self.due_within(timedelta(days=30)):
                return
            if self.due_within(timedelta(minutes=5)):
                self.stack.clock.advance(300)
                self.tick()
            else:
                self.stack.clock.advance(6 * 3600)
        raise SystemExit("enrollments still active after 200 rounds")


def snapstart_applies(apply_on: Any, template: dict[str, Any], parameters: dict[str, str]) -> bool:
    """Whether a function's ``SnapStart.ApplyOn`` is ``PublishedVersions`` with the stack's parameters (the
    template's is an ``Fn::If`` on a condition that compares one parameter, ``FormCaptureSnapStartOn``)."""
    if isinstance(apply_on, dict):
        condition, then, otherwise = apply_on["Fn::If"]
        left, right = template["Conditions"][condition]["Fn::Equals"]
        name = left["Ref"]
        apply_on = then if parameters.get(name, template["Parameters"][name].get("Default")) == right else otherwise
    return apply_on == "PublishedVersions"


def resource_counts(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    kinds = Counter(str(r["Type"]) for r in template["Resources"].values())
    snapstart = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and snapstart_applies((r["Properties"].get("SnapStart") or {}).get("ApplyOn"), template, parameters)
    ]
    return {
        "kms_keys": kinds["AWS::KMS::Key"],
        "secrets": kinds["AWS::SecretsManager::Secret"],
        "alarms": kinds["AWS::CloudWatch::Alarm"],
        "ssm_parameters": kinds["AWS::SSM::Parameter"],
        # One live version each (the alias's); a deploy leaves the version before it cached until it
        # has gone 14 days without an invocation (up to ~$0.91 once per deploy at 512 MB).
        "snapstart_functions": len(snapstart),
        "snapstart_gb": sum(int(p.get("MemorySize", 128)) / 1024 for p in snapstart),
    }


def mapped_queues(template: dict[str, Any]) -> int:
    """SQS queues a Lambda event source mapping polls (the DynamoDB stream's mapping polls for free)."""
    resources = template["Resources"]
    polled = 0
    for resource in resources.values():
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        source = resource["Properties"].get("EventSourceArn")
        target = source.get("Fn::GetAtt", [None])[0] if isinstance(source, dict) else None
        polled += bool(target and resources.get(target, {}).get("Type") == "AWS::SQS::Queue")
    return polled


def priced_lines(  # noqa: PLR0917 - the measured quantities of one run
    counts: dict[str, Any], queues: dict[str, str], transitions: int, children: int, firings: int, api_requests: int = 0
) -> list[dict[str, Any]]:
    """Every metered quantity of a run as a priced line (PRICE of bench/metering.py)."""
    lines: list[dict[str, Any]] = []

    def line(service: str, what: str, quantity: float, unit: float) -> None:
        if quantity:
            lines.append({"service": service, "what": what, "quantity": quantity, "usd": quantity * unit})

    calls = Counter(counts["calls"])
    for owner, invoked in sorted(counts["invocations"].items()):
        line("Lambda", f"{owner}: requests", invoked, PRICE["lambda_request"])
        gb_s = modelled_ms(counts, owner) / 1000 * LAMBDA_GB
        line("Lambda", f"{owner}: GB-s (modelled)", gb_s, PRICE["lambda_gb_s_arm64"])
    for owner, usage in sorted(counts["ddb"].items()):
        line("DynamoDB", f"{owner}: write units (table + GSIs)", usage["wru"] + usage["gsi_wru"], PRICE["ddb_wru"])
        line("DynamoDB", f"{owner}: read units", usage["rru"], PRICE["ddb_rru"])
    sends = sum(n for k, n in calls.items() if k.rsplit(" ", 1)[-1] in ("sqs:SendMessage", "sqs:SendMessageBatch"))
    line("SQS", "SendMessage(Batch) by the functions", sends, PRICE["sqs_request"])
    names = queue_names({"queues": queues, "counts": counts}) if queues else {}
    for url, received in sorted(counts["sqs_received"].items()):
        name = names.get(url, url.rsplit("/", 1)[-1])
        if any(name.startswith(q) for q in RULE_QUEUES):
            line("SQS", f"{name}: deliveries by the EventBridge rule", received, PRICE["sqs_request"])
        batches = counts["sqs_nonempty_receives"].get(url, 0)
        line("SQS", f"{name}: event source mapping receive + delete", 2 * batches, PRICE["sqs_request"])
    entries = sum(counts["put_events_entries"].values())
    line("EventBridge", "PutEvents entries", entries, PRICE["eventbridge_event"])
    secrets = sum(n for k, n in calls.items() if k.endswith("secretsmanager:GetSecretValue"))
    line("Secrets Manager", "GetSecretValue calls", secrets, PRICE["secrets_api_call"])
    line("API Gateway", "HTTP API requests (form posts)", api_requests, PRICE["apigw_http_request"])
    line("SES", "emails sent", sum(n for k, n in calls.items() if k.endswith("sesv2:SendEmail")), PRICE["ses_email"])
    line(
        "Step Functions",
        "Standard state transitions (the tick)",
        transitions + children,
        PRICE["sfn_standard_transition"],
    )
    line("Step Functions", "Express child executions", children, PRICE["sfn_express_request"])
    if children:
        child_s = max(modelled_ms(counts, "NurtureStepFunction[tick]") / 1000, children * EXPRESS_MIN_S)
        line(
            "Step Functions", "Express child duration (GB-s at 64 MB)", child_s * EXPRESS_GB, PRICE["sfn_express_gb_s"]
        )
    line("Scheduler", "schedule firings", firings, PRICE["scheduler_invocation"])
    return lines


def price(data: dict[str, Any], pollers: int) -> dict[str, Any]:
    """The month at rest and the cost of 1,000 leads, from the measured runs."""
    rest = []
    for firing in data["at_rest"]:
        rest.append({"what": f"{firing['schedule']} ({firing['target']}), {firing['firings_a_month']:,.0f} firings",
                     "usd": firing["usd_a_firing"] * firing["firings_a_month"]})  # fmt: skip
    held = data["resources"]
    rest.append({"what": f"{held['kms_keys']} KMS key(s)", "usd": held["kms_keys"] * PRICE["kms_key_month"]})
    rest.append({"what": f"{held['secrets']} Secrets Manager secrets", "usd": held["secrets"] * PRICE["secret_month"]})
    rest.append({"what": f"{held['alarms']} CloudWatch alarms", "usd": held["alarms"] * PRICE["alarm_month"]})
    cache = held["snapstart_gb"] * PRICE["snapstart_cache_gb_s"] * MONTH_S
    what = f"SnapStart cache of {held['snapstart_functions']} function version(s), {held['snapstart_gb']:g} GB"
    rest.append({"what": what, "usd": cache})
    at_rest = sum(r["usd"] for r in rest)
    polls = data["sqs_queues_with_mappings"] * pollers * MONTH_S / 20
    leads = data["leads"]
    lines = priced_lines(
        data["counts"], data["queues"], data["transitions"], data["map_children"], data["executions"],
        api_requests=data["form_posts"],
    )  # fmt: skip
    # Modelled, an upper bound: every form post a cold start, each one a restore of the snapshot.
    restores = data["form_posts"] * held["snapstart_gb"]
    lines.append({"service": "Lambda", "what": "SnapStart restores, at most one a form post (modelled)",
                  "quantity": data["form_posts"], "usd": restores * PRICE["snapstart_restore_gb"]})  # fmt: skip
    # The ticks of the run would have fired anyway (the month at rest counts them): what a tick
    # costs with nothing due is taken off, so that what remains is what the leads added.
    idle_tick = next(f["usd_a_firing"] for f in data["at_rest"] if f["target"] == "NurtureTickStateMachine")
    lines.append({"service": "Step Functions", "what": f"less {data['executions']} idle ticks (the month at rest's)",
                  "quantity": data["executions"], "usd": -data["executions"] * idle_tick})  # fmt: skip
    per_1000 = {"lines": [{**entry, "usd_per_1000": entry["usd"] / leads * 1000} for entry in lines]}
    by_service: Counter[str] = Counter()
    for entry in per_1000["lines"]:
        by_service[entry["service"]] += entry["usd_per_1000"]
    emails = next((e["quantity"] for e in lines if e["service"] == "SES"), 0)
    return {
        "at_rest_lines": rest,
        "at_rest_usd_month": at_rest,
        "idle_polls_a_month": polls,
        "idle_polls_usd_month": polls * PRICE["sqs_request"],
        "per_1000_leads_usd": sum(by_service.values()),
        "per_1000_by_service": dict(by_service.most_common()),
        "emails_per_lead": emails / leads,
        "per_1000": per_1000,
    }


def report(data: dict[str, Any], priced: dict[str, Any], pollers: int) -> str:
    out = [f"leadflow in AWS (us-east-1 list prices, free tiers ignored): {data['run']['command']}"]
    out.append(f"  run {data['run']['finished_utc']}, load {data['run']['load_1min']:.2f}, {data['wall_s']} s")
    out.append(f"\nA month at rest: ${priced['at_rest_usd_month']:.2f}")
    for entry in priced["at_rest_lines"]:
        out.append(f"  ${entry['usd']:8.4f}  {entry['what']}")
    out.append(
        f"  not metered (modelled: {data['sqs_queues_with_mappings']} queues x {pollers} pollers x a 20 s long poll):"
        f" {priced['idle_polls_a_month']:,.0f} empty receives, ${priced['idle_polls_usd_month']:.2f}"
    )
    out.append(
        f"\nPer 1,000 leads (measured on {data['leads']}; {priced['emails_per_lead']:.2f} emails each): "
        f"${priced['per_1000_leads_usd']:.4f}"
    )
    for service, usd in priced["per_1000_by_service"].items():
        out.append(f"  ${usd:8.4f}  {service}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=50)
    parser.add_argument("--pollers", type=int, default=5, help="assumed pollers of an idle SQS event source mapping")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.send_rate, args.shards, args.seed = 10_000, 16, 7
    pinned = pin("first")[0]
    campaign = Lifecycle(args)
    data = campaign.run()
    data["counts"] = raw_counts(campaign)
    data["run"] = run_record("bench/deploy_cost.py", argv, pinned)
    priced = price(data, args.pollers)
    if args.json:
        print(json.dumps({**data, "priced": priced}, indent=1, default=str))
    else:
        print(report(data, priced, args.pollers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
