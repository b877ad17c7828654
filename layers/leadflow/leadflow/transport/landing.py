"""Hosted landing pages: ``GET /f/{form_id}`` (a workspace form as a page of its own, styled by
``theme.yaml``) and ``GET /f/{form_id}/embed.js`` (one ``<script>`` tag that shows the form on
another site, in an iframe of that page).

The page is plain HTML that works with JavaScript off: labelled fields, required ones marked for
assistive technology, the consent box, the honeypot, and the hidden fields every post carries:
attribution (filled from the page's address, or, embedded, from the host page's address the
script passes on), a nonce, and the render time signed by leadflow (``_lf_ts``), which lets form
capture tell a bot that posts at once from a person.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from leadflow.config.workspace import Workspace
from leadflow.domain.definitions.forms import ATTRIBUTION_FIELDS, NONCE_FIELD, TIMESTAMP_FIELD
from leadflow.errors import FormNotFound

PAGES = Path(__file__).parent / "landing_pages"
# What the embed passes on from the host page's address (page_url and referrer it sets itself).
CAMPAIGN_FIELDS = [name for name in ATTRIBUTION_FIELDS if name not in ("page_url", "referrer")]


class LandingPages:
    def __init__(self, workspace: Workspace, render_time: Callable[[], str], base_url: Callable[[], str]) -> None:
        """``render_time``: the signed ``_lf_ts`` of now; ``base_url``: the API's public URL (empty: the
        URL each request came in on)."""
        self.workspace, self.render_time, self.base_url = workspace, render_time, base_url
        self.templates = Environment(
            loader=FileSystemLoader(PAGES), autoescape=select_autoescape(["html.j2"]), trim_blocks=True
        )

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        path = str(event.get("rawPath") or "")
        form_id = str((event.get("pathParameters") or {}).get("form_id", ""))
        query = {k: str(v) for k, v in (event.get("queryStringParameters") or {}).items()}
        try:
            form = self.workspace.form(form_id)
        except FormNotFound:
            page = self.templates.get_template("missing.html.j2").render(theme=self.workspace.theme, form_id=form_id)
            return _answer(404, page, "text/html; charset=utf-8")
        if path.endswith("/embed.js"):
            script = self.embed_script(form.id, self._base(event))
            return _answer(200, script, "text/javascript; charset=utf-8", cache="max-age=300")
        embedded = query.get("embed") == "1"
        page = self.templates.get_template("form.html.j2").render(
            form=form,
            theme=self.workspace.theme,
            embedded=embedded,
            prefill={name: query.get(name, "")[:2000] for name in ATTRIBUTION_FIELDS},
            attribution_fields=ATTRIBUTION_FIELDS,
            rendered_at=self.render_time(),
            nonce=uuid.uuid4().hex,
            timestamp_field=TIMESTAMP_FIELD,
            nonce_field=NONCE_FIELD,
        )
        # Embedded: only the sites the form takes posts from may frame it (its allowed_origins).
        ancestors = " ".join(form.allowed_origins) if embedded and form.allowed_origins else "'none'"
        return _answer(200, page, "text/html; charset=utf-8", frame_ancestors=ancestors)

    def _base(self, event: dict[str, Any]) -> str:
        """The configured public URL, else the one this request came in on (API Gateway's domain name)."""
        domain = str(event.get("requestContext", {}).get("domainName", ""))
        return self.base_url() or (f"https://{domain}" if domain else "")

    def embed_script(self, form_id: str, base: str | None = None) -> str:
        """The script of the embed snippet: an iframe of the hosted page, given the host page's
        address, referrer and campaign parameters, sized to the form."""
        src = f"{base if base is not None else self.base_url()}/f/{quote(form_id)}"
        return self.templates.get_template("embed.js.j2").render(
            src=json.dumps(src), form_id=json.dumps(form_id), fields=json.dumps(CAMPAIGN_FIELDS)
        )

    def snippet(self, form_id: str) -> str:
        """What a site owner pastes: one script tag."""
        return embed_snippet(self.base_url(), form_id)


def embed_snippet(base: str, form_id: str) -> str:
    """The one script tag a site owner pastes to show a form (``base``: the API's public URL)."""
    return f'<script src="{base}/f/{quote(form_id)}/embed.js" async></script>'


def _answer(
    status: int, body: str, content_type: str, cache: str = "no-store", frame_ancestors: str = "'none'"
) -> dict[str, Any]:
    headers = {
        "Content-Type": content_type,
        "Cache-Control": cache,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
    if content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' https: data:; style-src 'self' 'unsafe-inline'; "
            f"script-src 'self' 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
        )
    return {"statusCode": status, "headers": headers, "body": body}
