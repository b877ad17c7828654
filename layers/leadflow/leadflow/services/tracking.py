"""Recording what leads do: email opens and clicks (signed tokens) and site events (snippet).

A hit the table cannot take (throttled, down) is not lost: it waits on the intake queue, as a
form post does, and the intake replay stores it as it would have been stored when it came (its
id and time kept, so a replay stores it once: ``replay``). Only when the queue refuses it too is
it refused: the pixel is served and the click redirected all the same, a site event is answered 503.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from leadflow.config.workspace import Workspace
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.events import SOURCE_TRACKING, activity_recorded
from leadflow.domain.form_reports import page_view_key
from leadflow.domain.ids import new_id
from leadflow.domain.ratelimit import HitCounter
from leadflow.domain.reporting import day_of
from leadflow.domain.tokens import (
    InvalidToken,
    TokenKind,
    TrackingToken,
    sign,
    sign_render_time,
    token_digest,
    verify,
)
from leadflow.domain.tracking import SiteEvent, parse_site_event, safe_redirect, site_activity
from leadflow.ports.clock import Clock
from leadflow.ports.leads import ActivityStore, IntakeQueue
from leadflow.ports.reporting import PageViewCounter
from leadflow.services.intake import park

HIT_COUNTER_DAYS = 30
IDENTITY_DAYS = 90  # how long a tracked click identifies the browser to form capture
PARKED_HIT = "tracked_hit"
"""The ``kind`` of an intake message that is a tracked hit (not a form post): ``TrackingService.replay``."""
log = logging.getLogger(__name__)


def is_parked_hit(message: dict[str, Any]) -> bool:
    return message.get("kind") == PARKED_HIT


class TrackingService:
    def __init__(
        self,
        workspace: Workspace,
        store: ActivityStore,
        keys: Callable[[], list[bytes]],
        clock: Clock,
        *,
        page_views: PageViewCounter | None = None,
        intake: IntakeQueue | None = None,
    ) -> None:
        """``page_views``: counts each recorded page view for the forms-and-pages report; ``intake``:
        where a hit the table cannot take waits for its replay (None: it is refused)."""
        self.workspace = workspace
        self.store = store
        self.keys = keys
        self.clock = clock
        self.page_views = page_views
        self.intake = intake

    # ------------------------------------------------------------------ links in emails
    def issue(
        self,
        kind: TokenKind,
        lead_id: str,
        message_id: str,
        *,
        url: str | None = None,
        link_id: str | None = None,
        campaign: str | None = None,
    ) -> str:
        """A signed token for an email's open pixel, tracked link or unsubscribe link."""
        expires = self.clock.now() + timedelta(days=self.workspace.tracking.token_days)
        token = TrackingToken(kind, lead_id, message_id, int(expires.timestamp()), link_id, url, campaign)
        return sign(token, self.keys()[0])

    def _email_activity(self, text: str, kind: TokenKind, user_agent: str) -> TrackingToken | None:
        now = self.clock.now()
        try:
            token = verify(text, self.keys(), kind, now)
        except InvalidToken:
            return None
        activity = {
            "activity_id": new_id(now),
            "lead_id": token.lead_id,
            "type": "email_opened" if kind is TokenKind.OPEN else "email_clicked",
            "at": now.isoformat(),
            "message_id": token.message_id,
            "user_agent": user_agent[:500],
        }
        for name, value in (("link_id", token.link_id), ("url", token.url), ("campaign", token.campaign)):
            if value:
                activity[name] = value
        if token.link_id:
            activity["link_tag"] = token.link_id
        counter = HitCounter(
            key=f"HITS#{token_digest(text)}",
            cap=self.workspace.tracking.hits_per_token,
            expires_at=int((now + timedelta(days=HIT_COUNTER_DAYS)).timestamp()),
        )
        # The activity is its own event: the outbox relay publishes it from the table's stream.
        try:
            self.store.record_announced(token.lead_id, activity, SOURCE_TRACKING, counter)
        except StorageUnavailable:
            self._park(
                {
                    "hit": "email",
                    "lead_id": token.lead_id,
                    "activity": activity,
                    "counter": {"key": counter.key, "cap": counter.cap, "expires_at": counter.expires_at},
                }
            )
        return token

    def _park(self, hit: dict[str, Any]) -> None:
        """Keep a hit the table could not take on the intake queue, for ``replay``.

        Raises:
            StorageUnavailable: the queue did not take it either (or there is none).
        """
        if self.intake is None:
            raise StorageUnavailable("no intake queue")
        try:
            park(self.intake, PARKED_HIT, hit)
        except StorageUnavailable:
            log.error("tracked hit lost: neither the table nor the intake queue took it", extra={"hit": hit["hit"]})
            raise

    def replay(self, message: dict[str, Any]) -> None:
        """Store a hit that waited on the intake queue, as it would have been stored when it came:
        its id and time are kept, so a second replay of it writes nothing.

        Raises:
            StorageUnavailable: the table still cannot take it (the queue retries it).
        """
        if message["hit"] == "email":
            counter = HitCounter(**message["counter"])
            self.store.record_announced(message["lead_id"], message["activity"], SOURCE_TRACKING, counter)
        else:
            event = parse_site_event(message["body"])
            self._site_event(
                event, message["activity_id"], datetime.fromisoformat(message["at"]), message["user_agent"]
            )

    def open(self, text: str, user_agent: str = "") -> bool:
        """Record an open when the token is genuine (the pixel is served either way)."""
        return self._email_activity(text, TokenKind.OPEN, user_agent) is not None

    def click(self, text: str, user_agent: str = "") -> str | None:
        """Where a tracked click goes, recording it; None for forged, expired or unsafe links."""
        target = self.click_target(text, user_agent)
        return target[0] if target else None

    def click_target(self, text: str, user_agent: str = "") -> tuple[str, str] | None:
        """Where a tracked click goes and the visitor cookie it sets (recording the click);
        None for forged, expired or unsafe links.

        The cookie is leadflow's signed identity of the lead the email went to: a form post
        from this browser may then update that lead's profile (an unidentified one only
        fills blanks).
        """
        now = self.clock.now()
        try:
            token = verify(text, self.keys(), TokenKind.CLICK, now)
        except InvalidToken:
            return None
        target = safe_redirect(token.url, self.workspace.tracking)
        if target is None:
            return None
        with contextlib.suppress(StorageUnavailable):  # the click goes where it was signed to, whatever happens
            self._email_activity(text, TokenKind.CLICK, user_agent)
        expires = now + timedelta(days=IDENTITY_DAYS)
        identity = TrackingToken(TokenKind.IDENTITY, token.lead_id, "visitor", int(expires.timestamp()))
        return target, sign(identity, self.keys()[0])

    # ------------------------------------------------------------------ the site snippet
    def render_time(self) -> str:
        """Now, signed: the ``_lf_ts`` the snippet puts in a form as it renders (``GET /t/ts``)."""
        return sign_render_time(int(self.clock.now().timestamp() * 1000), self.keys()[0])

    def site_event(self, body: Any, user_agent: str = "") -> str:
        """Record a site event for its visitor (the lead, once known).

        Raises:
            InvalidSubmission: the event is not valid.
            StorageUnavailable: neither the table nor the intake queue took it.
        """
        event = parse_site_event(body)
        now = self.clock.now()
        activity_id = new_id(now)
        try:
            self._site_event(event, activity_id, now, user_agent)
        except StorageUnavailable:
            hit = {"hit": "site", "body": body, "user_agent": user_agent, "activity_id": activity_id}
            self._park({**hit, "at": now.isoformat()})
        return activity_id

    def _site_event(self, event: SiteEvent, activity_id: str, now: datetime, user_agent: str) -> None:
        lead_id = self.store.visitor_lead(event.visitor_id)
        activity = site_activity(event, activity_id, lead_id, now, user_agent)
        if lead_id:  # a lead's activity is its own event (the relay publishes it)
            written = self.store.record_announced(lead_id, activity, SOURCE_TRACKING)
        else:  # a visitor's waits, unannounced, until the visitor becomes a lead (stitch_visitor)
            written = self.store.record_activity(f"VISITOR#{event.visitor_id}", activity, [])
        if written and self.page_views is not None and activity["type"] == "page_viewed":
            try:
                self.page_views.viewed(page_view_key(day_of(now), activity.get("url")))
            except Exception:
                log.exception("page view not counted")


def stitch_visitor(store: ActivityStore, visitor_id: str, lead_id: str, now: datetime) -> int:
    """Give a new lead the site activities they had as an anonymous visitor (each once).

    Each earlier activity is written under the lead with its own id (a second stitch of the
    same visitor is refused by the condition) and announced, so scoring counts it.

    Returns:
        How many activities were attached now.
    """
    attached = 0
    for item in store.visitor_activities(visitor_id):
        activity = {k: v for k, v in item.items() if k not in ("PK", "SK")}
        activity["lead_id"] = lead_id
        event = activity_recorded(new_id(now), activity, now, SOURCE_TRACKING)
        if store.record_activity(f"LEAD#{lead_id}", activity, [event]):
            attached += 1
    return attached
