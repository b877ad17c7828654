"""``/api/v1/leads`` writes and lists: a Router the lead API includes.

``POST /api/v1/leads`` (create or merge), ``PATCH /api/v1/leads/{lead_id}``,
``POST|DELETE /api/v1/leads/{lead_id}/tags/{tag}``, ``GET /api/v1/leads`` (by address, or paged
by segment / stage / tag) and ``GET /api/v1/leads/export`` (CSV). Every change names who made it
(the caller's IAM principal or JWT subject).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from leadflow.domain.errors import AddressTaken, BadCursor, IdempotencyConflict, InvalidSubmission, SegmentNotFound
from leadflow.services.audience import AudienceService
from leadflow.services.segments import SegmentService
from leadflow.transport.api_contract import ValidationIssue, ValidationProblem, error_answer, responses
from leadflow.transport.api_models import LeadList, LeadSummary
from leadflow.transport.audience_models import LeadPatch, LeadWrite, SegmentsView, SegmentView
from leadflow.transport.errors import answer_for

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
CSV = "text/csv; charset=utf-8"
LEAD_ID = r"^[A-Za-z0-9_-]{1,64}$"
TAG = r"^[a-z0-9][a-z0-9_:.-]{0,63}$"
SEGMENT_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
STAGE = r"^[a-z][a-z0-9_]{0,31}$"
EXPORT_ROWS = 5000
"""Rows per export answer (about 1 MB): a bigger list comes in pages (``Link: rel=next``)."""

LeadId = Annotated[str, Path(min_length=1, max_length=64, pattern=LEAD_ID)]
Segment = Annotated[str | None, Query(pattern=SEGMENT_ID, description="Leads in this segment (segments.yaml id)")]
Stage = Annotated[str | None, Query(pattern=STAGE, description="Leads in this lifecycle stage")]
Tag = Annotated[str | None, Query(pattern=TAG, description="Leads with this tag")]
Cursor = Annotated[str | None, Query(max_length=2000, description="next_cursor of the previous page")]


def audience() -> AudienceService:
    """The audience service: the including app puts its builder in the context (``audience``)."""
    build: Callable[[], AudienceService] = router.context["audience"]
    return build()


def segments() -> SegmentService:
    """The segment service: the including app puts its builder in the context (``segments``)."""
    build: Callable[[], SegmentService] = router.context["segments"]
    return build()


def actor(event: dict[str, Any] | None = None) -> str:
    """Who is asking (the IAM principal's last path part, or the JWT subject): for the audit trail."""
    raw = event if event is not None else router.current_event.raw_event
    authorizer = raw.get("requestContext", {}).get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    return str(iam.get("userArn") or iam.get("callerId") or claims.get("sub") or "admin").rsplit("/", 1)[-1]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(status, "application/json", body.model_dump_json(), headers=headers)


@router.exception_handler(InvalidSubmission)  # type: ignore[untyped-decorator]
def invalid_lead(error: InvalidSubmission) -> Response[str]:
    issues = [
        ValidationIssue(loc=["body", *e.field.split(".")], type="value_error", msg=e.message) for e in error.errors
    ]
    status = answer_for(error).status  # 422, as the errors table says; the body lists the fields
    return _json(status, ValidationProblem(statusCode=status, detail=issues))


@router.exception_handler([AddressTaken, IdempotencyConflict, SegmentNotFound, BadCursor])  # type: ignore[untyped-decorator]
def domain_error(error: Exception) -> Response[str]:
    """Status and message as the errors table (``transport/errors.py``) says."""
    return error_answer(error)


@router.post(
    "/api/v1/leads",
    summary="Create a lead, or merge into the lead of that address (the rules of capture)",
    responses=responses(
        201,
        LeadSummary,
        "Created: the new lead",
        more={200: ("Merged into the lead of that address: the lead now", LeadSummary)},
        errors={409: "The Idempotency-Key was used for another request"},
        body=True,
    ),
)
def create_lead(body: LeadWrite) -> Response[str]:
    key = router.current_event.headers.get("idempotency-key")
    consent = body.consent.stated() if body.consent else None
    lead, created = audience().save(body.profile(), body.custom, consent, actor(), key[:128] if key else None)
    return _json(201 if created else 200, LeadSummary.model_validate(lead))


@router.patch(
    "/api/v1/leads/<lead_id>",
    summary="Change a lead's fields: a value sets, null clears (merge rules; the address moves its guard)",
    responses=responses(
        200,
        LeadSummary,
        "The lead now",
        errors={404: "No such lead", 409: "Another lead has that address"},
        body=True,
    ),
)
def update_lead(lead_id: LeadId, body: LeadPatch) -> LeadSummary:
    return LeadSummary.model_validate(audience().update(lead_id, body.profile(), body.custom, actor()))


@router.post(
    "/api/v1/leads/<lead_id>/tags/<tag>",
    summary="Tag a lead (nothing changes when it has the tag)",
    responses=responses(200, LeadSummary, "The lead now", errors={404: "No such lead"}),
)
def add_tag(lead_id: LeadId, tag: Annotated[str, Path(pattern=TAG)]) -> LeadSummary:
    return LeadSummary.model_validate(audience().tag(lead_id, tag, True, actor()))


@router.delete(
    "/api/v1/leads/<lead_id>/tags/<tag>",
    summary="Remove a tag from a lead (nothing changes when it does not have it)",
    responses=responses(200, LeadSummary, "The lead now", errors={404: "No such lead"}),
)
def remove_tag(lead_id: LeadId, tag: Annotated[str, Path(pattern=TAG)]) -> LeadSummary:
    return LeadSummary.model_validate(audience().tag(lead_id, tag, False, actor()))


@router.get(
    "/api/v1/leads",
    summary="Find a lead by address, or page through the leads of a segment, stage or tag (else the newest)",
    responses=responses(
        200,
        LeadList,
        "The lead with that address (none or one), or a page of leads and the next page's cursor",
        errors={400: "A cursor this list did not hand out", 404: "No such segment"},
    ),
)
def find_leads(  # noqa: PLR0917 - the list's query parameters
    email: Annotated[str | None, Query(max_length=320)] = None,
    segment: Segment = None,
    stage: Stage = None,
    tag: Tag = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> Response[str]:
    service = audience()
    if email is not None:
        return _json(200, LeadList.model_validate({"leads": service.find_by_email(email)}))
    leads, after = service.page(segment, stage, tag, limit, cursor)
    return _json(200, LeadList.model_validate({"leads": leads, "next_cursor": after}))


@router.get(
    "/api/v1/leads/export",
    summary="The leads of a segment, stage or tag (else every lead) as CSV, 5,000 rows per page",
    responses=responses(
        200,
        None,
        "CSV: a header row, then a row per lead; a Link header (rel=next) names the next page",
        content={"text/csv": {"schema": {"type": "string"}}},
        errors={400: "A cursor this list did not hand out", 404: "No such segment"},
    ),
)
def export_leads(segment: Segment = None, stage: Stage = None, tag: Tag = None, cursor: Cursor = None) -> Response[str]:
    body, after = audience().export_page(segment, stage, tag, EXPORT_ROWS, cursor)
    headers = {"Content-Disposition": f'attachment; filename="leads-{segment or stage or tag or "all"}.csv"'}
    if after is not None:
        query = {k: v for k, v in {"segment": segment, "stage": stage, "tag": tag, "cursor": after}.items() if v}
        headers["Link"] = f'</api/v1/leads/export?{urlencode(query)}>; rel="next"'
    return Response(200, CSV, body, headers=headers)


SegmentId = Annotated[str, Path(min_length=1, max_length=64, pattern=SEGMENT_ID)]


@router.get(
    "/api/v1/segments",
    summary="The segments of segments.yaml with their rules and member counts",
    responses=responses(200, SegmentsView, "Every segment"),
)
def list_segments() -> SegmentsView:
    return SegmentsView.model_validate({"segments": segments().overview()})


@router.get(
    "/api/v1/segments/<segment_id>",
    summary="A segment: its rule and member count",
    responses=responses(200, SegmentView, "The segment", errors={404: "No such segment"}),
)
def get_segment(segment_id: SegmentId) -> SegmentView:
    return SegmentView.model_validate(segments().get(segment_id))


@router.get(
    "/api/v1/segments/<segment_id>/members",
    summary="The leads in a segment, a page at a time (through the membership index)",
    responses=responses(
        200,
        LeadList,
        "A page of members and the next page's cursor",
        errors={400: "A cursor this list did not hand out", 404: "No such segment"},
    ),
)
def segment_members(
    segment_id: SegmentId, cursor: Cursor = None, limit: Annotated[int, Query(ge=1, le=100)] = 25
) -> LeadList:
    leads, after = audience().page(segment_id, None, None, limit, cursor)
    return LeadList.model_validate({"leads": leads, "next_cursor": after})
