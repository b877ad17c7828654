"""The admin API's contract: every answer a route can give, its security schemes and servers.

The OpenAPI document is generated from the routes, so it is exact only when each route names
every status it answers with the model of its body. ``responses(...)`` builds that table for
a route: its success, its own errors, and the answers every admin route shares (``401`` and
``403`` before the route runs, ``422`` for a bad parameter or body, ``415`` and ``400`` for
a body that is not JSON or not UTF-8). Use it on every ``/api/v1`` route.
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.models import (
    APIKey,
    APIKeyIn,
    HTTPBearer,
    SecurityScheme,
    Server,
    ServerVariable,
)
from pydantic import BaseModel, Field

JSON = "application/json"


class ErrorBody(BaseModel):
    """Every error of the admin API, except those of validation."""

    message: str


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description='Where: ("path" | "query" | "body", name, ...).')
    type: str = Field(description="What is wrong, as pydantic names it (missing, string_too_long, ...).")
    msg: str | None = Field(None, description="Why, in words (a value the lead rules refuse: a bad address...).")


class ValidationProblem(BaseModel):
    """A parameter or body the route's schema refuses (``422``), or a body type it does not take (``415``)."""

    statusCode: int
    detail: list[ValidationIssue]


SHARED_ERRORS: dict[int, tuple[str, type[BaseModel]]] = {
    401: ("Not authenticated (leadflow dev: no or a wrong bearer admin token)", ErrorBody),
    403: (
        "Refused by API Gateway's IAM authorizer (no or a bad SigV4 signature, or not allowed), or a person's "
        "role may not do this",
        ErrorBody,
    ),
    422: ("A path, query or body value breaks the schema: each one is named", ValidationProblem),
    503: ("The table cannot take the request now: try again after Retry-After seconds", ErrorBody),
}
BODY_ERRORS: dict[int, str] = {
    400: "The body is not UTF-8 text",
    415: "The body is not application/json (the only type the admin API reads)",
}


def responses(
    status: int,
    model: type[BaseModel] | None,
    description: str,
    *,
    errors: dict[int, str] | None = None,
    body: bool = False,
    more: dict[int, tuple[str, type[BaseModel]]] | None = None,
    content: dict[str, Any] | None = None,
) -> dict[int, Any]:
    """The OpenAPI responses of an admin route.

    Args:
        status: the success status (200, 201, 202).
        model: the success body's model (None for a body-less answer).
        description: what the success means.
        errors: the route's own error statuses (404, 409, 400...) and what each means; their
            body is ``ErrorBody``.
        body: whether the route takes a body (adds ``400`` and ``415``).
        more: further answers with their own model (e.g. ``200`` for an existing resource
            beside ``201`` for a new one).
        content: the success's content when it is not one JSON model (e.g. JSON or CSV).

    Returns:
        ``responses=`` for ``app.get`` / ``app.post`` / ``router.get`` ...
    """
    table: dict[int, Any] = {}
    if content is not None:
        table[status] = {"description": description, "content": content}
    elif model is not None:
        table[status] = {"description": description, "content": {JSON: {"model": model}}}
    else:
        table[status] = {"description": description}
    for code, (text, error_model) in {**SHARED_ERRORS, **(more or {})}.items():
        table[code] = {"description": text, "content": {JSON: {"model": error_model}}}
    for code, text in {**(BODY_ERRORS if body else {}), **(errors or {})}.items():
        table[code] = {"description": text, "content": {JSON: {"model": ErrorBody}}}
    return dict(sorted(table.items()))


SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    "sigv4": APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description=(
            "In AWS: API Gateway's IAM authorizer. Sign each request with AWS Signature Version 4 "
            "(service execute-api), e.g. with awscurl; the caller needs execute-api:Invoke on the route."
        ),
        openapi_extensions={"x-amazon-apigateway-authtype": "awsSigv4"},
    ),
    "adminToken": HTTPBearer(
        description=(
            "leadflow dev only: `Authorization: Bearer <admin_token>`, the token printed at start "
            "and served at GET /_dev/stack (the local gateway stands in for the IAM authorizer)."
        ),
    ),
    "cognitoIdToken": HTTPBearer(
        bearerFormat="JWT",
        description=(
            "People: a console user's Amazon Cognito ID token, `Authorization: Bearer <token>`, on the "
            "`/console` servers (API Gateway's JWT authorizer checks it). The person's group decides: "
            "admin (everything), marketer (reads and changes, no erasure), sales-viewer (reads only; 403 "
            "otherwise). Sign in at /console/ or with Cognito's InitiateAuth (USER_PASSWORD_AUTH)."
        ),
    ),
}
SECURITY: list[dict[str, list[str]]] = [{"sigv4": []}, {"adminToken": []}, {"cognitoIdToken": []}]


