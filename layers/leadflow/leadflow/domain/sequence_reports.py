"""Sequence reports: counting what happened to a sequence's emails, and the report and A/B verdicts.

Pure (no AWS, no clock). Counter items (ReportsTable): ``PK=SEQRPT#<sequence_id>``,
``SK=<day>#<version>#<step>#<variant>`` (variant ``-`` for what is not per variant: enrolled,
skips, goals, exits). What the nurture functions did arrives as ``nurture.counted`` events (one
per invocation, counted once by its event id); engagement (opens, clicks from the tracking
pixel and links; bounces, complaints from SES) as activities, each counted once per email (a
marker per email and kind) on the day *the email was sent*, so rates over sent hold for any
period. ``delivered`` is not counted but worked out: sent less bounces (``_row``), as HubSpot
("delivered: emails that did not bounce") and Mailchimp ("successful deliveries") report it. SES's
Delivery events, one per email, are not published: through SNS, SQS and a function they cost
~3.5% of the emails' SES price (docs/benchmarks.md section 6). An email SES rejects as a virus
counts as delivered; one still retried by SES counts as delivered until it bounces.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflow.domain.reporting import MARKER_DAYS, Fact, Key, day_of

NO_VARIANT = "-"
COUNTED = (
    "enrolled",
    "sent",
    "unique_opens",
    "unique_clicks",
    "unsubscribes",
    "bounces",
    "complaints",
    "skipped_no_consent",
    "skipped_suppressed",
    "skipped_unsubscribed",
    "skipped_capped",
    "skipped_quiet_hours",
    "goal_reached",
    "exits",
)
"""What the reports count into their counters."""
METRICS = (*COUNTED[:2], "delivered", *COUNTED[2:])
"""A report row's counts, in order: the counted ones and ``delivered``, worked out (``_row``)."""
RATES = {
    "delivery_rate": "delivered",
    "open_rate": "unique_opens",
    "click_rate": "unique_clicks",
    "unsubscribe_rate": "unsubscribes",
    "bounce_rate": "bounces",
    "complaint_rate": "complaints",
}
ENGAGEMENT = {
    "email_opened": "unique_opens",
    "email_clicked": "unique_clicks",
    "email_bounced": "bounces",
    "email_complained": "complaints",
}


@dataclass(frozen=True)
class SendRecord:
    """One email as the lead's mail log keeps it: sequence, version, step, variant, when."""

    message_id: str
    sequence_id: str
    version: int
    step_id: str
    variant: str
    at: str


def held_back(counts: Mapping[str, int]) -> int:
    """Emails a sequence held back (every ``skipped_*`` count: no consent, suppressed, unsubscribed,
    the frequency cap, quiet hours)."""
    return sum(n for name, n in counts.items() if name.startswith("skipped_"))


def sends_of(log_sends: Iterable[Mapping[str, Any]]) -> list[SendRecord]:
    """The sequence emails of a mail log (``sends``: ``at``, ``m``, ``s``, ``p``, ``variant``, ``v``)."""
    found = []
    for send in log_sends:
        if send.get("m") and send.get("s") and send.get("p") and send.get("at"):
            found.append(
                SendRecord(
                    str(send["m"]),
                    str(send["s"]),
                    int(send.get("v") or 0),
                    str(send["p"]),
                    str(send.get("variant") or NO_VARIANT),
                    str(send["at"]),
                )
            )
    return found


def latest_send(sends: Iterable[SendRecord], sequence_id: str, at: str) -> SendRecord | None:
    """The lead's last email of the sequence sent at or before ``at`` (what SES feedback is about)."""
    moment = datetime.fromisoformat(at)
    earlier = [s for s in sends if s.sequence_id == sequence_id and datetime.fromisoformat(s.at) <= moment]
    return max(earlier, key=lambda s: s.at) if earlier else None


def sequence_key(sequence_id: str, day: str, version: int, step_id: str, variant: str | None) -> Key:
    return f"SEQRPT#{sequence_id}", f"{day}#{version}#{step_id}#{variant or NO_VARIANT}"


