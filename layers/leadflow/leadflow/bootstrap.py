"""The composition root: every service and adapter a function uses is built here, and only here.

Each builder reads its function's settings (``leadflow.settings``: checked on first use, a
missing variable fails with its name) and is cached (``functools.cache``), so a warm Lambda
container builds each thing once. Nothing is built at import time: no boto3 client exists
before a handler first asks for it. The builders are named after what they return
(``nurture_service``, ``handoff_queue``, ...); handlers, the dev stack and the command line
take what they need from here instead of importing adapters.

``*_for(...)`` builders take their tables as arguments instead (the command line names them).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from leadflow.config.workspace import Workspace
from leadflow.settings import (
    REQUEST_HOST,
    ApiSettings,
    BroadcastRunSettings,
    BroadcastSettings,
    BusSettings,
    CaptureSettings,
    ConsoleSettings,
    CrmInboundSettings,
    FeedbackSettings,
    GdprSettings,
    HandoffSettings,
    ImportEngineSettings,
    IntakeRetrySettings,
    LandingSettings,
    NurtureSettings,
    PageViewSettings,
    PreferencesSettings,
    RedriveSettings,
    RelaySettings,
    ReplaySettings,
    ReportingSettings,
    ScoringSettings,
    SegmentSettings,
    SlaNotifierSettings,
    TrackingSettings,
    WinnerSettings,
    local_base_url,
)

if TYPE_CHECKING:  # annotations only: each function's cold start loads the modules it builds
    from leadflow.adapters.cognito import HostedSignIn, JwksTokenVerifier
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.adapters.eventbridge import EventBridgePublisher
    from leadflow.adapters.handoff import DynamoHandoffStore, SqsHandoffQueue
    from leadflow.adapters.lambdas import LambdaBroadcasts
    from leadflow.adapters.nurture import StepFunctionsBroadcastRunner
    from leadflow.adapters.redrive import SqsDeadLetters, SqsRedrive
    from leadflow.adapters.secrets import JsonSecret
    from leadflow.adapters.sqs import SqsIntakeQueue
    from leadflow.adapters.streams import DynamoStreamReader
    from leadflow.ports import Clock, EventPublisher
    from leadflow.services.audience import AudienceService
    from leadflow.services.audit import AuditTrail
    from leadflow.services.capture import CaptureService
    from leadflow.services.crm_feedback import CrmFeedbackService
    from leadflow.services.feedback import FeedbackService
    from leadflow.services.gdpr import GdprService
    from leadflow.services.handoff import HandoffService
    from leadflow.services.import_engine import ImportEngine
    from leadflow.services.imports import ImportService
    from leadflow.services.leads import LeadQueries
    from leadflow.services.nurture import NurtureService
    from leadflow.services.reporting import ReportingService
    from leadflow.services.scoring import ScoringService
    from leadflow.services.segments import SegmentService
    from leadflow.services.suppression import SuppressionService
    from leadflow.services.tracking import TrackingService
    from leadflow.transport.console import Console
    from leadflow.transport.landing import LandingPages
    from leadflow.transport.not_found import NotFoundPages

Handler = TypeVar("Handler", bound=Callable[..., Any])


def system_clock() -> Clock:
    from leadflow.adapters.clock import SystemClock

    return SystemClock()


# ---------------------------------------------------------------------------- capture and intake
def _capture_service(
    leads_table: str, workspace: str, tracking_secret_arn: str, intake_url: str, rate: int
) -> CaptureService:
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.adapters.secrets import SecretsManagerKeys
    from leadflow.adapters.sqs import SqsIntakeQueue
    from leadflow.services.capture import CaptureService

    return CaptureService(
        workspace=Workspace(workspace),
        store=DynamoLeadStore(leads_table),
        intake=SqsIntakeQueue(intake_url),
        clock=system_clock(),
        rate_limit_per_minute=rate,
        keys=SecretsManagerKeys(tracking_secret_arn),
    )


@cache
def capture_service() -> CaptureService:
    """Form capture (``POST /forms/{form_id}``)."""
    s = CaptureSettings.from_env()
    return _capture_service(
        s.leads_table, s.leadflow_workspace, s.tracking_secret_arn, s.intake_queue_url, s.rate_limit_per_minute
    )


@cache
def replay_capture_service() -> CaptureService:
    """The intake replay's capture: it never re-queues (a failure is retried by SQS)."""
    s = ReplaySettings.from_env()
    return _capture_service(s.leads_table, s.leadflow_workspace, s.tracking_secret_arn, "", 1)


