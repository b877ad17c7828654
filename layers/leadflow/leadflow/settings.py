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


class ReplaySettings(_Settings):
    leads_table: str
    leadflow_workspace: str


class RelaySettings(_Settings):
    event_bus_name: str


class ApiSettings(_Settings):
    leads_table: str
    leadflow_workspace: str


class TrackingSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    tracking_secret_arn: str


class FeedbackSettings(_Settings):
    leads_table: str


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


class PreferencesSettings(_Settings):
    leads_table: str
    leadflow_workspace: str
    tracking_secret_arn: str
    nurture_now_queue_url: str


class BroadcastSettings(_Settings):
    nurture_due_function: str


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
