"""Environment settings of each function, validated at cold start.

Field names are the environment variable names (lower-cased). A missing or malformed
setting fails the cold start with a message naming the variable, never a silent default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class MissingSetting(RuntimeError):
    """The function's environment lacks a variable it needs."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        try:
            return cls.model_validate({k.lower(): v for k, v in env.items()})
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
            raise MissingSetting(f"{cls.__name__}: {problems}") from None


class CaptureSettings(_Settings):
    leads_table: str = Field(min_length=1)
    intake_queue_url: str = Field(min_length=1)
    leadflow_workspace: str = Field(min_length=1)
    rate_limit_per_minute: int = Field(ge=1)


class ReplaySettings(_Settings):
    leads_table: str = Field(min_length=1)
    leadflow_workspace: str = Field(min_length=1)


class RelaySettings(_Settings):
    event_bus_name: str = Field(min_length=1)


class ApiSettings(_Settings):
    leads_table: str = Field(min_length=1)
    leadflow_workspace: str = Field(min_length=1)