@cache
def intake_queue() -> SqsIntakeQueue:
    from leadflow.adapters.sqs import SqsIntakeQueue

    return SqsIntakeQueue(IntakeRetrySettings.from_env().intake_queue_url)


@cache
def dead_letter_redrive() -> tuple[SqsRedrive, dict[str, str]]:
    """The redrive and its pairs: dead-letter queue URL -> the URL of the queue it came from."""
    from leadflow.adapters.redrive import SqsRedrive

    return SqsRedrive(), dict(json.loads(RedriveSettings.from_env().redrive_queues))


@cache
def outbox_replay_parts() -> tuple[SqsDeadLetters, DynamoStreamReader, EventPublisher]:
    """The scheduled redrive's outbox part: the OutboxDLQ, the table's stream, the bus."""
    from leadflow.adapters.eventbridge import EventBridgePublisher
    from leadflow.adapters.redrive import SqsDeadLetters
    from leadflow.adapters.streams import DynamoStreamReader

    settings = RedriveSettings.from_env()
    return SqsDeadLetters(settings.outbox_dlq_url), DynamoStreamReader(), EventBridgePublisher(settings.event_bus_name)


@cache
def outbox_publisher() -> EventPublisher:
    from leadflow.adapters.eventbridge import EventBridgePublisher

    return EventBridgePublisher(RelaySettings.from_env().event_bus_name)


# ---------------------------------------------------------------------------- scoring, tracking, feedback
@cache
def scoring_parts() -> tuple[ScoringService, DynamoLeadStore]:
    """The scoring service and its store (the scoring function, the daily decay sweep)."""
    settings = ScoringSettings.from_env()
    return scoring_for(settings.leads_table, Workspace(settings.leadflow_workspace), system_clock())


def scoring_for(leads_table: str, workspace: Workspace, clock: Clock) -> tuple[ScoringService, DynamoLeadStore]:
    """``scoring_parts`` on a named table (``leadflow rescore``)."""
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.services.scoring import ScoringService

    store = DynamoLeadStore(leads_table)
    return ScoringService(workspace, store, clock), store


@cache
def tracking_service() -> TrackingService:
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.adapters.reports import DynamoPageViews
    from leadflow.adapters.secrets import SecretsManagerKeys
    from leadflow.services.tracking import TrackingService

    settings = TrackingSettings.from_env()
    return TrackingService(
        workspace=Workspace(settings.leadflow_workspace),
        store=DynamoLeadStore(settings.leads_table),
        keys=SecretsManagerKeys(settings.tracking_secret_arn),
        clock=system_clock(),
        page_views=DynamoPageViews(PageViewSettings.from_env().reports_table),
    )


@cache
def feedback_service() -> FeedbackService:
    """SES feedback (bounces, complaints; Send and Delivery events confirming an email in its mail log)."""
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.adapters.nurture.deliveries import SesConfirmations
    from leadflow.adapters.secrets import SecretKey
    from leadflow.domain.gdpr import AddressHasher
    from leadflow.services.feedback import FeedbackService

    settings = FeedbackSettings.from_env()
    hasher = AddressHasher(SecretKey(settings.suppression_secret_arn))
    store = DynamoLeadStore(settings.leads_table)
    confirmations = SesConfirmations(settings.leads_table, settings.reports_table)
    return FeedbackService(store, system_clock(), hasher, confirmations)


