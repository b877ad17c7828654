"""Nurture step logic: leads per second on one core, without AWS.

What ``nurture_step`` does per lead besides waiting for AWS, measured on the demo
workspace's push sequence (``sequences/push-discount.yaml``) with the workspace's
messaging rules (quiet hours, frequency caps) and templates. The goal stated in the issue:
at least 5,000 leads per second per core. Scenarios (each timed with ``time.perf_counter``
around the whole pass, or with ``--clock cpu`` the process's CPU time, ``time.process_time``,
which other work on a shared machine inflates less; repeated, median reported, and the best
run as ``best/s``; building the leads is not timed; the load average is printed with them):

- ``engine_wave``: the pure engine, ``domain.nurture.advance``, for every lead of a
  broadcast at its first step: the discount email passes its gates (suppression,
  unsubscribe, quiet hours in the lead's timezone, frequency caps), gets its message id and
  the enrollment moves on to the 7-day wait. One call per lead.
- ``engine_campaign``: the engine through the whole campaign: the wave, then 5% open
  (the email is marked opened, as ``handle_event`` does) and get the product email, 40% of
  those click and get the coupon, 40% of those click ``redeem`` and are handed off; the
  waits of all others run out and every enrollment ends. Every ``advance`` call counted.
- ``engine_render``: ``engine_wave`` plus rendering the email it decided to send
  (``domain.rendering.EmailRenderer.render``, with signed open, click and unsubscribe
  links): the step's CPU work per email.
- ``service``: ``NurtureService.process`` (the step function's use case) on pages of 200
  due enrollments, with in-memory fakes for the store, the SES sender and the due-now
  queue: loading the page, the lead views, the engine, rendering and signing, the send
  ledger claim, the send, storing the enrollment. The broadcast wave, then the wave where
  the 7-day waits run out (no email: the enrollments complete).

The process is pinned to one CPU where the OS allows it (``--cpu N`` picks the CPU, ``--cpu all``
leaves it on every CPU it may use); the header says which.

    cd /work/main && .venv/bin/python bench/nurture_step_logic.py [--leads 10000] [--repeat 3] \
        [--clock wall|cpu] [--cpu first|N|all] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pinning import pin  # bench/, beside this script

from leadflow.adapters.memory import FakeClock, FakeEmailSender, InMemoryDueNowQueue, InMemoryNurtureStore
from leadflow.config.workspace import Workspace
from leadflow.domain.gdpr import AddressHasher
from leadflow.domain.nurture import ACTIVE, Enrollment, LeadView, advance, enroll
from leadflow.domain.rendering import Sender
from leadflow.services.nurture import NurtureService, TokenIssuer

ROOT = Path(__file__).resolve().parent.parent
SEQUENCE = "push-discount"
GOAL_PER_SECOND = 5_000
PAGE = 200
# Tuesday 10:00 UTC: daytime (no quiet hours) in every lead's timezone below.
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "AT", "BE", "GB", "IE", "PT")
FIRST = ("Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas")


def profiles(count: int, seed: int) -> list[dict[str, Any]]:
    """Lead profiles as the store returns them (deserialized PROFILE items)."""
    rng = random.Random(seed)
    leads = []
    for n in range(count):
        lead_id = f"01BENCH{n:019d}"
        first = rng.choice(FIRST)
        leads.append(
            {
                "PK": f"LEAD#{lead_id}",
                "SK": "PROFILE",
                "lead_id": lead_id,
                "email": f"{first.lower()}.{n}@company{n % 997}.example",
                "first_name": first,
                "country": rng.choice(COUNTRIES),
                "stage": "lead",
                "scores": {"smb": 20, "key_account": 20, "customer": 10},
                "grade": "D",
                # The push campaign's database: everyone gave consent (the send gate checks it per email).
                "consent_marketing_email": {"granted": True, "at": "2026-11-01T09:00:00+00:00", "form_id": "demo"},
            }
        )
    return leads


def lead_view(profile: dict[str, Any], sends: tuple[datetime, ...] = ()) -> LeadView:
    return LeadView(
        lead_id=profile["lead_id"],
        profile=profile,
        scores={k: float(v) for k, v in profile["scores"].items()},
        recent_sends=sends,
        default_model="smb",
    )


# ---------------------------------------------------------------------------- engine scenarios


class Setup:
    def __init__(self, leads: int, seed: int) -> None:
        self.workspace = Workspace(ROOT / "workspace")
        self.sequence = self.workspace.sequences[SEQUENCE]
        self.messaging = self.workspace.messaging
        self.segments = self.workspace.segments
        self.profiles = profiles(leads, seed)
        self.views = [lead_view(p) for p in self.profiles]
        rng = random.Random(seed + 1)
        ids = [p["lead_id"] for p in self.profiles]
        self.openers = set(rng.sample(ids, round(len(ids) * 0.05)))
        self.clickers = set(rng.sample(sorted(self.openers), round(len(self.openers) * 0.4)))
        self.redeemers = set(rng.sample(sorted(self.clickers), round(len(self.clickers) * 0.4)))

    def enrollments(self) -> list[Enrollment]:
        made = [enroll(self.sequence, 1, v.lead_id, NOW, None) for v in self.views]
        return [e for e in made if e is not None]


def engine_wave(setup: Setup) -> dict[str, int]:
    enrollments = setup.enrollments()
    sequence, messaging, segments = setup.sequence, setup.messaging, setup.segments
    emails = 0
    start = _timer()
    for enrollment, lead in zip(enrollments, setup.views, strict=True):
        outcome = advance(sequence, enrollment, lead, NOW, messaging, segments)
        emails += outcome.email is not None
    setup.elapsed = _timer() - start  # type: ignore[attr-defined]
    return {"leads": len(enrollments), "advance_calls": len(enrollments), "emails": emails}


def _mark(enrollment: Enrollment, step: str, *, clicked: bool = False, tag: str | None = None) -> Enrollment:
    """What ``handle_event`` does on an open or click: the email marked, the wait woken."""
    emails = tuple(
        replace(e, opened=True, clicked=e.clicked or clicked, link_tags=(*e.link_tags, tag) if tag else e.link_tags)
        if e.step_id == step
        else e
        for e in enrollment.emails
    )
    return replace(enrollment, emails=emails)


def engine_campaign(setup: Setup) -> dict[str, int]:
    enrollments = setup.enrollments()
    sequence, messaging, segments = setup.sequence, setup.messaging, setup.segments
    calls = emails = 0
    ended = 0
    start = _timer()
    for enrollment, lead in zip(enrollments, setup.views, strict=True):
        now = NOW
        sends: tuple[datetime, ...] = ()
        reactions = []
        if lead.lead_id in setup.openers:
            reactions.append(("discount", False, None))
        if lead.lead_id in setup.clickers:
            reactions.append(("product", True, "product-tour"))
        if lead.lead_id in setup.redeemers:
            reactions.append(("coupon", True, "redeem"))
        current = enrollment
        while current.status == ACTIVE:
            outcome = advance(sequence, current, replace(lead, recent_sends=sends), now, messaging, segments)
            calls += 1
            current = outcome.enrollment
            if outcome.email is not None:
                emails += 1
                sends = (*sends, now)
                continue
            if current.status != ACTIVE:
                break
            # Waiting: a day later the lead reacts (if it does), else the wait runs out.
            if reactions:
                step, clicked, tag = reactions.pop(0)
                now += timedelta(days=1)
                current = _mark(current, step, clicked=clicked, tag=tag)
            else:
                now = max(now, current.due_at or now)
        ended += current.status != ACTIVE
    setup.elapsed = _timer() - start  # type: ignore[attr-defined]
    return {"leads": len(enrollments), "advance_calls": calls, "emails": emails, "ended": ended}


def engine_render(setup: Setup) -> dict[str, int]:
    from leadflow.domain.rendering import EmailRenderer
    from leadflow.services.nurture import _personal

    enrollments = setup.enrollments()
    sequence, messaging, segments = setup.sequence, setup.messaging, setup.segments
    renderer = EmailRenderer(setup.workspace.templates)
    tokens = TokenIssuer(lambda: [b"k" * 32], "https://t.example.com", 30)
    sender = Sender(messaging.from_address, messaging.from_name, messaging.reply_to, messaging.postal_address)
    emails = size = 0
    start = _timer()
    for enrollment, lead in zip(enrollments, setup.views, strict=True):
        outcome = advance(sequence, enrollment, lead, NOW, messaging, segments)
        email = outcome.email
        if email is None:
            continue
        rendered = renderer.render(
            email.template,
            email.subject,
            _personal(lead.profile),
            {"sequence": sequence.id, "step": email.step_id, "variant": email.variant},
            sender,
            tokens.links(lead.lead_id, email.message_id, sequence.id, NOW),
        )
        emails += 1
        size += len(rendered.html) + len(rendered.text)
    setup.elapsed = _timer() - start  # type: ignore[attr-defined]
    return {"leads": len(enrollments), "advance_calls": len(enrollments), "emails": emails, "bytes": size}


# ---------------------------------------------------------------------------- service with fakes


def service(setup: Setup) -> dict[str, int]:
    # rate_limited=False: every send slot asked for is given (this measures the CPU work; the
    # account's send rate is a wait, not work)
    store = InMemoryNurtureStore(setup.profiles, rate_limited=False)
    clock = FakeClock(NOW)
    sender = FakeEmailSender()
    nurture = NurtureService(
        workspace=setup.workspace,
        store=store,
        sender=sender,
        tokens=TokenIssuer(lambda: [b"k" * 32], "https://t.example.com", 30),
        due_now=InMemoryDueNowQueue(),
        clock=clock,
        address_key=AddressHasher(lambda: b"test-suppression-key"),
    )
    nurture.workers = 1  # the fakes do no I/O for threads to overlap: this measures the logic's CPU
    for enrollment in setup.enrollments():
        store.put_enrollment(enrollment, 0)
    pairs = list(store.enrollments)
    processed = 0
    outcomes: dict[str, int] = {}
    start = _timer()
    waves: dict[str, int] = {}
    for wave in ("send", "end"):
        began = _timer()
        if wave == "end":
            clock.current = NOW + timedelta(days=7, minutes=1)
        for first in range(0, len(pairs), PAGE):
            result = nurture.process(pairs[first : first + PAGE])
            processed += result.processed
            for key, n in result.outcomes.items():
                outcomes[f"{wave}:{key}"] = outcomes.get(f"{wave}:{key}", 0) + n
        waves[f"{wave}_wave_leads_per_s"] = round(len(pairs) / (_timer() - began))
    setup.elapsed = _timer() - start  # type: ignore[attr-defined]
    return {"leads": len(pairs), "advance_calls": processed, "emails": len(sender.sent), **outcomes, **waves}


def broadcast(setup: Setup) -> dict[str, int]:
    """What the million-lead campaign runs per lead: a broadcast part (``broadcast_part`` with
    ``first_step``) over the scanned profiles: segment test, the lead's enrollment and mail log
    looked at, the first step (gates, render, claim, send), the enrollment held by the mail log.
    The end of the wait costs nothing for those who do not react (their enrollments are not read
    or written again), so this is the whole wave."""
    store = InMemoryNurtureStore(setup.profiles, rate_limited=False)
    nurture = NurtureService(
        workspace=setup.workspace,
        store=store,
        sender=FakeEmailSender(),
        tokens=TokenIssuer(lambda: [b"k" * 32], "https://t.example.com", 30),
        due_now=InMemoryDueNowQueue(),
        clock=FakeClock(NOW),
        address_key=AddressHasher(lambda: b"test-suppression-key"),
    )
    nurture.workers = 1
    nurture.current(SEQUENCE)  # the sequence's version is registered once per warm function, not per lead
    start = _timer()
    counts, cursor = nurture.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    setup.elapsed = _timer() - start  # type: ignore[attr-defined]
    assert cursor is None and counts.get("held") == len(setup.profiles), counts
    return {"leads": len(setup.profiles), "advance_calls": counts.get("enrolled", 0), **counts}


SCENARIOS: dict[str, tuple[Callable[[Setup], dict[str, int]], str]] = {
    "engine_wave": (engine_wave, "advance() for the broadcast wave: gates, message id, on to the wait"),
    "engine_campaign": (engine_campaign, "advance() through the whole campaign (5%/40%/40% react), to the end"),
    "engine_render": (engine_render, "engine_wave + rendering the email with signed links"),
    "service": (service, "NurtureService.process, pages of 200, in-memory fakes: send wave + end wave"),
    "broadcast": (broadcast, "NurtureService.broadcast_part: the campaign's wave, held by the mail logs"),
}


# ---------------------------------------------------------------------------- measuring


def measure(leads: int, repeat: int, seed: int, only: list[str], cpu: str = "first") -> dict[str, Any]:
    pinned, cpus = pin(cpu)
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows = []
    for name, (scenario, description) in SCENARIOS.items():
        if only and name not in only:
            continue
        times = []
        counts: dict[str, int] = {}
        scenario(Setup(min(leads, 500), seed))  # warm-up: compile conditions and templates
        for _ in range(repeat):
            setup = Setup(leads, seed)
            counts = scenario(setup)
            times.append(setup.elapsed)  # type: ignore[attr-defined]
        median = statistics.median(times)
        rows.append(
            {
                "scenario": name,
                "description": description,
                "median_s": round(median, 4),
                "leads_per_second": round(counts["leads"] / median),
                "advance_calls_per_second": round(counts["advance_calls"] / median),
                "microseconds_per_lead": round(median / counts["leads"] * 1e6, 1),
                "best_s": round(min(times), 4),
                "leads_per_second_best": round(counts["leads"] / min(times)),
                "counts": counts,
                "times_s": [round(t, 4) for t in times],
            }
        )
    return {
        "leads": leads,
        "repeat": repeat,
        "pinned_cpu": pinned,
        "cpus": cpus,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "goal_leads_per_second": GOAL_PER_SECOND,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "rows": rows,
    }


def text(report: dict[str, Any]) -> str:
    if report["pinned_cpu"] is not None:
        pinned = f"pinned to CPU {report['pinned_cpu']}"
    else:
        cpus = report.get("cpus")
        pinned = f"not pinned (CPUs {','.join(map(str, cpus))})" if cpus else "not pinned"
    out = [
        f"nurture step logic: {report['leads']:,} leads through {SEQUENCE}, median of {report['repeat']} runs "
        f"(Python {report['python']}, {report['machine']}, {pinned}; {report.get('clock', 'wall')} time)",
        f"finished {report['finished_utc']} UTC; load average (1, 5, 15 min) before "
        f"{' '.join(map(str, report['load_before']))}, after {' '.join(map(str, report['load_after']))}",
        f"{'scenario':<16} {'leads/s':>9} {'advance/s':>10} {'µs/lead':>9} {'median s':>9} {'best/s':>9}  what",
    ]
    for row in report["rows"]:
        out.append(
            f"{row['scenario']:<16} {row['leads_per_second']:>9,} {row['advance_calls_per_second']:>10,}"
            f" {row['microseconds_per_lead']:>9} {row['median_s']:>9} {row['leads_per_second_best']:>9,}"
            f"  {row['description']}"
        )
    for row in report["rows"]:
        out.append(f"  {row['scenario']}: {row['counts']}")
    for name in ("engine_wave", "service", "broadcast"):
        row = next((r for r in report["rows"] if r["scenario"] == name), None)
        if row is not None:
            met = "met" if row["leads_per_second"] >= GOAL_PER_SECOND else "MISSED"
            out.append(
                f"goal ({name}): >= {GOAL_PER_SECOND:,} leads/s on one core: {met} ({row['leads_per_second']:,})"
            )
    return "\n".join(out)


_timer = time.perf_counter
"""The clock of every timed pass: wall time (the default) or the process's CPU time (``--clock cpu``)."""


def main() -> int:
    global _timer  # noqa: PLW0603 - chosen once, before anything is timed
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scenario", action="append", default=[], choices=sorted(SCENARIOS))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument(
        "--cpu",
        default="first",
        help="the CPU to pin to (a number), 'first' (the default: the lowest this process may use) "
        "or 'all' (not pinned)",
    )
    args = parser.parse_args()
    if args.cpu not in ("first", "all") and not args.cpu.isdigit():
        parser.error("--cpu takes a CPU number, 'first' or 'all'")
    _timer = time.process_time if args.clock == "cpu" else time.perf_counter
    report = measure(args.leads, args.repeat, args.seed, args.scenario, args.cpu)
    report["clock"] = args.clock
    print(json.dumps(report, indent=1) if args.json else text(report))
    wave = next((r for r in report["rows"] if r["scenario"] == "engine_wave"), None)
    return 0 if wave is None or wave["leads_per_second"] >= GOAL_PER_SECOND else 1


if __name__ == "__main__":
    sys.exit(main())