def _aws_server(prefix: str, description: str) -> Server:
    return Server(
        url=f"https://{{api_id}}.execute-api.{{region}}.amazonaws.com{prefix}",
        description=description,
        variables={
            "api_id": ServerVariable(default="abcdef1234", description="The HTTP API's id"),
            "region": ServerVariable(default="eu-west-1", description="The stack's region"),
        },
    )


def _local_server(prefix: str, description: str) -> Server:
    return Server(
        url=f"http://127.0.0.1:{{port}}{prefix}",
        description=description,
        variables={"port": ServerVariable(default="8000", description="leadflow dev --port")},
    )


SERVERS = [
    _aws_server("", "The deployed HTTP API (stack output ApiUrl); IAM-authenticated"),
    _local_server("", "leadflow dev (the local stack); bearer admin token"),
    _aws_server("/console", "The deployed HTTP API for people; a console user's Cognito ID token"),
    _local_server("/console", "leadflow dev for people; a console user's ID token (people on GET /_dev/stack)"),
]


def is_json_media_type(content_type: str) -> bool:
    """Whether a ``Content-Type`` names JSON (``application/json`` or ``application/*+json``)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON, **(headers or {})},
        "body": ErrorBody(message=message).model_dump_json(),
        "isBase64Encoded": False,
    }


def unreadable_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """``415`` or ``400`` for a request body the admin API cannot read; None for a readable one.

    The resolver parses bodies itself, picking the parser by ``Content-Type``: a
    ``multipart/form-data`` without a boundary made it raise a bare ``ValueError``, and a JSON
    body that is not UTF-8 a ``UnicodeDecodeError`` (both ``500``). The admin API reads JSON
    only, so any other declared type is ``415``, and a body that is not UTF-8 text is ``400``,
    before the resolver parses anything.
    """
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "").strip()
    method = str((event.get("requestContext") or {}).get("http", {}).get("method", "")).upper()
    body = event.get("body") or ""
    if content_type and not is_json_media_type(content_type) and (body or method in ("POST", "PUT", "PATCH")):
        return _refusal(415, "The admin API reads application/json bodies only.", {"Accept-Post": JSON})
    if body and event.get("isBase64Encoded"):
        try:
            base64.b64decode(body, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return _refusal(400, "The body is not UTF-8 JSON.")
    return None


def allowed_methods(paths: dict[str, Any], path: str) -> list[str]:
    """The methods the document declares for ``path`` (templates like ``/leads/{lead_id}`` match one segment)."""
    segments = path.rstrip("/").split("/") if path != "/" else [""]
    static = paths.get(path.rstrip("/") or "/")  # a static path wins over a template (/leads/export)
    for template, operations in ([(path, static)] if static else []) + list(paths.items()):
        parts = template.rstrip("/").split("/")
        if len(parts) == len(segments) and all(
            p == s or (p.startswith("{") and p.endswith("}") and s) for p, s in zip(parts, segments, strict=True)
        ):
            return sorted(m.upper() for m in operations if m in ("get", "put", "post", "delete", "patch"))
    return []


def no_route(paths: dict[str, Any], method: str, path: str) -> tuple[int, dict[str, str], str]:
    """The answer to a request no route took: ``405`` with ``Allow`` for a method the path does
    not take, else ``404`` (no such path, or a path parameter no resource can have)."""
    methods = allowed_methods(paths, path)
    if methods and method.upper() not in methods:
        body = ErrorBody(message=f"This path takes {', '.join(methods)}.")
        return 405, {"Allow": ", ".join(methods)}, body.model_dump_json()
    return 404, {}, ErrorBody(message="Not Found").model_dump_json()


def error_answer(error: Exception) -> Response[str]:
    """The admin API's answer to a domain error: status, message and ``Retry-After`` from the errors table."""
    from leadflow.transport.errors import answer_for, message_of, retry_after

    wait = retry_after(error)
    body = ErrorBody(message=message_of(error, api=True)).model_dump_json()
    return Response(answer_for(error).status, "application/json", body, headers={"Retry-After": wait} if wait else None)
