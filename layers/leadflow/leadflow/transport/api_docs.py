"""The API explorer at ``/api/v1/docs``: Swagger UI over ``/api/v1/openapi.json``, served from the
package (swagger-ui-py ships Swagger UI's release files), never from a CDN.

The page loads three files of Swagger UI and one initializer of ours, all from
``/api/v1/docs/<file>``, so it runs under a policy of ``script-src 'self'`` with no inline script.
It is public, like the document it shows; trying an operation still needs the caller's
credentials (a SigV4 signature is beyond a browser, a Cognito ID token or the local admin token
is pasted under "Authorize").
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

DOCS_PATH = "/api/v1/docs"
OPENAPI_PATH = "/api/v1/openapi.json"
# Swagger UI's files the page needs (its package holds many more: the editor, source maps).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
INITIALIZER = "leadflow-explorer.js"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>leadflow admin API explorer</title>
<link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">
</head>
<body>
<noscript><p>The explorer needs JavaScript. The API is described in
<a href="{OPENAPI_PATH}">{OPENAPI_PATH}</a> (OpenAPI 3).</p></noscript>
<div id="swagger-ui"></div>
<script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/swagger-ui-standalone-preset.js"></script>
<script src="{DOCS_PATH}/{INITIALIZER}"></script>
</body>
</html>
"""

SCRIPT = f"""window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: "{OPENAPI_PATH}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    validatorUrl: null
  }});
}});
"""


@cache
def _static_folder() -> Path:
    """Where swagger-ui-py keeps Swagger UI's files (found without importing the package)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (layers/leadflow/requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def asset(name: str) -> tuple[bytes, str] | None:
    """One file of the explorer (its bytes and content type), or None for any other name."""
    if name == INITIALIZER:
        return SCRIPT.encode(), "text/javascript; charset=utf-8"
    if name not in ASSETS:
        return None
    return (_static_folder() / name).read_bytes(), ASSETS[name]


# ---------------------------------------------------------------------------- routes (the lead API includes them)
router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get(DOCS_PATH, include_in_schema=False)  # type: ignore[untyped-decorator]
def explorer() -> Response[str]:
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}
    return Response(200, "text/html; charset=utf-8", PAGE, headers=headers)


@router.get(f"{DOCS_PATH}/<name>", include_in_schema=False)  # type: ignore[untyped-decorator]
def explorer_file(name: str) -> Response[str]:
    found = asset(name)
    if found is None:
        return Response(404, "application/json", '{"message":"No such file of the API explorer."}')
    body, content_type = found
    # Swagger UI's files change only with the package: a day in caches; our initializer is tiny.
    return Response(200, content_type, body.decode("utf-8"), headers={"Cache-Control": "public, max-age=86400"})
