"""Preferences and double opt-in: the preference page's unsubscribe and confirmation, and the
confirmation email a double opt-in form sends.

An unsubscribe (or a confirmation) the table cannot take is not lost: it waits on the intake
queue, and the intake replay applies it as of the time it was asked for (``preference_or_park``,
``replay_preference``). A consent the lead gave after that time wins: the stale unsubscribe is
then not applied.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadflow.domain.consent import lead_country
from leadflow.domain.definitions.consent import MARKETING_EMAIL
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.ids import new_id
from leadflow.domain.rendering import Sender
from leadflow.domain.tokens import TokenKind
from leadflow.ports.nurture import ProfileChange
from leadflow.services.intake import park
from leadflow.services.nurture.base import NurtureBase, _personal

if TYPE_CHECKING:
    from leadflow.ports.leads import IntakeQueue

PARKED_PREFERENCE = "preference"
"""The ``kind`` of an intake message that is a preference change the table could not take."""


def is_parked_preference(message: dict[str, Any]) -> bool:
    return message.get("kind") == PARKED_PREFERENCE


class Preferences(NurtureBase):
    """Unsubscribes, consent confirmations and double opt-in emails."""

    def _double_opt_in(self, profile: dict[str, Any], detail: dict[str, Any]) -> None:
        """A consent given on a form that asks for double opt-in, or where consent.yaml requires it (for
        the lead's country and the consent's purpose): mark it pending and send the confirmation email."""
        consent = detail.get("consent") or {}
        if not consent.get("granted") or profile.get("consent_confirmed_at"):
            return
        try:
            form = self.workspace.form(str(detail.get("form_id")))
        except Exception:  # noqa: BLE001 - an unknown or removed form asks nothing
            return
        purpose = str(consent.get("purpose") or MARKETING_EMAIL)
        required = self.workspace.consent.rule(lead_country(profile), purpose)[1]
        if not (form.double_opt_in or required):
            return
        lead_id = str(profile["lead_id"])
        now = self.clock.now()
        self.store.update_profile(lead_id, ProfileChange(assign={"consent_pending": True}))
        message_id = f"optin_{lead_id}_{int(now.timestamp())}"
        confirm = self.tokens.token(TokenKind.CONFIRM, lead_id, message_id, now)
        messaging = self.messaging
        links = self.tokens.links(lead_id, message_id, "double-opt-in", now)
        rendered = self.renderer.render(
            "double_opt_in",
            "Please confirm your subscription",
            _personal(profile),
            {"confirm_url": f"{self.tokens.base_url}/u/{confirm}?confirm=1"},
            Sender(messaging.from_address, messaging.from_name, messaging.reply_to, messaging.postal_address),
            links,
        )
        self.sender.send(rendered, str(profile["email"]), message_id, {"lead": lead_id, "kind": "double-opt-in"})

    def preference_or_park(
        self, intake: IntakeQueue, lead_id: str, action: str, topics: list[str] | None = None, source: str = ""
    ) -> dict[str, Any]:
        """Apply a change of the lead's preferences now (``action``: "unsubscribe", with ``topics``
        None for everything, or "confirm"); when the table cannot take it, keep it on the intake
        queue for ``replay_preference``. Returns what ``unsubscribe`` returns (``parked``: it waits).

        Raises:
            StorageUnavailable: neither the table nor the queue took it.
        """
        now = self.clock.now()
        try:
            return self._preference(lead_id, action, topics, source, now)
        except StorageUnavailable:
            change = {"lead_id": lead_id, "action": action, "topics": topics, "source": source, "at": now.isoformat()}
            park(intake, PARKED_PREFERENCE, change)
            return {"found": True, "parked": True, "topics": topics}

    def replay_preference(self, message: dict[str, Any]) -> dict[str, Any]:
        """Apply a preference change that waited on the intake queue, as of when it was asked for.

        Raises:
            StorageUnavailable: the table still cannot take it (the queue retries it).
        """
        at = datetime.fromisoformat(message["at"])
        return self._preference(message["lead_id"], message["action"], message["topics"], message["source"], at)

    def _preference(
        self, lead_id: str, action: str, topics: list[str] | None, source: str, at: datetime
    ) -> dict[str, Any]:
        if action == "confirm":
            return {"found": self.confirm(lead_id, at)}
        return self.unsubscribe(lead_id, topics, source, at)

    def unsubscribe(
        self, lead_id: str, topics: list[str] | None, source: str, when: datetime | None = None
    ) -> dict[str, Any]:
        """Unsubscribe from everything (``topics`` None) or from some topics; exits sequences of those topics.

        ``when``: the time it was asked for (a replay's; default now). A consent given after it
        wins: nothing is changed (``stale``)."""
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return {"found": False}
        now = when or self.clock.now()
        if when is not None and _consent_given_after(profile, now):
            return {"found": True, "stale": True, "exited": 0, "topics": topics}
        at = now.isoformat()
        if topics is None:
            # Unsubscribing from everything withdraws every consent the lead gave (and its confirmation:
            # a consent given again is confirmed again).
            purposes = sorted({MARKETING_EMAIL} | _granted_purposes(profile))
            event = self._event("lead.unsubscribed", now, lead_id=lead_id, source=source)
            withdrawn = {"granted": False, "at": at, "source": source}
            change: dict[str, Any] = {"unsubscribed": True, "unsubscribed_at": at, "consent_confirmed_at": None}
            change.update({f"consent_{purpose}": withdrawn for purpose in purposes})
            self.store.update_profile(lead_id, ProfileChange(assign=change, events=[event]))
            for purpose in purposes:
                self.store.record_consent(lead_id, new_id(now), {"purpose": purpose, **withdrawn})
            if profile.get("email"):
                self.store.suppress(self.address_key(str(profile["email"]).casefold()), "unsubscribe", at)
        else:
            self.store.update_profile(lead_id, ProfileChange(assign={"unsubscribed_topics": sorted(set(topics))}))
        # Any send claimed on a read from before this point now fails and is decided again.
        self.store.touch_mail(lead_id)
        exited = 0
        for enrollment, _rev in self.lead_enrollments(lead_id):
            sequence = self.workspace.sequences.get(enrollment.sequence_id)
            if enrollment.status == "active" and (topics is None or (sequence and sequence.topic in topics)):
                exited += self.exit(lead_id, enrollment.sequence_id, "unsubscribed")
        return {"found": True, "exited": exited, "topics": topics}

    def confirm(self, lead_id: str, when: datetime | None = None) -> bool:
        """The double opt-in link was followed (at ``when``, default now): consent confirmed,
        marketing email may start."""
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return False
        if profile.get("consent_confirmed_at"):
            return True
        now = when or self.clock.now()
        at = now.isoformat()
        event = self._event("lead.consent_confirmed", now, lead_id=lead_id)
        confirmed = {"consent_pending": False, "consent_confirmed_at": at}
        self.store.update_profile(lead_id, ProfileChange(assign=confirmed, events=[event]))
        consent = {"purpose": "marketing_email", "granted": True, "step": "confirmed", "at": at}
        self.store.record_consent(lead_id, new_id(now), {**consent, "source": "double_opt_in"})
        self._wake(lead_id)
        return True


def _granted_purposes(profile: dict[str, Any]) -> set[str]:
    """The purposes the profile holds a granted consent for (``consent_<purpose>: {"granted": true}``)."""
    return {
        key.removeprefix("consent_")
        for key, value in profile.items()
        if key.startswith("consent_") and isinstance(value, dict) and value.get("granted") is True
    }


def _consent_given_after(profile: dict[str, Any], at: datetime) -> bool:
    """Whether the profile holds a consent granted after ``at`` (the lead asked again since)."""
    for purpose in _granted_purposes(profile):
        given = profile[f"consent_{purpose}"].get("at")
        if given and datetime.fromisoformat(str(given)) > at:
            return True
    return False
