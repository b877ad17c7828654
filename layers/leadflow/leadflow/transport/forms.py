"""``POST /forms/{form_id}``: the public contract of form capture, as HTTP.

An HTML form post gets 303 to the thank-you page; JSON (or ``Accept: application/json``)
gets ``200 {"status": "received", "submission_id"}`` whoever the address belongs to (new, known
or spam: the public answer never tells who is a lead, and never carries a lead id); bad input
gets a 4xx naming what is wrong.
"""

from __future__ import annotations

import html
from typing import Any

from leadflow.domain.errors import (
    FormNotFound,
    IdempotencyConflict,
    IntakeUnavailable,
    InvalidSubmission,
    LeadflowError,
    MalformedBody,
    PayloadTooLarge,
    RateLimited,
    UnsupportedContentType,
)
from leadflow.domain.submissions import ClientInfo, FormPost
from leadflow.services.capture import CaptureResult, CaptureService, Outcome
from leadflow.transport.errors import answer_for, retry_after
from leadflow.transport.form_body import decode_fields
from leadflow.transport.http import html_response, json_response, lower_headers, redirect, source_ip

CORS_ALLOWED_HEADERS = "content-type, idempotency-key, accept"
IDENTITY_COOKIE = "lf_id"  # leadflow's signed visitor cookie, set by a tracked click


def _wants_json(headers: dict[str, str], media_type: str | None) -> bool:
    if media_type == "application/json":
        return True
    accept = headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _cors(service: CaptureService, form_id: str, headers: dict[str, str]) -> dict[str, str]:
    origin = headers.get("origin")
    if not origin:
        return {}
    try:
        allowed = service.workspace.form(form_id).origin_allowed(origin)
    except LeadflowError:
        return {}
    if not allowed:
        return {"vary": "Origin"}
    # Credentials: a fetch may carry the visitor cookie (the form's allowed origins only).
    return {"access-control-allow-origin": origin, "access-control-allow-credentials": "true", "vary": "Origin"}


def _error_page(title: str, problems: list[str]) -> str:
    items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Please check the form</title>"
        "<body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
        f"<h1>{html.escape(title)}</h1><ul>{items}</ul>"
        "<p>Use your browser's back button to correct the form and send it again.</p></body></html>"
    )


def _error(error: LeadflowError, as_json: bool, cors: dict[str, str]) -> dict[str, Any]:
    answer = answer_for(error)
    status, message = answer.status, answer.message
    headers = dict(cors)
    wait = retry_after(error)
    if wait is not None:
        headers["retry-after"] = wait
    errors = (
        [{"field": e.field, "message": e.message} for e in error.errors] if isinstance(error, InvalidSubmission) else []
    )
    detail = str(error) if isinstance(error, MalformedBody | UnsupportedContentType | PayloadTooLarge) else None
    if as_json:
        body: dict[str, Any] = {"message": message}
        if errors:
            body["errors"] = errors
        if detail:
            body["detail"] = detail
        return json_response(status, body, headers)
    problems = [f"{e['field']}: {e['message']}" for e in errors] or ([detail] if detail else [])
    return html_response(status, _error_page(message, problems), headers)


def _success(result: CaptureResult, thank_you_url: str, as_json: bool, cors: dict[str, str]) -> dict[str, Any]:
    if not as_json:
        return redirect(thank_you_url, cors)
    if result.outcome is Outcome.QUEUED:
        return json_response(202, {"status": "queued", "submission_id": result.submission_id}, cors)
    # New, known and spam look the same: no lead id, one status.
    return json_response(200, {"status": "received", "submission_id": result.submission_id}, cors)


def identity_cookie(event: dict[str, Any]) -> str | None:
    """The value of leadflow's visitor cookie in a payload-2.0 event, if any."""
    for cookie in event.get("cookies") or ():
        name, sep, value = cookie.partition("=")
        if sep and name.strip() == IDENTITY_COOKIE:
            return value.strip() or None
    return None


def handle_form_request(event: dict[str, Any], service: CaptureService) -> dict[str, Any]:
    """Answer one API Gateway event for ``/forms/{form_id}``."""
    headers = lower_headers(event)
    form_id = (event.get("pathParameters") or {}).get("form_id", "")
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST").upper()
    cors = _cors(service, form_id, headers)
    if method == "OPTIONS":
        try:
            service.workspace.form(form_id)
        except FormNotFound as error:
            return _error(error, True, {})
        if "access-control-allow-origin" in cors:
            cors.update(
                {
                    "access-control-allow-methods": "POST, OPTIONS",
                    "access-control-allow-headers": CORS_ALLOWED_HEADERS,
                    "access-control-max-age": "600",
                }
            )
        return {"statusCode": 204, "headers": cors, "body": ""}
    media_type: str | None = None
    try:
        fields, media_type = decode_fields(event, headers)
        post = FormPost(
            fields=fields,
            client=ClientInfo(
                ip=source_ip(event), user_agent=headers.get("user-agent", ""), referer=headers.get("referer", "")
            ),
            idempotency_key=headers.get("idempotency-key"),
            identity_token=identity_cookie(event),
        )
        result = service.capture(form_id, post)
        thank_you_url = service.workspace.form(form_id).thank_you_url
    except (
        MalformedBody,
        InvalidSubmission,
        FormNotFound,
        IdempotencyConflict,
        PayloadTooLarge,
        UnsupportedContentType,
        RateLimited,
        IntakeUnavailable,
    ) as error:
        return _error(error, _wants_json(headers, media_type), cors)
    return _success(result, thank_you_url, _wants_json(headers, media_type), cors)
