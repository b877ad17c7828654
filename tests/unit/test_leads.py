"""How a submission merges into the lead record (plan_changes / apply_changes), the writes of
one capture (CapturePlan.for_lead), and the DynamoDB update expression of the same changes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadflow.adapters.dynamo_expressions import update_expression
from leadflow.adapters.dynamo_json import deserialize
from leadflow.config.workspace import Workspace
from leadflow.domain.definitions.forms import FormDefinition
from leadflow.domain.leads import CapturePlan, LeadChanges, apply_changes, custom_fields, plan_changes
from leadflow.domain.submissions import ClientInfo, FormPost, Submission, validate_submission
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

FIRST = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
LATER = FIRST + timedelta(days=3)
LEAD_ID = "01JCZ3Q8X8F5T9Y4N2M1K0H7GE"


@pytest.fixture(scope="module")
def demo() -> FormDefinition:
    return Workspace(WORKSPACE).form("demo-signup")


def submit(
    form: FormDefinition, fields: Mapping[str, str], at: datetime = FIRST, *, user_agent: str = "Mozilla/5.0"
) -> Submission:
    post = FormPost(
        fields={name: [value] for name, value in fields.items()},
        client=ClientInfo(ip="203.0.113.7", user_agent=user_agent),
    )
    return validate_submission(form, post, at)


def merge(*submissions: Submission, existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The lead record after these submissions, in order."""
    lead = existing
    for submission in submissions:
        lead = apply_changes(lead, plan_changes(submission, LEAD_ID))
    assert lead is not None
    return lead


# ---------------------------------------------------------------------------- a new lead


def test_a_first_submission_creates_the_whole_record(demo: FormDefinition):
    # GIVEN a first, complete submission at a company address
    submission = submit(
        demo,
        {
            "email": "Jane@ACME.example",
            "first_name": "Jane",
            "company": "ACME",
            "company_size": "11-50",
            "consent": "on",
            "utm_source": "newsletter",
            "ref": "ana-k",
        },
    )

    # WHEN it is merged into no record
    lead = merge(submission)

    # THEN the record has identity, profile, custom fields, attribution, consent and counters
    assert lead["lead_id"] == LEAD_ID
    assert lead["email"] == "Jane@acme.example"
    assert lead["email_domain"] == "acme.example"
    assert lead["account_domain"] == "acme.example"
    assert (lead["first_name"], lead["company"]) == ("Jane", "ACME")
    assert lead["cf_company_size"] == "11-50"
    assert lead["created_at"] == lead["updated_at"] == FIRST.isoformat()
    assert lead["first_touch"] == lead["last_touch"] == submission.touch
    assert lead["last_form_id"] == "demo-signup"
    assert lead["stage"] == "lead"
    assert lead["referred_by"] == "ana-k"
    assert lead["consent_marketing_email"] == {
        "granted": True,
        "version": "2026-11-01",
        "at": FIRST.isoformat(),
        "form_id": "demo-signup",
    }
    assert lead["submissions"] == 1


def test_free_mail_gives_no_account_domain(demo: FormDefinition):
    # GIVEN a submission from a free mail address
    # WHEN it is merged
    lead = merge(submit(demo, {"email": "jane@gmail.com"}))

    # THEN the lead rolls up to no account
    assert "account_domain" not in lead
    assert lead["email_domain"] == "gmail.com"


def test_without_a_ref_code_there_is_no_referrer(demo: FormDefinition):
    # GIVEN a submission without a share code
    # WHEN it is merged
    lead = merge(submit(demo, {"email": "jane@example.com"}))

    # THEN nobody is credited
    assert "referred_by" not in lead


# ---------------------------------------------------------------------------- merging


def test_a_blank_never_overwrites_a_known_value(demo: FormDefinition):
    # GIVEN a lead whose name and company are known
    first = submit(demo, {"email": "jane@example.com", "first_name": "Jane", "company": "ACME", "interest": "CRM"})

    # WHEN a later submission leaves them blank
    later = submit(demo, {"email": "jane@example.com", "first_name": "", "company": "   ", "interest": ""}, LATER)
    lead = merge(first, later)

    # THEN the known values stay (blanks are not part of the submission at all)
    assert later.profile == {}
    assert (lead["first_name"], lead["company"], lead["cf_interest"]) == ("Jane", "ACME", "CRM")


