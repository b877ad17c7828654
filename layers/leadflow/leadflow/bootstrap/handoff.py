"""Builders of the sales hand-off (its queue, delivery, SLA sweep and the command line's starter)
and of CRM feedback (the CRM's inbound webhook and its secret)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from leadflow.bootstrap.clock import system_clock
from leadflow.config.workspace import Workspace
from leadflow.settings import CrmInboundSettings, HandoffSettings, SlaNotifierSettings, local_base_url

if TYPE_CHECKING:  # annotations only: each function's cold start loads the modules it builds
    from leadflow.adapters.handoff import SqsHandoffQueue
    from leadflow.adapters.secrets import JsonSecret
    from leadflow.ports.clock import Clock
    from leadflow.services.crm_feedback import CrmFeedbackService
    from leadflow.services.handoff import HandoffService


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
