"""The public tracking routes, as HTTP: open pixel, click redirect, site events, the snippet."""

from __future__ import annotations

import base64
import contextlib
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from leadflow.domain.errors import InvalidSubmission, StorageUnavailable
from leadflow.services.tracking import IDENTITY_DAYS, TrackingService
from leadflow.transport.http import json_response, lower_headers

# The smallest transparent GIF (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {"cache-control": "no-store, no-cache, must-revalidate, private", "pragma": "no-cache", "expires": "0"}
MAX_EVENT_BYTES = 8 * 1024


@cache
def snippet() -> str:
    return (Path(__file__).parent / "lf.js").read_text(encoding="utf-8")


def pixel() -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "image/gif", **NO_CACHE},
        "body": base64.b64encode(PIXEL).decode(),
        "isBase64Encoded": True,
    }


def not_found() -> dict[str, Any]:
    return json_response(404, {"message": "Not Found"}, NO_CACHE)


def identity_cookie(token: str, event: dict[str, Any]) -> str:
    """``lf_id``: HttpOnly, for the API's own host. Forms on your site post to it cross-site,
    so in AWS (HTTPS) it is ``SameSite=None; Secure``; on the local stack (plain HTTP on
    loopback, landing page on the same origin) ``SameSite=Lax``."""
    domain = str((event.get("requestContext") or {}).get("domainName", ""))
    local = domain in ("127.0.0.1", "localhost", "::1", "[::1]")
    attributes = "SameSite=Lax" if local else "SameSite=None; Secure"
    return f"lf_id={token}; Path=/; Max-Age={IDENTITY_DAYS * 86400}; HttpOnly; {attributes}"


def _same_origin(origin: str, headers: dict[str, str]) -> bool:
    """A page served by the API's own host (the local stack's landing page, for one)."""
    try:
        return bool(headers.get("host")) and urlsplit(origin).netloc == headers["host"]
    except ValueError:
        return False


def _cors(service: TrackingService, headers: dict[str, str]) -> dict[str, str]:
    origin = headers.get("origin", "")
    if origin and service.workspace.tracking.origin_allowed(origin):
        return {"access-control-allow-origin": origin, "vary": "Origin"}
    return {"vary": "Origin"} if origin else {}


def handle_tracking_request(event: dict[str, Any], service: TrackingService) -> dict[str, Any]:
    """Answer one API Gateway event for ``/t/...``."""
    route = event.get("routeKey", "")
    headers = lower_headers(event)
    token = (event.get("pathParameters") or {}).get("token", "")
    agent = headers.get("user-agent", "")
    if route == "GET /t/o/{token}":
        with contextlib.suppress(StorageUnavailable):  # the pixel is served whatever happens
            service.open(token, agent)
        return pixel()
    if route == "GET /t/c/{token}":
        clicked = service.click_target(token, agent)
        if clicked is None:
            return not_found()
        target, identity = clicked
        return {
            "statusCode": 302,
            "headers": {"location": target, **NO_CACHE},
            "cookies": [identity_cookie(identity, event)],
            "body": "",
        }
    if route == "GET /t/ts":
        # A signed render time for a form on any site: public, and it tells nothing about anyone.
        return json_response(200, {"ts": service.render_time()}, {"access-control-allow-origin": "*", **NO_CACHE})
    if route == "GET /t/lf.js":
        return {
            "statusCode": 200,
            "headers": {
                "content-type": "application/javascript; charset=utf-8",
                "cache-control": "public, max-age=3600",
            },
            "body": snippet(),
        }
    cors = _cors(service, headers)
    if route == "ANY /t/e":  # any method but POST and OPTIONS
        allowed = {"allow": "OPTIONS, POST", **NO_CACHE}
        return json_response(405, {"message": "Send site events with POST."}, {**cors, **allowed})
    if route == "OPTIONS /t/e":
        if "access-control-allow-origin" in cors:
            cors.update(
                {
                    "access-control-allow-methods": "POST, OPTIONS",
                    "access-control-allow-headers": "content-type",
                    "access-control-max-age": "600",
                }
            )
        return {"statusCode": 204, "headers": cors, "body": ""}
    if route == "POST /t/e":
        origin = headers.get("origin")
        if origin and "access-control-allow-origin" not in cors and not _same_origin(origin, headers):
            # A beacon (text/plain) is sent whatever CORS says: site_origins is enforced here.
            return json_response(403, {"message": "Pages of this site may not send events (site_origins)."}, cors)
        return _site_event(event, service, cors, agent)
    return not_found()


def _site_event(event: dict[str, Any], service: TrackingService, cors: dict[str, str], agent: str) -> dict[str, Any]:
    body = event.get("body") or ""
    try:
        data = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode("utf-8")
    except ValueError:
        return json_response(400, {"message": "The request body could not be read."}, cors)
    if len(data) > MAX_EVENT_BYTES:
        return json_response(413, {"message": "The event is too large."}, cors)
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return json_response(400, {"message": "The body must be a JSON object."}, cors)
    try:
        service.site_event(document, agent)
    except InvalidSubmission as error:
        return json_response(
            422,
            {
                "message": "Some fields are not valid.",
                "errors": [{"field": e.field, "message": e.message} for e in error.errors],
            },
            cors,
        )
    except StorageUnavailable:
        return json_response(503, {"message": "Try again later."}, {**cors, "retry-after": "30"})
    return {"statusCode": 204, "headers": cors, "body": ""}
