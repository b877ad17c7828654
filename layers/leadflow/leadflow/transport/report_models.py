"""Response models of ``/api/v1/reports/...`` (the OpenAPI document's schemas), and their CSV."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leadflow.domain.reporting import FUNNEL_STAGES, REPORTED_STAGES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StageCounts(_Strict):
    """Leads that reached each stage (each lead once per stage)."""

    lead: int
    mql: int
    sql: int
    opportunity: int
    customer: int
    recycled: int
    disqualified: int


class Conversion(_Strict):
    """Share of leads of one stage that reached the next (null: none reached the first)."""

    lead_to_mql: float | None
    mql_to_sql: float | None
    sql_to_opportunity: float | None
    opportunity_to_customer: float | None
    lead_to_customer: float | None


class Timing(_Strict):
    """Hours from creation to a stage: percentiles interpolated in an hour histogram."""

    count: int = Field(description="Leads timed.")
    p50_hours: float | None = Field(description="Median.")
    p75_hours: float | None
    p90_hours: float | None
    p95_hours: float | None


class FunnelCounts(_Strict):
    created: int = Field(description="Leads created.")
    reached: StageCounts
    conversion: Conversion
    time_to_mql: Timing
    time_to_sql: Timing


class FunnelRow(FunnelCounts):
    key: str = Field(description="The dimension's value; (none) when the lead had none.")


class FunnelDay(_Strict):
    day: str
    created: int
    reached: StageCounts


class _PeriodReport(_Strict):
    start: str = Field(alias="from", description="First day (UTC), inclusive.")
    end: str = Field(alias="to", description="Last day (UTC), inclusive.")

    def json_body(self) -> str:
        return self.model_dump_json(by_alias=True)


class FunnelReport(_PeriodReport):
    by: Literal["source", "medium", "campaign", "form", "channel", "ref"]
    view: Literal["events", "cohort"] = Field(
        description="events: what happened in the period; cohort: the leads created in it, followed on."
    )
    totals: FunnelCounts
    rows: list[FunnelRow]
    days: list[FunnelDay]


def _flat(counts: Mapping[str, Any]) -> list[Any]:
    reached = counts["reached"]
    conversion = counts["conversion"]
    timing = [counts[t][f"p{q}_hours"] for t in ("time_to_mql", "time_to_sql") for q in (50, 90)]
    return [counts["created"], *(reached[s] for s in REPORTED_STAGES), *conversion.values(), *timing]


FUNNEL_COLUMNS = [
    "created",
    *REPORTED_STAGES,
    *(f"{a}_to_{b}" for a, b in itertools.pairwise(FUNNEL_STAGES)),
    "lead_to_customer",
    "time_to_mql_p50_hours",
    "time_to_mql_p90_hours",
    "time_to_sql_p50_hours",
    "time_to_sql_p90_hours",
]


def to_csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else _safe(v) for v in row])
    return out.getvalue()


def _safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def funnel_csv(report: FunnelReport) -> str:
    """One line per key, then the totals (key ``(total)``)."""
    data = report.model_dump()
    lines = [[row["key"], *_flat(row)] for row in data["rows"]]
    lines.append(["(total)", *_flat(data["totals"])])
    return to_csv([report.by, *FUNNEL_COLUMNS], lines)


# ---------------------------------------------------------------------------- sequences
class SequenceCounts(_Strict):
    """What happened (sent, engagement by the day the emails were sent; the rest by the day it happened)."""

    enrolled: int
    sent: int
    delivered: int
    unique_opens: int
    unique_clicks: int = Field(description="A click counts as an open too.")
    unsubscribes: int
    bounces: int
    complaints: int
    skipped_no_consent: int = Field(description="Held back: no (confirmed) consent.")
    skipped_suppressed: int
    skipped_unsubscribed: int
    skipped_capped: int = Field(description="Held back by the frequency cap (each time).")
    skipped_quiet_hours: int = Field(description="Held back until quiet hours end (each time).")
    goal_reached: int
    exits: int = Field(description="Left early: unsubscribed, suppressed, unconfirmed, removed by an action.")


class SequenceRates(_Strict):
    """Over emails sent (null when none was sent)."""

    delivery_rate: float | None
    open_rate: float | None
    click_rate: float | None
    unsubscribe_rate: float | None
    bounce_rate: float | None
    complaint_rate: float | None


class SequenceFigures(_Strict):
    counts: SequenceCounts
    rates: SequenceRates


class SequenceCell(SequenceFigures):
    version: int = Field(description="The sequence version (0: an email older than the mail log keeps).")
    step: str
    variant: str = Field(description="The A/B variant; - where none applies.")


class FlowStep(SequenceFigures):
    step: str


class AbArm(_Strict):
    variant: str
    sent: int
    successes: int = Field(description="Unique clicks (or opens, per the sequence's variants.metric).")
    rate: float


class AbComparison(_Strict):
    against: str
    z: float
    p_value: float
    significant: bool


class AbTest(_Strict):
    version: int
    step: str
    metric: Literal["click", "open"]
    confidence: float
    variants: list[AbArm]
    leader: str
    winner: str | None = Field(description="null until a variant wins at the sequence's confidence.")
    verdict: str = Field(description='"<variant> wins" or "not yet".')
    tests: list[AbComparison] = Field(description="The leader against each other variant (two-sided z-test).")


class SequenceReport(_PeriodReport):
    sequence_id: str
    totals: SequenceFigures
    steps: list[SequenceCell]
    flow: list[FlowStep] = Field(description="Per step, all versions and variants, in the sequence's order.")
    ab_tests: list[AbTest]


def sequence_csv(report: SequenceReport) -> str:
    """One line per version, step and variant: every count, then every rate."""
    counts = list(SequenceCounts.model_fields)
    rates = list(SequenceRates.model_fields)
    lines = [
        [
            cell.version,
            cell.step,
            cell.variant,
            *(getattr(cell.counts, c) for c in counts),
            *(getattr(cell.rates, r) for r in rates),
        ]
        for cell in report.steps
    ]
    return to_csv(["version", "step", "variant", *counts, *rates], lines)


# ---------------------------------------------------------------------------- forms, reps, hand-offs
class FormRow(_Strict):
    form_id: str
    views: int = Field(description="Tracked views of the pages the form was posted from in the period.")
    submissions: int
    new_leads: int
    spam: int
    conversion_rate: float | None = Field(description="Submissions over views (null without tracked views).")
    pages: list[str] = Field(description="The pages (host/path) it was posted from.")


class PageRow(_Strict):
    page: str = Field(description="host/path; (none) for posts without a page.")
    views: int
    submissions: int
    new_leads: int
    conversion_rate: float | None


class FormsReport(_PeriodReport):
    forms: list[FormRow]
    pages: list[PageRow]


class RepRow(_Strict):
    ref: str = Field(description="The share code; (none) for leads without one.")
    name: str | None = Field(description="From referrers.yaml; null for an unknown code.")
    kind: str | None
    leads: int
    mql: int
    sql: int
    won: int = Field(description="Reached customer.")
    lead_to_mql: float | None
    mql_to_sql: float | None


class RepsReport(_PeriodReport):
    view: Literal["events", "cohort"]
    reps: list[RepRow]


class HandoffRow(_Strict):
    name: str = Field(description="The owner's id or the team's; (queue) when nobody was assigned.")
    assigned: int
    accepted: int
    rejected: int
    opportunity: int
    won: int
    lost: int
    rejection_reasons: dict[str, int]
    acceptance_rate: float | None
    win_rate: float | None
    time_to_accept: Timing


class HandoffsReport(_PeriodReport):
    owners: list[HandoffRow]
    teams: list[HandoffRow]


def forms_csv(report: FormsReport) -> str:
    """One line per form, then one per page (``kind`` tells them apart)."""
    lines = [["form", f.form_id, f.views, f.submissions, f.new_leads, f.spam, f.conversion_rate] for f in report.forms]
    lines += [["page", p.page, p.views, p.submissions, p.new_leads, "", p.conversion_rate] for p in report.pages]
    return to_csv(["kind", "id", "views", "submissions", "new_leads", "spam", "conversion_rate"], lines)


def reps_csv(report: RepsReport) -> str:
    columns = list(RepRow.model_fields)
    return to_csv(columns, ([getattr(r, c) for c in columns] for r in report.reps))


def handoffs_csv(report: HandoffsReport) -> str:
    """One line per owner, then per team; reasons as ``reason=n`` joined by ``;``."""
    header = ["kind", "name", "assigned", "accepted", "rejected", "opportunity", "won", "lost"]
    header += ["acceptance_rate", "win_rate", "time_to_accept_p50_hours", "rejection_reasons"]
    lines = [
        [
            kind,
            r.name,
            r.assigned,
            r.accepted,
            r.rejected,
            r.opportunity,
            r.won,
            r.lost,
            r.acceptance_rate,
            r.win_rate,
            r.time_to_accept.p50_hours,
            ";".join(f"{k}={v}" for k, v in r.rejection_reasons.items()),
        ]
        for kind, rows in (("owner", report.owners), ("team", report.teams))
        for r in rows
    ]
    return to_csv(header, lines)


TABLE_REPORTS: dict[str, tuple[type[_PeriodReport], Callable[[Any], str]]] = {
    "forms": (FormsReport, forms_csv),
    "reps": (RepsReport, reps_csv),
    "handoffs": (HandoffsReport, handoffs_csv),
}
"""The reports that are tables (``ReportingService`` method name -> API model, CSV): the API's
answers, the console's and ``/_dev/reports``' sections and ``leadflow report forms|reps|handoffs``."""
