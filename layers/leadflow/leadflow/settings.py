"""Environment settings of each function, read and checked at cold start.

Field names are the environment variable names (lower-cased). A missing or malformed
setting fails the cold start with a message naming the variable, never a silent default.
Plain dataclasses: no pydantic on the cold-start path of form capture.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Self


class MissingSetting(RuntimeError):
    """The function's environment lacks a variable it needs, or has a malformed one."""


@dataclass(frozen=True)
class _Settings:
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        problems: list[str] = []
        for field in fields(cls):
            name = field.name.upper()
            raw = env.get(name, "").strip()
            if not raw:
                problems.append(f"{name} is not set")
            elif field.type in ("int", int):
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    problems.append(f"{name} must be a whole number, not {raw!r}")
                else:
                    if values[field.name] < 1:  # type: ignore[operator]
                        problems.append(f"{name} must be at least 1")
            else:
                values[field.name] = raw
        if problems:
            raise MissingSetting(f"{cls.__name__}: " + "; ".join(problems))
        return cls(**values)


@dataclass(frozen=True)
class CaptureSettings(_Settings):
    leads_table: str
    intake_queue_url: str
    leadflow_workspace: str
    rate_limit_per_minute: int


@dataclass(frozen=True)
class ReplaySettings(_Settings):
    leads_table: str
    leadflow_workspace: str


@dataclass(frozen=True)
class RelaySettings(_Settings):
    event_bus_name: str


@dataclass(frozen=True)
class ApiSettings(_Settings):
    leads_table: str
    leadflow_workspace: str


@dataclass(frozen=True)
class TrackingSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    tracking_secret_arn: str


@dataclass(frozen=True)
class FeedbackSettings(_Settings):
    leads_table: str


@dataclass(frozen=True)
class ScoringSettings(_Settings):
    leads_table: str
    leadflow_workspace: str


@dataclass(frozen=True)
class NurtureSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    tracking_secret_arn: str
    public_base_url: str
    ses_configuration_set: str
    nurture_now_queue_url: str
    nurture_shards: int


@dataclass(frozen=True)
class PreferencesSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    tracking_secret_arn: str
    nurture_now_queue_url: str


@dataclass(frozen=True)
class BroadcastSettings(_Settings):
    nurture_due_function: str


@dataclass(frozen=True)
class CrmInboundSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    crm_secret_arn: str


@dataclass(frozen=True)
class HandoffSettings(_Settings):
    """The hand-off functions (delivery consumer, SLA sweep) and the admin API's hand-off route."""

    leads_table: str
    leadflow_workspace: str
    crm_secret_arn: str
    handoff_queue_url: str
    handoff_dlq_url: str
