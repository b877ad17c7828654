"""Property tests of CRM feedback: the parsers refuse cleanly, decisions keep their promises, and
the public webhook endpoint never answers 5xx, whatever is posted to it.

The naughty strings (../shared/external/suites/blns.json) are used as field values of otherwise
well-formed, correctly signed feedback: they are data, never a crash.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leadflow.domain.crm_feedback import (
    OUTCOMES,
    STAGE_FOR_OUTCOME,
    Feedback,
    LeadRef,
    MalformedFeedback,
    decide,
    parse_generic,
    parse_hubspot,
    parse_salesforce,
)
from leadflow.domain.definitions.crm_feedback import CrmFeedbackConfig
from leadflow.domain.handoff import TRANSITIONS
from leadflow.domain.webhook_signing import sign
from tests.conftest import WORKSPACE, external, load_json

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified")


@cache
def config() -> CrmFeedbackConfig:
    from leadflow.config.workspace import Workspace

    return Workspace(WORKSPACE).crm_feedback


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
hubspot_keys = st.sampled_from(
    ["eventId", "subscriptionId", "objectId", "occurredAt", "subscriptionType", "propertyName", "propertyValue"]
)
hubspot_events = st.dictionaries(st.one_of(hubspot_keys, st.text(max_size=10)), json_values, max_size=8)


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(body=st.one_of(st.text(max_size=400), json_values.map(json.dumps), st.lists(hubspot_events).map(json.dumps)))
def test_hubspot_parser_returns_feedback_or_says_what_is_wrong(body: str) -> None:
    try:
        batch = parse_hubspot(body, config())
    except MalformedFeedback as error:
        assert error.problems
        return
    events = json.loads(body)
    assert len(batch.items) + batch.ignored == len(events)
    assert all(item.outcome in OUTCOMES and item.lead.external_id for item in batch.items)


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(body=st.one_of(st.text(max_size=400), json_values.map(json.dumps)))
def test_generic_parser_returns_feedback_or_says_what_is_wrong(body: str) -> None:
    try:
        item = parse_generic(body, "msg_1", NOW)
    except MalformedFeedback as error:
        assert error.problems
        return
    assert item.outcome in OUTCOMES and item.lead.lead_id


xml_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=60)


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(["", "<?xml version='1.0'?>", "<!DOCTYPE x [<!ENTITY a 'b'>]>"]),
    middle=xml_text,
    status=st.one_of(st.sampled_from(["Closed - Converted", "Working - Contacted"]), xml_text),
)
def test_salesforce_parser_returns_feedback_or_says_what_is_wrong(prefix: str, middle: str, status: str) -> None:
    sample = load_json(external("crm/salesforce_outbound_message_soap.json"))["request_xml"]
    from xml.sax.saxutils import escape

    body = sample.replace("<sf:Abbrev__c>AR</sf:Abbrev__c>", f"<sf:Status>{escape(status)}</sf:Status>{middle}")
    body = body.replace('xsi:type="sf:State_Province__c"', 'xsi:type="sf:Lead"')
    body = prefix + body.split("?>", 1)[-1]
    try:
        message = parse_salesforce(body, config(), NOW)
    except MalformedFeedback as error:
        assert error.problems
        return
    assert message.organization_id == "00De0000000pmu1EAA"
    assert len(message.batch.items) + message.batch.ignored == 1


@pytest.mark.unit
@settings(max_examples=500, deadline=None)
@given(
    outcome=st.sampled_from(OUTCOMES),
    stage=st.sampled_from(STAGES),
    status=st.one_of(st.none(), st.sampled_from(sorted(TRANSITIONS))),
    age=st.integers(min_value=-10_000, max_value=10_000),
    reason=st.one_of(st.none(), st.sampled_from(["spam", "Competitor", "timing"]), st.text(max_size=10)),
)
def test_decisions_keep_their_promises(
    outcome: str, stage: str, status: str | None, age: int, reason: str | None
) -> None:
    last = NOW + timedelta(seconds=age)
    item = Feedback("generic", "m", outcome, LeadRef(lead_id="x"), NOW, reason=reason)  # type: ignore[arg-type]
    decision = decide(item, stage, status, last, ("spam", "competitor"))
    allowed = status is None or outcome == status or outcome in TRANSITIONS[status]
    if last > NOW or not allowed:
        assert not decision.apply and decision.stage is None
        assert status != "won" or outcome == "won" or not decision.apply  # won is final
        return
    assert decision.apply and decision.status == outcome
    # a customer is never moved; nothing moves a lead back from opportunity to SQL
    assert stage != "customer" or decision.stage is None
    assert not (stage == "opportunity" and decision.stage == "sql")
    if decision.stage is not None:
        assert decision.stage in {STAGE_FOR_OUTCOME[outcome], "disqualified"}
        assert decision.stage != stage


# ---------------------------------------------------------------------------- the endpoint over HTTP

HTTP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
providers = st.sampled_from(["generic", "hubspot", "salesforce", "other", ""])
content_types = st.sampled_from(["application/json", "text/xml", "text/plain", "application/x-www-form-urlencoded", ""])
# What an HTTP client can send as a header value: no leading or trailing whitespace (requests refuses it).
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.strip)


@pytest.mark.integration
@HTTP
@given(
    provider=providers,
    body=st.one_of(st.binary(max_size=600), st.text(max_size=600).map(str.encode), json_values.map(json.dumps)),
    content_type=content_types,
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "x-hubspot-signature-v3",
                         "x-hubspot-request-timestamp"]),
        header_values,
        max_size=5,
    ),
)  # fmt: skip
def test_the_webhook_never_answers_5xx(
    client: Any, provider: str, body: bytes, content_type: str, headers: dict[str, str]
) -> None:
    assume(provider != "")
    response = client.http.post(
        f"{client.url}/crm/{provider}/webhook",
        data=body,
        headers={**headers, "content-type": content_type},
        timeout=30,
    )
    assert response.status_code < 500, response.text
    assert response.status_code in (400, 401, 403, 404, 413, 415), response.status_code


def blns() -> list[str]:
    return [s for s in load_json(external("suites/blns.json")) if isinstance(s, str)]


@pytest.mark.integration
def test_naughty_strings_in_signed_feedback_are_data(client: Any) -> None:
    # GIVEN a lead, and correctly signed feedback whose reason and owner are each naughty string
    from tests.integration.test_crm_feedback import dev_now, new_lead

    lead_id = new_lead(client)
    secret = client.info["inbound_webhook_secrets"]["generic"]
    statuses = []
    for i, text in enumerate(blns()):
        body = json.dumps({"lead_id": lead_id, "outcome": "accepted", "reason": text[:500], "owner": text[:200]})
        headers = sign(secret, f"msg_blns_{lead_id}_{i}", int(dev_now(client).timestamp()), body).as_dict()
        response = client.http.post(
            f"{client.url}/crm/generic/webhook",
            data=body.encode(),
            headers={**headers, "content-type": "application/json"},
            timeout=30,
        )
        statuses.append(response.status_code)
    # THEN every one is answered without a 5xx: applied, unchanged, or refused for a too-long field
    assert all(s in (200, 400) for s in statuses), sorted(set(statuses))
    assert statuses.count(200) >= len(statuses) - 5
    stage = client.api(f"/leads/{lead_id}").json()["stage"]
    assert stage == "sql"
