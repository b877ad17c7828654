"""Property tests of the public form endpoint over HTTP on the local stack: never a 5xx.

Any body a client can send gets a 2xx/3xx or a 4xx, and an accepted JSON post always gets the
same answer, whoever the address belongs to (never a lead id).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import unique_ip

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("caught_up")]

FIELDS = [
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "company_size",
    "interest",
    "consent",
    "utm_source",
    "page_url",
    "referrer",
    "ref",
    "_lf_ts",
    "_lf_nonce",
    "website",
    "score",
    "stage",
]
scalars = st.one_of(st.text(max_size=300), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none())
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=5), scalars, max_size=2))
bodies = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=30)), values, max_size=12)
emails = st.one_of(st.emails(), st.text(max_size=80))
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(body=bodies, email=emails)
def test_any_json_body_gets_a_non_5xx_answer(client, body, email):
    body = {**body, "email": email}
    data = json.dumps(body, allow_nan=True)
    response = client.http.post(
        client.url + "/forms/demo-signup",
        data=data,
        timeout=30,
        headers={"Content-Type": "application/json", "X-Forwarded-For": unique_ip()},
    )
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        # the same answer for any accepted post (new, known, spam): never a lead id
        assert response.json().keys() == {"status", "submission_id"}
        assert response.json()["status"] == "received"


@SETTINGS
@given(
    raw=st.binary(max_size=2000),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded; charset=latin-1",
            "",
        ]
    ),
)
def test_any_bytes_get_a_non_5xx_answer(client, raw, content_type):
    headers = {"X-Forwarded-For": unique_ip()}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.http.post(
        client.url + "/forms/demo-signup", data=raw, headers=headers, timeout=30, allow_redirects=False
    )
    assert response.status_code < 500, response.text


@SETTINGS
@given(form_id=st.text(max_size=80))
def test_any_form_id_gets_a_non_5xx_answer(client, form_id):
    from urllib.parse import quote

    response = client.http.post(
        client.url + "/forms/" + quote(form_id, safe=""),
        json={"email": "a@example.com"},
        headers={"X-Forwarded-For": unique_ip()},
        timeout=30,
    )
    assert response.status_code < 500