def nurture_counted(event_id: str, at: datetime, counts: Iterable[Sequence[Any]]) -> Fact:
    """A ``nurture.counted`` event: its counts on the day it was published, once (by its event id)."""
    day = day_of(at)
    kept = [
        [str(sequence_id), int(version), str(step_id), str(variant), str(metric), int(n)]
        for sequence_id, version, step_id, variant, metric, n in counts
        if metric in COUNTED and int(n)
    ]
    # The marker keeps the counts it stands for: `leadflow report verify` recomputes the counters from them.
    fact = Fact(
        (f"EVT#{event_id}", "EVT"), {"at": at.isoformat(), "day": day, "counts": kept, "expires_at": _expires(at)}
    )
    fact.increments = counted_increments(day, kept)
    return fact


def counted_increments(day: str, counts: Iterable[Sequence[Any]]) -> dict[Key, dict[str, int]]:
    """The counters a ``nurture.counted`` marker's counts stand for (also how ``verify`` recomputes them)."""
    increments: dict[Key, dict[str, int]] = {}
    for sequence_id, version, step_id, variant, metric, n in counts:
        fields = increments.setdefault(
            sequence_key(str(sequence_id), day, int(version), str(step_id), str(variant)), {}
        )
        fields[str(metric)] = fields.get(str(metric), 0) + int(n)
    return increments


def email_engaged(kind: str, email_id: str, send: SendRecord, at: datetime) -> Fact:
    """An engagement with one email (``kind``: an ``ENGAGEMENT`` activity type), once per email and kind.

    Args:
        kind: ``email_opened``, ``email_clicked``, ``email_bounced``, ``email_complained``.
        email_id: the email's id (leadflow's message id for opens and clicks, SES's for the rest).
        send: the email as the mail log recorded it (its day, version, step and variant).
        at: when it happened.
    """
    metric = ENGAGEMENT[kind]
    pk, sk = sequence_key(send.sequence_id, day_of(send.at), send.version, send.step_id, send.variant)
    # The marker names the counter it added to (the mail log that placed it keeps 7 days): `verify` reads it.
    fact = Fact((f"MSGRPT#{email_id}", metric), {"at": at.isoformat(), "pk": pk, "sk": sk, "expires_at": _expires(at)})
    fact.add((pk, sk), metric)
    return fact


def _expires(at: datetime) -> int:
    return int(at.timestamp()) + MARKER_DAYS * 86_400


# ---------------------------------------------------------------------------- the report
def _rates(counts: Mapping[str, int]) -> dict[str, float | None]:
    sent = counts.get("sent", 0)
    return {name: (round(counts.get(metric, 0) / sent, 4) if sent else None) for name, metric in RATES.items()}


def _row(counts: Mapping[str, int]) -> dict[str, Any]:
    counted = {metric: int(counts.get(metric, 0)) for metric in COUNTED}
    delivered = max(0, counted["sent"] - counted["bounces"])  # derived (module docstring), never stored
    full = {metric: delivered if metric == "delivered" else counted[metric] for metric in METRICS}
    return {"counts": full, "rates": _rates(full)}


