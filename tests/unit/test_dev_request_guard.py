"""The local stack's /_dev/ guard (issue 13, defect 13): loopback hosts only, no cross-site writes."""

from __future__ import annotations

import pytest

from leadflow.dev.request_guard import host_allowed, refusal

pytestmark = pytest.mark.unit

OWN = "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "127.0.0.1", "localhost:1"]
)
def test_loopback_hosts_are_answered(host: str):
    assert host_allowed(host, "127.0.0.1")


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "127.0.0.1.nip.io:8000",
        "localhost.evil.example",
        "127.0.0.2:8000",
        "0.0.0.0:8000",
        "",
        "127.0.0.1@evil.example",
        "localhost:8000:1",
        "[::1",
    ],
)
def test_other_hosts_are_refused(host: str):
    # A rebound name reaches loopback with its own Host header: never answered
    assert not host_allowed(host, "127.0.0.1")


def test_the_bound_address_is_answered_unless_it_is_a_wildcard():
    assert host_allowed("192.168.1.5:8000", "192.168.1.5")
    assert not host_allowed("192.168.1.5:8000", "0.0.0.0")
    assert not host_allowed("192.168.1.6:8000", "192.168.1.5")


@pytest.mark.parametrize(
    ("headers", "has_body", "status"),
    [
        ({"origin": "https://evil.example", "content-type": "text/plain"}, True, 403),
        ({"origin": "null", "content-type": "application/json"}, True, 403),
        ({"origin": "http://localhost:8000", "content-type": "application/json"}, True, 403),
        ({"sec-fetch-site": "cross-site", "content-type": "text/plain"}, True, 403),
        ({"sec-fetch-site": "same-site", "content-type": "application/json"}, True, 403),
        ({"content-type": "text/plain"}, True, 415),
        ({"content-type": "application/x-www-form-urlencoded"}, True, 415),
        ({}, True, 415),
    ],
)
def test_cross_site_and_non_json_writes_are_refused(headers: dict[str, str], has_body: bool, status: int):
    answer = refusal("POST", headers, OWN, has_body)
    assert answer is not None and answer[0] == status


@pytest.mark.parametrize(
    ("method", "headers", "has_body"),
    [
        ("GET", {"origin": "https://evil.example"}, False),
        ("POST", {"content-type": "application/json; charset=utf-8"}, True),
        ("POST", {}, False),  # curl -X POST /_dev/tick
        ("POST", {"origin": OWN, "content-type": "application/x-www-form-urlencoded"}, True),  # the console's forms
        ("DELETE", {"sec-fetch-site": "same-origin", "origin": OWN}, False),
    ],
)
def test_json_clients_and_the_console_itself_may_write(method: str, headers: dict[str, str], has_body: bool):
    assert refusal(method, headers, OWN, has_body) is None


def test_the_fake_crm_takes_any_body_but_no_cross_site_request():
    assert (
        refusal("POST", {"content-type": "application/x-www-form-urlencoded"}, OWN, True, takes_any_body=True) is None
    )
    assert refusal("POST", {"origin": "https://evil.example"}, OWN, True, takes_any_body=True) == (
        403,
        "cross-site requests to /_dev/ are refused (Origin is not this server)",
    )
