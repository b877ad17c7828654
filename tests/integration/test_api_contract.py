"""The admin API is exactly what its OpenAPI document says (issue 13, defect 8).

schemathesis (every check: server errors, status codes, content types, headers, response
schemas, positive and negative data, missing auth, undeclared methods...) runs against the
document the local stack serves at ``/api/v1/openapi.json``, with all its phases (coverage,
fuzzing, stateful), a fixed seed and a bounded number of examples so that it takes seconds.
Real ids (a lead, the demo sequences, an account domain) are mixed into the generated path
parameters half of the time, so success answers are checked against their schemas too.
``SCHEMATHESIS_SEED`` and ``SCHEMATHESIS_EXAMPLES`` change the run (e.g. a longer one by hand).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, StackClient, unique_email, unique_ip

pytestmark = pytest.mark.integration

SCHEMATHESIS = Path(sys.executable).parent / "st"
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261204")
EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "5")
DEMO_SEQUENCES = ["welcome", "push-discount", "recycle"]


def toml_strings(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def run_schemathesis(location: str, base_url: str, config: str, workdir: Path, *options: str) -> str:
    """``st run`` with every check; the output (for the assertion message) when it finds anything."""
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(config, encoding="utf-8")
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config_file),
        "--no-color",
        "run",
        location,
        "--url",
        base_url,
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",  # schemathesis 4.32's coverage phase is not thread-safe (internal KeyError/SystemError with 2)
        "--request-timeout",
        "20",
        *options,
    ]
    if "negative_data_rejection.enabled = false" not in config:
        # --checks all on the command line would override a check an [[operations]] entry turns off
        command += ["--checks", "all"]
    # Bounded (the issue asks for it) but roomy: every new operation adds examples, and a loaded CI
    # machine runs them slower; the bound only keeps a hung run from hanging the suite.
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=workdir, check=False)
    return "" if result.returncode == 0 else result.stdout[-12000:] + result.stderr[-3000:]


def a_known_lead(client: StackClient) -> tuple[str, str]:
    email = unique_email("contract").replace("@example.com", "@contract-corp.example")
    posted = client.post_form(
        "demo-signup", {"email": email, "company": "Contract Corp", "consent": True}, as_json=True
    )
    assert posted.status_code < 300, posted.text
    lead = client.lead_by_email(email)
    assert lead is not None
    return str(lead["lead_id"]), str(lead["account_domain"])


def test_the_admin_api_answers_exactly_what_its_openapi_document_says(client: StackClient, tmp_path: Path) -> None:
    # GIVEN the local stack with one known lead, and its served OpenAPI document
    lead_id, domain = a_known_lead(client)
    config = f"""
[checks]
enabled = true

[dictionaries]
leads = {{ values = {toml_strings([lead_id])} }}
sequences = {{ values = {toml_strings(DEMO_SEQUENCES)} }}
domains = {{ values = {toml_strings([domain])} }}

[parameters]
"path.lead_id" = {{ dictionary = "leads", probability = 0.5 }}
"body.lead_id" = {{ dictionary = "leads", probability = 0.5 }}
"path.sequence_id" = {{ dictionary = "sequences", probability = 0.5 }}
"path.domain" = {{ dictionary = "domains", probability = 0.5 }}

# A period whose days are valid but reversed, or longer than 366 days, is a 400 (documented):
# OpenAPI cannot say that one query parameter must come after another.
[[operations]]
include-path-regex = "^/api/v1/reports/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]

