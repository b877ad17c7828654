"""Environment settings of each function, read and checked at cold start.

Field names are the environment variable names (lower-cased). A missing or malformed
setting fails the cold start with a message naming the variable, never a silent default.
No pydantic and no dataclasses: this module holds one settings class per function and
every function imports it on its cold start, so a class must cost next to nothing to
create (a frozen dataclass compiles six methods, about 0.5 ms each class).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, Self


class MissingSetting(RuntimeError):
    """The function's environment lacks a variable it needs, or has a malformed one."""


class _Settings:
    """A function's settings: the class annotations name the variables; read-only once read."""

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self._types())
        missing = set(self._types()) - set(values)
        if unknown or missing:
            raise TypeError(f"{type(self).__name__}: unknown {sorted(unknown)}, missing {sorted(missing)}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def _types(cls) -> dict[str, Any]:
        """Field name -> its annotation (a string: the module uses postponed annotations)."""
        return {name: kind for name, kind in cls.__annotations__.items() if not name.startswith("_")}

    def _items(self) -> Iterator[tuple[str, Any]]:
        return ((name, getattr(self, name)) for name in self._types())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and dict(self._items()) == dict(other._items())  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), tuple(self._items())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in self._items())})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        problems: list[str] = []
        for field, kind in cls._types().items():
            name = field.upper()
            raw = env.get(name, "").strip()
            if not raw:
                problems.append(f"{name} is not set")
            elif kind in ("int", int):
                try:
                    values[field] = int(raw)
                except ValueError:
                    problems.append(f"{name} must be a whole number, not {raw!r}")
                else:
                    if values[field] < 1:  # type: ignore[operator]
                        problems.append(f"{name} must be at least 1")
            else:
                values[field] = raw
        if problems:
            raise MissingSetting(f"{cls.__name__}: " + "; ".join(problems))
        return cls(**values)


class CaptureSettings(_Settings):
    leads_table: str
    intake_queue_url: str
    leadflow_workspace: str
    rate_limit_per_minute: int
    tracking_secret_arn: str  # signed render times and the visitor cookie


class RedriveSettings(_Settings):
    redrive_queues: str  # JSON: DLQ URL -> the URL of the queue it came from
    outbox_dlq_url: str  # stream batches the outbox relay gave up on (read back from the stream)
    event_bus_name: str


class IntakeRetrySettings(_Settings):
    intake_queue_url: str


class ReplaySettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    tracking_secret_arn: str


class RelaySettings(_Settings):
    event_bus_name: str


class ApiSettings(_Settings):
    leads_table: str
    leadflow_workspace: str


class TrackingSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    tracking_secret_arn: str
    intake_queue_url: str  # where a hit the table cannot take waits for the intake replay


class FeedbackSettings(_Settings):
    leads_table: str
    suppression_secret_arn: str


class FeedbackQueueSettings(_Settings):
    ses_events_queue_url: str
    ses_events_dlq_url: str


class SegmentSettings(_Settings):
    leads_table: str
    leadflow_workspace: str


class ScoringSettings(_Settings):
    leads_table: str
    leadflow_workspace: str


class NurtureSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    tracking_secret_arn: str
    public_base_url: str
    ses_configuration_set: str
    nurture_now_queue_url: str
    nurture_shards: int
    suppression_secret_arn: str


class PreferencesSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    tracking_secret_arn: str
    nurture_now_queue_url: str
    suppression_secret_arn: str


class GdprSettings(_Settings):
    """Export, erasure and retention (the admin API's GDPR routes, the daily sweep)."""

    leads_table: str
    leadflow_workspace: str
    suppression_secret_arn: str
    handoff_queue_url: str
    reports_table: str


class ImportEngineSettings(_Settings):
    """Large imports: the bucket files are uploaded to, the state machine that reads them."""

    leads_table: str
    suppression_secret_arn: str
    imports_bucket: str
    import_state_machine_arn: str
    import_chunk_rows: int


class BroadcastSettings(_Settings):
    """The admin API's broadcast route: the nurture plan function it asks to start one."""

    nurture_due_function: str


class BroadcastRunSettings(_Settings):
    """The nurture plan function's broadcasts: the state machine that runs their parts."""

    broadcast_state_machine_arn: str
    broadcast_hop_seconds: int


class CrmInboundSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    crm_secret_arn: str


class HandoffSettings(_Settings):
    """The hand-off functions (delivery consumer, SLA sweep) and the admin API's hand-off route."""

    leads_table: str
    leadflow_workspace: str
    crm_secret_arn: str
    handoff_queue_url: str
    handoff_dlq_url: str


class SlaNotifierSettings(_Settings):
    """The hand-off SLA sweep emails reminders and escalations through SES."""

    ses_configuration_set: str


class BusSettings(_Settings):
    """Functions that publish on the bus directly (the nurture functions' counts for the reports)."""

    event_bus_name: str


class WinnerSettings(_Settings):
    """The nurture functions read the report counters for A/B winners to promote."""

    reports_table: str


class PageViewSettings(_Settings):
    """The tracking function's page-view counter for the forms-and-pages report."""

    reports_table: str


class ReportingSettings(_Settings):
    """The reporting function (bus events into aggregates) and the admin API's report routes."""

    leads_table: str
    reports_table: str
    leadflow_workspace: str


LOCAL_FLAG = "LEADFLOW_LOCAL"


def local_base_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The local stack's ``PUBLIC_BASE_URL`` when ``LEADFLOW_LOCAL=true``, else None.

    ``leadflow dev`` alone sets ``LEADFLOW_LOCAL=true`` (hand-off delivery may then use plain http
    and sends ``local_fake_crm`` destinations to the dev stack); in AWS it is never set.

    Raises:
        MissingSetting: ``LEADFLOW_LOCAL`` is neither ``true`` nor ``false`` when set, or it is
            ``true`` without ``PUBLIC_BASE_URL``.
    """
    env = os.environ if environ is None else environ
    flag = env.get(LOCAL_FLAG, "").strip().lower()
    if flag in ("", "false"):
        return None
    if flag != "true":
        raise MissingSetting(f"{LOCAL_FLAG} must be true or false, not {flag!r}")
    url = env.get("PUBLIC_BASE_URL", "").strip()
    if not url:
        raise MissingSetting(f"{LOCAL_FLAG}=true needs PUBLIC_BASE_URL (the local stack's URL)")
    return url


class ConsoleSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    console_sign_in_parameter: str  # SSM parameter: {"client_id", "domain"} of the hosted sign-in
    console_issuer: str  # https://cognito-idp.<region>.amazonaws.com/<user pool id>
    console_jwks_url: str  # <issuer>/.well-known/jwks.json (the local stack's Cognito locally)


REQUEST_HOST = "request-host"
"""A ``FORMS_BASE_URL`` that says: the URL the request came in on (``https://<its domain name>``).
A function behind the HTTP API cannot name the API's own URL in its environment: the API's
definition names the function, so CloudFormation would find a circular dependency."""


class LandingSettings(_Settings):
    leadflow_workspace: str
    tracking_secret_arn: str  # signs each page's render time (_lf_ts)
    forms_base_url: str  # where /f/ is served (or REQUEST_HOST): the embed script points its iframe there
