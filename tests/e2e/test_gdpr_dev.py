"""GDPR on `leadflow dev` over HTTP and its command line, as an operator would use them: a person
signs up, asks for their data (the CLI), then for erasure (the admin API); then they are gone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import StackClient, unique_email

pytestmark = pytest.mark.e2e


def test_export_by_address_then_erasure_over_http(dev: StackClient) -> None:
    # GIVEN a person who signed up on the demo form and got the welcome email
    email = unique_email("e2e-gdpr")
    lead_id = dev.capture("demo-signup", {"email": email, "first_name": "Lin", "consent": True})
    dev.tick()
    # WHEN the operator exports their data by address from a shell
    exported = subprocess.run(
        [sys.executable, "-m", "leadflow.dev.cli", "gdpr", "export", email, "--dev", dev.url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # THEN it is one JSON document with what the person gave and what they were sent
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    assert document["lead_id"] == lead_id and document["profile"]["first_name"] == "Lin"
    assert document["emails_sent"] and document["consent_history"]
    # WHEN the person's erasure is asked for through the admin API
    auth = {"Authorization": f"Bearer {dev.token}"}
    erased = dev.http.delete(f"{dev.url}/api/v1/leads/{lead_id}", headers=auth, timeout=60)
    # THEN it answers counts only, and the lead is gone from every route
    assert erased.status_code == 200 and email not in erased.text
    assert erased.json()["counts"]["profile"] == 1
    assert dev.api(f"/leads/{lead_id}").status_code == 404
    assert dev.api(f"/leads/{lead_id}/export").status_code == 404
    assert dev.lead_by_email(email) is None
    # AND the OpenAPI document names both routes
    paths = dev.http.get(f"{dev.url}/api/v1/openapi.json", timeout=30).json()["paths"]
    assert "delete" in paths["/api/v1/leads/{lead_id}"] and "get" in paths["/api/v1/leads/{lead_id}/export"]
