"""May this lead get an email of this purpose now? The consent decision, checked at send time.

What a lead's profile says about consent (written at capture, by the preference page, the double
opt-in link and SES complaints; every change is also an append-only ``CONSENT#`` record):

- ``consent_<purpose>``: the latest state, ``{"granted": bool, "at", "source" | "form_id", ...}``;
  ``granted: false`` is a withdrawal (unsubscribe, complaint);
- ``consent_pending``: a double opt-in confirmation email is out and not yet confirmed;
- ``consent_confirmed_at``: the confirmation link was followed (removed on withdrawal, so a
  consent given again is confirmed again);
- ``submissions`` and ``forms_submitted``: what the lead sent us (soft opt-in rests on it).

The decision, in order (``transactional`` emails skip it: they answer the person's own request):

1. withdrawn for the purpose: ``no_consent``;
2. a confirmation pending: ``awaiting_confirmation`` (the step waits; it gives up after the
   confirmation days);
3. granted: ``granted``, unless the region needs a confirmed consent that is not confirmed
   (``no_consent``);
4. never given: ``granted`` under ``opt_out``, and under ``soft_opt_in`` for a lead who used one
   of the ``soft_opt_in_forms``; else ``no_consent``.

Pure: no AWS, no clock; the policy is consent.yaml (``config.consent``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from leadflow.domain.countries import country_code
from leadflow.domain.definitions.consent import DEFAULT_POLICY, MARKETING_EMAIL, ConsentPolicy

GRANTED: Final = "granted"
NO_CONSENT: Final = "no_consent"
AWAITING_CONFIRMATION: Final = "awaiting_confirmation"
Decision = Literal["granted", "no_consent", "awaiting_confirmation"]
_TRUE_TEXTS = ("true", "1", "yes")


def consent_decision(purpose: str, profile: Mapping[str, Any], policy: ConsentPolicy | None = None) -> Decision:
    """Whether an email of ``purpose`` may go to the lead whose profile is ``profile``.

    Args:
        purpose: the email's purpose (a consent.yaml purpose, e.g. ``marketing_email``).
        profile: the lead profile item (see the module docstring for what is read).
        policy: consent.yaml; None is the default policy (opt-in everywhere, no double opt-in).

    Returns:
        ``granted``, ``no_consent`` (skip it: the enrollment exits, counted as no_consent), or
        ``awaiting_confirmation`` (double opt-in under way: wait).
    """
    policy = policy if policy is not None else DEFAULT_POLICY
    state = profile.get(f"consent_{purpose}")
    granted = _granted(state)
    if granted is False:
        return NO_CONSENT
    if _flag(profile.get("consent_pending")):
        return AWAITING_CONFIRMATION
    basis, needs_confirmation = policy.rule(lead_country(profile), purpose)
    if granted:
        if needs_confirmation and not profile.get("consent_confirmed_at"):
            return NO_CONSENT
        return GRANTED
    if basis == "opt_out":
        return GRANTED
    if basis == "soft_opt_in" and _used_any(profile, policy.soft_opt_in_forms):
        return GRANTED
    return NO_CONSENT


def may_track(purpose: str | None, profile: Mapping[str, Any], policy: ConsentPolicy | None = None) -> bool:
    """Whether an email may carry an open pixel and tracked links.

    A marketing email (``purpose`` set) goes out only with consent, so it is tracked. A
    transactional one (``purpose`` None: the reply to a demo request) goes to people who never
    consented too; for them it is sent plain (no pixel, links straight to their targets): reading
    what someone does with an email is itself processing their data (ePrivacy), and they agreed
    to none. It is tracked when the person consented to marketing email.
    """
    return purpose is not None or consent_decision(MARKETING_EMAIL, profile, policy) == GRANTED


def lead_country(profile: Mapping[str, Any]) -> str | None:
    """The lead's country as an ISO 3166 alpha-2 code, None when the profile does not say."""
    country = profile.get("country")
    return country_code(country) if isinstance(country, str) and country.strip() else None


def _granted(state: Any) -> bool | None:
    """True granted, False withdrawn, None never recorded."""
    if isinstance(state, Mapping):
        value = state.get("granted")
        return None if value is None else _flag(value)
    if state is None:
        return None
    return _flag(state)  # a plain yes/no some imports store


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().casefold() in _TRUE_TEXTS
    return bool(value)


def _used_any(profile: Mapping[str, Any], forms: tuple[str, ...]) -> bool:
    """Whether the lead submitted one of ``forms`` (its forms set, or its first and last form)."""
    if not forms:
        return False
    used = profile.get("forms_submitted")
    if isinstance(used, set | frozenset | list | tuple) and any(form in used for form in forms):
        return True
    first = profile.get("first_touch")
    first_form = first.get("form_id") if isinstance(first, Mapping) else None
    return profile.get("last_form_id") in forms or first_form in forms
