"""API Gateway (HTTP API, payload 2.0) request and response helpers."""

from __future__ import annotations

import json
from typing import Any


def lower_headers(event: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in (event.get("headers") or {}).items()}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "cache-control": "no-store", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
    }


def html_response(status: int, html: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
            **(headers or {}),
        },
        "body": html,
    }


def redirect(location: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": 303,
        "headers": {"location": location, "cache-control": "no-store", **(headers or {})},
        "body": "",
    }


def source_ip(event: dict[str, Any]) -> str:
    return str(((event.get("requestContext") or {}).get("http") or {}).get("sourceIp") or "unknown")