def test_a_newer_non_blank_value_replaces_the_old_one(demo: FormDefinition):
    # GIVEN a lead who has since changed jobs (and is identified: plan_changes overwrites by default)
    first = submit(demo, {"email": "jane@example.com", "company": "ACME", "title": "Engineer"})
    later = submit(demo, {"email": "jane@example.com", "company": "Globex", "company_size": "51-200"}, LATER)

    # WHEN both submissions are merged
    lead = merge(first, later)

    # THEN the newer values win and untouched ones stay
    assert (lead["company"], lead["title"], lead["cf_company_size"]) == ("Globex", "Engineer", "51-200")
    assert lead["updated_at"] == LATER.isoformat()


def test_first_touch_creation_stage_and_referrer_are_written_once(demo: FormDefinition):
    # GIVEN a lead that first came through Ana's link from the newsletter
    first = submit(demo, {"email": "jane@example.com", "utm_source": "newsletter", "ref": "ana-k"})

    # WHEN a later submission comes through Tom's link from an ad
    later = submit(demo, {"email": "jane@example.com", "utm_source": "ads", "ref": "tom-r"}, LATER)
    lead = merge(first, later)

    # THEN the first touch, creation, stage and referrer are the first ones; the last touch is the latest
    assert lead["first_touch"]["utm_source"] == "newsletter"
    assert lead["last_touch"]["utm_source"] == "ads"
    assert lead["last_touch"]["at"] == LATER.isoformat()
    assert lead["created_at"] == FIRST.isoformat()
    assert lead["referred_by"] == "ana-k"
    assert lead["lead_id"] == LEAD_ID


def test_a_submission_never_changes_an_existing_stage(demo: FormDefinition):
    # GIVEN a lead sales already made a customer, with a score
    existing = {"lead_id": LEAD_ID, "stage": "customer", "score": 87, "submissions": 4, "email": "jane@example.com"}

    # WHEN the lead fills in a form that creates leads at stage "lead"
    lead = merge(submit(demo, {"email": "jane@example.com", "score": "0", "stage": "lead"}), existing=existing)

    # THEN stage and score are untouched, and the count goes on
    assert lead["stage"] == "customer"
    assert lead["score"] == 87
    assert lead["submissions"] == 5


def test_the_last_touch_is_replaced_whole(demo: FormDefinition):
    # GIVEN a first touch with a campaign and a later one without
    first = submit(demo, {"email": "jane@example.com", "utm_source": "newsletter", "utm_campaign": "spring"})
    later = submit(demo, {"email": "jane@example.com", "utm_source": "ads"}, LATER)

    # WHEN both are merged
    lead = merge(first, later)

    # THEN the last touch is exactly the latest one (no campaign left over from before)
    assert lead["last_touch"] == later.touch
    assert "utm_campaign" not in lead["last_touch"]


def test_every_submission_counts(demo: FormDefinition):
    # GIVEN three submissions of one person
    submissions = [submit(demo, {"email": "jane@example.com"}, FIRST + timedelta(hours=i)) for i in range(3)]

    # WHEN they are merged in turn
    lead = merge(*submissions)

    # THEN the counter is three
    assert lead["submissions"] == 3


def test_an_unticked_box_later_keeps_the_earlier_consent(demo: FormDefinition):
    # GIVEN a lead who opted in
    first = submit(demo, {"email": "jane@example.com", "consent": "on"})

    # WHEN they submit again without ticking the box
    lead = merge(first, submit(demo, {"email": "jane@example.com"}, LATER))

    # THEN the opt-in stands (only unsubscribing withdraws it)
    assert lead["consent_marketing_email"]["granted"] is True
    assert lead["consent_marketing_email"]["at"] == FIRST.isoformat()


def test_apply_changes_leaves_the_existing_record_alone(demo: FormDefinition):
    # GIVEN an existing record
    existing = {"lead_id": LEAD_ID, "first_name": "Jane", "submissions": 1}
    before = json.dumps(existing, sort_keys=True)

    # WHEN changes are applied
    apply_changes(existing, plan_changes(submit(demo, {"email": "jane@example.com", "first_name": "J"}), LEAD_ID))

    # THEN the input is unchanged (a new record is returned)
    assert json.dumps(existing, sort_keys=True) == before


# ---------------------------------------------------------------------------- custom fields


