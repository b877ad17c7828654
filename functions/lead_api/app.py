"""Admin API: ``/api/v1/...`` on the HTTP API (IAM-authenticated), and its OpenAPI document.

Routes: ``GET /api/v1/leads/{lead_id}`` (profile, attribution, consent, activities),
leads (``leadflow.transport.audience_routes``): ``POST /api/v1/leads``, ``PATCH /api/v1/leads/{lead_id}``,
``POST|DELETE /api/v1/leads/{lead_id}/tags/{tag}``, ``GET /api/v1/leads?email=|segment=&stage=&tag=&cursor=``,
``GET /api/v1/leads/export``, ``GET /api/v1/segments``, ``GET /api/v1/segments/{segment_id}``,
``GET /api/v1/segments/{segment_id}/members``, imports: ``POST /api/v1/imports``,
``GET /api/v1/imports/{import_id}``, ``POST /api/v1/imports/{import_id}/start`` (``leadflow.transport.import_routes``),
``GET /api/v1/leads/{lead_id}/score``, ``GET /api/v1/accounts/{domain}``, nurture:
``GET /api/v1/sequences``, ``GET /api/v1/leads/{lead_id}/enrollments``,
``POST /api/v1/sequences/{sequence_id}/enrollments`` (enroll one lead),
``POST /api/v1/sequences/{sequence_id}/broadcast`` (enroll its segment, asynchronously),
sales hand-off: ``POST /api/v1/leads/{lead_id}/handoff``, ``GET /api/v1/leads/{lead_id}/handoffs``,
GDPR: ``GET /api/v1/leads/{lead_id}/export`` (everything held about the person),
``DELETE /api/v1/leads/{lead_id}`` (erasure),
reports: ``GET /api/v1/reports/...`` (``leadflow.transport.report_routes``),
``GET /api/v1/openapi.json`` and its explorer ``GET /api/v1/docs`` (``leadflow.transport.api_docs``).
"""

import json
import re
from dataclasses import asdict
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow import __version__
from leadflow.bootstrap.admin_api import (
    api_imports,
    api_scoring,
    api_segments,
    audience_service,
    broadcast_starter,
    handoff_store,
    import_engine,
    lead_queries,
)
from leadflow.bootstrap.clock import system_clock
from leadflow.bootstrap.gdpr import gdpr_service
from leadflow.bootstrap.handoff import handoff_service
from leadflow.bootstrap.nurture import nurture_admin_service, publish_nurture_counts
from leadflow.bootstrap.pages import audit_trail
from leadflow.bootstrap.reporting import reporting_service
from leadflow.domain.errors import LeadNotFound, StorageUnavailable
from leadflow.domain.handoff import HandoffDisabled
from leadflow.domain.roles import Action, action_of, person_from_claims
from leadflow.services.gdpr import GdprService
from leadflow.services.leads import LeadQueries
from leadflow.services.nurture import NurtureService
from leadflow.services.scoring import ScoringService
from leadflow.transport.api_contract import (
    SECURITY,
    SECURITY_SCHEMES,
    SERVERS,
    ErrorBody,
    error_answer,
    no_route,
    responses,
    unreadable_body,
)
from leadflow.transport.api_docs import DOCS_PATH
from leadflow.transport.api_docs import router as docs_router
from leadflow.transport.api_models import (
    AccountView,
    BroadcastStarted,
    EnrollmentList,
    EnrollmentView,
    EnrollRequest,
    HandoffList,
    HandoffRequest,
    HandoffView,
    LeadDetail,
    LeadScore,
    SequenceList,
)
from leadflow.transport.audience_routes import actor
from leadflow.transport.audience_routes import router as audience_router
from leadflow.transport.gdpr_models import ErasureView, LeadExport
from leadflow.transport.import_routes import router as import_router
from leadflow.transport.report_routes import router as report_router

