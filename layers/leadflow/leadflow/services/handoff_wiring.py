"""The hand-off composition root: one ``HandoffService`` built from the environment.

``LEADFLOW_LOCAL=true`` (set by ``leadflow dev`` only) allows plain-http destinations and sends
destinations marked ``local_fake_crm`` to the dev stack's fake CRM at ``PUBLIC_BASE_URL``.
"""

from __future__ import annotations

import os
from functools import cache

from leadflow.adapters.clock import SystemClock
from leadflow.adapters.crm_delivery import SafeHttp, Senders
from leadflow.adapters.handoff import DynamoHandoffStore, SesSlaNotifier, SqsHandoffQueue
from leadflow.adapters.secrets import JsonSecret
from leadflow.config.workspace import Workspace
from leadflow.services.handoff import HandoffService
from leadflow.services.scoring import ScoringService
from leadflow.settings import HandoffSettings


def local_mode() -> bool:
    return os.environ.get("LEADFLOW_LOCAL", "").lower() == "true"


@cache
def handoff_queue() -> SqsHandoffQueue:
    settings = HandoffSettings.from_env()
    return SqsHandoffQueue(settings.handoff_queue_url, settings.handoff_dlq_url)


@cache
def handoff_service() -> HandoffService:
    settings = HandoffSettings.from_env()
    workspace = Workspace(settings.leadflow_workspace)
    store = DynamoHandoffStore(settings.leads_table)
    clock = SystemClock()
    local = local_mode()
    return HandoffService(
        workspace=workspace,
        store=store,
        explainer=ScoringService(workspace, store, clock),
        queue=handoff_queue(),
        sender=Senders(SafeHttp(local_mode=local), JsonSecret(settings.crm_secret_arn)),
        clock=clock,
        local_mode=local,
        local_base_url=os.environ.get("PUBLIC_BASE_URL", "") if local else "",
        notifier=sla_notifier(workspace),
    )


def sla_notifier(workspace: Workspace) -> SesSlaNotifier | None:
    """SES for SLA emails when the function has a configuration set (the SLA sweep does)."""
    configuration_set = os.environ.get("SES_CONFIGURATION_SET", "")
    if not configuration_set:
        return None
    from email.utils import formataddr

    from leadflow.adapters.ses import SesEmailSender

    messaging = workspace.messaging
    return SesSlaNotifier(SesEmailSender(configuration_set), formataddr((messaging.from_name, messaging.from_address)))