def test_custom_fields_are_stored_prefixed_and_read_back(demo: FormDefinition):
    # GIVEN a submission with custom fields
    submission = submit(
        demo, {"email": "jane@example.com", "first_name": "Jane", "company_size": "1-10", "interest": "Scoring"}
    )

    # WHEN it is merged and the custom fields are read from the record
    lead = merge(submission)

    # THEN they are stored under cf_ and read back without the prefix, apart from the profile
    assert lead["cf_company_size"] == "1-10"
    assert "company_size" not in lead
    assert custom_fields(lead) == {"company_size": "1-10", "interest": "Scoring"}


def test_custom_fields_keep_their_types():
    # GIVEN a form with number and checkbox custom fields
    form = FormDefinition.model_validate(
        {
            "id": "typed",
            "name": "Typed",
            "thank_you_url": "/t",
            "fields": [
                {"name": "email", "type": "email"},
                {"name": "seats", "type": "number"},
                {"name": "wants_demo", "type": "checkbox"},
            ],
        }
    )

    # WHEN a submission is merged
    lead = merge(submit(form, {"email": "jane@example.com", "seats": "25", "wants_demo": "on"}))

    # THEN the custom fields read back as number and boolean
    assert custom_fields(lead) == {"seats": 25.0, "wants_demo": True}


def test_a_record_without_custom_fields_has_none():
    # GIVEN a record with only standard attributes
    # WHEN its custom fields are read
    # THEN there are none
    assert custom_fields({"lead_id": LEAD_ID, "email": "jane@example.com", "company": "ACME"}) == {}


# ---------------------------------------------------------------------------- one capture's writes


def make_plan(submission: Submission) -> CapturePlan:
    return CapturePlan(
        submission=submission,
        activity_id="01JCZ3Q8X8F5T9Y4N2M1K0ACT1",
        new_lead_id="01JCZ3Q8X8F5T9Y4N2M1K0NEW1",
        event_ids=("01JCZ3Q8X8F5T9Y4N2M1K0EVT1", "01JCZ3Q8X8F5T9Y4N2M1K0EVT2"),
        idempotency_key="nonce-1",
    )


def test_the_writes_of_a_capture_are_for_the_given_lead(demo: FormDefinition):
    # GIVEN a plan for a submission with consent and attribution
    submission = submit(
        demo, {"email": "Jane@ACME.example", "consent": "on", "utm_source": "newsletter"}, user_agent="UA/1"
    )
    plan = make_plan(submission)

    # WHEN it is turned into writes for an existing lead
    write = plan.for_lead(LEAD_ID, is_new=False)

    # THEN activity, consent, lead changes and events all point at that lead
    assert (write.lead_id, write.is_new, write.email_key) == (LEAD_ID, False, "jane@acme.example")
    assert write.activity == {
        "activity_id": "01JCZ3Q8X8F5T9Y4N2M1K0ACT1",
        "lead_id": LEAD_ID,
        "type": "form_submitted",
        "at": FIRST.isoformat(),
        "form_id": "demo-signup",
        "touch": submission.touch,
        "fields": submission.raw_fields,
        "user_agent": "UA/1",
        "unverified": True,  # an unidentified post for a known lead: values kept for review
    }
    assert write.consent is not None
    assert (write.consent["granted"], write.consent["form_id"]) == (True, "demo-signup")
    assert write.changes.set_if_absent["lead_id"] == LEAD_ID
    assert [e.event_id for e in write.events] == ["01JCZ3Q8X8F5T9Y4N2M1K0EVT1", "01JCZ3Q8X8F5T9Y4N2M1K0EVT2"]
    assert [e.detail_type for e in write.events] == ["lead.captured", "activity.recorded"]
    assert all(e.detail["lead_id"] == LEAD_ID for e in write.events)
    assert write.events[0].detail["new"] is False
    assert write.events[0].detail["account_domain"] == "acme.example"
    assert write.events[1].detail["activity_id"] == "01JCZ3Q8X8F5T9Y4N2M1K0ACT1"


def test_a_new_lead_is_announced_as_new(demo: FormDefinition):
    # GIVEN a plan
    plan = make_plan(submit(demo, {"email": "jane@example.com"}))

    # WHEN it is written as a new lead under its own id
    write = plan.for_lead(plan.new_lead_id, is_new=True)

    # THEN the event says new and there is no consent write (the box was not ticked)
    assert write.events[0].detail["new"] is True
    assert write.events[0].detail["lead_id"] == plan.new_lead_id
    assert write.consent is None