logger = Logger()
tracer = Tracer()
CONSOLE_PREFIX = "/console"
# /console/api/v1/... is this API for people (a Cognito ID token, checked by API Gateway's JWT authorizer)
app = APIGatewayHttpResolver(enable_validation=True, strip_prefixes=[CONSOLE_PREFIX])
PUBLIC_PATHS = frozenset({"/api/v1/openapi.json", DOCS_PATH})


def dependencies() -> LeadQueries:
    return lead_queries()


def scoring() -> ScoringService:
    return api_scoring()


ERASURE = re.compile(r"DELETE /api/v1/leads/[^/]+")  # audited by the erasure itself (a keyed hash)


def require_authorizer(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """Defence in depth: refuse any request the gateway did not authenticate (IAM or JWT); a person
    (JWT) may do what their role allows; every change is recorded in the audit log."""
    event = app.current_event
    path = event.path.removeprefix(CONSOLE_PREFIX)
    if path in PUBLIC_PATHS or path.startswith(DOCS_PATH + "/"):
        return next_middleware(app)
    authorizer = event.raw_event.get("requestContext", {}).get("authorizer") or {}
    if not (authorizer.get("iam") or authorizer.get("jwt") or authorizer.get("lambda")):
        return Response(401, "application/json", '{"message":"Unauthorized"}')
    person = person_from_claims(authorizer["jwt"].get("claims") or {}) if authorizer.get("jwt") else None
    action = action_of(event.http_method, path)
    if person is not None and not person.may(action):
        body = ErrorBody(message=f"Your role ({person.role or 'none'}) may not do this.")
        return Response(403, "application/json", body.model_dump_json())
    response = next_middleware(app)
    # Only changes are change-audited: reads and a GDPR export change nothing (an export is in the
    # GDPR audit trail, as an erasure is, naming the person by a keyed hash only).
    if (
        action not in (Action.READ, Action.READ_AUDIT, Action.EXPORT)
        and response.status_code < 400
        and not ERASURE.fullmatch(f"{event.http_method} {path}")
    ):
        who, role = (person.email, str(person.role)) if person else (caller(), "machine")
        audit_trail().record(
            who, role, "console-api" if person else "api", f"{event.http_method} {path}", path,
            status=response.status_code,
        )  # fmt: skip
    return response


app.use(middlewares=[require_authorizer])
app.include_router(report_router)
app.include_router(docs_router)
app.include_router(audience_router)
app.include_router(import_router)


@app.exception_handler([LeadNotFound, StorageUnavailable, HandoffDisabled])  # type: ignore[untyped-decorator]
def domain_error(error: Exception) -> Response[str]:
    """Status, message and ``Retry-After`` as the errors table (``transport/errors.py``) says."""
    return error_answer(error)


@app.get(
    "/api/v1/leads/<lead_id>",
    summary="A lead with its attribution, consent and activities",
    responses=responses(200, LeadDetail, "The lead", errors={404: "No such lead"}),
)
@tracer.capture_method
def get_lead(lead_id: Annotated[str, Path(min_length=1, max_length=64)]) -> LeadDetail:
    lead = dependencies().get(lead_id)
    return LeadDetail.model_validate(
        {**lead, "handoffs": [HandoffView.of(h) for h in handoff_store().lead_handoffs(lead_id)]}
    )


@app.get(
    "/api/v1/leads/<lead_id>/score",
    summary="Score per model, fit grade, stage and the top reasons",
    responses=responses(200, LeadScore, "The lead's scores now", errors={404: "No such lead"}),
)
@tracer.capture_method
def get_score(lead_id: Annotated[str, Path(min_length=1, max_length=64)]) -> LeadScore:
    return LeadScore.model_validate(scoring().explain_lead(lead_id))


@app.get(
    "/api/v1/accounts/<domain>",
    summary="A key account: its leads scored as one buying committee",
    responses=responses(200, AccountView, "The account's score and coverage", errors={404: "No lead of that domain"}),
)
@tracer.capture_method
def get_account(domain: Annotated[str, Path(min_length=3, max_length=253)]) -> AccountView:
    return AccountView.model_validate(scoring().account(domain))


def nurture() -> NurtureService:
    return nurture_admin_service()


@app.get(
    "/api/v1/sequences",
    summary="The workspace's sequences with their current version",
    responses=responses(200, SequenceList, "Every sequence of the workspace"),
)
@tracer.capture_method
def list_sequences() -> SequenceList:
    return SequenceList.model_validate({"sequences": nurture().overview()})


@app.get(
    "/api/v1/leads/<lead_id>/enrollments",
    summary="The lead's enrollments: sequence, version, step, status, emails sent and their engagement",
    responses=responses(200, EnrollmentList, "The lead's enrollments, current and past", errors={404: "No such lead"}),
)
@tracer.capture_method
def lead_enrollments(lead_id: Annotated[str, Path(min_length=1, max_length=64)]) -> EnrollmentList:
    service = nurture()
    if service.store.get_lead(lead_id) is None:
        raise LeadNotFound(lead_id)
    return EnrollmentList(enrollments=[EnrollmentView.of(e) for e, _ in service.lead_enrollments(lead_id)])


def not_found(message: str) -> Response[str]:
    return Response(404, "application/json", ErrorBody(message=message).model_dump_json())


@app.post(
    "/api/v1/sequences/<sequence_id>/enrollments",
    summary="Enroll one lead in a sequence (its re-entry policy decides)",
    responses=responses(
        201,
        EnrollmentView,
        "Enrolled: the new enrollment",
        errors={404: "No such sequence (with API enrollment) or lead", 409: "Already enrolled, or refused by re-entry"},
        body=True,
    ),
)
@tracer.capture_method
def enroll_lead(sequence_id: Annotated[str, Path(min_length=1, max_length=64)], body: EnrollRequest) -> Response[str]:
    service = nurture()
    sequence = service.workspace.sequences.get(sequence_id)
    if sequence is None or not any(t.api or t.broadcast for t in sequence.triggers):
        return not_found("No sequence with API enrollment by that id.")
    if service.store.get_lead(body.lead_id) is None:
        raise LeadNotFound(body.lead_id)
    created = service.enroll_lead(body.lead_id, sequence_id, reason="api")
    publish_nurture_counts(service)
    if created is None:
        message = "The lead is already enrolled, or the sequence's re-entry policy refuses it now."
        return Response(409, "application/json", ErrorBody(message=message).model_dump_json())
    return Response(201, "application/json", EnrollmentView.of(created).model_dump_json())


@app.post(
    "/api/v1/sequences/<sequence_id>/broadcast",
    summary="Enroll the sequence's broadcast segment (batched, asynchronous)",
    responses=responses(
        202,
        BroadcastStarted,
        "Started: the segment is enrolled in batches, asynchronously",
        errors={404: "No such sequence, or it has no broadcast trigger"},
        body=True,
    ),
)
@tracer.capture_method
def start_broadcast(sequence_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    sequence = nurture().workspace.sequences.get(sequence_id)
    if sequence is None or not any(t.broadcast for t in sequence.triggers):
        return not_found("No sequence with a broadcast by that id.")
    broadcast_starter().start(sequence_id, app.current_event.request_context.request_id)
    started = BroadcastStarted(sequence_id=sequence_id, status="started")
    return Response(202, "application/json", started.model_dump_json())


# ---------------------------------------------------------------------------- sales hand-off
def caller() -> str:
    """Who is asking: for the audit trail (``audience_routes.actor``)."""
    return actor(app.current_event.raw_event)


@app.post(
    "/api/v1/leads/<lead_id>/handoff",
    summary="Hand a lead to sales now (assigned by the workspace's rules, delivered to every destination)",
    responses=responses(
        201,
        HandoffView,
        "Handed off: the new hand-off",
        errors={404: "No such lead", 409: "Hand-offs are switched off in handoff.yaml"},
        more={200: ("The lead already has an open hand-off: that one", HandoffView)},
        body=True,
    ),
)
@tracer.capture_method
def start_handoff(lead_id: Annotated[str, Path(min_length=1, max_length=64)], body: HandoffRequest) -> Response[str]:
    who = caller()
    record, created = handoff_service().start(lead_id, "manual", body.reason or "requested by a person", f"api:{who}")
    return Response(201 if created else 200, "application/json", HandoffView.of(record).model_dump_json())


@app.get(
    "/api/v1/leads/<lead_id>/handoffs",
    summary="The lead's hand-offs with their status history and delivery state",
    responses=responses(200, HandoffList, "The lead's hand-offs, newest first", errors={404: "No such lead"}),
)
@tracer.capture_method
def list_handoffs(lead_id: Annotated[str, Path(min_length=1, max_length=64)]) -> HandoffList:
    store = handoff_store()
    if store.get_lead(lead_id) is None:
        raise LeadNotFound(lead_id)
    return HandoffList(handoffs=[HandoffView.of(h) for h in store.lead_handoffs(lead_id)])


# ---------------------------------------------------------------------------- GDPR
def gdpr() -> GdprService:
    return gdpr_service()


@app.get(
    "/api/v1/leads/<lead_id>/export",
    summary="Everything held about the lead, from every store, as one JSON document (GDPR Art. 15 and 20)",
    responses=responses(200, LeadExport, "Everything held about the lead", errors={404: "No such lead"}),
)
@tracer.capture_method
def export_lead(lead_id: Annotated[str, Path(min_length=1, max_length=64)]) -> LeadExport:
    return LeadExport.model_validate(gdpr().export(lead_id, f"api:{caller()}", "api"))


@app.delete(
    "/api/v1/leads/<lead_id>",
    summary="Erase the lead everywhere (GDPR Art. 17): counts per kind; repeatable, resumes an interrupted one",
    responses=responses(
        200,
        ErasureView,
        "Erased: what was removed, per kind",
        errors={404: "No such lead, and none erased under this id"},
    ),
)
@tracer.capture_method
def erase_lead(lead_id: Annotated[str, Path(min_length=1, max_length=64)]) -> ErasureView:
    erasure = gdpr().erase(lead_id, f"api:{caller()}", "api")
    return ErasureView.model_validate(asdict(erasure))


@cache
def document() -> str:
    """The OpenAPI document (generated once per container)."""
    return app.get_openapi_json_schema(
        title="leadflow admin API",
        version=__version__,
        description=(
            "The admin REST API of leadflow. In AWS every route but this document and its explorer is behind "
            "API Gateway's IAM authorizer (SigV4); on `leadflow dev` send the admin token as a bearer token "
            "instead. People use the same routes under `/console` with their Cognito ID token, within their role."
        ),
        servers=SERVERS,
        security_schemes=SECURITY_SCHEMES,
        security=SECURITY,
    )


@app.get("/api/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, "application/json", document())


@app.not_found  # type: ignore[untyped-decorator]
def unrouted(_: NotFoundError) -> Response[str]:
    """``405`` with ``Allow`` for a method the path does not take (``ANY /api/v1/{proxy+}`` brings these here)."""
    event = app.current_event
    status, headers, body = no_route(json.loads(document())["paths"], event.http_method, event.path)
    return Response(status, "application/json", body, headers=headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The report routes build what they need from the context (Powertools clears it after each request).
    app.append_context(  # type: ignore[no-untyped-call]
        reports=reporting_service,
        clock=system_clock,
        audience=audience_service,
        segments=api_segments,
        imports=api_imports,
        import_engine=import_engine,
    )
    return unreadable_body(event) or app.resolve(event, context)
