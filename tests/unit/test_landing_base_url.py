"""The embed script points at the hosted page: the configured public URL, else the URL the
request came in on (the landing function cannot name its own API: a circular dependency)."""

from __future__ import annotations

import pytest

from leadflow.config.workspace import Workspace
from leadflow.transport.landing import LandingPages
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def embed(base_url: str, domain: str) -> str:
    pages = LandingPages(Workspace(ROOT / "workspace"), lambda: "signed", lambda: base_url)
    event = {
        "rawPath": "/f/demo-signup/embed.js",
        "pathParameters": {"form_id": "demo-signup"},
        "requestContext": {"domainName": domain},
    }
    answer = pages.handle(event)
    assert answer["statusCode"] == 200
    return str(answer["body"])


def test_the_configured_public_url_wins():
    assert '"https://forms.example.com/f/demo-signup"' in embed(
        "https://forms.example.com", "abc.execute-api.eu-west-1.amazonaws.com"
    )


def test_without_one_the_url_the_request_came_in_on():
    script = embed("", "abc123.execute-api.eu-west-1.amazonaws.com")
    assert '"https://abc123.execute-api.eu-west-1.amazonaws.com/f/demo-signup"' in script