# ---------------------------------------------------------------------------- nurture
@cache
def nurture_service() -> NurtureService:
    """The sending nurture service (step, plan and events functions)."""
    from leadflow.adapters.nurture import DynamoNurtureStore
    from leadflow.adapters.queues import SqsDueNowQueue
    from leadflow.adapters.reports import DynamoReportStore
    from leadflow.adapters.secrets import SecretKey, SecretsManagerKeys
    from leadflow.adapters.ses import SesEmailSender
    from leadflow.domain.gdpr import AddressHasher
    from leadflow.services.nurture import NurtureService, TokenIssuer
    from leadflow.services.nurture.winners import ReportedWinners
    from leadflow.services.scoring import ScoringService

    settings = NurtureSettings.from_env()
    workspace = Workspace(settings.leadflow_workspace)
    store = DynamoNurtureStore(settings.leads_table, shards=settings.nurture_shards)
    clock = system_clock()
    return NurtureService(
        workspace=workspace,
        store=store,
        sender=SesEmailSender(settings.ses_configuration_set),
        tokens=TokenIssuer(
            SecretsManagerKeys(settings.tracking_secret_arn), settings.public_base_url, workspace.tracking.token_days
        ),
        due_now=SqsDueNowQueue(settings.nurture_now_queue_url),
        clock=clock,
        address_key=AddressHasher(SecretKey(settings.suppression_secret_arn)),
        points=ScoringService(workspace, store, clock),
        winners=ReportedWinners(DynamoReportStore(WinnerSettings.from_env().reports_table)),
    )


@cache
def broadcast_runner() -> StepFunctionsBroadcastRunner:
    """The broadcast state machine, which runs a broadcast's parts (its fixed name's ARN)."""
    from leadflow.adapters.nurture import StepFunctionsBroadcastRunner

    return StepFunctionsBroadcastRunner(BroadcastRunSettings.from_env().broadcast_state_machine_arn)


def hop_seconds() -> int:
    """How long a broadcast hop runs (the template's ``BroadcastHopSeconds``)."""
    return BroadcastRunSettings.from_env().broadcast_hop_seconds


def ses_account_rate() -> float | None:
    """The account's SES maximum send rate (None: use the configured one); asked once per broadcast
    start, which is rare, so not cached."""
    from leadflow.adapters.ses import SesAccountRate

    return SesAccountRate()()


class NoSender:
    """The preference page and the admin API send no email themselves."""

    def send(self, *_: object) -> str:
        raise RuntimeError("this function sends no email: the nurture step does")


class NoSuppressionKey:
    """For callers that enroll or read and never send (the console, ``leadflow broadcast`` without
    first steps): they never check the suppression list, so they need no key."""

    def __call__(self, email_key: str) -> str:
        raise RuntimeError("this caller sends no email and checks no suppression")


class NoQueue:
    """Nothing to push: enrollments a command line stores due are sent by the tick, and reading
    enrollments (the console) pushes nothing."""

    def push(self, pairs: list[tuple[str, str]]) -> None:
        return None


@cache
def nurture_admin_service() -> NurtureService:
    """The nurture service of the preference page and the admin API (it sends no email)."""
    from leadflow.adapters.nurture import DynamoNurtureStore
    from leadflow.adapters.queues import SqsDueNowQueue
    from leadflow.adapters.secrets import SecretKey, SecretsManagerKeys
    from leadflow.domain.gdpr import AddressHasher
    from leadflow.services.nurture import NurtureService, TokenIssuer

    settings = PreferencesSettings.from_env()
    workspace = Workspace(settings.leadflow_workspace)
    return NurtureService(
        workspace=workspace,
        store=DynamoNurtureStore(settings.leads_table),
        sender=NoSender(),
        tokens=TokenIssuer(SecretsManagerKeys(settings.tracking_secret_arn), "", workspace.tracking.token_days),
        due_now=SqsDueNowQueue(settings.nurture_now_queue_url),
        clock=system_clock(),
        address_key=AddressHasher(SecretKey(settings.suppression_secret_arn)),
    )


