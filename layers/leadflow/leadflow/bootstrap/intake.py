"""Builders of capture and intake: form capture, the intake replay and retry queue, the
dead-letter redrive and the outbox relay."""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING

from leadflow.bootstrap.clock import system_clock
from leadflow.config.workspace import Workspace
from leadflow.settings import (
    CaptureSettings,
    IntakeRetrySettings,
    RedriveSettings,
    RelaySettings,
    ReplaySettings,
)

if TYPE_CHECKING:  # annotations only: each function's cold start loads the modules it builds
    from leadflow.adapters.redrive import SqsDeadLetters, SqsRedrive
    from leadflow.adapters.sqs import SqsIntakeQueue
    from leadflow.adapters.streams import DynamoStreamReader
    from leadflow.ports.outbox import EventPublisher
    from leadflow.services.capture import CaptureService


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


def prime_capture_service() -> None:
    """Form capture's SnapStart hook before the snapshot (``functions/form_capture/app.py``): the
    capture service built and its DynamoDB client created, what every post uses; the snapshot keeps
    them, and a restored environment's first post skips building them (docs/benchmarks.md, row 2).
    The intake queue's client is left to its first use (only when the table is down), and no secret
    is read: a snapshot holds no key."""
    from leadflow.adapters.dynamo import DynamoLeadStore

    store = capture_service().store
    if isinstance(store, DynamoLeadStore):
        store.prime()


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
