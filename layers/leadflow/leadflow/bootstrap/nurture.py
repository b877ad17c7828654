"""Builders of nurture: the sending service, the broadcast runner, the non-sending service of the
preference page, admin API and command line (with its ``No*`` stand-ins), and the publishing of
nurture counts on the bus (``publishes_counts``, the nurture handlers' decorator)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from leadflow.bootstrap.clock import system_clock
from leadflow.config.workspace import Workspace
from leadflow.settings import (
    BroadcastRunSettings,
    BusSettings,
    NurtureSettings,
    PreferencesSettings,
    WinnerSettings,
)

if TYPE_CHECKING:  # annotations only: each function's cold start loads the modules it builds
    from leadflow.adapters.eventbridge import EventBridgePublisher
    from leadflow.adapters.nurture import StepFunctionsBroadcastRunner
    from leadflow.ports.clock import Clock
    from leadflow.ports.outbox import EventPublisher
    from leadflow.services.nurture import NurtureService

Handler = TypeVar("Handler", bound=Callable[..., Any])


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
