"""Builders of the admin API's parts: its lead store and workspace, lead queries, segments,
audience, imports (small and large), scores, broadcast start and hand-off reads; the ``*_for``
variants serve the command line."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from leadflow.bootstrap.clock import system_clock
from leadflow.config.workspace import Workspace
from leadflow.settings import (
    ApiSettings,
    BroadcastSettings,
    GdprSettings,
    ImportEngineSettings,
    SegmentSettings,
)

if TYPE_CHECKING:  # annotations only: each function's cold start loads the modules it builds
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.adapters.handoff import DynamoHandoffStore
    from leadflow.adapters.lambdas import LambdaBroadcasts
    from leadflow.services.audience import AudienceService
    from leadflow.services.import_engine import ImportEngine
    from leadflow.services.imports import ImportService
    from leadflow.services.leads import LeadQueries
    from leadflow.services.scoring import ScoringService
    from leadflow.services.segments import SegmentService


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
