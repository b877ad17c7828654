"""Admin API: ``/api/v1/...`` on the HTTP API (IAM-authenticated), and its OpenAPI document.

Routes: ``GET /api/v1/leads/{lead_id}`` (profile, attribution, consent, activities),
``GET /api/v1/leads?email=`` (find by address; without it, the newest leads),
``GET /api/v1/leads/{lead_id}/score``, ``GET /api/v1/accounts/{domain}``, nurture:
``GET /api/v1/sequences``, ``GET /api/v1/leads/{lead_id}/enrollments``,
``POST /api/v1/sequences/{sequence_id}/enrollments`` (enroll one lead),
``POST /api/v1/sequences/{sequence_id}/broadcast`` (enroll its segment, asynchronously),
sales hand-off: ``POST /api/v1/leads/{lead_id}/handoff``, ``GET /api/v1/leads/{lead_id}/handoffs``,
and ``GET /api/v1/openapi.json``.
"""

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow import __version__
from leadflow.adapters.clock import SystemClock
from leadflow.adapters.dynamo import DynamoLeadStore
from leadflow.adapters.lambdas import LambdaBroadcasts
from leadflow.config.workspace import Workspace
from leadflow.domain.errors import LeadNotFound
from leadflow.domain.handoff import HandoffDisabled
from leadflow.services.leads import LeadQueries
from leadflow.services.nurture import NurtureService
from leadflow.services.nurture_wiring import nurture_admin_service
from leadflow.services.scoring import ScoringService
from leadflow.settings import ApiSettings, BroadcastSettings
from leadflow.transport.api_models import (
    AccountView,
    BroadcastStarted,
    EnrollmentList,
    EnrollmentView,
    EnrollRequest,
    ErrorBody,
    HandoffList,
    HandoffRequest,
    HandoffView,
    LeadDetail,
    LeadList,
    LeadScore,
    SequenceList,
)

logger = Logger()
tracer = Tracer()
app = APIGatewayHttpResolver(enable_validation=True)
PUBLIC_PATHS = frozenset({"/api/v1/openapi.json"})


@cache
def adapters() -> tuple[DynamoLeadStore, Workspace]:
    settings = ApiSettings.from_env()
    return DynamoLeadStore(settings.leads_table), Workspace(settings.leadflow_workspace)


@cache
def dependencies() -> LeadQueries:
    return LeadQueries(*adapters())


@cache
def scoring() -> ScoringService:
    store, workspace = adapters()
    return ScoringService(workspace, store, SystemClock())


