"""Sales feedback from the CRM, pure parts: signatures, parsing of each provider's format, decisions.

Real material from ../shared/external/crm: HubSpot's signature vectors and documented webhook
batch, the Standard Webhooks test vectors, a Salesforce Outbound Message envelope.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from leadflow.domain.crm_feedback import (
    FUTURE_SKEW,
    SALESFORCE_ACK,
    Feedback,
    InvalidSignature,
    LeadRef,
    MalformedFeedback,
    WeakEndpointToken,
    decide,
    hubspot_request_uri,
    hubspot_v3_signature,
    parse_generic,
    parse_hubspot,
    parse_salesforce,
    refuse_future,
    verify_hubspot_v3,
    verify_salesforce_token,
)
from leadflow.domain.crm_feedback_models import GenericFeedback
from leadflow.domain.definitions.crm_feedback import CrmFeedbackConfig
from leadflow.domain.webhook_signing import (
    WebhookSecretError,
    WebhookSignatureError,
    secret_key,
    sign,
    verify,
)
from tests.conftest import ROOT, WORKSPACE, external, load_json

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEAD = "01KB0000000000000000000000"
HANDOFF = "01KB0000000000000000000001"


@pytest.fixture(scope="module")
def config() -> CrmFeedbackConfig:
    from leadflow.config.workspace import Workspace

    return Workspace(WORKSPACE).crm_feedback


def feedback(outcome: str, at: datetime = NOW, reason: str | None = None) -> Feedback:
    return Feedback("generic", "msg_1", outcome, LeadRef(lead_id=LEAD), at, reason=reason)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- Standard Webhooks


def vectors() -> dict[str, Any]:
    return load_json(external("crm/standard-webhooks_test_vectors.json"))


@pytest.mark.parametrize("index", [0, 1])
def test_verify_accepts_the_published_vectors(index: int) -> None:
    # GIVEN a message signed as in the Standard Webhooks libraries' tests
    vector = vectors()["positive_vectors"][index]
    headers = {
        "webhook-id": vector["msg_id"],
        "webhook-timestamp": str(vector["timestamp"]),
        "webhook-signature": vector["expected_signature"],
    }
    # WHEN it is verified at its own time
    webhook_id = verify(vector["secret"], headers, vector["payload"], vector["timestamp"] + 1)
    # THEN it passes and its id is the replay key
    assert webhook_id == vector["msg_id"]


def test_verify_rejects_the_invalid_signature_vector() -> None:
    case = next(c for c in vectors()["behavioural_cases"] if c["name"] == "invalid_signature_rust")
    headers = {"webhook-id": case["msg_id"], "webhook-timestamp": "1649367553", "webhook-signature": case["signature"]}
    with pytest.raises(WebhookSignatureError):
        verify(case["secret"], headers, case["payload"], 1649367553)


def test_verify_accepts_what_the_standardwebhooks_library_signs() -> None:
    # GIVEN the reference library signing a body with a secret of ours
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    timestamp = datetime.fromtimestamp(1_700_000_000, tz=UTC)
    body = json.dumps({"lead_id": LEAD, "outcome": "won"})
    signature = Webhook(secret).sign("msg_lib", timestamp, body)
    headers = {"webhook-id": "msg_lib", "webhook-timestamp": "1700000000", "webhook-signature": signature}
    # THEN ours verifies it, and the library verifies ours
    assert verify(secret, headers, body, 1_700_000_010) == "msg_lib"
    ours = sign(secret, "msg_ours", int(time.time()), body).as_dict()  # the library checks against its clock
    assert Webhook(secret).verify(body, ours) == json.loads(body)


def test_a_multi_signature_header_passes_when_one_v1_entry_matches() -> None:
    secret = "whsec_" + base64.b64encode(b"s" * 24).decode()
    good = sign(secret, "msg_m", 1_700_000_000, "{}").webhook_signature
    header = f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,{good[3:]} {good}"
    headers = {"webhook-id": "msg_m", "webhook-timestamp": "1700000000", "webhook-signature": header}
    assert verify(secret, headers, "{}", 1_700_000_000) == "msg_m"
    only_other_versions = {**headers, "webhook-signature": f"v2,{good[3:]} v1a,{good[3:]}"}
    with pytest.raises(WebhookSignatureError):
        verify(secret, only_other_versions, "{}", 1_700_000_000)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"webhook-timestamp": "1699999600"}, "older than 5 minutes"),
        ({"webhook-timestamp": "1700000400"}, "newer than 5 minutes"),
        ({"webhook-timestamp": "17e8"}, "not a number"),
        ({"webhook-id": ""}, "no id"),
        ({"webhook-signature": ""}, "no signature"),
        ({"webhook-id": "msg_other"}, "id changed"),
    ],
)
def test_verify_rejects(change: dict[str, str], why: str) -> None:
    secret = "whsec_" + base64.b64encode(b"t" * 24).decode()
    headers = {**sign(secret, "msg_1", 1_700_000_000, "{}").as_dict(), **change}
    with pytest.raises(WebhookSignatureError):
        verify(secret, headers, "{}", 1_700_000_000)


def test_verify_rejects_a_changed_body() -> None:
    secret = "whsec_" + base64.b64encode(b"u" * 24).decode()
    headers = sign(secret, "msg_1", 1_700_000_000, '{"outcome":"rejected"}').as_dict()
    with pytest.raises(WebhookSignatureError):
        verify(secret, headers, '{"outcome":"won"}', 1_700_000_000)


def test_secrets_work_with_and_without_the_prefix_and_never_empty() -> None:
    assert secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    for bad in ("", "whsec_", "whsec_not base64!"):
        with pytest.raises(WebhookSecretError):
            secret_key(bad)


# ---------------------------------------------------------------------------- HubSpot v3


def hubspot_vectors() -> dict[str, Any]:
    return load_json(external("crm/hubspot_signature_vectors.json"))


def test_hubspot_v3_signature_reproduces_the_sdk_vector() -> None:
    vector = hubspot_vectors()["sdk_test_vectors"]
    inputs = vector["inputs"]
    signature = hubspot_v3_signature(
        inputs["client_secret"], inputs["http_method"], inputs["url"], inputs["request_body"], str(inputs["timestamp"])
    )
    assert signature == vector["expected"]["v3"]


def test_the_sdk_vector_is_refused_for_its_stale_timestamp() -> None:
    # GIVEN the SDK's vector, whose timestamp (15000000 ms) is from 1970
    vector = hubspot_vectors()["sdk_test_vectors"]
    inputs = vector["inputs"]
    headers = {"x-hubspot-signature-v3": vector["expected"]["v3"], "x-hubspot-request-timestamp": "15000000"}
    secret, body = inputs["client_secret"], inputs["request_body"]
    # WHEN it is checked now
    with pytest.raises(InvalidSignature, match="5-minute"):
        verify_hubspot_v3(secret, "POST", inputs["url"], body, headers, 1_764_590_400_000)
    # THEN at its own time it passes: only the age failed
    verify_hubspot_v3(secret, "POST", inputs["url"], body, headers, 15_000_000 + 1000)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-hubspot-signature-v3": "abc"},
        {"x-hubspot-request-timestamp": "1764590400000"},
        {"x-hubspot-signature-v3": "abc", "x-hubspot-request-timestamp": "soon"},
        # A v1 signature is not enough: it has no timestamp, so a replay would pass it.
        {"x-hubspot-signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"},
    ],
)
def test_hubspot_requests_without_a_valid_v3_signature_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        verify_hubspot_v3("secret", "POST", "https://x.example/crm/hubspot/webhook", "[]", headers, 1_764_590_400_000)


def test_hubspot_signature_covers_method_uri_and_body() -> None:
    now_ms = 1_764_590_400_000
    uri = "https://hooks.example.com/crm/hubspot/webhook"
    signature = hubspot_v3_signature("secret", "POST", uri, "[]", str(now_ms))
    headers = {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": str(now_ms)}
    verify_hubspot_v3("secret", "POST", uri, "[]", headers, now_ms + 299_000)
    for method, other_uri, body in (("PUT", uri, "[]"), ("POST", uri + "?x=1", "[]"), ("POST", uri, "[{}]")):
        with pytest.raises(InvalidSignature):
            verify_hubspot_v3("secret", method, other_uri, body, headers, now_ms)


def test_hubspot_uri_is_the_configured_url_or_the_one_requested_with_decoded_characters() -> None:
    assert hubspot_request_uri(None, "api.example.com", "/crm/hubspot/webhook", "") == (
        "https://api.example.com/crm/hubspot/webhook"
    )
    assert hubspot_request_uri(None, "api.example.com", "/crm/hubspot/webhook", "a=b%3Ac%2Fd%40e") == (
        "https://api.example.com/crm/hubspot/webhook?a=b:c/d@e"
    )
    configured = "https://crm-hooks.example.com/hubspot"
    assert hubspot_request_uri(configured, "abc.execute-api.us-east-1.amazonaws.com", "/crm/hubspot/webhook", "") == (
        configured
    )


def property_change(
    event_id: int, object_id: int, name: str, value: str, at_ms: int = 1_764_590_400_000
) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionId": 4242,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": at_ms,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": name,
        "propertyValue": value,
        "changeSource": "CRM",
    }


def test_the_documented_hubspot_batch_is_understood_and_has_no_feedback(config: CrmFeedbackConfig) -> None:
    # GIVEN HubSpot's documented webhook body (a contact.creation event)
    body = hubspot_vectors()["docs_v1_example"]["request_body"]
    # WHEN it is parsed
    batch = parse_hubspot(body, config)
    # THEN nothing in it is feedback, and it is counted as ignored (acknowledged, not lost)
    assert batch.items == []
    assert batch.ignored == 1


def test_hubspot_property_changes_map_to_outcomes(config: CrmFeedbackConfig) -> None:
    body = json.dumps(
        [
            property_change(1, 901, "hs_lead_status", "IN_PROGRESS"),
            property_change(2, 902, "lifecyclestage", "customer"),
            property_change(3, 903, "hs_lead_status", "UNQUALIFIED"),
            property_change(4, 904, "hs_lead_status", "NEW"),  # not mapped: ignored
            property_change(5, 905, "firstname", "Ada"),  # another property: ignored
        ]
    )
    batch = parse_hubspot(body, config)
    assert [(f.lead.external_id, f.outcome) for f in batch.items] == [
        ("901", "accepted"),
        ("902", "won"),
        ("903", "rejected"),
    ]
    assert batch.ignored == 2
    first = batch.items[0]
    assert first.event_id == "4242:901:1:1764590400000"  # the same on HubSpot's retries
    assert first.occurred_at == datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
    assert first.details == {"property": "hs_lead_status", "value": "IN_PROGRESS"}


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "{}",
        '["x"]',
        json.dumps([{"eventId": 1}]),
        json.dumps([{**property_change(1, 9, "hs_lead_status", "IN_PROGRESS"), "occurredAt": "yesterday"}]),
        json.dumps([{**property_change(1, 9, "hs_lead_status", "IN_PROGRESS"), "objectId": {"id": 9}}]),
    ],
)
def test_bodies_hubspot_does_not_send_are_malformed(body: str, config: CrmFeedbackConfig) -> None:
    with pytest.raises(MalformedFeedback) as raised:
        parse_hubspot(body, config)
    assert raised.value.problems


# ---------------------------------------------------------------------------- Salesforce


def outbound_message(fields: dict[str, str], kind: str = "Lead", org: str = "00De0000000pmu1EAA") -> str:
    """An Outbound Message shaped like the shared sample, with a Lead (or other) sObject."""
    sample = load_json(external("crm/salesforce_outbound_message_soap.json"))["request_xml"]
    start = sample.index("<sObject")
    end = sample.index("</sObject>") + len("</sObject>")
    inner = "".join(f"<sf:{k}>{v}</sf:{k}>" for k, v in fields.items())
    sobject = f'<sObject xsi:type="sf:{kind}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{inner}</sObject>'
    return sample[:start].replace("00De0000000pmu1EAA", org, 1) + sobject + sample[end:]


def test_the_shared_outbound_message_parses(config: CrmFeedbackConfig) -> None:
    # GIVEN the real-looking envelope (a State_Province__c record, which is no feedback)
    body = load_json(external("crm/salesforce_outbound_message_soap.json"))["request_xml"]
    message = parse_salesforce(body, config, NOW)
    # THEN its organization is read and the notification acknowledged as ignored
    assert message.organization_id == "00De0000000pmu1EAA"
    assert config.salesforce.organization_allowed(message.organization_id)
    assert message.batch.items == []
    assert message.batch.ignored == 1


def test_a_lead_status_change_is_feedback_on_the_external_id(config: CrmFeedbackConfig) -> None:
    body = outbound_message(
        {
            "Id": "00Q5e00000AbCdEFGH",
            "Status": "Closed - Not Converted",
            "Leadflow_Id__c": LEAD,
            "Rejection_Reason__c": "Competitor",
            "LastModifiedDate": "2026-12-01T10:30:00.000Z",
        }
    )
    (item,) = parse_salesforce(body, config, NOW).batch.items
    assert item.outcome == "rejected"
    assert item.lead == LeadRef(lead_id=LEAD)
    assert item.reason == "Competitor"
    assert item.event_id == "04le0000004lnFFAAY"
    assert item.occurred_at == datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def test_without_the_external_id_the_record_id_is_looked_up(config: CrmFeedbackConfig) -> None:
    body = outbound_message({"Id": "006Aa000001XyZQ", "StageName": "Closed Won"}, kind="Opportunity")
    (item,) = parse_salesforce(body, config, NOW).batch.items
    assert (item.outcome, item.lead, item.occurred_at) == ("won", LeadRef(external_id="006Aa000001XyZQ"), NOW)


def test_other_organizations_are_not_allowed(config: CrmFeedbackConfig) -> None:
    assert config.salesforce.organization_allowed("00De0000000pmu1")  # the 15-character form
    assert not config.salesforce.organization_allowed("00Dx0000000pmu1EAA")
    assert not config.salesforce.organization_allowed("00De0000000pmu1EA")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "<notxml",
        "<a/>",
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>',
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    ],
)
def test_non_messages_and_entity_tricks_are_malformed(body: str, config: CrmFeedbackConfig) -> None:
    with pytest.raises(MalformedFeedback):
        parse_salesforce(body, config, NOW)


def test_the_ack_is_what_salesforce_expects() -> None:
    expected = load_json(external("crm/salesforce_outbound_message_soap.json"))["expected_ack_xml"]
    from defusedxml.ElementTree import fromstring

    def ack(xml: str) -> str | None:
        return fromstring(xml).findtext(".//{http://soap.sforce.com/2005/09/outbound}Ack")

    assert ack(SALESFORCE_ACK) == ack(expected) == "true"


TOKEN = "x" * 31 + "Y"


@pytest.mark.parametrize("received", [None, "", "x" * 32, TOKEN + "Y", TOKEN[:-1], TOKEN.lower()])
def test_outbound_messages_without_the_endpoint_token_are_refused(received: str | None) -> None:
    # GIVEN the token the operator put in the Outbound Message's endpoint URL
    # WHEN a request carries no token or another one THEN it is not authenticated
    with pytest.raises(InvalidSignature):
        verify_salesforce_token(TOKEN, received)


def test_the_endpoint_token_passes_and_a_short_one_is_never_trusted() -> None:
    verify_salesforce_token(TOKEN, TOKEN)
    # a token too short to resist guessing is a configuration error, not a credential
    with pytest.raises(WeakEndpointToken):
        verify_salesforce_token("short", "short")


def test_feedback_from_the_future_is_refused_within_the_clock_skew_allowed() -> None:
    # GIVEN feedback a little ahead of our clock (the CRM's clock runs fast) THEN it passes
    refuse_future([feedback("accepted", at=NOW + FUTURE_SKEW)], NOW)
    # WHEN one item of a batch is dated beyond the skew (a forged 2099) THEN the batch is refused, naming it
    late = [feedback("accepted"), feedback("rejected", at=datetime(2099, 1, 1, tzinfo=UTC))]
    with pytest.raises(MalformedFeedback) as refused:
        refuse_future(late, NOW)
    (problem,) = refused.value.problems
    assert problem == f"1.occurred_at: 2099-01-01T00:00:00+00:00 is more than {FUTURE_SKEW} in the future"
    with pytest.raises(MalformedFeedback):
        refuse_future([feedback("won", at=NOW + FUTURE_SKEW + timedelta(seconds=1))], NOW)


# ---------------------------------------------------------------------------- generic JSON


def test_generic_feedback_parses_with_its_details() -> None:
    body = json.dumps(
        {
            "type": "handoff.feedback",
            "lead_id": LEAD,
            "handoff_id": HANDOFF,
            "outcome": "opportunity",
            "occurred_at": "2026-12-01T09:00:00+01:00",
            "owner": "rep-7",
            "amount": 12000,
            "currency": "EUR",
            "vendor_field": "ignored",
        }
    )
    item = parse_generic(body, "msg_7", NOW)
    assert (item.outcome, item.handoff_id, item.event_id) == ("opportunity", HANDOFF, "msg_7")
    assert item.occurred_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert item.details == {"amount": 12000, "currency": "EUR", "owner": "rep-7"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("nope", "body"),
        ("[]", "body"),
        (json.dumps({"outcome": "won"}), "lead_id"),
        (json.dumps({"lead_id": "abc", "outcome": "won"}), "lead_id"),
        (json.dumps({"lead_id": LEAD, "outcome": "maybe"}), "outcome"),
        (json.dumps({"lead_id": LEAD, "outcome": "won", "occurred_at": "2026-12-01T09:00:00"}), "occurred_at"),
        (json.dumps({"lead_id": LEAD, "outcome": "won", "amount": -1}), "amount"),
        (json.dumps({"lead_id": LEAD, "outcome": "won", "currency": "euro"}), "currency"),
    ],
)
def test_generic_feedback_names_each_bad_field(body: str, field: str) -> None:
    with pytest.raises(MalformedFeedback) as raised:
        parse_generic(body, "msg_1", NOW)
    assert any(problem.startswith(field) for problem in raised.value.problems), raised.value.problems


def test_the_published_generic_schema_is_the_models() -> None:
    published = load_json(ROOT / "docs" / "schemas" / "crm-feedback-generic.v1.schema.json")
    generated = GenericFeedback.model_json_schema()
    assert {k: v for k, v in published.items() if k not in ("$schema", "$id")} == generated


# ---------------------------------------------------------------------------- what it does


@pytest.mark.parametrize(
    ("outcome", "stage", "new_stage"),
    [
        ("accepted", "mql", "sql"),
        ("opportunity", "sql", "opportunity"),
        ("won", "opportunity", "customer"),
        ("rejected", "mql", "recycled"),
        ("lost", "opportunity", "recycled"),
        ("accepted", "sql", None),  # already there
        ("accepted", "opportunity", None),  # never back from opportunity to SQL
        ("rejected", "customer", None),  # a customer stays a customer
        ("lost", "customer", None),
        ("won", "mql", "customer"),  # sales may skip steps
    ],
)
def test_outcomes_move_stages(outcome: str, stage: str, new_stage: str | None) -> None:
    decision = decide(feedback(outcome), stage, "delivered", None)
    assert decision.apply
    assert decision.status == outcome
    assert decision.stage == new_stage


def test_a_rejection_for_a_listed_reason_disqualifies() -> None:
    reasons = ("spam", "competitor")
    assert decide(feedback("rejected", reason="Competitor"), "mql", "accepted", None, reasons).stage == "disqualified"
    assert decide(feedback("rejected", reason="no budget"), "mql", "accepted", None, reasons).stage == "recycled"
    assert (
        decide(feedback("lost", reason="competitor"), "opportunity", "opportunity", None, reasons).stage == "recycled"
    )


def test_older_feedback_never_overrides_newer() -> None:
    decision = decide(feedback("accepted", at=NOW - timedelta(hours=1)), "customer", "won", NOW)
    assert not decision.apply
    assert "stale" in decision.why


def test_a_won_hand_off_is_closed() -> None:
    decision = decide(feedback("lost", at=NOW + timedelta(days=1)), "customer", "won", NOW)
    assert not decision.apply


def test_a_lost_deal_can_be_reopened_later() -> None:
    decision = decide(feedback("opportunity", at=NOW + timedelta(days=3)), "recycled", "lost", NOW)
    assert (decision.apply, decision.stage) == (True, "opportunity")


# ---------------------------------------------------------------------------- config


def test_config_refuses_what_cannot_work() -> None:
    from pydantic import ValidationError

    bad = [
        {"hubspot": {"enabled": True}},
        {"hubspot": {"webhook_url": "http://insecure.example.com/hook", "properties": {"a": {"b": "won"}}}},
        {"hubspot": {"properties": {"hs_lead_status": {"X": "maybe"}}}},
        {"salesforce": {"enabled": True}},
        {"salesforce": {"organization_ids": ["12345"]}},
        {"salesforce": {"objects": {"Lead": {"status_field": "Status", "values": {}}}}},
        {"salesforce": {"objects": {"Lead": {"status_field": "Sta tus", "values": {"a": "won"}}}}},
        {"unknown": True},
    ]
    for data in bad:
        with pytest.raises(ValidationError):
            CrmFeedbackConfig.model_validate(data)


def test_the_demo_config_round_trips_through_the_compiled_form(config: CrmFeedbackConfig) -> None:
    from leadflow.domain.definitions import models

    assert CrmFeedbackConfig.from_trusted(models.dump(CrmFeedbackConfig, config)) == config
    assert config.enabled("generic") and config.enabled("hubspot") and config.enabled("salesforce")
    assert not config.enabled("pipedrive")