def two_proportion_z(successes_a: int, total_a: int, successes_b: int, total_b: int) -> tuple[float, float]:
    """A two-sided two-proportion z-test (pooled): ``(z, p_value)``; ``(0, 1)`` when undefined."""
    if not total_a or not total_b:
        return 0.0, 1.0
    pooled = (successes_a + successes_b) / (total_a + total_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if spread == 0:
        return 0.0, 1.0
    z = (successes_a / total_a - successes_b / total_b) / spread
    return z, math.erfc(abs(z) / math.sqrt(2))


def ab_verdict(arms: Mapping[str, tuple[int, int]], confidence: float) -> dict[str, Any]:
    """Which variant wins: the best rate, if a z-test against every other variant is significant
    (Bonferroni: each at ``(1 - confidence) / (arms - 1)``); else "not yet".

    Args:
        arms: variant -> (successes, sent).
        confidence: e.g. 0.95.
    """
    rates = {v: (s / n if n else 0.0) for v, (s, n) in arms.items()}
    ordered = sorted(arms, key=lambda v: (-rates[v], v))
    best, others = ordered[0], ordered[1:]
    alpha = (1 - confidence) / max(len(others), 1)
    tests = []
    for other in others:
        z, p = two_proportion_z(*arms[best], *arms[other])
        tests.append({"against": other, "z": round(z, 4), "p_value": round(p, 6), "significant": p < alpha})
    won = bool(tests) and all(t["significant"] for t in tests)
    return {
        "winner": best if won else None,
        "verdict": f"{best} wins" if won else "not yet",
        "leader": best,
        "tests": tests,
    }


def sequence_report(
    items: Iterable[Mapping[str, Any]],
    *,
    sequence_id: str,
    start: str,
    end: str,
    step_order: Sequence[str] = (),
    confidence: float = 0.95,
    metric: str = "click",
) -> dict[str, Any]:
    """The report of one sequence over a period from its counter items (``SK=<day>#<version>#<step>#<variant>``).

    Returns:
        ``{sequence_id, from, to, totals, steps: [...], flow: [...], ab_tests: [...]}``: ``steps`` per
        version, step and variant; ``flow`` per step (all versions and variants), in the sequence's
        order; one A/B test per version and email step that sent more than one variant.
    """
    cells: dict[tuple[int, str, str], dict[str, int]] = {}
    for item in items:
        _day, number, step, arm = str(item["SK"]).split("#", 3)
        cell = cells.setdefault((int(number), step, arm), {})
        for name in COUNTED:
            cell[name] = cell.get(name, 0) + int(item.get(name, 0))
    order = {step: i for i, step in enumerate(step_order)}

    def rank(key: tuple[int, str, str]) -> tuple[int, int, str, str]:
        return key[0], order.get(key[1], len(order)), key[1], key[2]

    totals: dict[str, int] = {}
    flow: dict[str, dict[str, int]] = {}
    for (_, step_id, _), cell in cells.items():
        for name, n in cell.items():
            totals[name] = totals.get(name, 0) + n
            per_step = flow.setdefault(step_id, {})
            per_step[name] = per_step.get(name, 0) + n
    success = "unique_clicks" if metric == "click" else "unique_opens"
    tests = []
    by_step: dict[tuple[int, str], dict[str, tuple[int, int]]] = {}
    for (version, step_id, variant), cell in sorted(cells.items(), key=lambda kv: rank(kv[0])):
        if variant != NO_VARIANT and cell.get("sent", 0):
            by_step.setdefault((version, step_id), {})[variant] = (cell.get(success, 0), cell["sent"])
    for (version, step_id), arms in by_step.items():
        if len(arms) < 2:
            continue
        tests.append(
            {
                "version": version,
                "step": step_id,
                "metric": metric,
                "confidence": confidence,
                "variants": [
                    {"variant": v, "sent": n, "successes": s, "rate": round(s / n, 4)} for v, (s, n) in arms.items()
                ],
                **ab_verdict(arms, confidence),
            }
        )
    return {
        "sequence_id": sequence_id,
        "from": start,
        "to": end,
        "totals": _row(totals),
        "steps": [
            {"version": v, "step": s, "variant": a, **_row(cell)}
            for (v, s, a), cell in sorted(cells.items(), key=lambda kv: rank(kv[0]))
        ],
        "flow": [
            {"step": step_id, **_row(flow[step_id])}
            for step_id in sorted(flow, key=lambda s: (order.get(s, len(order)), s))
        ],
        "ab_tests": tests,
    }


def winner_to_promote(
    items: Iterable[Mapping[str, Any]],
    *,
    version: int,
    step_id: str,
    metric: str,
    confidence: float,
    after_seconds: int,
    now: datetime,
) -> str | None:
    """The variant to send to the remaining leads of an A/B step, or None while there is no winner.

    A test starts on the first day it sent; it must have run ``after_seconds`` since the start of
    that day (UTC), and its leader must win at ``confidence`` (``ab_verdict``) on every day's sends.

    Args:
        items: the sequence's counter items (``SK=<day>#<version>#<step>#<variant>``), any period.
    """
    success = "unique_clicks" if metric == "click" else "unique_opens"
    arms: dict[str, list[int]] = {}
    first_day: str | None = None
    for item in items:
        day, number, step, arm = str(item["SK"]).split("#", 3)
        if int(number) != version or step != step_id or arm == NO_VARIANT or not int(item.get("sent", 0)):
            continue
        first_day = day if first_day is None or day < first_day else first_day
        counted = arms.setdefault(arm, [0, 0])
        counted[0] += int(item.get(success, 0))
        counted[1] += int(item["sent"])
    if first_day is None or len(arms) < 2:
        return None
    started = datetime.fromisoformat(first_day).replace(tzinfo=now.tzinfo)
    if (now - started).total_seconds() < after_seconds:
        return None
    winner = ab_verdict({a: (s, n) for a, (s, n) in arms.items()}, confidence)["winner"]
    return str(winner) if winner is not None else None
