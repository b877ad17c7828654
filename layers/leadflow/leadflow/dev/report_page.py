"""``/_dev/reports``: the reports' charts on the local stack (the console's reports page)."""

from __future__ import annotations

from html import escape
from typing import Any

from leadflow.bootstrap.reporting import reporting_for
from leadflow.config.workspace import Workspace
from leadflow.domain.report_views import BadPeriod
from leadflow.transport.report_charts import TABLE_SECTIONS, funnel_section, page, sequence_section, table_section
from leadflow.transport.report_models import FunnelReport, SequenceReport
from leadflow.transport.report_routes import default_period

DIMENSIONS = ("source", "medium", "campaign", "form", "channel", "ref")


def reports_page(stack: Any, args: dict[str, str]) -> str:
    """The page for the query ``args`` (``from``, ``to``, ``by``, ``view``, ``sequence``); a bad
    query answers a short page starting ``<!--400-->``."""
    outputs = stack.outputs
    service = reporting_for(outputs["LeadsTableName"], outputs["ReportsTableName"], Workspace(stack.workspace))
    by = args.get("by") or "source"
    view = args.get("view") or "events"
    if by not in DIMENSIONS or view not in ("events", "cohort"):
        return "<!--400-->" + page(
            "Bad report query", [f"<p>by must be one of {', '.join(DIMENSIONS)}; view events or cohort</p>"]
        )
    start, end = default_period(args.get("from"), args.get("to"), stack.clock.now().date())
    try:
        funnel = FunnelReport.model_validate(service.funnel(start, end, by, view)).model_dump(by_alias=True)
        wanted = [args["sequence"]] if args.get("sequence") else sorted(service.workspace.sequences)
        sections = [_form(start, end, by, view), funnel_section(funnel)]
        for sequence_id in wanted:
            try:
                report = SequenceReport.model_validate(service.sequence(sequence_id, start, end))
            except KeyError:
                continue
            sections.append(sequence_section(report.model_dump(by_alias=True)))
        sections += [table_section(service, kind, start, end) for kind in TABLE_SECTIONS]
    except BadPeriod as error:
        return "<!--400-->" + page("Bad report query", [f"<p>{escape(str(error))}</p>"])
    return page("leadflow reports", sections)


def _form(start: str, end: str, by: str, view: str) -> str:
    """The period and dimension picker (a plain GET form)."""
    options = "".join(f"<option{' selected' if d == by else ''}>{d}</option>" for d in DIMENSIONS)
    views = "".join(f"<option{' selected' if v == view else ''}>{v}</option>" for v in ("events", "cohort"))
    return (
        '<form method="get" action="/_dev/reports">'
        f'<label>from <input name="from" value="{escape(start)}" size="10"></label> '
        f'<label>to <input name="to" value="{escape(end)}" size="10"></label> '
        f'<label>by <select name="by">{options}</select></label> '
        f'<label>view <select name="view">{views}</select></label> <button>Show</button></form>'
        '<p class="muted"><a href="/_dev/">Dev console</a></p>'
    )
