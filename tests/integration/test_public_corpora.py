"""The Big List of Naughty Strings on every public route the other corpus tests do not reach (issue 13).

Already covered elsewhere, not repeated here: ``POST /forms/{form_id}`` (every field, JSON and
urlencoded: tests/property/test_parsers_property.py; any bytes and JSON:
tests/property/test_endpoint_property.py; the two email corpora: tests/property/test_email_corpora.py)
and ``POST /crm/{provider}/webhook`` (tests/property/test_crm_feedback_property.py).

Here each string goes, through the real handlers on the local stack (payload-2.0 events, as API
Gateway sends them), into: the token of ``GET /t/o/{token}``, ``GET /t/c/{token}``,
``GET /u/{token}`` and ``POST /u/{token}``; the checked and the free-text fields of ``POST /t/e``
site events (several strings an event: every field is checked); the form fields of a genuine
preferences post; the target of a signed click (``safe_redirect``); the form id of the hosted landing
page and its embed script (``GET /f/{form_id}``, ``/f/{form_id}/embed.js``); and the console's paths,
sign-in codes and states (through to the token endpoint) and session cookie (``/console/{proxy+}``). Every answer
must be below 500, and a click may only go to an allowed host.

Corpus: ../shared/external/suites/blns.json (minimaxir/big-list-of-naughty-strings @db33ec7b).
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from leadflow.config.workspace import Workspace
from leadflow.domain.tracking import safe_redirect
from leadflow.domain.urls import web_url
from tests.conftest import WORKSPACE, StackClient, external, load_json

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def naughty() -> list[str]:
    strings = load_json(external("suites/blns.json"))
    assert len(strings) > 500 and all(isinstance(s, str) for s in strings)
    return list(strings)


def http_event(route_key: str, path: str, params: dict[str, str], body: str = "", **headers: str) -> dict[str, Any]:
    method = route_key.split(" ", 1)[0]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"user-agent": "Mozilla/5.0", "origin": "https://www.example.com", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "leadflowdev",
            "domainName": "127.0.0.1",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.9.8.7", "userAgent": ""},
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
        },
        "pathParameters": params,
        "isBase64Encoded": False,
    }
    if body:
        event["body"] = body
    return event


def invoke_all(local_stack: Any, function: str, events: list[tuple[str, dict[str, Any]]]) -> set[int]:
    """Every event through the function's handler; the statuses seen. Fails on any exception or 5xx."""
    from leadflow.dev.runner import HandlerError

    failures: list[tuple[str, Any]] = []
    statuses: set[int] = set()
    for text, event in events:
        try:
            response = local_stack.runner.invoke(function, event)
        except HandlerError as error:
            failures.append((text, str(error)))
            continue
        statuses.add(response["statusCode"])
        if response["statusCode"] >= 500:
            failures.append((text, response))
    assert failures == []
    return statuses


def test_naughty_tokens_get_a_pixel_or_a_404(local_stack: Any, naughty: list[str]) -> None:
    # WHEN each string is the token of an open pixel and of a click
    opens = [(s, http_event("GET /t/o/{token}", f"/t/o/{s}", {"token": s})) for s in naughty]
    clicks = [(s, http_event("GET /t/c/{token}", f"/t/c/{s}", {"token": s})) for s in naughty]
    # THEN the pixel is always served, and no click goes anywhere
    assert invoke_all(local_stack, "TrackFunction", opens) == {200}
    assert invoke_all(local_stack, "TrackFunction", clicks) == {404}


def test_naughty_tokens_on_the_preferences_page_are_404(local_stack: Any, naughty: list[str]) -> None:
    body = "List-Unsubscribe=One-Click"
    pages = [(s, http_event("GET /u/{token}", f"/u/{s}", {"token": s})) for s in naughty]
    posts = [
        (s, http_event("POST /u/{token}", f"/u/{s}", {"token": s}, body, **{"content-type": FORM})) for s in naughty
    ]
    assert invoke_all(local_stack, "PreferencesFunction", pages) == {404}
    assert invoke_all(local_stack, "PreferencesFunction", posts) == {404}


FORM = "application/x-www-form-urlencoded"


def test_naughty_fields_of_a_genuine_preferences_post_are_data(
    local_stack: Any, client: StackClient, naughty: list[str]
) -> None:
    # GIVEN a genuine unsubscribe token of a known lead
    email = f"corpus.{uuid.uuid4().hex[:10]}@example.com"
    assert client.post_form("demo-signup", {"email": email, "consent": True}, as_json=True).status_code < 300
    lead = client.lead_by_email(email)
    assert lead is not None
    answer = client.http.post(f"{client.url}/_dev/tokens", json={"kind": "u", "lead_id": lead["lead_id"]}, timeout=10)
    token = answer.json()["token"]
    # WHEN the strings are the form fields of preferences posts (five fields, five strings a post)
    names = ["topics", "action", "List-Unsubscribe", "unsubscribe_all", "topic"]
    events = []
    for start in range(0, len(naughty), len(names)):
        chunk = naughty[start : start + len(names)]
        body = urlencode(list(zip(names, chunk, strict=False)))
        event = http_event("POST /u/{token}", f"/u/{token}", {"token": token}, body, **{"content-type": FORM})
        events.append((repr(chunk), event))
    # THEN every post gets a page below 500
    assert max(invoke_all(local_stack, "PreferencesFunction", events)) < 500


