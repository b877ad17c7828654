"""The outbox for a terminal, and acting on a sent email as its recipient would.

``GET /_dev/mail?format=text`` lists the emails one a line; ``POST /_dev/mail/<n>/open`` fetches
the email's own open pixel and ``POST /_dev/mail/<n>/click`` follows one of its own tracked links
(``{"link": i}``, default the first), through the gateway as a mail client or browser would: the
opens and clicks are recorded by the TrackFunction and drive the sequences' branches.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

_PIXEL = re.compile(r'<img[^>]+src="(?P<url>[^"]*/t/o/[^"]+)"')
_LINK = re.compile(r'<a[^>]+href="(?P<url>[^"]*/t/c/[^"]+)"')


def text_listing(emails: list[dict[str, Any]], to: str = "") -> str:
    """``#  sent at  to  subject``, one email a line, oldest first (``to`` keeps one recipient's)."""
    lines = []
    for index, email in enumerate(emails):
        recipients = ", ".join(email["to"])
        if to and to.lower() not in recipients.lower():
            continue
        lines.append(f"{index}  {email.get('sent_at') or ''}  {recipients}  {email['subject']}")
    return "\n".join(lines) + "\n" if lines else "(no email sent yet)\n"


def tracked_urls(html: str) -> tuple[str | None, list[str]]:
    """The email's open pixel and its tracked links, in the order they appear."""
    pixel = _PIXEL.search(html)
    return (pixel["url"] if pixel else None), [m["url"].replace("&amp;", "&") for m in _LINK.finditer(html)]


def act(
    emails: list[dict[str, Any]], index: int, action: str, link: int, dispatch: Callable[[Request], Response]
) -> tuple[dict[str, Any], int]:
    """Open (``action == "open"``) or click link ``link`` of sent email ``index``; the answer and status."""
    if not 0 <= index < len(emails):
        return {"message": f"no email #{index}: the outbox has {len(emails)}"}, 404
    email = emails[index]
    pixel, links = tracked_urls(email["html"])
    if action == "open":
        url = pixel
        if url is None:
            return {"message": f"email #{index} has no open pixel (a plain-text or untracked email)"}, 409
    else:
        if not 0 <= link < len(links):
            return {"message": f"email #{index} has {len(links)} tracked link(s); link {link} is not one"}, 404
        url = links[link]
    path = "/" + url.split("://", 1)[-1].split("/", 1)[1]
    answer = dispatch(Request(EnvironBuilder(path=path, environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()))
    did = "opened" if action == "open" else "clicked"
    result: dict[str, Any] = {"email": index, "subject": email["subject"], "did": did}
    if action == "click":
        result["to"] = answer.headers.get("Location", "")
    result["status"] = answer.status_code
    return result, 200 if answer.status_code < 400 else 502
