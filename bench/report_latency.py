"""Report latency at 1,000,000 leads' worth of aggregates: how many items and reads each report takes.

Builds the ReportsTable's counter items that 1,000,000 leads leave over a quarter (``--days``
90): each day's leads spread over a source, medium, campaign, form, channel and share code from
fixed pools (``POOLS``) and thinned through the funnel at fixed rates (``build_counters``: the
keys and fields ``leadflow.domain.reporting`` writes, drawn per day and value); the counters are
kept sorted by key as DynamoDB keeps a partition (moto's Query scans its whole
table, seconds per call at this size: no use for timing). A push sequence (12 steps, two
variants on two of them) adds its daily counters; hand-offs their owners' and teams'; the forms
report's items (``form_and_page_counters``): the capture transaction's day counters per form
(LeadsTable ``STATS#<day>``) and the page counters. Then each report is read ``--runs`` times
through ``ReportingService``, as the API reads it: the items read, the Query pages, the round
trips one after another (the Queries a report runs at once, ``READ_WORKERS`` at a time, as
``adapters.reports.concurrently`` runs them, count as one trip a wave), the read units (from the items' sizes,
eventually consistent: what DynamoDB bills), the CPU time of the report here (p50/p95, process
CPU time: the machine is shared), and a modelled latency in Lambda: that CPU time scaled to the
API function's share of a vCPU (``metering.LAMBDA_CPU_SCALE``, 512 MB) plus an assumed 10 ms a
round trip (``ASSUMED_QUERY_PAGE_MS``; not measured).

    .venv/bin/python bench/report_latency.py [--leads 1000000] [--days 90] [--runs 20] [--json]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from metering import LAMBDA_CPU_SCALE  # bench/, beside this script: the API function's share of a vCPU

ROOT = Path(__file__).resolve().parent.parent
POOLS = {"source": 20, "medium": 8, "campaign": 40, "form": 6, "channel": 5, "ref": 60}
STAGE_RATES = {"mql": 0.05, "sql": 0.4, "opportunity": 0.5, "customer": 0.4}  # of the stage before
TABLE = "bench-reports"


def build_counters(leads: int, days: int, seed: int) -> dict[tuple[str, str], dict[str, int]]:
    """The funnel counter items ``leads`` leads leave: per day, the day's leads spread over each
    dimension's values, thinned stage by stage, their times to MQL / SQL in the histogram buckets.

    Drawn per (day, value) cell rather than lead by lead (a million leads through the per-lead
    code takes minutes here): the same keys and fields ``domain.reporting`` writes, in both views
    (a cohort's stages counted on its creation day, as the cohort view does)."""
    from leadflow.domain.reporting import DIMENSIONS, FUNNEL_STAGES, TIMED_STAGES, funnel_key, hour_bucket

    rng = random.Random(seed)
    first = date(2026, 9, 1)
    counters: dict[tuple[str, str], dict[str, int]] = {}
    per_day = Counter(rng.randrange(days) for _ in range(min(leads, 200_000)))
    scale = leads / max(sum(per_day.values()), 1)
    for d in range(days):
        day = (first + timedelta(days=d)).isoformat()
        born = round(per_day[d] * scale)
        for dimension in DIMENSIONS:
            pool = POOLS[dimension]
            shares = Counter(rng.randrange(pool) for _ in range(min(born, 5_000)))
            for value, share in shares.items():
                created = round(share * born / max(sum(shares.values()), 1))
                fields = {"created": created, "reached_lead": created}
                alive = created
                for stage in FUNNEL_STAGES[1:]:
                    alive = (
                        sum(1 for _ in range(alive) if rng.random() < STAGE_RATES[stage])
                        if alive < 5000
                        else round(alive * STAGE_RATES[stage])
                    )
                    if not alive:
                        break
                    fields[f"reached_{stage}"] = alive
                    if stage in TIMED_STAGES:
                        for _ in range(min(alive, 50)):
                            bucket = f"{TIMED_STAGES[stage]}_{hour_bucket(rng.expovariate(1 / 60))}"
                            fields[bucket] = fields.get(bucket, 0) + max(alive // 50, 1)
                name = f"{dimension}-{value}" if dimension != "ref" or value else "(none)"
                for view in ("events", "cohort"):
                    counters[funnel_key(view, dimension, day, name)] = dict(fields)
    return counters


def sequence_and_handoff_counters(days: int) -> dict[tuple[str, str], dict[str, int]]:
    from leadflow.domain.sequence_reports import sequence_key

    counters: dict[tuple[str, str], dict[str, int]] = {}
    first = date(2026, 9, 1)
    for d in range(days):
        day = (first + timedelta(days=d)).isoformat()
        for step in range(12):
            for variant in ("a", "b") if step in (0, 3) else ("-",):
                counters[sequence_key("push", day, 1, f"step-{step}", variant)] = {
                    "sent": 5000,
                    "delivered": 4900,
                    "unique_opens": 1000,
                    "unique_clicks": 80,
                    "skipped_capped": 12,
                }
        for owner in range(30):
            counters[("HANDOFFS#owner", f"{day}#rep-{owner}")] = {"assigned": 3, "accepted": 2, "tta_4": 2}
        for team in range(4):
            counters[("HANDOFFS#team", f"{day}#team-{team}")] = {"assigned": 22, "accepted": 15}
    return counters


def form_and_page_counters(leads: int, days: int, seed: int) -> dict[tuple[str, str], dict[str, int]]:
    """The forms report's items ``leads`` leads leave: the capture transaction's day counters per
    form (LeadsTable ``STATS#<day>`` / ``FORM#<id>``: submissions, new leads, spam) and the page
    counters (``PAGES``: tracked views, submissions, new leads; ``FORMPAGES#<form>``: the form's
    submissions per page). Every form is on ``PAGES_PER_FORM`` pages of its own and the site has
    ``OTHER_PAGES`` more that only get views; a returning lead's post is a submission, not a new lead.
    """
    rng = random.Random(seed + 1)
    forms = POOLS["form"]
    counters: dict[tuple[str, str], dict[str, int]] = {}
    first = date(2026, 9, 1)
    per_day = leads / days
    for d in range(days):
        day = (first + timedelta(days=d)).isoformat()
        for f in range(forms):
            form_id = f"form-{f}"
            new_leads = round(per_day / forms * rng.uniform(0.5, 1.5))
            submissions = round(new_leads * 1.25)
            counters[(f"STATS#{day}", f"FORM#{form_id}")] = {
                "submissions": submissions,
                "new_leads": new_leads,
                "spam": round(submissions * 0.03),
            }
            for p in range(PAGES_PER_FORM):
                page = f"www.example.com/{form_id}/page-{p}"
                share = round(submissions / PAGES_PER_FORM)
                fields = {"views": share * 20, "submissions": share, "new_leads": round(new_leads / PAGES_PER_FORM)}
                counters[("PAGES", f"{day}#{page}")] = fields
                counters[(f"FORMPAGES#{form_id}", f"{day}#{page}")] = {"submissions": share}
        for p in range(OTHER_PAGES):
            counters[("PAGES", f"{day}#www.example.com/article-{p}")] = {"views": rng.randrange(50, 5000)}
    return counters


def _add(into: dict[tuple[str, str], dict[str, int]], more: dict[tuple[str, str], dict[str, int]]) -> None:
    for key, fields in more.items():
        target = into.setdefault(key, {})
        for name, n in fields.items():
            target[name] = target.get(name, 0) + n


PAGES_PER_FORM = 3
OTHER_PAGES = 40
PAGE_BYTES = 1024 * 1024  # a Query page returns at most 1 MB
ASSUMED_QUERY_PAGE_MS = 10.0
"""Assumed in-region latency of one DynamoDB Query page from Lambda (not measured here)."""


def item_size(key: tuple[str, str], fields: dict[str, int]) -> int:
    """DynamoDB's item size: attribute names plus values (strings by length, numbers ~ digits / 2 + 1)."""
    size = 2 + 2 + len(key[0]) + len(key[1])
    for name, value in fields.items():
        size += len(name) + len(str(value)) // 2 + 1
    return size


class SortedReportStore:
    """The ReportsTable as DynamoDB serves a Query: a partition's items in sort-key order, read
    from the start key; counts the items, pages and read units each report takes."""

    def __init__(self, counters: dict[tuple[str, str], dict[str, int]]) -> None:
        self.partitions: dict[str, list[tuple[str, dict[str, Any], int]]] = {}
        for (pk, sk), fields in sorted(counters.items()):
            self.partitions.setdefault(pk, []).append((sk, {"PK": pk, "SK": sk, **fields}, item_size((pk, sk), fields)))
        self.keys = {pk: [sk for sk, _, _ in items] for pk, items in self.partitions.items()}
        self.reset()

    def reset(self) -> None:
        self.items = self.pages = self.round_trips = 0
        self.rru = 0.0

    def query(self, pk: str, sk_from: str, sk_to: str) -> list[dict[str, Any]]:
        items = self.partitions.get(pk, [])
        keys = self.keys.get(pk, [])
        found = items[bisect.bisect_left(keys, sk_from) : bisect.bisect_right(keys, sk_to)]
        size = sum(s for _, _, s in found)
        self.items += len(found)
        pages = max(1, -(-size // PAGE_BYTES))
        self.pages += pages
        self.round_trips += pages
        self.rru += max(1, -(-size // 4096)) * 0.5  # eventually consistent reads
        return [dict(item) for _, item, _ in found]

    def form_stats(self, days: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """The capture transaction's counters of these days, per form: a Query a day, at once, as
        ``DynamoLeadFacts.form_stats`` reads them."""
        answers = self._concurrently([(f"STATS#{day}", "FORM#", "FORM#\uffff") for day in days])
        return [(str(i["SK"]).removeprefix("FORM#"), i) for items in answers for i in items]

    def query_many(self, ranges: list[tuple[str, str, str]]) -> list[list[dict[str, Any]]]:
        return self._concurrently(ranges)

    def _concurrently(self, ranges: list[tuple[str, str, str]]) -> list[list[dict[str, Any]]]:
        """Queries run ``READ_WORKERS`` at a time (``adapters.reports.concurrently``): a wave of them
        waits as long as its longest, counted here as the most pages any one of them read."""
        from leadflow.adapters.reports import READ_WORKERS

        trips, answers, longest = self.round_trips, [], 0
        for pk, sk_from, sk_to in ranges:
            before = self.pages
            answers.append(self.query(pk, sk_from, sk_to))
            longest = max(longest, self.pages - before)
        self.round_trips = trips + -(-len(ranges) // READ_WORKERS) * longest
        return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    from leadflow.config.workspace import Workspace
    from leadflow.services.reporting import ReportingService

    started = time.perf_counter()
    counters = build_counters(args.leads, args.days, args.seed)
    counters.update(sequence_and_handoff_counters(args.days))
    counters.update(form_and_page_counters(args.leads, args.days, args.seed))
    built_s = time.perf_counter() - started
    store = SortedReportStore(counters)
    service = ReportingService(Workspace(ROOT / "workspace"), store, store, Exception)  # type: ignore[arg-type]
    last = (date(2026, 9, 1) + timedelta(days=args.days - 1)).isoformat()
    month = (date.fromisoformat(last) - timedelta(days=29)).isoformat()
    quarter = date(2026, 9, 1).isoformat()
    cases = {
        "funnel by source, 30 days, events": lambda: service.funnel(month, last, "source", "events"),
        f"funnel by campaign, {args.days} days, cohort": lambda: service.funnel(quarter, last, "campaign", "cohort"),
        f"reps (funnel by ref), {args.days} days": lambda: service.reps(quarter, last, "cohort"),
        "sequence, 30 days (12 steps, 2 A/B tests)": lambda: service.sequence("push", month, last),
        f"sequence, {args.days} days": lambda: service.sequence("push", quarter, last),
        "hand-offs, 30 days (30 owners, 4 teams)": lambda: service.handoffs(month, last),
        f"forms and pages, 30 days ({POOLS['form']} forms)": lambda: service.forms(month, last),
        f"forms and pages, {args.days} days": lambda: service.forms(quarter, last),
    }
    results = {}
    for name, run in cases.items():
        run()  # warm: the workspace's sequences are read on the first report that needs them
        times = []
        for _ in range(args.runs):
            store.reset()
            t0 = time.process_time()  # CPU time: other processes on the shared CPUs do not count
            run()
            times.append((time.process_time() - t0) * 1000)
        times.sort()
        network = store.round_trips * ASSUMED_QUERY_PAGE_MS
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        results[name] = {
            "items_read": store.items,
            "query_pages": store.pages,
            "round_trips": store.round_trips,
            "read_units": store.rru,
            "cpu_p50_ms": round(statistics.median(times), 1),
            "cpu_p95_ms": round(p95, 1),
            "modelled_p50_ms": round(statistics.median(times) * LAMBDA_CPU_SCALE + network, 1),
            "modelled_p95_ms": round(p95 * LAMBDA_CPU_SCALE + network, 1),
        }
    kinds = Counter(pk.split("#", 1)[0] for pk, _ in counters)
    out = {
        "leads": args.leads,
        "days": args.days,
        "counter_items": len(counters),
        "items_by_kind": dict(kinds),
        "build_s": round(built_s, 1),
        "runs": args.runs,
        "machine": f"{os.cpu_count()} CPUs (shared), Python {sys.version.split()[0]}",
        "assumed_query_page_ms": ASSUMED_QUERY_PAGE_MS,
        "lambda_cpu_scale": round(LAMBDA_CPU_SCALE, 3),
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "reports": results,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{args.leads:,} leads over {args.days} days: {len(counters):,} counter items {dict(kinds)}")
    header = f"{'report':<44} {'items':>7} {'pages':>5} {'trips':>5} {'RRU':>6}"
    print(f"{header} {'CPU p50/p95 ms':>15} {'modelled p50/p95 ms':>20}")
    for name, r in results.items():
        cpu = f"{r['cpu_p50_ms']}/{r['cpu_p95_ms']}"
        modelled = f"{r['modelled_p50_ms']}/{r['modelled_p95_ms']}"
        line = f"{name:<44} {r['items_read']:>7} {r['query_pages']:>5} {r['round_trips']:>5} {r['read_units']:>6.1f}"
        print(f"{line} {cpu:>15} {modelled:>20}")
    print(
        f"trips: round trips one after another (Query pages; Queries run at once count one a wave);"
        f" modelled = CPU here x {LAMBDA_CPU_SCALE:.2f} (LeadApiFunction's 512 MB: 0.29 of a vCPU)"
        f" + {ASSUMED_QUERY_PAGE_MS:g} ms per round trip (assumed in-region latency)"
    )
    print(out["machine"], out["at"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
