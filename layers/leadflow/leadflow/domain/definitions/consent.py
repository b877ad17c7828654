"""consent.yaml: what people may be emailed for, on which lawful basis, where.

- ``purposes``: what a consent is for (``marketing_email``, ``event_invitations``...). A form's
  consent box records a consent for one purpose; every marketing email step names one.
- ``default_basis``: the lawful basis for marketing email where no region says otherwise.
  ``opt_in`` (the default, GDPR and ePrivacy): only with a recorded, granted and unwithdrawn
  consent for the email's purpose. ``soft_opt_in`` (ePrivacy Art. 13(2), UK PECR reg. 22):
  also a person who gave their address while asking about buying (one of
  ``soft_opt_in_forms``) and has not objected. ``opt_out`` (e.g. CAN-SPAM): anyone who has not
  withdrawn.
- ``regions``: other bases for named countries (ISO 3166 alpha-2 codes), optionally for some
  purposes only; the first region that names the lead's country (and the purpose) wins. A lead
  whose country is unknown gets ``default_basis``.
- ``double_opt_in``: a consent counts only once confirmed through the confirmation email (every
  consent box of the workspace then sends one); a region may require it or not on its own.

Whatever the basis, a withdrawn consent (unsubscribe, complaint) stops every marketing email of
its purpose, and transactional steps (the reply to a person's own request) need no consent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from leadflow.domain.definitions import models
from leadflow.domain.definitions.models import ConfigProblem

if TYPE_CHECKING:  # config.models provides it when pydantic validates
    from annotated_types import MinLen

PURPOSE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
COUNTRY_PATTERN = re.compile(r"^[A-Z]{2}$")
MARKETING_EMAIL = "marketing_email"
Basis = Literal["opt_in", "soft_opt_in", "opt_out"]


@dataclass(frozen=True, slots=True)
class Purpose:
    """One thing people consent to."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    id: str
    """The purpose id forms and email steps name (a lowercase identifier)."""
    name: str
    """A human name, shown in the consent history."""
    description: str = ""

    def __post_init__(self) -> None:
        if not PURPOSE_PATTERN.match(self.id):
            raise ConfigProblem("id", f"purpose '{self.id}' must match {PURPOSE_PATTERN.pattern}")


@dataclass(frozen=True, slots=True)
class Region:
    """A lawful basis for named countries."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    countries: Annotated[tuple[str, ...], MinLen(1)]
    """ISO 3166 alpha-2 codes, upper case (US, GB, DE)."""
    basis: Basis
    """opt_in, soft_opt_in or opt_out for marketing email to leads from these countries."""
    name: str = ""
    """What the rule is, for the reader (e.g. "UK PECR: soft opt-in for enquirers")."""
    purposes: tuple[str, ...] = ()
    """Only for these purposes; every purpose when empty."""
    double_opt_in: bool | None = None
    """Require (true) or not (false) a confirmed consent here; the workspace's double_opt_in when absent."""

    def __post_init__(self) -> None:
        for country in self.countries:
            if not COUNTRY_PATTERN.match(country):
                raise ConfigProblem("countries", f"'{country}' is not an ISO 3166 alpha-2 code in upper case (DE, US)")


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    """consent.yaml: purposes, lawful basis per region, double opt-in."""

    __pydantic_config__: ClassVar[dict[str, Any]] = models.STRICT

    purposes: Annotated[tuple[Purpose, ...], MinLen(1)] = (
        Purpose(MARKETING_EMAIL, "Marketing email", "Product news, offers and nurture emails"),
    )
    """What people may consent to."""
    default_basis: Basis = "opt_in"
    """The lawful basis where no region names the lead's country."""
    regions: tuple[Region, ...] = ()
    """Other bases for named countries; the first that names the country (and purpose) wins."""
    double_opt_in: bool = False
    """A consent counts only once confirmed through the confirmation email."""
    soft_opt_in_forms: tuple[str, ...] = ()
    """Forms whose submission is an enquiry about buying (a demo or quote request): under soft_opt_in,
    their senders may get marketing email without ticking a box until they object."""

    def __post_init__(self) -> None:
        ids = [p.id for p in self.purposes]
        if len(set(ids)) != len(ids):
            raise ConfigProblem("purposes", "purpose ids must differ")
        for region in self.regions:
            for purpose in region.purposes:
                if purpose not in ids:
                    raise ConfigProblem("regions", f"purpose '{purpose}' is not in purposes ({', '.join(ids)})")
        uses_soft = self.default_basis == "soft_opt_in" or any(r.basis == "soft_opt_in" for r in self.regions)
        if uses_soft and not self.soft_opt_in_forms:
            raise ConfigProblem(
                "soft_opt_in_forms", "soft_opt_in needs the forms whose senders ask about buying (soft_opt_in_forms)"
            )

    def purpose_ids(self) -> frozenset[str]:
        return frozenset(p.id for p in self.purposes)

    def rule(self, country: str | None, purpose: str) -> tuple[Basis, bool]:
        """The lawful basis and whether a confirmed (double opt-in) consent is needed, for a lead from
        ``country`` (an ISO alpha-2 code, None when unknown) and an email of ``purpose``."""
        if country is not None:
            for region in self.regions:
                if country in region.countries and (not region.purposes or purpose in region.purposes):
                    confirm = region.double_opt_in if region.double_opt_in is not None else self.double_opt_in
                    return region.basis, confirm
        return self.default_basis, self.double_opt_in

    @classmethod
    def model_validate(cls, data: Any) -> ConsentPolicy:
        return models.validate(cls, data if data is not None else {})

    @classmethod
    def from_trusted(cls, data: Any) -> ConsentPolicy:
        return models.validate(cls, data)


DEFAULT_POLICY = ConsentPolicy()
"""Without consent.yaml: opt-in everywhere, for marketing email, no double opt-in."""
