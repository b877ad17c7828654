"""Sales hand-off, pure: assignment, round-robin fairness, statuses, payload and its schema,
Standard Webhooks signatures, HTTP outcomes, the retry schedule, SSRF rules, the SLA."""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
import standardwebhooks
from pydantic import ValidationError

from leadflow.config.workspace import Workspace
from leadflow.domain import handoff as h
from leadflow.domain.definitions.handoff import Assignment, HandoffConfig, Owner, Retry, Sla, Team, WorkingHours
from leadflow.domain.handoff_delivery import (
    backoff_seconds,
    check_destination,
    classify,
    next_attempt_at,
    schedule,
    visibility_seconds,
)
from leadflow.domain.handoff_payload import PAYLOAD_SCHEMA, build_payload, payload_value
from leadflow.domain.handoff_sla import SlaStep, escalation_owner, sla_step
from leadflow.domain.webhook_signing import sign, verify
from tests.conftest import ROOT, WORKSPACE, external, load_json

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # a Wednesday
ASSIGNMENT = Assignment(
    owners=(
        Owner("ana", "Ana", "ana@example.com", capacity=2),
        Owner("ben", "Ben", "ben@example.com"),
        Owner("cy", "Cy", "cy@example.com"),
        Owner("kai", "Kai", "kai@example.com", working_hours=WorkingHours("Asia/Tokyo", start="09:00", end="18:00")),
        Owner("max", "Max", "max@example.com"),
    ),
    teams=(Team("inbound", ("ana", "ben", "cy")), Team("apac", ("kai",), escalate_to="max")),
    named_accounts={"bigcorp.example": "max"},
    territories=(),
    regions={"apac": ("JP", "AU")},
    default_team="inbound",
)


def _assignment(**changes: Any) -> Assignment:
    from dataclasses import replace

    return replace(ASSIGNMENT, **changes)


# ---------------------------------------------------------------------------- config


