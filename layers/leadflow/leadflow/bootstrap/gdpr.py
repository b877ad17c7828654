"""Builders of GDPR work: export, erasure and retention (the admin API, the daily sweep, ``leadflow gdpr``)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from leadflow.bootstrap.clock import system_clock
from leadflow.config.workspace import Workspace
from leadflow.settings import GdprSettings

if TYPE_CHECKING:  # annotations only: each function's cold start loads the modules it builds
    from leadflow.ports.clock import Clock
    from leadflow.services.gdpr import GdprService


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
