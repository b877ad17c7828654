"""The nurture functions' composition root: one ``NurtureService`` built from the environment."""

from __future__ import annotations

from functools import cache

from leadflow.adapters.clock import SystemClock
from leadflow.adapters.nurture import DynamoNurtureStore, LambdaBroadcastParts
from leadflow.adapters.queues import SqsDueNowQueue
from leadflow.adapters.secrets import SecretsManagerKeys
from leadflow.adapters.ses import SesEmailSender
from leadflow.config.workspace import Workspace
from leadflow.services.nurture import NurtureService, TokenIssuer
from leadflow.services.scoring import ScoringService
from leadflow.settings import BroadcastSettings, NurtureSettings, PreferencesSettings


@cache
def nurture_service() -> NurtureService:
    settings = NurtureSettings.from_env()
    workspace = Workspace(settings.leadflow_workspace)
    store = DynamoNurtureStore(settings.leads_table, shards=settings.nurture_shards)
    clock = SystemClock()
    return NurtureService(
        workspace=workspace,
        store=store,
        sender=SesEmailSender(settings.ses_configuration_set),
        tokens=TokenIssuer(
            SecretsManagerKeys(settings.tracking_secret_arn), settings.public_base_url, workspace.tracking.token_days
        ),
        due_now=SqsDueNowQueue(settings.nurture_now_queue_url),
        clock=clock,
        points=ScoringService(workspace, store, clock),
    )


@cache
def broadcast_parts() -> LambdaBroadcastParts:
    """The nurture plan function invoking itself with the parts of a broadcast (its fixed name)."""
    return LambdaBroadcastParts(BroadcastSettings.from_env().nurture_due_function)


class NoSender:
    """The preference page and the admin API send no email themselves."""

    def send(self, *_: object) -> str:
        raise RuntimeError("this function sends no email: the nurture step does")


class NoQueue:
    """Nothing to push: enrollments a command line stores due are sent by the tick, and reading
    enrollments (the console) pushes nothing."""

    def push(self, pairs: list[tuple[str, str]]) -> None:
        return None


@cache
def nurture_admin_service() -> NurtureService:
    settings = PreferencesSettings.from_env()
    workspace = Workspace(settings.leadflow_workspace)
    return NurtureService(
        workspace=workspace,
        store=DynamoNurtureStore(settings.leads_table),
        sender=NoSender(),
        tokens=TokenIssuer(SecretsManagerKeys(settings.tracking_secret_arn), "", workspace.tracking.token_days),
        due_now=SqsDueNowQueue(settings.nurture_now_queue_url),
        clock=SystemClock(),
    )
