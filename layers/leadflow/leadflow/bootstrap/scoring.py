"""Builders of what follows a lead's activity: scoring (and the daily decay sweep), tracking of
clicks and page views, and SES feedback."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from leadflow.bootstrap.clock import system_clock
from leadflow.config.workspace import Workspace
from leadflow.settings import (
    FeedbackQueueSettings,
    FeedbackSettings,
    PageViewSettings,
    ScoringSettings,
    TrackingSettings,
)

if TYPE_CHECKING:  # annotations only: each function's cold start loads the modules it builds
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.adapters.sqs import SqsQueue
    from leadflow.ports.clock import Clock
    from leadflow.services.feedback import FeedbackService
    from leadflow.services.scoring import ScoringService
    from leadflow.services.tracking import TrackingService


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


def _tracking_service(park: bool) -> TrackingService:
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.adapters.reports import DynamoPageViews
    from leadflow.adapters.secrets import SecretsManagerKeys
    from leadflow.adapters.sqs import SqsIntakeQueue
    from leadflow.services.tracking import TrackingService

    settings = TrackingSettings.from_env()
    return TrackingService(
        workspace=Workspace(settings.leadflow_workspace),
        store=DynamoLeadStore(settings.leads_table),
        keys=SecretsManagerKeys(settings.tracking_secret_arn),
        clock=system_clock(),
        page_views=DynamoPageViews(PageViewSettings.from_env().reports_table),
        intake=SqsIntakeQueue(settings.intake_queue_url) if park else None,
    )


@cache
def tracking_service() -> TrackingService:
    """The tracking function: a hit the table cannot take waits on the intake queue."""
    return _tracking_service(park=True)


@cache
def replay_tracking_service() -> TrackingService:
    """The intake replay's tracking: it never parks a hit again (a failure is retried by SQS)."""
    return _tracking_service(park=False)


@cache
def feedback_service() -> FeedbackService:
    """SES feedback (bounces, complaints; Send events confirming an ambiguous send in its mail log)."""
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.adapters.nurture.store import DynamoNurtureStore
    from leadflow.adapters.secrets import SecretKey
    from leadflow.domain.gdpr import AddressHasher
    from leadflow.services.feedback import FeedbackService

    settings = FeedbackSettings.from_env()
    hasher = AddressHasher(SecretKey(settings.suppression_secret_arn))
    store = DynamoLeadStore(settings.leads_table)
    confirmations = DynamoNurtureStore(settings.leads_table)
    return FeedbackService(store, system_clock(), hasher, confirmations)


@cache
def feedback_queues() -> tuple[SqsQueue, SqsQueue]:
    """The SES events queue (backed off on in a table outage) and its DLQ (a malformed message
    goes straight there)."""
    from leadflow.adapters.sqs import SqsQueue

    settings = FeedbackQueueSettings.from_env()
    return SqsQueue(settings.ses_events_queue_url), SqsQueue(settings.ses_events_dlq_url)