def test_events_carry_no_contact_details(demo: FormDefinition):
    # GIVEN a submission full of contact details
    submission = submit(
        demo, {"email": "jane.secret@acme.example", "first_name": "Janette", "last_name": "Secretary", "consent": "on"}
    )

    # WHEN its events are built
    envelopes = [e.envelope() for e in make_plan(submission).for_lead(LEAD_ID, is_new=True).events]

    # THEN none of them carries the address or the name
    text = json.dumps(envelopes)
    assert "jane.secret" not in text
    assert "Janette" not in text
    assert "Secretary" not in text
    assert all(envelope["schema_version"] == 1 for envelope in envelopes)


def test_the_activity_keeps_a_bounded_user_agent(demo: FormDefinition):
    # GIVEN a submission with a huge user agent
    plan = make_plan(submit(demo, {"email": "jane@example.com"}, user_agent="U" * 4000))

    # WHEN the writes are built
    write = plan.for_lead(LEAD_ID, is_new=True)

    # THEN the activity keeps 500 characters of it
    assert write.activity["user_agent"] == "U" * 500


# ---------------------------------------------------------------------------- the DynamoDB update


def parse_update(expression: str, names: dict[str, str], values: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """An update as {attribute: (action, DynamoDB-typed value)}; fails on any clause it does not know."""
    set_part, _, add_part = expression.partition(" ADD ")
    assert set_part.startswith("SET ")
    actions: dict[str, tuple[str, Any]] = {}
    for clause in re.split(r", (?=#)", set_part.removeprefix("SET ")):
        if match := _SET.match(clause):
            actions[names[match[1]]] = ("set", values[match[2]])
        else:
            match = _IF_NOT_EXISTS.match(clause)
            assert match, f"unexpected SET clause: {clause}"
            actions[names[match[1]]] = ("if_not_exists", values[match[2]])
    for clause in add_part.split(", ") if add_part else []:
        match = _ADD.match(clause)
        assert match, f"unexpected ADD clause: {clause}"
        actions[names[match[1]]] = ("add", values[match[2]])
    assert len(actions) == len(names), "every name placeholder is used exactly once"
    return actions


def run_update(existing: dict[str, Any] | None, actions: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """What DynamoDB does with these actions to an item (the documented semantics of SET, if_not_exists, ADD)."""
    item = dict(existing or {})
    for name, (action, typed) in actions.items():
        value = deserialize({name: typed})[name]
        if action == "set":
            item[name] = value
        elif action == "if_not_exists":
            item.setdefault(name, value)
        elif "SS" in typed:  # ADD to a string set: the union
            item[name] = set(item.get(name) or ()) | set(value)
        else:
            item[name] = item.get(name, 0) + value
    return item


_SET = re.compile(r"^(#\w+) = (:\w+)$")
_IF_NOT_EXISTS = re.compile(r"^(#\w+) = if_not_exists\(\1, (:\w+)\)$")
_ADD = re.compile(r"^(#\w+) (:\w+)$")


def rich_changes(demo: FormDefinition) -> LeadChanges:
    fields = {
        "email": "jane@acme.example",
        "first_name": "Jane",
        "company_size": "1-10",
        "consent": "on",
        "ref": "ana-k",
        "utm_source": "newsletter",
    }
    return plan_changes(submit(demo, fields), LEAD_ID)


def test_the_update_expression_covers_every_key_of_the_changes(demo: FormDefinition):
    # GIVEN the changes of a rich submission
    changes = rich_changes(demo)

    # WHEN they are turned into one DynamoDB update
    actions = parse_update(*update_expression(changes))

    # THEN every key is SET, SET if_not_exists or ADDed, as the changes say
    assert {n for n, (a, _) in actions.items() if a == "set"} == set(changes.set_always)
    assert {n for n, (a, _) in actions.items() if a == "if_not_exists"} == set(changes.set_if_absent)
    assert {n for n, (a, _) in actions.items() if a == "add"} == set(changes.increment) | set(changes.add_to_sets)
    assert changes.add_to_sets == {"forms_submitted": frozenset({"demo-signup"})}


@pytest.mark.parametrize(
    "existing",
    [
        None,
        {
            "lead_id": "01OLDLEAD000000000000000000",
            "created_at": "2020-01-01",
            "stage": "customer",
            "submissions": 7,
            "forms_submitted": {"webinar-registration"},
        },
    ],
    ids=["new lead", "existing lead"],
)
def test_the_update_expression_means_what_apply_changes_does(demo: FormDefinition, existing: dict[str, Any] | None):
    # GIVEN the changes of a rich submission and a stored record (or none)
    changes = rich_changes(demo)

    # WHEN the update is carried out the way DynamoDB would
    updated = run_update(existing, parse_update(*update_expression(changes)))

    # THEN the record is the one apply_changes gives
    assert updated == apply_changes(existing, changes)


def test_the_update_values_are_dynamodb_typed():
    # GIVEN changes with text, map, number and boolean values
    changes = LeadChanges(
        set_always={"email": "jane@example.com", "last_touch": {"utm_source": "x"}, "cf_seats": 2.5, "cf_ok": True},
        set_if_absent={"lead_id": LEAD_ID},
        increment={"submissions": 1},
    )

    # WHEN they are turned into an update
    actions = parse_update(*update_expression(changes))

    # THEN each value is in DynamoDB's wire format
    assert {name: typed for name, (_, typed) in actions.items()} == {
        "email": {"S": "jane@example.com"},
        "last_touch": {"M": {"utm_source": {"S": "x"}}},
        "cf_seats": {"N": "2.5"},
        "cf_ok": {"BOOL": True},
        "lead_id": {"S": LEAD_ID},
        "submissions": {"N": "1"},
    }


def test_an_update_without_increments_has_no_add_clause():
    # GIVEN changes that count nothing
    changes = LeadChanges(set_always={"email": "jane@example.com"}, set_if_absent={"lead_id": LEAD_ID}, increment={})

    # WHEN they are turned into an update
    expression, names, values = update_expression(changes)

    # THEN it is SET only
    assert "ADD" not in expression
    assert parse_update(expression, names, values).keys() == {"email", "lead_id"}


# ---------------------------------------------------------------------------- who may overwrite (issue 13, defect 6)


def test_an_unidentified_post_for_a_known_lead_only_fills_blanks(demo: FormDefinition):
    # GIVEN a lead who told us their first name and company
    known = {"lead_id": LEAD_ID, "first_name": "Jane", "company": "ACME", "stage": "lead"}
    # WHEN a stranger posts their address with other values and a title the lead never gave
    stranger = submit(demo, {"email": "jane@acme.example", "first_name": "Mallory", "company": "Evil", "title": "CEO"})
    write = make_plan(stranger).for_lead(LEAD_ID, is_new=False)
    lead = apply_changes(known, write.changes)
    # THEN nothing the person told us changed, the blank was filled, and the activity keeps the values for review
    assert (lead["first_name"], lead["company"], lead["title"]) == ("Jane", "ACME", "CEO")
    assert write.activity["unverified"] is True
    assert write.activity["fields"]["first_name"] == ["Mallory"]


def test_the_identified_visitor_may_update_their_own_lead(demo: FormDefinition):
    # GIVEN the same post from a browser leadflow's signed visitor cookie names as this lead
    known = {"lead_id": LEAD_ID, "first_name": "Jane", "company": "ACME"}
    moved = submit(demo, {"email": "jane@acme.example", "company": "Globex"})
    plan = CapturePlan(moved, "a", "n", ("e1", "e2"), "k", identified_lead_id=LEAD_ID)
    # WHEN it is planned for the lead
    write = plan.for_lead(LEAD_ID, is_new=False)
    # THEN the newer value replaces the old one, and the activity is not marked unverified
    assert apply_changes(known, write.changes)["company"] == "Globex"
    assert "unverified" not in write.activity


def test_a_cookie_of_another_lead_does_not_identify_the_post(demo: FormDefinition):
    # GIVEN a visitor identified as another lead posting this lead's address
    plan = CapturePlan(submit(demo, {"email": "jane@acme.example", "company": "Globex"}), "a", "n", ("e1", "e2"), "k")
    plan = CapturePlan(plan.submission, "a", "n", ("e1", "e2"), "k", identified_lead_id="01OTHERLEAD0000000000000000")
    # WHEN it is planned
    write = plan.for_lead(LEAD_ID, is_new=False)
    # THEN it only fills blanks
    assert apply_changes({"company": "ACME"}, write.changes)["company"] == "ACME"
