"""Share codes: each sales rep's or partner's link carries ``ref=<code>``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

REF_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class Referrer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, Field(pattern=REF_CODE_PATTERN)]
    name: str
    kind: Literal["rep", "partner", "customer", "employee"] = "rep"
    email: str | None = None


class ReferrerList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    referrers: list[Referrer] = Field(default_factory=list)