def nurture_reader_for(table: str, workspace: Workspace, clock: Clock, shards: int | None = None) -> NurtureService:
    """A nurture service on a named table that enrolls and reads and never sends (the command
    line's ``broadcast``, the dev console): no sender, no suppression key, no due-now queue."""
    from leadflow.adapters.nurture import DynamoNurtureStore
    from leadflow.services.nurture import NurtureService, TokenIssuer

    store = DynamoNurtureStore(table) if shards is None else DynamoNurtureStore(table, shards=shards)
    return NurtureService(
        workspace=workspace,
        store=store,
        sender=NoSender(),
        tokens=TokenIssuer(lambda: [b"unused"], "", 1),
        due_now=NoQueue(),
        clock=clock,
        address_key=NoSuppressionKey(),
    )


@cache
def event_bus() -> EventPublisher:
    """The bus the nurture functions publish their counts on directly."""
    from leadflow.adapters.eventbridge import EventBridgePublisher

    return EventBridgePublisher(BusSettings.from_env().event_bus_name)


def event_bus_for(bus_name: str) -> EventBridgePublisher:
    from leadflow.adapters.eventbridge import EventBridgePublisher

    return EventBridgePublisher(bus_name)


def publish_nurture_counts(service: NurtureService, publisher: EventPublisher | None = None) -> int:
    """What ``service`` counted since the last call, as one ``nurture.counted`` event on the bus."""
    from leadflow.services.nurture.publishing import publish_counts

    return publish_counts(service, publisher or event_bus())


