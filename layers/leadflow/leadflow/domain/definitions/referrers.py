"""Share codes: each sales rep's or partner's link carries ``ref=<code>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from leadflow.domain.definitions import models
from leadflow.domain.definitions.forms import REF_CODE_PATTERN
from leadflow.domain.definitions.models import ConfigProblem


@dataclass(frozen=True, slots=True)
class Referrer:
    """A rep or partner whose share link brings leads."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    code: str
    """The code in ?ref=<code>: 1-64 of A-Z, a-z, 0-9, - and _."""
    name: str
    """Who it is."""
    kind: Literal["rep", "partner", "customer", "employee"] = "rep"
    """What kind of referrer."""
    email: str | None = None
    """Where to reach them."""

    def __post_init__(self) -> None:
        if not re.match(REF_CODE_PATTERN, self.code):
            raise ConfigProblem("code", "must be 1-64 of A-Z, a-z, 0-9, - and _")


@dataclass(frozen=True, slots=True)
class ReferrerList:
    """referrers.yaml: every share code of the workspace."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    referrers: tuple[Referrer, ...] = ()
    """The share codes."""

    @classmethod
    def model_validate(cls, data: Any) -> ReferrerList:
        return models.validate(cls, data)

    @classmethod
    def from_trusted(cls, data: dict[str, Any]) -> ReferrerList:
        return cls(tuple(Referrer(**r) for r in data.get("referrers", ())))