def require_authorizer(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """Defence in depth: refuse any request the gateway did not authenticate (IAM or JWT)."""
    if app.current_event.path not in PUBLIC_PATHS:
        authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
        if not (authorizer.get("iam") or authorizer.get("jwt") or authorizer.get("lambda")):
            return Response(401, "application/json", '{"message":"Unauthorized"}')
    return next_middleware(app)


app.use(middlewares=[require_authorizer])


@app.exception_handler(LeadNotFound)  # type: ignore[untyped-decorator]
def lead_not_found(_: LeadNotFound) -> Response[str]:
    return Response(404, "application/json", ErrorBody(message="There is no such lead.").model_dump_json())


@app.get(
    "/api/v1/leads/<lead_id>",
    summary="A lead with its attribution, consent and activities",
    responses={404: {"description": "No such lead"}, 401: {"description": "Not authenticated"}},
)
@tracer.capture_method
def get_lead(lead_id: Annotated[str, Path(min_length=1, max_length=64)]) -> LeadDetail:
    lead = dependencies().get(lead_id)
    return LeadDetail.model_validate(
        {**lead, "handoffs": [HandoffView.of(h) for h in handoff_store().lead_handoffs(lead_id)]}
    )


@app.get(
    "/api/v1/leads",
    summary="Find a lead by email, or list the newest leads",
    responses={401: {"description": "Not authenticated"}},
)
@tracer.capture_method
def find_leads(
    email: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> LeadList:
    queries = dependencies()
    leads = queries.find_by_email(email) if email is not None else queries.recent(limit)
    return LeadList.model_validate({"leads": leads})


@app.get(
    "/api/v1/leads/<lead_id>/score",
    summary="Score per model, fit grade, stage and the top reasons",
    responses={404: {"description": "No such lead"}, 401: {"description": "Not authenticated"}},
)
@tracer.capture_method
def get_score(lead_id: Annotated[str, Path(min_length=1, max_length=64)]) -> LeadScore:
    return LeadScore.model_validate(scoring().explain_lead(lead_id))


@app.get(
    "/api/v1/accounts/<domain>",
    summary="A key account: its leads scored as one buying committee",
    responses={404: {"description": "No lead of that domain"}, 401: {"description": "Not authenticated"}},
)
@tracer.capture_method
def get_account(domain: Annotated[str, Path(min_length=3, max_length=253)]) -> AccountView:
    return AccountView.model_validate(scoring().account(domain))


def nurture() -> NurtureService:
    return nurture_admin_service()


@app.get("/api/v1/sequences", summary="The workspace's sequences with their current version")
@tracer.capture_method
def list_sequences() -> SequenceList:
    return SequenceList.model_validate({"sequences": nurture().overview()})


@app.get(
    "/api/v1/leads/<lead_id>/enrollments",
    summary="The lead's enrollments: sequence, version, step, status, emails sent and their engagement",
    responses={404: {"description": "No such lead"}},
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
    responses={404: {"description": "No such sequence or lead"}, 409: {"description": "Refused by re-entry"}},
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
    if created is None:
        message = "The lead is already enrolled, or the sequence's re-entry policy refuses it now."
        return Response(409, "application/json", ErrorBody(message=message).model_dump_json())
    return Response(201, "application/json", EnrollmentView.of(created).model_dump_json())


@cache
def broadcasts() -> LambdaBroadcasts:
    return LambdaBroadcasts(BroadcastSettings.from_env().nurture_due_function)


@app.post(
    "/api/v1/sequences/<sequence_id>/broadcast",
    summary="Enroll the sequence's broadcast segment (batched, asynchronous)",
    responses={404: {"description": "No such sequence, or it has no broadcast trigger"}},
)
@tracer.capture_method
def start_broadcast(sequence_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response[str]:
    sequence = nurture().workspace.sequences.get(sequence_id)
    if sequence is None or not any(t.broadcast for t in sequence.triggers):
        return not_found("No sequence with a broadcast by that id.")
    broadcasts().start(sequence_id, app.current_event.request_context.request_id)
    started = BroadcastStarted(sequence_id=sequence_id, status="started")
    return Response(202, "application/json", started.model_dump_json())


# ---------------------------------------------------------------------------- sales hand-off
@cache
def handoff_store() -> Any:
    from leadflow.adapters.handoff import DynamoHandoffStore

    return DynamoHandoffStore(ApiSettings.from_env().leads_table)


@app.exception_handler(HandoffDisabled)  # type: ignore[untyped-decorator]
def handoff_disabled(_: HandoffDisabled) -> Response[str]:
    body = ErrorBody(message="Hand-offs are switched off in handoff.yaml.")
    return Response(409, "application/json", body.model_dump_json())


@app.post(
    "/api/v1/leads/<lead_id>/handoff",
    summary="Hand a lead to sales now (assigned by the workspace's rules, delivered to every destination)",
    responses={
        200: {"description": "The lead already has an open hand-off: that one"},
        404: {"description": "No such lead"},
        409: {"description": "Hand-offs are disabled"},
    },
)
@tracer.capture_method
def start_handoff(lead_id: Annotated[str, Path(min_length=1, max_length=64)], body: HandoffRequest) -> Response[str]:
    from leadflow.services.handoff_wiring import handoff_service

    iam = (app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}).get("iam") or {}
    who = str(iam.get("userArn") or iam.get("callerId") or "admin").rsplit("/", 1)[-1]
    record, created = handoff_service().start(lead_id, "manual", body.reason or "requested by a person", f"api:{who}")
    return Response(201 if created else 200, "application/json", HandoffView.of(record).model_dump_json())


@app.get(
    "/api/v1/leads/<lead_id>/handoffs",
    summary="The lead's hand-offs with their status history and delivery state",
    responses={404: {"description": "No such lead"}},
)
@tracer.capture_method
def list_handoffs(lead_id: Annotated[str, Path(min_length=1, max_length=64)]) -> HandoffList:
    store = handoff_store()
    if store.get_lead(lead_id) is None:
        raise LeadNotFound(lead_id)
    return HandoffList(handoffs=[HandoffView.of(h) for h in store.lead_handoffs(lead_id)])


@app.get("/api/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    schema = app.get_openapi_json_schema(title="leadflow admin API", version=__version__)
    return Response(200, "application/json", schema)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
