"""``GET|POST /u/{token}``: the unsubscribe and preference page, and double opt-in confirmation.

- GET never changes anything (mail scanners prefetch links): it shows the page.
- POST ``List-Unsubscribe=One-Click`` (RFC 8058; urlencoded or multipart): unsubscribed from
  everything at once, ``200``, no redirect.
- POST from the page: ``action=unsubscribe_all``, ``action=update`` (the ``topic`` boxes left
  ticked stay subscribed) or, with a confirmation token, ``action=confirm``.
- A forged, altered or expired token: ``404``, nothing changes. Bad bodies: ``400``/``413``/``415``.
- The table down: a change waits on the intake queue and is applied when it is back (the answer is
  the same); when the queue is down too, or the page cannot be read, ``503`` with ``Retry-After``.
"""

from __future__ import annotations

from html import escape
from typing import Any

from leadflow.domain.errors import MalformedBody, PayloadTooLarge, StorageUnavailable, UnsupportedContentType
from leadflow.domain.tokens import InvalidToken, TokenKind, TrackingToken, verify
from leadflow.ports.leads import IntakeQueue
from leadflow.services.nurture import NurtureService
from leadflow.transport.errors import answer_for_class
from leadflow.transport.form_body import decode_fields
from leadflow.transport.http import html_response, lower_headers

MAX_PREFERENCES_BODY = 16 * 1024
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{title}</title><style>
body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}}
button{{padding:.6rem 1rem;margin:.4rem .4rem 0 0}}label{{display:block;margin:.4rem 0}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(status: int, title: str, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return html_response(status, PAGE.format(title=escape(title), body=body), headers)


def _unavailable() -> dict[str, Any]:
    text = "We cannot reach your preferences right now. Please try again in a minute."
    return _page(503, "Try again in a minute", f"<p>{text}</p>", {"retry-after": "60"})


def _answer(kind: type[Exception]) -> dict[str, Any]:
    """The page answering an error of ``kind``, as the errors table words it."""
    answer = answer_for_class(kind)
    title, text = answer.page
    return _page(answer.status, title, f"<p>{escape(text)}</p>")


def not_found() -> dict[str, Any]:
    return _answer(InvalidToken)


def _token(event: dict[str, Any], service: NurtureService) -> TrackingToken | None:
    text = str((event.get("pathParameters") or {}).get("token") or "")
    now = service.clock.now()
    for kind in (TokenKind.UNSUBSCRIBE, TokenKind.CONFIRM):
        try:
            return verify(text, service.tokens.keys(), kind, now)
        except InvalidToken:
            continue
    return None


def handle_preferences_request(event: dict[str, Any], service: NurtureService, intake: IntakeQueue) -> dict[str, Any]:
    """Answer one API Gateway event for ``/u/{token}``; ``intake``: where a change the table
    cannot take waits (the intake queue)."""
    try:
        return _handle(event, service, intake)
    except StorageUnavailable:  # the page cannot be read, or neither the table nor the queue took a change
        return _unavailable()


def _handle(event: dict[str, Any], service: NurtureService, intake: IntakeQueue) -> dict[str, Any]:
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method") or "GET").upper()
    token = _token(event, service)
    if token is None:
        return not_found()
    if method == "GET":
        return _confirm_page() if token.kind is TokenKind.CONFIRM else _preferences_page(service, token)
    if method != "POST":
        return _page(405, "Method not allowed", "<p>Use the page's buttons.</p>")
    headers = lower_headers(event)
    try:
        fields, _media = decode_fields(event, headers)
    except (PayloadTooLarge, UnsupportedContentType, MalformedBody) as error:
        return _answer(type(error))
    if len(event.get("body") or "") > MAX_PREFERENCES_BODY * 2:
        return _answer(PayloadTooLarge)
    if token.kind is TokenKind.CONFIRM:
        return _confirm(service, token, fields, intake)
    return _save(service, token, fields, intake)


def _confirm(
    service: NurtureService, token: TrackingToken, fields: dict[str, list[str]], intake: IntakeQueue
) -> dict[str, Any]:
    """The double opt-in page's post: confirm the subscription."""
    if (fields.get("action") or [""])[0] != "confirm":
        return _page(400, "Bad request", "<p>Press the button to confirm.</p>")
    if not service.preference_or_park(intake, token.lead_id, "confirm")["found"]:
        return not_found()
    return _page(200, "Subscription confirmed", "<p>Thank you: your subscription is confirmed.</p>")


def _save(
    service: NurtureService, token: TrackingToken, fields: dict[str, list[str]], intake: IntakeQueue
) -> dict[str, Any]:
    """A one-click unsubscribe (RFC 8058), or the preference page's own post."""
    if (fields.get("List-Unsubscribe") or [""])[0] == "One-Click":
        service.preference_or_park(intake, token.lead_id, "unsubscribe", None, "one_click")
        return _page(200, "Unsubscribed", "<p>You are unsubscribed and will get no more marketing email.</p>")
    action = (fields.get("action") or [""])[0]
    if action == "unsubscribe_all":
        done = service.preference_or_park(intake, token.lead_id, "unsubscribe", None, "preferences_page")
    elif action == "update":
        topics = {t.id for t in service.messaging.topics}
        keep = {t for t in fields.get("topic", []) if t in topics}
        done = service.preference_or_park(
            intake, token.lead_id, "unsubscribe", sorted(topics - keep), "preferences_page"
        )
    else:
        return _page(400, "Bad request", "<p>Unknown request. Use the page's buttons.</p>")
    if not done.get("found"):
        return not_found()
    return _page(200, "Preferences saved", "<p>Your email preferences are saved.</p>")


def _confirm_page() -> dict[str, Any]:
    return _page(
        200,
        "Confirm your subscription",
        '<form method="post"><input type="hidden" name="action" value="confirm">'
        "<p>Please confirm that you want to receive our emails.</p>"
        '<button type="submit">Confirm my subscription</button></form>',
    )


def _preferences_page(service: NurtureService, token: TrackingToken) -> dict[str, Any]:
    lead = service.store.get_lead(token.lead_id) or {}
    unsubscribed = bool(lead.get("unsubscribed"))
    off = set(lead.get("unsubscribed_topics") or ())
    boxes = "".join(
        f'<label><input type="checkbox" name="topic" value="{escape(t.id)}"'
        f"{'' if t.id in off or unsubscribed else ' checked'}> "
        f"{escape(t.name)}<br><small>{escape(t.description)}</small></label>"
        for t in service.messaging.topics
    )
    status = "<p><strong>You are unsubscribed from all marketing email.</strong></p>" if unsubscribed else ""
    return _page(
        200,
        "Email preferences",
        f'{status}<form method="post"><p>Choose what you want to hear about:</p>{boxes}'
        '<button type="submit" name="action" value="update">Save preferences</button>'
        '<button type="submit" name="action" value="unsubscribe_all">Unsubscribe from all</button></form>',
    )
