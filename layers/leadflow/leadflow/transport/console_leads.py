"""The console's lead list, sequences, hand-offs and forms pages.

Leads (``/console/leads``): the newest leads, or those of a segment, a tag or a stage, 50 a page
with a link to the next (read through the same index and cursor as ``GET /api/v1/leads``: every
lead can be reached, not only the newest); an address typed whole finds its lead.

Sequences (``/console/sequences``): each sequence of the workspace with its status, triggers and
steps, and its figures over the last 30 days (enrolled, sent, unique opens and clicks with their
rates, unsubscribes, leads held back), from the sequence reports; the Reports page has the rest.

Hand-offs (``/console/handoffs``): the open hand-offs the SLA watches, the soonest next SLA step first
(overdue ones marked), and the last 30 days per owner and team (the hand-offs report).

Forms (``/console/forms``): each workspace form with its hosted page, the snippet that embeds it on
another site (and the sites allowed to), and its last 30 days (the forms report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from markupsafe import Markup

from leadflow.domain.errors import BadCursor, SegmentNotFound
from leadflow.domain.roles import Action
from leadflow.domain.sequence_reports import held_back
from leadflow.transport.console_actions import TAG

if TYPE_CHECKING:
    from leadflow.transport.console import Console, Request

LEADS_PAGE = 50


def leads_page(console: Console, request: Request, stages: tuple[str, ...]) -> str:
    console.require(request, Action.READ)
    query = request.query
    email = query.get("email", "").strip()[:320]
    stage = query.get("stage", "") if query.get("stage", "") in stages else ""
    tag = query.get("tag", "").strip().lower()[:64]
    segment = query.get("segment", "")
    audience = console.parts.audience()
    segments = [s.id for s in audience.workspace.segments.segments]
    if tag and not TAG.fullmatch(tag):
        raise console.message(request, 400, "Not a tag", "A tag is letters, digits, '_', ':', '.' or '-'.")
    after = None
    if email:
        found = audience.find_by_email(email)
    else:
        try:
            found, after = audience.page(
                segment or None, stage or None, tag or None, LEADS_PAGE, query.get("cursor") or None
            )
        except SegmentNotFound:
            raise console.message(request, 404, "No such segment", segment[:64]) from None
        except BadCursor:
            raise console.message(request, 400, "Not a page of this list", "Start again from the first page.") from None
    filters = {"segment": segment, "tag": tag, "stage": stage}
    first = "/console/leads?" + urlencode({k: v for k, v in filters.items() if v})
    return console.render(
        "leads.html.j2",
        request,
        leads=found,
        email=email,
        segments=segments,
        next_page=f"{first}&{urlencode({'cursor': after})}" if after else None,
        first_page=first if query.get("cursor") else None,
        page_size=LEADS_PAGE,
        done=query.get("done", ""),
        **filters,
    )


def sequences_page(console: Console, request: Request) -> str:
    from leadflow.transport.report_models import SequenceReport
    from leadflow.transport.report_routes import default_period

    console.require(request, Action.READ)
    start, end = default_period(None, None, console.parts.now().date())
    reports = console.parts.reports()
    figures: dict[str, dict[str, Any]] = {}
    for sequence_id in reports.workspace.sequences:
        try:
            report = SequenceReport.model_validate(reports.sequence(sequence_id, start, end))
        except KeyError:  # nothing counted for a sequence the workspace no longer has
            continue
        counts = report.totals.counts.model_dump()
        figures[sequence_id] = {**counts, **report.totals.rates.model_dump(), "held": held_back(counts)}
    return console.render(
        "sequences.html.j2",
        request,
        sequences=console.parts.nurture().overview(),
        figures=figures,
        start=start,
        end=end,
    )


def handoffs_page(console: Console, request: Request) -> str:
    from leadflow.transport.report_charts import CHART_STYLE, table_section
    from leadflow.transport.report_routes import default_period

    console.require(request, Action.READ)
    now = console.parts.now()
    start, end = default_period(None, None, now.date())
    figures = Markup(table_section(console.parts.reports(), "handoffs", start, end))  # noqa: S704 - report_charts escapes every value  # nosec B704
    waiting = console.parts.handoffs().store.waiting_handoffs(100)
    return console.render(
        "handoffs.html.j2",
        request,
        waiting=waiting,
        now=now.isoformat(),
        figures=figures,
        style=Markup(CHART_STYLE),  # noqa: S704 - report_charts' own constant rule  # nosec B704
        start=start,
        end=end,
    )


def forms_page(console: Console, request: Request) -> str:
    from leadflow.transport.landing import embed_snippet
    from leadflow.transport.report_models import FormsReport
    from leadflow.transport.report_routes import default_period

    console.require(request, Action.READ)
    start, end = default_period(None, None, console.parts.now().date())
    reports = console.parts.reports()
    figures = {f.form_id: f for f in FormsReport.model_validate(reports.forms(start, end)).forms}
    workspace = reports.workspace
    forms = [
        {
            "form": workspace.form(form_id),
            "page": f"{request.origin}/f/{form_id}",
            "snippet": embed_snippet(request.origin, form_id),
            "figures": figures.get(form_id),
        }
        for form_id in workspace.form_ids()
    ]
    return console.render("forms.html.j2", request, forms=forms, start=start, end=end)
