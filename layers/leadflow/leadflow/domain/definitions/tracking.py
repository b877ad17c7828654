"""tracking.yaml: where tracked clicks may redirect, who may post site events, how long tokens live."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from leadflow.domain.definitions import models
from leadflow.domain.definitions.forms import origin_matches
from leadflow.domain.definitions.models import ConfigProblem

if TYPE_CHECKING:  # config.models provides these when pydantic validates
    from annotated_types import Ge, Le

HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
ORIGIN_PATTERN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d+)?$")


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """Tracking settings of a workspace."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    link_hosts: tuple[str, ...] = ()
    """Host names a tracked click may redirect to (www.example.com, or *.example.com for subdomains; any port)."""
    site_origins: tuple[str, ...] = ()
    """Origins whose pages may post site events from the tracking snippet (CORS)."""
    token_days: Annotated[int, Ge(1), Le(3650)] = 365
    """How long open and click links in an email keep working."""
    hits_per_token: Annotated[int, Ge(1), Le(10_000)] = 20
    """At most this many opens or clicks are recorded per token (scanners and forwards repeat)."""

    def __post_init__(self) -> None:
        for host in self.link_hosts:
            if not HOST_PATTERN.match(host):
                raise ConfigProblem("link_hosts", f"'{host}' is not a host name like www.example.com")
        for origin in self.site_origins:
            if not ORIGIN_PATTERN.match(origin):
                raise ConfigProblem("site_origins", f"'{origin}' is not an origin like https://www.example.com")

    @classmethod
    def model_validate(cls, data: Any) -> TrackingConfig:
        return models.validate(cls, data if data is not None else {})

    @classmethod
    def from_trusted(cls, data: dict[str, Any]) -> TrackingConfig:
        return cls(
            **{
                **data,
                "link_hosts": tuple(data.get("link_hosts", ())),
                "site_origins": tuple(data.get("site_origins", ())),
            }
        )

    def host_allowed(self, host: str) -> bool:
        host = host.lower()
        for allowed in self.link_hosts:
            if allowed == host or (allowed.startswith("*.") and host.endswith(allowed[1:])):
                return True
        return False

    def origin_allowed(self, origin: str) -> bool:
        return origin_matches(origin, self.site_origins)
