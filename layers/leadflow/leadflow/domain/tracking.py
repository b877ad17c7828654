"""What the tracking endpoints accept: site events from the snippet, and safe click redirects."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from leadflow.domain.definitions.tracking import TrackingConfig
from leadflow.domain.errors import FieldError, InvalidSubmission
from leadflow.domain.submissions import clean_text, is_web_url
from leadflow.domain.urls import MAX_URL, web_url

VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
SITE_EVENT_TYPES = {
    "page_view": "page_viewed",
    "page_time": "page_time",  # time on a page, reported when it is left (not another view)
    "download": "download",
    "video_progress": "video_progress",
    "custom": "custom",
}
VIDEO_MILESTONES = (25, 50, 75, 100)


@dataclass(frozen=True)
class SiteEvent:
    """One event from the tracking snippet, checked."""

    visitor_id: str
    activity_type: str
    attributes: dict[str, Any]


def safe_redirect(url: str | None, config: TrackingConfig) -> str | None:
    """Where a tracked click may send the browser: ``url`` as the browser reads it, or None.

    The URL must be an unambiguous http(s) address (see ``domain.urls.web_url``: no
    credentials, control characters, backslashes or IP literals, and the browser's host equal
    to a plain parser's), and the host the browser would visit must be allowed in
    ``tracking.yaml``. The answer is the WHATWG serialization, so the ``Location`` header is
    exactly what the browser requests.
    """
    target = web_url(url, MAX_URL)
    if target is None or not config.host_allowed(target.host):
        return None
    return target.href


def _text(data: dict[str, Any], name: str, limit: int, errors: list[FieldError], required: bool = False) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            errors.append(FieldError(name, "is required"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be text"))
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        errors.append(FieldError(name, "contains characters that are not valid Unicode"))
        return None
    cleaned = clean_text(value)
    if len(cleaned) > limit:
        errors.append(FieldError(name, f"must be at most {limit} characters"))
        return None
    return cleaned or None


def _number(data: dict[str, Any], name: str, low: float, high: float, errors: list[FieldError]) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        errors.append(FieldError(name, f"must be a number from {low:g} to {high:g}"))
        return None
    return float(value)


def parse_site_event(data: Any) -> SiteEvent:  # noqa: C901 - one check per site-event field, each naming its 422
    """A site event posted by the snippet (``POST /t/e``).

    Raises:
        InvalidSubmission: naming each bad field.
    """
    if not isinstance(data, dict):
        raise InvalidSubmission([FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    visitor = data.get("visitor_id")
    if not isinstance(visitor, str) or not VISITOR_ID.match(visitor):
        errors.append(FieldError("visitor_id", "must be 8-64 of A-Z, a-z, 0-9, - and _"))
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in SITE_EVENT_TYPES:  # a list or object is unhashable
        errors.append(FieldError("type", f"must be one of {sorted(SITE_EVENT_TYPES)}"))
    url = _text(data, "url", MAX_URL, errors, required=True)
    if url:
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        if scheme not in ("http", "https"):
            errors.append(FieldError("url", "must be an http(s) URL"))
    attributes: dict[str, Any] = {"url": url}
    title = _text(data, "title", 300, errors)
    referrer = _text(data, "referrer", MAX_URL, errors)
    seconds = _number(data, "seconds", 0, 86_400, errors)
    if title:
        attributes["title"] = title
    if referrer and is_web_url(referrer):
        attributes["referrer"] = referrer
    elif referrer:  # a javascript: or data: "referrer" is dropped, and the activity says so
        attributes["flags"] = ["unsafe_referrer"]
    if seconds is not None:
        attributes["seconds"] = int(seconds)
    elif kind == "page_time":
        errors.append(FieldError("seconds", "is required for page_time events"))
    if kind == "download":
        asset = _text(data, "asset", 300, errors) or (
            urlsplit(url).path.rsplit("/", 1)[-1] if url and not errors else None
        )
        if asset:
            attributes["asset"] = asset
    if kind == "video_progress":
        percent = data.get("percent")
        if percent not in VIDEO_MILESTONES or isinstance(percent, bool):
            errors.append(FieldError("percent", f"must be one of {list(VIDEO_MILESTONES)}"))
        else:
            attributes["percent"] = percent
        video = _text(data, "asset", 300, errors)
        if video:
            attributes["asset"] = video
    if kind == "custom":
        name = _text(data, "name", 100, errors)
        if data.get("name") in (None, ""):
            errors.append(FieldError("name", "is required for custom events"))
        if name:
            attributes["event"] = name
    if errors:
        raise InvalidSubmission(errors)
    return SiteEvent(visitor_id=str(visitor), activity_type=SITE_EVENT_TYPES[str(kind)], attributes=attributes)


def site_activity(
    event: SiteEvent, activity_id: str, owner: str | None, at: datetime, user_agent: str
) -> dict[str, Any]:
    """The activity a site event records, for a lead or (``owner`` None) an anonymous visitor."""
    return {
        "activity_id": activity_id,
        "lead_id": owner,
        "visitor_id": event.visitor_id,
        "type": event.activity_type,
        "at": at.isoformat(),
        **event.attributes,
        "user_agent": clean_text(user_agent)[:500],
    }
