"""The two email corpora through the real form endpoint (issue 13: corpora on every public route).

tests/property/test_email_corpora.py holds every case against ``normalize_email``; this runs a
fixed sample of them (every 8th input of each corpus, about 60 posts) through
``FormCaptureFunction`` as API Gateway sends a JSON post, so that the endpoint's answer is
the domain's verdict: ``200`` exactly when the address is accepted, else ``422`` naming
``email``, and never a ``5xx``.

Corpora: ../shared/external/suites/email-validator-2.4.0_syntax_cases.json (email-validator 2.4.0
tests) and ../shared/external/suites/isemail_tests.json (dominicsayers/isemail test/tests.xml @cfeefc3f).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from leadflow.domain.emails import InvalidEmail, normalize_email
from tests.conftest import EVENTS, external, load_json, unique_ip

pytestmark = pytest.mark.integration
SAMPLE_EVERY = 8


def corpus_inputs() -> list[str]:
    validator = load_json(external("suites/email-validator-2.4.0_syntax_cases.json"))
    isemail = load_json(external("suites/isemail_tests.json"))
    inputs = [c["email_input"] for cases in validator["cases"].values() for c in cases if "email_input" in c]
    addresses = [t["address"] for t in isemail["tests"] if isinstance(t.get("address"), str)]
    return inputs[::SAMPLE_EVERY] + addresses[::SAMPLE_EVERY]


def accepted(raw: str) -> bool:
    try:
        normalize_email(raw)
    except InvalidEmail:
        return False
    return True


def test_the_endpoint_answers_each_corpus_address_as_the_domain_judges_it(local_stack: Any) -> None:
    sample = load_json(EVENTS / "form_capture_post_json.json")
    inputs = corpus_inputs()
    assert len(inputs) >= 55
    wrong = []
    for raw in inputs:
        event = json.loads(json.dumps(sample))
        event["requestContext"]["http"]["sourceIp"] = unique_ip()
        event["body"] = json.dumps({"email": raw})
        event["isBase64Encoded"] = False
        answer = local_stack.runner.invoke("FormCaptureFunction", event)
        status = answer["statusCode"]
        body = json.loads(answer["body"])
        expected_ok = accepted(raw)
        ok = status == 200 and body["status"] == "received"
        refused = status == 422 and any(e["field"] == "email" for e in body.get("errors", []))
        if status >= 500 or (ok if not expected_ok else not ok) or (not expected_ok and not refused):
            wrong.append((raw, status, body))
    assert not wrong, wrong[:5]