# Leads, segment members, imports: a cursor must be one the list handed out (400), a CSV must have an email
# column (400), an address must be deliverable and a custom field name no standard one (422, each named):
# OpenAPI cannot say these (documented).
[[operations]]
include-path-regex = '^/api/v1/(leads(/export|/[{{]lead_id[}}])?|segments/[{{]segment_id[}}]/members|imports)$'
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "422"]
"""
    # WHEN schemathesis runs every check against it, authenticated as the admin
    failures = run_schemathesis(
        f"{client.url}/api/v1/openapi.json",
        client.url,
        config,
        tmp_path,
        "--header",
        f"Authorization: Bearer {client.token}",
    )
    # THEN it finds nothing
    assert not failures, failures


def test_the_document_declares_every_answer_security_and_servers(client: StackClient) -> None:
    document = client.http.get(f"{client.url}/api/v1/openapi.json", timeout=10).json()
    # THEN the machines' ways in are described: SigV4 (AWS) and the bearer admin token (leadflow dev)
    schemes = document["components"]["securitySchemes"]
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert schemes["adminToken"] == {**schemes["adminToken"], "type": "http", "scheme": "bearer"}
    # AND people's way in: a Cognito ID token on the /console servers
    assert schemes["cognitoIdToken"] == {**schemes["cognitoIdToken"], "type": "http", "scheme": "bearer"}
    assert schemes["cognitoIdToken"]["bearerFormat"] == "JWT"
    assert document["security"] == [{"sigv4": []}, {"adminToken": []}, {"cognitoIdToken": []}]
    assert {s["url"] for s in document["servers"]} == {
        "https://{api_id}.execute-api.{region}.amazonaws.com",
        "http://127.0.0.1:{port}",
        "https://{api_id}.execute-api.{region}.amazonaws.com/console",
        "http://127.0.0.1:{port}/console",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            successes = [code for code in responses if code.startswith("2")]
            # AND every operation has a success with a schema, and its errors carry error models
            assert successes, (method, path)
            for code, answer in responses.items():
                if code.startswith("2") and set(answer["content"]) == {"text/csv"}:
                    continue  # a CSV download (GET /api/v1/leads/export)
                schema = answer["content"]["application/json"]["schema"]
                ref = schema.get("$ref", "")
                if code.startswith("2"):
                    assert not ref.endswith(("/ErrorBody", "/ValidationProblem")), (method, path, code)
                    assert schema.get("type") != "string", (method, path, code)
                else:
                    assert ref.endswith("/ValidationProblem" if code == "422" else "/ErrorBody"), (method, path, code)
            assert {"401", "403", "422"} <= set(responses), (method, path)
            if "requestBody" in operation:
                assert {"400", "415"} <= set(responses), (method, path)
    handoff = document["paths"]["/api/v1/leads/{lead_id}/handoff"]["post"]["responses"]
    assert handoff["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/HandoffView")
    assert handoff["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/HandoffView")


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("multipart/form-data", b"reason=x", 415),  # no boundary: was a 500
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name=reason\r\n\r\nx\r\n--x--",
            415,
        ),
        ("application/x-www-form-urlencoded", b"reason=x", 415),
        ("text/plain", b"{}", 415),
        ("application/json", b"\xc4\x04\xff", 400),  # not UTF-8: was a 500
        ("application/json", b"{not json", 422),
    ],
)
def test_a_body_the_admin_api_cannot_read_is_a_4xx(
    client: StackClient, content_type: str, body: bytes, status: int
) -> None:
    lead_id, _ = a_known_lead(client)
    for path in (f"/api/v1/leads/{lead_id}/handoff", "/api/v1/sequences/welcome/enrollments"):
        response = client.http.post(
            f"{client.url}{path}",
            data=body,
            headers={"Content-Type": content_type, "Authorization": f"Bearer {client.token}"},
            timeout=10,
        )
        assert response.status_code == status, (path, response.text)
        assert "message" in response.json() or "detail" in response.json()


def test_an_undeclared_method_is_405_with_allow(client: StackClient) -> None:
    auth = {"Authorization": f"Bearer {client.token}"}
    response = client.http.delete(f"{client.url}/api/v1/sequences", headers=auth, timeout=10)
    assert (response.status_code, response.headers["allow"]) == (405, "GET")
    assert client.http.get(f"{client.url}/api/v1/nothing/here", headers=auth, timeout=10).status_code == 404
    # AND without credentials the gateway refuses before any routing
    assert client.http.delete(f"{client.url}/api/v1/sequences", timeout=10).status_code == 401


PUBLIC_DOCUMENT = ROOT / "docs" / "openapi-public.yaml"
PUBLIC_CONFIG = """
[checks]
enabled = true

# Form posts and site events pass rules JSON Schema cannot state (email-validator's address
# syntax, http(s) page URLs with a host, no control characters in text, a form that exists):
# a schema-valid post these refuse is a 400 or 422 naming the field, which the document lists.
[[operations]]
include-path-regex = "^/forms/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "403", "404", "409", "422", "429"]

# The same for site events. Also: which fields a site event needs depends on its type (`name`
# for custom, `seconds` for page_time, `percent` for video_progress). schemathesis 4.32 learns
# "name is required" from the 422 of a custom event without one, then calls every other event
# without a name invalid; so the negative-data check is off for this one operation (every
# other check stays on; the 422s themselves are tested in tests/unit/test_tokens_tracking.py).
[[operations]]
include-path = "/t/e"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "403", "404", "409", "422", "429"]
checks.negative_data_rejection.enabled = false
"""


def test_the_public_routes_answer_exactly_what_their_openapi_document_says(client: StackClient, tmp_path: Path) -> None:
    # GIVEN the document of the public routes (forms, tracking, preferences, CRM feedback)
    # WHEN schemathesis runs every check against the local stack, as an anonymous client
    failures = run_schemathesis(
        str(PUBLIC_DOCUMENT), client.url, PUBLIC_CONFIG, tmp_path, "--header", f"X-Forwarded-For: {unique_ip()}"
    )
    # THEN it finds nothing
    assert not failures, failures
