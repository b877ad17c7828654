"""API Gateway HTTP APIs' payload format 2.0 on the local gateway: a request as the event a
handler receives, and the handler's result as the response API Gateway would send.

Requests to a template route become real payload-2.0 events (lowercase headers, cookies,
base64 bodies for non-text content, ``requestContext.http.sourceIp``, path parameters).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/problem+json")


def _is_text(content_type: str, body: bytes) -> bool:
    """Whether the body travels as text: a text type in UTF-8 (anything else goes base64, so
    that the handler reads the bytes in the charset the client declared)."""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if not (media.startswith(TEXT_TYPES) or media.endswith("+json")):
        return False
    charset = params.partition("charset=")[2].split(";")[0].strip().strip('"').lower()
    if charset not in ("", "utf-8", "utf8"):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _source_ip(request: Request) -> str:
    """The client address; a loopback client may name another with X-Forwarded-For.

    API Gateway takes ``sourceIp`` from the connection. Locally every client is on
    loopback, so tests and load scripts name the visitor they play this way.
    """
    remote = request.remote_addr or "127.0.0.1"
    forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
    if forwarded and remote in ("127.0.0.1", "::1"):
        return forwarded[:64]
    return remote


def api_gateway_event(request: Request, route_key: str, path_parameters: dict[str, str], body: bytes) -> dict[str, Any]:
    """A payload-2.0 event as API Gateway HTTP APIs send it."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        if key == "cookie":
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers.setdefault("x-forwarded-proto", request.scheme)  # as API Gateway adds it (https there)
    cookies = [c.strip() for c in request.headers.get("Cookie", "").split(";") if c.strip()]
    query: dict[str, str] = {}
    for key, values in request.args.lists():
        query[key] = ",".join(values)
    now = datetime.now(UTC)
    content_type = request.headers.get("Content-Type", "")
    text = _is_text(content_type, body) if body else True
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode("latin-1"),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "leadflowdev",
            "domainName": request.host.split(":")[0],
            "domainPrefix": "leadflowdev",
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": _source_ip(request),
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode("utf-8") if text else base64.b64encode(body).decode()
    return event


def lambda_response(result: Any) -> Response:
    """A payload-2.0 Lambda result as the HTTP response API Gateway would send."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return Response(json.dumps(result), 200, content_type="application/json")
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    response = Response(data, int(result["statusCode"]))
    response.headers.clear()
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    if "content-type" not in response.headers and data:
        response.headers["Content-Type"] = "application/json"
    return response
