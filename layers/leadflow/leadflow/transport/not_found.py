"""The answer to a URL the HTTP API has no route for (its ``$default`` route): a page a person can
read, with where to go, for a browser; ``{"message": "Not Found"}`` for a program (and for an
``/api/`` path asked for JSON), instead of API Gateway's bare JSON for everyone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

PAGES = Path(__file__).parent / "console_pages"
MAX_PATH = 300  # a path is shown to the person, cut to this length


class NotFoundPages:
    def __init__(self, local: bool) -> None:
        """``local``: the local stack, whose page also lists the developer's pages (``/_dev/``)."""
        self.local = local
        self.templates = Environment(loader=FileSystemLoader(PAGES), autoescape=select_autoescape(["html", "j2"]))

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        path = str(event.get("rawPath") or "/")[:MAX_PATH]
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        accept = headers.get("accept", "").lower()
        wants_json = path.startswith("/api/") and "application/json" in accept
        if "text/html" not in accept or wants_json:
            return _answer("application/json", json.dumps({"message": "Not Found"}))
        page = self.templates.get_template("not_found.html.j2").render(person=None, path=path, local=self.local)
        return _answer("text/html; charset=utf-8", page)


def _answer(content_type: str, body: str) -> dict[str, Any]:
    headers = {
        "Content-Type": content_type,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    }
    return {"statusCode": 404, "headers": headers, "body": body}