def test_the_demo_workspace_handoff_config_is_valid() -> None:
    # GIVEN the shipped workspace WHEN it is read THEN hand-off defaults and the fake CRM destination are there
    config = Workspace(WORKSPACE).handoff
    assert config.trigger_stage == "mql"
    assert [d.name for d in config.destinations] == ["crm-webhook"]
    assert config.destinations[0].local_fake_crm
    assert schedule(config.retry, 0.0)[-1] >= 24 * 3600


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"destinations": [{"name": "x", "type": "webhook"}]}, "url"),
        ({"destinations": [{"name": "Bad Name", "type": "webhook", "url": "https://a.example"}]}, "name"),
        ({"destinations": [{"name": "a", "type": "webhook", "url": "ftp://a.example"}]}, "url"),
        ({"assignment": {"teams": [{"id": "t", "members": ["nobody"]}]}}, "teams"),
        ({"assignment": {"named_accounts": {"a.example": "nobody"}}}, "named_accounts"),
        ({"sla": {"accept_within_hours": 5, "escalate_after_hours": 2}}, "escalate_after_hours"),
        ({"trigger_stage": "hot"}, "trigger_stage"),
        ({"surprise": 1}, "surprise"),
        (
            {"destinations": [{"name": "h", "type": "hubspot", "property_mapping": {"email": "password"}}]},
            "property_mapping",
        ),
    ],
)
def test_bad_handoff_config_names_the_field(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as error:
        HandoffConfig.model_validate(data)
    assert where in str(error.value)


def test_the_published_config_schema_matches_the_model() -> None:
    from leadflow.domain.definitions import models

    published = load_json(WORKSPACE / "schemas" / "handoff.schema.json")
    assert published == json.loads(json.dumps(models.json_schema(HandoffConfig)))


# ---------------------------------------------------------------------------- assignment


def test_named_account_wins_over_territory_and_team() -> None:
    route = h.route({"email_domain": "bigcorp.example", "country": "JP"}, ASSIGNMENT)
    assert route.rule == "named_account"
    assert route.owner is not None
    assert route.owner.id == "max"


@pytest.mark.parametrize(
    ("profile", "rule", "team"),
    [
        ({"country": "JP"}, "territory:apac", "apac"),
        ({"country": "de", "cf_industry": "Software", "cf_company_size": "1000+"}, "territory:big-software-eu", "big"),
        ({"country": "DE", "cf_industry": "retail", "cf_company_size": "1000+"}, "default_team", "inbound"),
        ({"country": "US"}, "default_team", "inbound"),
    ],
)
def test_territories_match_country_region_industry_and_size(profile: dict[str, Any], rule: str, team: str) -> None:
    from leadflow.domain.definitions.handoff import Territory

    config = _assignment(
        teams=(*ASSIGNMENT.teams, Team("big", ("max",))),
        territories=(
            Territory("apac", "apac", regions=("apac",)),
            Territory(
                "big-software-eu", "big", countries=("DE", "FR"), industries=("software",), company_sizes=("1000+",)
            ),
        ),
    )
    route = h.route(profile, config)
    assert (route.rule, route.team) == (rule, team)


def test_no_match_and_no_default_team_is_the_fallback_queue() -> None:
    route = h.route({"country": "US"}, _assignment(default_team=None))
    assert route.owner is None
    assert route.queue == "unassigned"


def test_working_hours_follow_the_owners_timezone() -> None:
    hours = WorkingHours("Asia/Tokyo", start="09:00", end="18:00")
    assert h.in_working_hours(hours, datetime(2026, 11, 4, 1, 0, tzinfo=UTC))  # 10:00 in Tokyo, Wednesday
    assert not h.in_working_hours(hours, datetime(2026, 11, 4, 12, 0, tzinfo=UTC))  # 21:00 in Tokyo
    assert not h.in_working_hours(hours, datetime(2026, 11, 7, 1, 0, tzinfo=UTC))  # Saturday
    assert h.in_working_hours(None, NOW)


def test_capacity_and_hours_decide_availability() -> None:
    ana, kai = ASSIGNMENT.owners[0], ASSIGNMENT.owners[3]
    assert h.available(ana, None, 1, NOW)
    assert not h.available(ana, None, 2, NOW)  # capacity 2 reached
    assert not h.available(kai, None, 0, NOW)  # 21:00 in Tokyo


class _AtomicCounter:
    """What DynamoDB's ``ADD n :1 RETURN UPDATED_NEW`` gives concurrent callers: distinct tickets."""

    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def next(self) -> int:
        with self.lock:
            self.value += 1
            return self.value


def test_round_robin_is_exactly_fair_under_concurrency() -> None:
    # GIVEN a team of three and 300 assignments racing on 16 threads
    team = ASSIGNMENT.teams[0]
    counter, picks, lock = _AtomicCounter(), Counter[str](), threading.Lock()

    def assign() -> None:
        owner = h.rotation(team, counter.next())[0]
        with lock:
            picks[owner] += 1

    def worker() -> None:
        for _ in range(300 // 15):
            assign()

    threads = [threading.Thread(target=worker) for _ in range(15)]
    # WHEN they run at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every member got exactly a third
    assert picks == {"ana": 100, "ben": 100, "cy": 100}


def test_rotation_skips_to_the_next_member_in_turn() -> None:
    team = ASSIGNMENT.teams[0]
    assert h.rotation(team, 1) == ["ana", "ben", "cy"]
    assert h.rotation(team, 2) == ["ben", "cy", "ana"]
    assert h.rotation(team, 6) == ["cy", "ana", "ben"]


# ---------------------------------------------------------------------------- record


def _record(**changes: Any) -> dict[str, Any]:
    route = h.Route("default_team", owner=ASSIGNMENT.owners[1], team="inbound")
    record = h.new_record("01JDQ0Z8W6S9X2V3T4R5P6N7M8", "LEAD1", "stage", "reached mql", route, ["hook"], NOW, "system")
    return {**record, **changes}


def test_a_new_record_is_assigned_with_its_history_and_owner() -> None:
    record = _record()
    assert record["status"] == "assigned"
    assert record["owner"] == {"id": "ben", "name": "Ben", "email": "ben@example.com", "team": "inbound"}
    assert record["destinations"] == {"hook": {"status": "pending", "attempts": 0}}
    assert record["history"] == [
        {"status": "assigned", "at": NOW.isoformat(), "by": "system", "detail": "default_team: ben"}
    ]


def test_transitions_append_history_and_refuse_impossible_moves() -> None:
    record = h.transition(_record(), "delivering", NOW, "system")
    record = h.transition(record, "delivered", NOW + timedelta(seconds=1), "system", "crm-webhook")
    record = h.transition(record, "accepted", NOW + timedelta(hours=1), "crm:hubspot")
    assert [e["status"] for e in record["history"]] == ["assigned", "delivering", "delivered", "accepted"]
    with pytest.raises(h.InvalidTransition):
        h.transition(h.transition(record, "won", NOW, "crm:hubspot"), "delivering", NOW, "system")


def test_delivery_status_adds_up_destinations() -> None:
    assert h.delivery_status({"a": {"status": "pending"}, "b": {"status": "delivered"}}) == "delivered"
    assert h.delivery_status({"a": {"status": "failed"}, "b": {"status": "failed"}}) == "failed"
    assert h.delivery_status({"a": {"status": "failed"}, "b": {"status": "pending"}}) == "delivering"


def test_webhook_id_is_stable_per_handoff_and_destination() -> None:
    assert h.webhook_id("H1", "crm") == h.webhook_id("H1", "crm") != h.webhook_id("H1", "other")


# ---------------------------------------------------------------------------- payload


PROFILE = {
    "lead_id": "LEAD1",
    "email": "ada@bigcorp.example",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "BigCorp",
    "country": "GB",
    "cf_company_size": "1000+",
    "stage": "mql",
    "referred_by": "rep-jane",
    "first_touch": {"channel": "form", "form_id": "demo-signup", "at": NOW.isoformat(), "utm_source": "google"},
    "last_touch": {"channel": "form", "form_id": "webinar", "at": NOW.isoformat(), "ref": "rep-jane"},
    "created_at": NOW.isoformat(),
}
EXPLANATION = {
    "stage": "mql",
    "mql_model": "smb",
    "models": {
        "smb": {
            "score": 62.5,
            "reasons": [
                {
                    "rule_id": "pricing_page",
                    "description": "Viewed the pricing page",
                    "activities": 2,
                    "points": 20,
                    "value": 19.5,
                    "last_at": NOW.isoformat(),
                }
            ]
            * 7,
        }
    },
    "grade": {"letter": "A", "points": 40, "reasons": []},
}


def _payload() -> dict[str, Any]:
    timeline = [{"type": "page_viewed", "at": NOW.isoformat(), "url": "/pricing", "ip": "203.0.113.9"}]
    consent = {"marketing_email": {"granted": True, "at": NOW.isoformat()}}
    return build_payload(_record(), PROFILE, EXPLANATION, timeline, consent, NOW, top_reasons=5)


def test_payload_has_everything_sales_needs_and_validates_against_its_schema() -> None:
    payload = _payload()
    jsonschema.Draft202012Validator(PAYLOAD_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(payload)
    assert payload["schema_version"] == 1
    assert payload["lead"]["email"] == "ada@bigcorp.example"
    assert payload["lead"]["custom_fields"] == {"company_size": "1000+"}
    assert payload["attribution"]["first_touch"]["utm_source"] == "google"
    assert payload["attribution"]["referred_by"] == "rep-jane"
    assert payload["scores"]["smb"]["score"] == 62.5
    assert len(payload["scores"]["smb"]["reasons"]) == 5  # top reasons only
    assert payload["owner"]["email"] == "ben@example.com"
    assert payload["timeline"] == [{"type": "page_viewed", "at": NOW.isoformat(), "url": "/pricing"}]  # no IP


def test_payload_without_owner_sits_in_the_queue_and_still_validates() -> None:
    record = h.new_record(
        "01JDQ0Z8W6S9X2V3T4R5P6N7M8", "L", "manual", "", h.Route("fallback", queue="q"), [], NOW, "api"
    )
    payload = build_payload(record, {"email": "a@b.example"}, {}, [], {}, NOW)
    jsonschema.Draft202012Validator(PAYLOAD_SCHEMA).validate(payload)
    assert payload["owner"] is None
    assert payload["queue"] == "q"


def test_the_published_payload_schema_is_the_one_in_code() -> None:
    published = load_json(ROOT / "docs" / "schemas" / "handoff-payload.v1.schema.json")
    assert published == PAYLOAD_SCHEMA
    jsonschema.Draft202012Validator.check_schema(published)


def test_payload_values_feed_property_mappings() -> None:
    payload = _payload()
    assert payload_value(payload, "score") == 62.5
    assert payload_value(payload, "owner_email") == "ben@example.com"
    assert payload_value(payload, "first_touch_source") == "google"
    assert payload_value(payload, "top_reasons").startswith("Viewed the pricing page")


# ---------------------------------------------------------------------------- signatures


def test_signatures_match_the_standard_webhooks_vectors() -> None:
    vectors = load_json(external("crm/standard-webhooks_test_vectors.json"))
    for vector in vectors["positive_vectors"]:
        signed = sign(vector["secret"], vector["msg_id"], vector["timestamp"], vector["payload"])
        assert signed.webhook_signature == vector["expected_signature"], vector["name"]


def test_the_standardwebhooks_library_verifies_our_signed_payload() -> None:
    # GIVEN a real payload signed the way the delivery function signs it
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = json.dumps(_payload(), separators=(",", ":"))
    timestamp = int(datetime.now(UTC).timestamp())
    headers = sign(secret, h.webhook_id("01JDQ0Z8W6S9X2V3T4R5P6N7M8", "crm"), timestamp, body).as_dict()
    # WHEN the reference library verifies it THEN it accepts it, and refuses a changed body
    assert standardwebhooks.Webhook(secret).verify(body, headers)["handoff_id"] == "01JDQ0Z8W6S9X2V3T4R5P6N7M8"
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body.replace("Ada", "Eve"), headers)
    assert verify(secret, headers, body, timestamp) == headers["webhook-id"]


# ---------------------------------------------------------------------------- outcomes and retries


@pytest.mark.parametrize(
    ("status", "headers", "kind", "after"),
    [
        (200, {}, "delivered", None),
        (204, {}, "delivered", None),
        (410, {}, "disable", None),
        (429, {"retry-after": "120"}, "retry", 120.0),
        (429, {"retry-after": "Wed, 04 Nov 2026 12:05:00 GMT"}, "retry", 300.0),
        (429, {}, "retry", None),
        (301, {"location": "http://169.254.169.254/"}, "retry", None),
        (500, {}, "retry", None),
        (503, {}, "retry", None),
        (408, {}, "retry", None),
        (400, {}, "final", None),
        (401, {}, "final", None),
        (404, {}, "final", None),
    ],
)
def test_http_answers_become_outcomes(status: int, headers: dict[str, str], kind: str, after: float | None) -> None:
    outcome = classify(status, headers, NOW)
    assert (outcome.kind, outcome.retry_after_seconds) == (kind, after)


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = Retry(initial_seconds=10, multiplier=2, max_delay_seconds=3600, give_up_after_hours=26)
    assert [backoff_seconds(policy, n, 1.0) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert [backoff_seconds(policy, n, 0.0) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff_seconds(policy, 40, 1.0) == 3600
    rng = random.Random(7)
    delays = {round(backoff_seconds(policy, 5, rng.random()), 3) for _ in range(50)}
    assert len(delays) > 40  # jitter spreads retries of hand-offs that failed together
    assert all(80 <= d <= 160 for d in delays)


def test_retries_last_at_least_24_hours_then_stop() -> None:
    policy = Retry()
    for fraction in (0.0, 0.5, 1.0):
        times = schedule(policy, fraction)
        assert times[-1] >= 24 * 3600
        assert all(b > a for a, b in itertools.pairwise(times))
    first = NOW
    assert next_attempt_at(policy, 1, first, NOW, 0.5) == NOW + timedelta(seconds=7.5)
    assert next_attempt_at(policy, 30, first, first + timedelta(hours=26), 0.5) is None
    late = next_attempt_at(policy, 30, first, first + timedelta(hours=25, minutes=59), 1.0)
    assert late == first + timedelta(hours=26)  # never past the give-up time


def test_retry_after_wins_when_longer_than_the_schedule() -> None:
    policy = Retry()
    assert next_attempt_at(policy, 1, NOW, NOW, 0.0, retry_after_seconds=600) == NOW + timedelta(seconds=600)
    assert next_attempt_at(policy, 1, NOW, NOW, 0.0, retry_after_seconds=1) == NOW + timedelta(seconds=5)


def test_visibility_timeout_is_capped_at_twelve_hours() -> None:
    assert visibility_seconds(NOW + timedelta(seconds=90.2), NOW) == 91
    assert visibility_seconds(NOW + timedelta(days=1), NOW) == 43_200
    assert visibility_seconds(NOW - timedelta(seconds=5), NOW) == 0


# ---------------------------------------------------------------------------- SSRF


@pytest.mark.parametrize(
    ("url", "addresses", "local", "allow"),
    [
        ("http://crm.example.com/hook", ["93.184.216.34"], False, False),  # http outside local mode
        ("https://crm.example.com/hook", ["10.0.0.7"], False, False),
        ("https://crm.example.com/hook", ["93.184.216.34", "192.168.1.1"], False, False),  # every address checked
        ("https://crm.example.com/hook", ["127.0.0.1"], True, False),
        ("https://crm.example.com/hook", ["::1"], False, False),
        ("https://crm.example.com/hook", ["fe80::1%eth0"], False, False),
        ("https://crm.example.com/hook", ["::ffff:169.254.169.254"], False, True),  # metadata even when allowed
        ("https://crm.example.com/hook", ["169.254.169.254"], False, True),
        ("https://crm.example.com/hook", ["fd00:ec2::254"], False, True),
        ("https://crm.example.com/hook", ["100.64.0.1"], False, False),  # carrier-grade NAT
        ("https://crm.example.com/hook", ["0.0.0.0"], False, True),
        ("https://crm.example.com/hook", [], False, False),
        ("https://user:pw@crm.example.com/hook", ["93.184.216.34"], False, False),
        ("file:///etc/passwd", ["93.184.216.34"], True, True),
        ("https://[::1", ["93.184.216.34"], False, False),
    ],
)
def test_ssrf_destinations_are_refused(url: str, addresses: list[str], local: bool, allow: bool) -> None:
    with pytest.raises(h.DestinationRefused):
        check_destination(url, addresses, local_mode=local, allow_private=allow)


def test_public_https_destinations_and_explicit_private_ones_pass() -> None:
    target = check_destination("https://crm.example.com:8443/h?x=1", ["93.184.216.34"], False, False)
    assert (target.host, target.port, target.path) == ("crm.example.com", 8443, "/h?x=1")
    assert check_destination("http://10.1.2.3/h", ["10.1.2.3"], True, True).port == 80


# ---------------------------------------------------------------------------- SLA


def test_sla_reminds_then_escalates_then_recycles_an_unaccepted_handoff() -> None:
    sla = Sla(accept_within_hours=4, escalate_after_hours=8, recycle_after_days=14)
    record = _record()
    assert sla_step(record, sla, NOW + timedelta(hours=1)) == SlaStep(None, NOW + timedelta(hours=4))
    assert sla_step(record, sla, NOW + timedelta(hours=4)).action == "remind"
    reminded = {**record, "sla": [{"status": "remind"}]}
    assert sla_step(reminded, sla, NOW + timedelta(hours=5)).next_due == NOW + timedelta(hours=8)
    assert sla_step(reminded, sla, NOW + timedelta(hours=9)).action == "escalate"
    escalated = {**record, "sla": [{"status": "remind"}, {"status": "escalate"}]}
    assert sla_step(escalated, sla, NOW + timedelta(days=1)).next_due == NOW + timedelta(days=14)
    assert sla_step(escalated, sla, NOW + timedelta(days=14)).action == "recycle"


def test_sla_recycles_an_accepted_lead_only_after_days_without_action() -> None:
    sla = Sla()
    accepted = h.transition(_record(), "accepted", NOW + timedelta(hours=2), "crm:hubspot")
    step = sla_step(accepted, sla, NOW + timedelta(days=3))
    assert step == SlaStep(None, NOW + timedelta(hours=2, days=14))
    assert sla_step(accepted, sla, NOW + timedelta(hours=2, days=14)).action == "recycle"
    assert sla_step(h.transition(accepted, "won", NOW, "crm:x"), sla, NOW + timedelta(days=99)).next_due is None


def test_escalation_goes_to_the_teams_escalation_owner() -> None:
    config = HandoffConfig(assignment=ASSIGNMENT)
    record = {**_record(), "owner": {"id": "kai", "name": "Kai", "email": "kai@example.com", "team": "apac"}}
    owner = escalation_owner(config, record)
    assert owner is not None
    assert owner.id == "max"
    assert escalation_owner(config, _record()) is None  # inbound has no escalation owner