def test_naughty_site_events_are_stored_or_refused_with_a_4xx(local_stack: Any, naughty: list[str]) -> None:
    events = []
    # WHEN the strings are the checked fields of events (five strings an event: every field is checked)
    for start in range(0, len(naughty), len(CHECKED_FIELDS)):
        chunk = naughty[start : start + len(CHECKED_FIELDS)]
        document: dict[str, Any] = {"visitor_id": f"v-corpus-{start:05d}", "type": "page_view", "url": PAGE}
        document.update(zip(CHECKED_FIELDS, chunk, strict=False))
        events.append((repr(chunk), site_event(document)))
    # AND the strings are the free-text fields of stored custom events (four strings an event)
    for start in range(0, len(naughty), len(FREE_FIELDS)):
        chunk = naughty[start : start + len(FREE_FIELDS)]
        document = {"visitor_id": f"v-corpus-free-{start:05d}", "type": "custom", "url": PAGE, "name": "corpus"}
        document.update(zip(FREE_FIELDS, chunk, strict=False))
        events.append((repr(chunk), site_event(document)))
    # THEN each is stored (204) or refused with a 4xx naming the field, never a 5xx
    assert invoke_all(local_stack, "TrackFunction", events) <= {204, 400, 403, 413, 422}


PAGE = "https://www.example.com/pricing"
CHECKED_FIELDS = ["visitor_id", "type", "url", "seconds", "percent"]
FREE_FIELDS = ["title", "referrer", "asset", "name"]


def site_event(document: dict[str, Any]) -> dict[str, Any]:
    return http_event("POST /t/e", "/t/e", {}, json.dumps(document), **{"content-type": "application/json"})


def test_no_naughty_click_target_leaves_the_allow_list(naughty: list[str]) -> None:
    tracking = Workspace(WORKSPACE).tracking
    for text in naughty:
        for url in (text, f"https://www.example.com/{text}", f"https://{text}.example.com/", f"https://{text}"):
            location = safe_redirect(url, tracking)
            if location is not None:
                target = web_url(location)
                assert target is not None and tracking.host_allowed(target.host), (url, location)


def test_naughty_form_ids_on_the_hosted_landing_page_and_embed_are_404(local_stack: Any, naughty: list[str]) -> None:
    # WHEN each string is the form id of the hosted page and of its embed script (issue 18's public routes)
    pages = [(s, http_event("GET /f/{form_id}", f"/f/{s}", {"form_id": s})) for s in naughty]
    scripts = [(s, http_event("GET /f/{form_id}/embed.js", f"/f/{s}/embed.js", {"form_id": s})) for s in naughty]
    # THEN no such form, for every one of them (never a 5xx)
    assert invoke_all(local_stack, "LandingFunction", pages) == {404}
    assert invoke_all(local_stack, "LandingFunction", scripts) == {404}


def console_event(method: str, path: str, body: str = "", **headers: str) -> dict[str, Any]:
    """An event of the console's ``ANY /console/{proxy+}`` route, as API Gateway sends it."""
    event = http_event(
        f"{method} /console/{{proxy+}}", path, {"proxy": path.removeprefix("/console/")}, body, **headers
    )
    event["routeKey"] = event["requestContext"]["routeKey"] = "ANY /console/{proxy+}"
    return event


def test_naughty_console_paths_credentials_and_cookies_get_a_clear_answer(local_stack: Any, naughty: list[str]) -> None:
    # WHEN each string is a console path, the email and password of a sign-in, and the session cookie
    paths = [(s, console_event("GET", f"/console/{s}")) for s in naughty if not {"/", "?", "#"} & set(s)]
    sign_ins = []  # the hosted sign-in's redirect back: each string as its code and state, and as the
    for s in naughty:  # browser's own state cookie (so that the code goes to the token endpoint)
        callback = console_event("GET", "/console/oauth2/callback", cookie=f"lf_console_signin={s}.verifier")
        callback["queryStringParameters"] = {"code": s, "state": s}
        sign_ins.append((s, callback))
    cookies = [(s, console_event("GET", "/console/leads", cookie=f"lf_console={s}")) for s in naughty]
    # THEN every answer is a page or a 4xx: never a 5xx, and nobody is signed in by a naughty string
    assert max(invoke_all(local_stack, "ConsoleFunction", paths)) < 500
    assert invoke_all(local_stack, "ConsoleFunction", sign_ins) <= {400}
    assert invoke_all(local_stack, "ConsoleFunction", cookies) <= {200, 303, 401}
