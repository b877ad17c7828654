"""What keeps web pages out of the local stack's ``/_dev/`` area (the dev console, its token).

Two attacks a page in the developer's browser can make on a server on loopback:
- DNS rebinding: ``evil.example`` re-resolves to 127.0.0.1, and the page reads
  ``/_dev/stack`` (the admin token) as same-origin. Only loopback host names (and the
  address the stack was bound to) are answered: a rebound name arrives in the Host header.
- Cross-site requests: a form or ``fetch`` with ``text/plain`` needs no CORS preflight, so
  ``/_dev/clock`` or ``/_dev/faults`` could be changed from any site. A request that changes
  something must come from the console itself (its Origin) or be JSON without an Origin
  (curl, tests): a browser sends cross-site JSON only after a preflight, which is never granted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HOST = re.compile(r"^(?P<name>\[[0-9A-Fa-f:.]+\]|[^:\[\]/@\s]+)(:(?P<port>[0-9]{1,5}))?$")


def host_allowed(host: str, bound_host: str) -> bool:
    """Whether a request naming ``host`` (the Host header) is for this local stack.

    Loopback names with any port, and the address the stack listens on when it is a
    specific IP address (``--host 192.168.1.5`` to try it from a phone); never a name
    that could be rebound to loopback.
    """
    match = _HOST.match(host.strip())
    if not match:
        return False
    name = match["name"].lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        bound = ipaddress.ip_address(bound_host.strip("[]"))
        asked = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return not bound.is_unspecified and asked == bound


def _media_type(content_type: str) -> str:
    return content_type.split(";", maxsplit=1)[0].strip().lower()


def refusal(
    method: str, headers: Mapping[str, str], own_origin: str, has_body: bool, takes_any_body: bool = False
) -> tuple[int, str] | None:
    """Why a request to ``/_dev/`` is refused (status, message), or None when it may proceed.

    Args:
        method: the HTTP method.
        headers: the request headers, names in lower case.
        own_origin: ``http://<host>`` of this request (its Host already allowed).
        has_body: whether the request carries a body.
        takes_any_body: endpoints that play a third party for server-to-server calls
            (the fake CRM's API takes urlencoded OAuth requests): the content type is not
            checked, the origin still is.
    """
    if method.upper() in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    if origin is not None and origin != own_origin:
        return 403, "cross-site requests to /_dev/ are refused (Origin is not this server)"
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return 403, "cross-site requests to /_dev/ are refused (Sec-Fetch-Site)"
    if (
        origin is None
        and has_body
        and not takes_any_body
        and _media_type(headers.get("content-type", "")) != "application/json"
    ):
        return 415, "send JSON (content-type: application/json) to /_dev/"
    return None
