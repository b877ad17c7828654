"""``/api/v1/reports/...``: the admin API's report routes (a Router the lead API includes).

JSON by default; ``Accept: text/csv`` gets the same report as CSV. A bad period is ``400``,
a bad parameter ``422`` (the resolver's validation), never ``5xx``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from leadflow.domain.report_views import BadPeriod
from leadflow.transport.api_contract import error_answer, responses
from leadflow.transport.report_models import (
    FormsReport,
    FunnelReport,
    HandoffsReport,
    RepsReport,
    SequenceReport,
    forms_csv,
    funnel_csv,
    handoffs_csv,
    reps_csv,
    sequence_csv,
)

if TYPE_CHECKING:
    from leadflow.ports.clock import Clock
    from leadflow.services.reporting import ReportingService

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
DAY = r"^\d{4}-\d{2}-\d{2}$"
DATE: dict[str, Any] = {"format": "date"}  # a calendar day (2026-02-30 is a 400)
DEFAULT_DAYS = 30
CSV = "text/csv; charset=utf-8"


def reports() -> ReportingService:
    """The reporting service: the including app puts its builder in the context (``reports``)."""
    build: Callable[[], ReportingService] = router.context["reports"]
    return build()


def today() -> date:
    """Today (UTC) on the including app's clock (``clock`` in the context: a builder)."""
    clock: Callable[[], Clock] = router.context["clock"]
    return clock().now().date()


def _json_and_csv(model: type[BaseModel], what: str, errors: dict[int, str] | None = None) -> dict[int, Any]:
    return responses(
        200,
        model,
        f"{what} (JSON, or CSV with Accept: text/csv)",
        content={"application/json": {"model": model}, "text/csv": {"schema": {"type": "string"}}},
        errors={400: "from / to are not days, are reversed, or span more than 366 days", **(errors or {})},
    )


def wants_csv() -> bool:
    accept = str(router.current_event.headers.get("accept") or "")
    return bool(re.search(r"(^|[,\s])text/csv", accept, re.IGNORECASE))


def default_period(start: str | None, end: str | None, today: date) -> tuple[str, str]:
    return start or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), end or today.isoformat()


StartDay = Annotated[
    str | None, Query(alias="from", pattern=DAY, json_schema_extra=DATE, description="First day (default: 30 days ago)")
]
EndDay = Annotated[
    str | None, Query(alias="to", pattern=DAY, json_schema_extra=DATE, description="Last day (default: today, UTC)")
]


def _report(
    model: Any,
    build: Callable[[str, str], dict[str, Any]],
    to_csv: Callable[[Any], str],
    start: str | None,
    end: str | None,
) -> Response[str]:
    """Build a report of the period (default: the last 30 days), as JSON or CSV; 400 for a bad
    period, 404 when ``build`` finds no such thing (KeyError)."""
    from leadflow.transport.api_contract import ErrorBody

    try:
        report = model.model_validate(build(*default_period(start, end, today())))
    except BadPeriod as error:
        return error_answer(error)
    except KeyError:
        return Response(404, "application/json", ErrorBody(message="No such sequence.").model_dump_json())
    if wants_csv():
        return Response(200, CSV, to_csv(report))
    return Response(200, "application/json", report.json_body())


@router.get(
    "/api/v1/reports/funnel",
    summary="The funnel: leads created and reaching each stage, by source, medium, campaign, form, channel or ref",
    responses=_json_and_csv(FunnelReport, "The funnel of the period"),
)
def funnel(
    start: StartDay = None,
    end: EndDay = None,
    by: Annotated[Literal["source", "medium", "campaign", "form", "channel", "ref"], Query()] = "source",
    view: Annotated[Literal["events", "cohort"], Query()] = "events",
) -> Response[str]:
    return _report(FunnelReport, lambda a, b: reports().funnel(a, b, by, view), funnel_csv, start, end)


@router.get(
    "/api/v1/reports/sequences/<sequence_id>",
    summary="A sequence: per version, step and A/B variant, what was sent and what leads did; A/B verdicts",
    responses=_json_and_csv(
        SequenceReport, "The sequence's report for the period", {404: "No such sequence, and nothing counted for one"}
    ),
)
def sequence(
    sequence_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")],
    start: StartDay = None,
    end: EndDay = None,
) -> Response[str]:
    return _report(SequenceReport, lambda a, b: reports().sequence(sequence_id, a, b), sequence_csv, start, end)


@router.get(
    "/api/v1/reports/forms",
    summary="Forms and pages: tracked views, submissions, spam, new leads, conversion rate",
    responses=_json_and_csv(FormsReport, "Forms and pages in the period"),
)
def forms(start: StartDay = None, end: EndDay = None) -> Response[str]:
    return _report(FormsReport, lambda a, b: reports().forms(a, b), forms_csv, start, end)


@router.get(
    "/api/v1/reports/reps",
    summary="Reps and partners: leads, MQL, SQL and won per share code",
    responses=_json_and_csv(RepsReport, "Share codes in the period"),
)
def reps(
    start: StartDay = None,
    end: EndDay = None,
    view: Annotated[Literal["events", "cohort"], Query(description="cohort: leads brought in the period")] = "cohort",
) -> Response[str]:
    return _report(RepsReport, lambda a, b: reports().reps(a, b, view), reps_csv, start, end)


@router.get(
    "/api/v1/reports/handoffs",
    summary="Hand-offs per owner and team: assigned, accepted, rejected (reasons), won; time to accept",
    responses=_json_and_csv(HandoffsReport, "Hand-offs in the period"),
)
def handoffs(start: StartDay = None, end: EndDay = None) -> Response[str]:
    return _report(HandoffsReport, lambda a, b: reports().handoffs(a, b), handoffs_csv, start, end)
