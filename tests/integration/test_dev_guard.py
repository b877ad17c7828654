"""The local stack's /_dev/ area against a hostile page in the developer's browser (issue 13, defect 13)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

import pytest

from tests.conftest import StackClient

pytestmark = pytest.mark.integration


def port(client: StackClient) -> int:
    return int(urlsplit(client.url).port or 80)


@pytest.mark.parametrize("host", ["evil.example", "rebind.evil.example:{port}", "127.0.0.1.nip.io:{port}"])
def test_a_rebound_host_name_never_gets_the_admin_token(client: StackClient, host: str):
    # GIVEN a page on evil.example whose name now resolves to 127.0.0.1 (DNS rebinding)
    # WHEN it reads /_dev/stack, the console or the landing page
    for path in ("/_dev/stack", "/_dev/", "/"):
        response = client.http.get(client.url + path, headers={"Host": host.format(port=port(client))}, timeout=10)
        # THEN it is refused, and the token is nowhere in the answer
        assert response.status_code == 403
        assert client.token not in response.text


def test_loopback_names_are_answered(client: StackClient):
    for host in (f"127.0.0.1:{port(client)}", f"localhost:{port(client)}"):
        response = client.http.get(client.url + "/_dev/stack", headers={"Host": host}, timeout=10)
        assert response.status_code == 200
        assert response.json()["admin_token"] == client.token


def test_a_cross_site_text_plain_post_changes_nothing(client: StackClient):
    # GIVEN the dev clock now
    before = client.http.get(client.url + "/_dev/clock", timeout=10).json()["now"]

    # WHEN another site posts text/plain (no CORS preflight) to move the clock and inject faults
    for path, body in (("/_dev/clock", '{"advance_seconds": 86400}'), ("/_dev/faults", '{"service": "dynamodb"}')):
        for headers in (
            {"Origin": "https://evil.example", "Content-Type": "text/plain"},
            {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
            {"Content-Type": "text/plain"},
        ):
            response = client.http.post(client.url + path, data=body, headers=headers, timeout=10)
            # THEN it is refused
            assert response.status_code in (403, 415), (path, headers, response.status_code)

    # AND the clock did not move, no fault was set
    after = client.http.get(client.url + "/_dev/clock", timeout=10).json()["now"]
    assert (datetime.fromisoformat(after) - datetime.fromisoformat(before)).total_seconds() < 3600
    assert client.http.get(client.url + "/_dev/faults", timeout=10).json() == []


def test_json_and_the_consoles_own_forms_still_work(client: StackClient):
    # curl or a test with JSON, and the console's own form post (its Origin), are served
    assert client.http.post(client.url + "/_dev/clock", json={"advance_seconds": 0}, timeout=10).status_code == 200
    own = client.http.post(
        client.url + "/_dev/crm/mode",
        data={"status": "200", "return_to": "/_dev/"},
        headers={"Origin": client.url},
        allow_redirects=False,
        timeout=10,
    )
    assert own.status_code in (200, 303)
