"""The CRM inbound function's composition root: the service and the secret, built on first use."""

from __future__ import annotations

from functools import cache

from leadflow.adapters.clock import SystemClock
from leadflow.adapters.crm_feedback import DynamoCrmFeedbackStore
from leadflow.adapters.secrets import JsonSecret
from leadflow.config.workspace import Workspace
from leadflow.services.crm_feedback import CrmFeedbackService
from leadflow.settings import CrmInboundSettings


@cache
def crm_feedback_service() -> CrmFeedbackService:
    settings = CrmInboundSettings.from_env()
    workspace = Workspace(settings.leadflow_workspace)
    return CrmFeedbackService(workspace.crm_feedback, DynamoCrmFeedbackStore(settings.leads_table), SystemClock())


@cache
def crm_secret() -> JsonSecret:
    return JsonSecret(CrmInboundSettings.from_env().crm_secret_arn)
