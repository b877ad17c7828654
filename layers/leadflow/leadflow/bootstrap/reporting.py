"""Builders of reporting: the reporting function, the admin API's report routes, ``leadflow report``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadflow.config.workspace import Workspace
from leadflow.settings import ReportingSettings

if TYPE_CHECKING:  # annotations only: each function's cold start loads the modules it builds
    from leadflow.services.reporting import ReportingService


def reporting_for(leads_table: str, reports_table: str, workspace: Workspace, client: Any = None) -> ReportingService:
    """A reporting service on named tables (``leadflow report``, the dev report page); ``client``: a
    DynamoDB client to use (default: the adapters' own)."""
    from leadflow.adapters.reports import DynamoLeadFacts, DynamoReportStore, MarkersTaken
    from leadflow.services.reporting import ReportingService

    return ReportingService(
        workspace, DynamoReportStore(reports_table, client), DynamoLeadFacts(leads_table, client), MarkersTaken
    )


@cache
def reporting_service() -> ReportingService:
    """The reporting function, and the admin API's report routes."""
    settings = ReportingSettings.from_env()
    return reporting_for(settings.leads_table, settings.reports_table, Workspace(Path(settings.leadflow_workspace)))
