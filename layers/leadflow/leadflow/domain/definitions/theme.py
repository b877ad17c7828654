"""theme.yaml: how the hosted landing pages look (``GET /f/{form_id}`` and the embed).

Colours are ``#rrggbb``, the font a CSS font-family list of plain names, the logo an https URL:
each is checked so that nothing in the file can break out of the page's CSS or HTML. Absent,
the pages use the defaults below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from leadflow.domain.definitions import models
from leadflow.domain.definitions.models import ConfigProblem

if TYPE_CHECKING:  # config.models provides these when pydantic validates
    from annotated_types import Ge, Le, MaxLen

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
FONT = re.compile(r"^[A-Za-z0-9 ,-]{1,120}$")
LOGO = re.compile(r"^https://[^\s\"'<>()\\]{1,500}$")


@dataclass(frozen=True, slots=True)
class Theme:
    """The landing pages' look."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    brand: Annotated[str, MaxLen(80)] = "Example"
    """The name at the top of the page (plain text)."""
    logo_url: str = ""
    """An https URL of the logo shown beside the brand (none when empty)."""
    primary_color: str = "#3451d1"
    """Buttons and links."""
    background_color: str = "#f6f7fb"
    """The page behind the form."""
    text_color: str = "#1d2330"
    """Body text (keep a contrast of at least 4.5:1 with the background: WCAG AA)."""
    font_family: str = "system-ui, sans-serif"
    """A CSS font-family list of plain names."""
    corner_radius_px: Annotated[int, Ge(0), Le(24)] = 8
    """Rounding of the form's card, fields and button."""

    def __post_init__(self) -> None:
        for name in ("primary_color", "background_color", "text_color"):
            if not COLOUR.match(getattr(self, name)):
                raise ConfigProblem(name, f"'{getattr(self, name)}' is not a colour like #3451d1")
        if not FONT.match(self.font_family):
            raise ConfigProblem("font_family", "plain font names, commas and spaces only (e.g. Inter, sans-serif)")
        if self.logo_url and not LOGO.match(self.logo_url):
            raise ConfigProblem("logo_url", "an https URL without quotes, spaces or brackets")

    @classmethod
    def model_validate(cls, data: Any) -> Theme:
        return models.validate(cls, data if data is not None else {})

    @classmethod
    def from_trusted(cls, data: dict[str, Any]) -> Theme:
        return cls(**data)