def publishes_counts(service: Callable[[], NurtureService]) -> Callable[[Handler], Handler]:
    """A handler decorator: whatever the invocation counted is published when it ends (one event)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(event: dict[str, Any], context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                publish_nurture_counts(service())

        return run  # type: ignore[return-value]

    return wrap


# ---------------------------------------------------------------------------- admin API
@cache
def lead_store() -> DynamoLeadStore:
    from leadflow.adapters.dynamo import DynamoLeadStore

    return DynamoLeadStore(ApiSettings.from_env().leads_table)


@cache
def api_workspace() -> Workspace:
    return Workspace(ApiSettings.from_env().leadflow_workspace)


@cache
def lead_queries() -> LeadQueries:
    from leadflow.services.leads import LeadQueries

    return LeadQueries(lead_store(), api_workspace())


@cache
def segment_service() -> SegmentService:
    """Segment membership (the segments function) and its counts (the admin API)."""
    settings = SegmentSettings.from_env()
    return segment_service_for(settings.leads_table, Workspace(settings.leadflow_workspace))


def segment_service_for(leads_table: str, workspace: Workspace) -> SegmentService:
    """The segment service on a named table (the command line, the admin API)."""
    from leadflow.adapters.segments import DynamoSegmentStore
    from leadflow.services.segments import SegmentService

    return SegmentService(DynamoSegmentStore(leads_table), workspace, system_clock())


@cache
def api_segments() -> SegmentService:
    """Segments for the admin API (the lead API's table and workspace)."""
    return segment_service_for(ApiSettings.from_env().leads_table, api_workspace())


@cache
def audience_service() -> AudienceService:
    """Leads through the admin API: create, update, tag, lists and export (the lead API's table)."""
    return audience_service_for(ApiSettings.from_env().leads_table, api_workspace())


def import_service_for(leads_table: str, suppression_secret_arn: str) -> ImportService:
    """Imports on a named table (the command line): opt-outs are listed under the keyed hash."""
    from leadflow.adapters.imports import DynamoImportStore
    from leadflow.adapters.secrets import SecretKey
    from leadflow.domain.gdpr import AddressHasher
    from leadflow.services.imports import ImportService

    hasher = AddressHasher(SecretKey(suppression_secret_arn))
    return ImportService(DynamoImportStore(leads_table, hasher), system_clock())


@cache
def api_imports() -> ImportService:
    """Imports for the admin API (``POST /api/v1/imports``, a small CSV in the body)."""
    settings = GdprSettings.from_env()
    return import_service_for(settings.leads_table, settings.suppression_secret_arn)


@cache
def import_engine() -> ImportEngine:
    """Large imports (the admin API's upload and start, the import state machine's steps)."""
    from leadflow.adapters.import_files import S3ImportFiles, StepFunctionsImportRuns
    from leadflow.services.import_engine import ImportEngine

    settings = ImportEngineSettings.from_env()
    imports = import_service_for(settings.leads_table, settings.suppression_secret_arn)
    files = S3ImportFiles(settings.imports_bucket)
    runs = StepFunctionsImportRuns(settings.import_state_machine_arn)
    return ImportEngine(imports, files, runs, system_clock(), chunk_rows=settings.import_chunk_rows)


def audience_service_for(leads_table: str, workspace: Workspace) -> AudienceService:
    """The audience service on a named table (the command line, imports)."""
    from leadflow.adapters.audience import DynamoAudienceStore
    from leadflow.services.audience import AudienceService

    return AudienceService(DynamoAudienceStore(leads_table), workspace, system_clock())


@cache
def api_scoring() -> ScoringService:
    """Scores and accounts for the admin API (the lead API's store and workspace)."""
    from leadflow.services.scoring import ScoringService

    return ScoringService(api_workspace(), lead_store(), system_clock())


@cache
def broadcast_starter() -> LambdaBroadcasts:
    """``POST .../broadcast``: an asynchronous invoke of the nurture plan function."""
    from leadflow.adapters.lambdas import LambdaBroadcasts

    return LambdaBroadcasts(BroadcastSettings.from_env().nurture_due_function)


@cache
def handoff_store() -> DynamoHandoffStore:
    """The admin API's read of hand-offs."""
    from leadflow.adapters.handoff import DynamoHandoffStore

    return DynamoHandoffStore(ApiSettings.from_env().leads_table)


def handoff_store_for(table: str, client: Any = None) -> DynamoHandoffStore:
    from leadflow.adapters.handoff import DynamoHandoffStore

    return DynamoHandoffStore(table, client)


# ---------------------------------------------------------------------------- hand-off
@cache
def handoff_queue() -> SqsHandoffQueue:
    from leadflow.adapters.handoff import SqsHandoffQueue

    settings = HandoffSettings.from_env()
    return SqsHandoffQueue(settings.handoff_queue_url, settings.handoff_dlq_url)


def _handoff_service(notify: bool) -> HandoffService:
    from leadflow.adapters.crm_delivery import SafeHttp, Senders
    from leadflow.adapters.handoff import DynamoHandoffStore
    from leadflow.adapters.secrets import JsonSecret
    from leadflow.services.handoff import HandoffService
    from leadflow.services.scoring import ScoringService

    settings = HandoffSettings.from_env()
    workspace = Workspace(settings.leadflow_workspace)
    store = DynamoHandoffStore(settings.leads_table)
    clock = system_clock()
    base_url = local_base_url()
    return HandoffService(
        workspace=workspace,
        store=store,
        explainer=ScoringService(workspace, store, clock),
        queue=handoff_queue(),
        sender=Senders(SafeHttp(local_mode=base_url is not None), JsonSecret(settings.crm_secret_arn)),
        clock=clock,
        local_mode=base_url is not None,
        local_base_url=base_url or "",
        notifier=_sla_notifier(workspace) if notify else None,
    )


@cache
def handoff_service() -> HandoffService:
    """Hand-offs: start, deliver (the delivery consumer, the admin API's hand-off route).

    ``LEADFLOW_LOCAL=true`` (``leadflow dev`` only) allows plain-http destinations and sends
    destinations marked ``local_fake_crm`` to the dev stack's fake CRM at ``PUBLIC_BASE_URL``."""
    return _handoff_service(notify=False)


@cache
def handoff_sla_service() -> HandoffService:
    """The SLA sweep's hand-off service: reminders and escalations go out by SES."""
    return _handoff_service(notify=True)


class NoSecrets:
    """For a caller that starts hand-offs and delivers none (the command line): it reads no CRM secret."""

    def get(self, key: str) -> str:
        raise RuntimeError("starting a hand-off sends nothing: the delivery function does")


def handoff_starter_for(
    leads_table: str, queue_url: str, dlq_url: str, workspace: Workspace, clock: Clock
) -> HandoffService:
    """A hand-off service on named resources that starts hand-offs and sends nothing (``leadflow handoff``)."""
    from leadflow.adapters.crm_delivery import SafeHttp, Senders
    from leadflow.adapters.handoff import DynamoHandoffStore, SqsHandoffQueue
    from leadflow.services.handoff import HandoffService
    from leadflow.services.scoring import ScoringService

    store = DynamoHandoffStore(leads_table)
    return HandoffService(
        workspace=workspace,
        store=store,
        explainer=ScoringService(workspace, store, clock),
        queue=SqsHandoffQueue(queue_url, dlq_url),
        sender=Senders(SafeHttp(local_mode=False), NoSecrets()),
        clock=clock,
    )


def _sla_notifier(workspace: Workspace) -> Any:
    from email.utils import formataddr

    from leadflow.adapters.handoff import SesSlaNotifier
    from leadflow.adapters.ses import SesEmailSender

    messaging = workspace.messaging
    sender = SesEmailSender(SlaNotifierSettings.from_env().ses_configuration_set)
    return SesSlaNotifier(sender, formataddr((messaging.from_name, messaging.from_address)))


# ---------------------------------------------------------------------------- CRM feedback
@cache
def crm_feedback_service() -> CrmFeedbackService:
    from leadflow.adapters.crm_feedback import DynamoCrmFeedbackStore
    from leadflow.services.crm_feedback import CrmFeedbackService

    settings = CrmInboundSettings.from_env()
    workspace = Workspace(settings.leadflow_workspace)
    return CrmFeedbackService(workspace.crm_feedback, DynamoCrmFeedbackStore(settings.leads_table), system_clock())


@cache
def crm_secret() -> JsonSecret:
    from leadflow.adapters.secrets import JsonSecret

    return JsonSecret(CrmInboundSettings.from_env().crm_secret_arn)


# ---------------------------------------------------------------------------- GDPR
@cache
def gdpr_service() -> GdprService:
    """Export, erasure and retention (the admin API, the daily sweep)."""
    settings = GdprSettings.from_env()
    return gdpr_service_for(
        settings.leads_table,
        settings.suppression_secret_arn,
        Workspace(settings.leadflow_workspace),
        system_clock(),
        settings.handoff_queue_url,
        settings.reports_table,
    )


def gdpr_service_for(  # noqa: PLR0917 - the tables, queue and secret the command line names
    leads_table: str,
    suppression_secret_arn: str,
    workspace: Workspace,
    clock: Clock,
    handoff_queue_url: str = "",
    reports_table: str = "",
) -> GdprService:
    """``gdpr_service`` on named resources (``leadflow gdpr``); no queue: no erasure notices, no
    reports table: no report markers."""
    from leadflow.adapters.gdpr import DynamoGdprStore, DynamoReportMarkers
    from leadflow.adapters.handoff import SqsHandoffQueue
    from leadflow.adapters.secrets import SecretKey
    from leadflow.services.gdpr import GdprService

    return GdprService(
        workspace=workspace,
        store=DynamoGdprStore(leads_table),
        key=SecretKey(suppression_secret_arn),
        clock=clock,
        notices=SqsHandoffQueue(handoff_queue_url, "") if handoff_queue_url else None,
        reports=DynamoReportMarkers(reports_table) if reports_table else None,
    )


# ---------------------------------------------------------------------------- reporting
def reporting_for(leads_table: str, reports_table: str, workspace: Workspace) -> ReportingService:
    """A reporting service on named tables (``leadflow report``, the dev report page)."""
    from leadflow.adapters.reports import DynamoLeadFacts, DynamoReportStore, MarkersTaken
    from leadflow.services.reporting import ReportingService

    return ReportingService(workspace, DynamoReportStore(reports_table), DynamoLeadFacts(leads_table), MarkersTaken)


@cache
def reporting_service() -> ReportingService:
    """The reporting function, and the admin API's report routes."""
    settings = ReportingSettings.from_env()
    return reporting_for(settings.leads_table, settings.reports_table, Workspace(Path(settings.leadflow_workspace)))


# ---------------------------------------------------------------------------- console and audit log
@cache
def audit_trail() -> AuditTrail:
    """Changes by people and machines through the console and the admin API (the leads table)."""
    from leadflow.adapters.audit import DynamoAuditLog
    from leadflow.services.audit import AuditTrail

    return AuditTrail(DynamoAuditLog(ApiSettings.from_env().leads_table), system_clock())


@cache
def console_sign_in() -> HostedSignIn:
    """The console's hosted sign-in (its app client and domain, read from SSM on first use)."""
    from leadflow.adapters.cognito import HostedSignIn

    return HostedSignIn(ConsoleSettings.from_env().console_sign_in_parameter)


@cache
def console_verifier() -> JwksTokenVerifier:
    """Checks the console's ID tokens: the user pool's, issued to the hosted sign-in's app client."""
    from leadflow.adapters.cognito import JwksTokenVerifier

    settings = ConsoleSettings.from_env()
    audience = console_sign_in().ui().client_id
    return JwksTokenVerifier(settings.console_issuer, audience, settings.console_jwks_url)


@cache
def console() -> Console:
    """The console function's pages, on the user pool of ``ConsoleSettings`` (checked at cold start)."""
    from leadflow.transport.console import Console, ConsoleParts

    settings = ConsoleSettings.from_env()
    return Console(
        ConsoleParts(
            hosted=console_sign_in,
            verify=lambda token: console_verifier().claims(token),
            leads=lead_queries,
            scoring=api_scoring,
            nurture=lambda: nurture_reader_for(settings.leads_table, api_workspace(), system_clock()),
            handoffs=handoff_service,
            audit=audit_trail,
            reports=reporting_service,
            today=lambda: system_clock().now().date(),
            audience=audience_service,
            enrollments=nurture_admin_service,
            publish_counts=publish_nurture_counts,
            suppression=suppression_service,
            gdpr=gdpr_service,
            imports=api_imports,
            secure_cookie=local_base_url() is None,
            local=local_base_url() is not None,
        )
    )


@cache
def suppression_service() -> SuppressionService:
    """The suppression list as the console shows and changes it (the keyed hash of each address)."""
    from leadflow.adapters.secrets import SecretKey
    from leadflow.adapters.suppression import DynamoSuppressionList
    from leadflow.domain.gdpr import AddressHasher
    from leadflow.services.suppression import SuppressionService

    settings = FeedbackSettings.from_env()
    hasher = AddressHasher(SecretKey(settings.suppression_secret_arn))
    return SuppressionService(DynamoSuppressionList(settings.leads_table), hasher, system_clock())


@cache
def not_found_pages() -> NotFoundPages:
    """The HTTP API's ``$default`` route: unknown URLs."""
    from leadflow.transport.not_found import NotFoundPages

    return NotFoundPages(local=local_base_url() is not None)


# ---------------------------------------------------------------------------- hosted landing pages
@cache
def landing_pages() -> LandingPages:
    """``GET /f/{form_id}`` and its embed script: the workspace's forms, their render time signed."""
    from leadflow.adapters.secrets import SecretsManagerKeys
    from leadflow.domain.tokens import sign_render_time
    from leadflow.transport.landing import LandingPages

    settings = LandingSettings.from_env()
    keys = SecretsManagerKeys(settings.tracking_secret_arn)
    clock = system_clock()
    base_url = "" if settings.forms_base_url == REQUEST_HOST else settings.forms_base_url.rstrip("/")
    return LandingPages(
        Workspace(settings.leadflow_workspace),
        lambda: sign_render_time(int(clock.now().timestamp() * 1000), keys()[0]),
        lambda: base_url,
    )
