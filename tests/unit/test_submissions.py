"""validate_submission and spam_verdict: posted fields in, a valid submission (or why not) out.

The demo form is the shipped workspace/forms/demo-signup.yaml; other forms are built here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from leadflow.config.workspace import Workspace
from leadflow.domain.definitions.forms import FormDefinition, FormField
from leadflow.domain.errors import InvalidSubmission
from leadflow.domain.submissions import (
    ClientInfo,
    ConsentRecord,
    FormPost,
    SpamReason,
    Submission,
    idempotency_key,
    spam_verdict,
    validate_submission,
)
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
CLIENT_IP = "203.0.113.7"


@pytest.fixture(scope="module")
def demo() -> FormDefinition:
    return Workspace(WORKSPACE).form("demo-signup")


@pytest.fixture(scope="module")
def webinar() -> FormDefinition:
    return Workspace(WORKSPACE).form("webinar-registration")


def make_post(
    fields: Mapping[str, str | list[str]],
    *,
    user_agent: str = "Mozilla/5.0",
    referer: str = "",
    idempotency_key: str | None = None,
) -> FormPost:
    return FormPost(
        fields={name: [value] if isinstance(value, str) else list(value) for name, value in fields.items()},
        client=ClientInfo(ip=CLIENT_IP, user_agent=user_agent, referer=referer),
        idempotency_key=idempotency_key,
    )


def make_form(*fields: dict[str, Any], **options: Any) -> FormDefinition:
    return FormDefinition.model_validate(
        {
            "id": "test-form",
            "name": "Test form",
            "thank_you_url": "/thanks",
            "fields": [{"name": "email", "type": "email", "required": True}, *fields],
            **options,
        }
    )


def refusals(form: FormDefinition, post: FormPost) -> dict[str, str]:
    """The field errors of a submission that must be refused, by field name."""
    with pytest.raises(InvalidSubmission) as refused:
        validate_submission(form, post, NOW)
    return {error.field: error.message for error in refused.value.errors}


def ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


# ---------------------------------------------------------------------------- email and basics


def test_an_email_alone_is_a_valid_submission(demo: FormDefinition):
    # GIVEN a post of the demo form with only an email
    post = make_post({"email": " Jane@Example.com "})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN it is a submission of that form with the normalized email and nothing else
    assert submission.form_id == "demo-signup"
    assert submission.email.address == "Jane@example.com"
    assert submission.email.key == "jane@example.com"
    assert submission.profile == {}
    assert submission.custom == {}
    assert submission.consent is None
    assert submission.received_at == NOW
    assert submission.lifecycle_stage == "lead"


@pytest.mark.parametrize("fields", [{}, {"email": ""}, {"email": "   "}, {"email": ["", " "]}], ids=repr)
def test_a_missing_or_blank_email_is_required(demo: FormDefinition, fields: dict[str, Any]):
    # GIVEN a post without a usable email
    # WHEN it is validated
    errors = refusals(demo, make_post(fields))

    # THEN the email is named as required
    assert errors == {"email": "is required"}


def test_an_invalid_email_is_refused_with_the_reason(demo: FormDefinition):
    # GIVEN a post with a broken address
    # WHEN it is validated
    errors = refusals(demo, make_post({"email": "jane@example..com"}))

    # THEN the email is named, with why it is not valid
    assert set(errors) == {"email"}
    assert "period" in errors["email"]


def test_every_bad_field_is_reported_at_once(demo: FormDefinition):
    # GIVEN a post with three bad fields
    post = make_post({"email": "not-an-address", "company_size": "huge", "first_name": "x" * 101})

    # WHEN it is validated
    errors = refusals(demo, post)

    # THEN all three are named
    assert set(errors) == {"email", "company_size", "first_name"}


def test_the_first_non_blank_value_of_a_repeated_field_counts(demo: FormDefinition):
    # GIVEN a field posted twice, the first time blank (a duplicated input on the page)
    post = make_post({"email": ["", "jane@example.com"], "first_name": [" ", "Jane", "Janet"]})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the first non-blank values are taken
    assert submission.email.address == "jane@example.com"
    assert submission.profile["first_name"] == "Jane"


def test_profile_fields_are_cleaned_and_blanks_are_absent(demo: FormDefinition):
    # GIVEN profile fields with white space around them, and some left blank
    post = make_post(
        {"email": "jane@example.com", "first_name": "  Jane ", "last_name": "", "company": "  ", "title": "CTO"}
    )

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN only the non-blank ones are in the profile, trimmed
    assert submission.profile == {"first_name": "Jane", "title": "CTO"}


def test_standard_profile_fields_are_accepted_without_being_declared():
    # GIVEN a form that declares only the email
    form = make_form()

    # WHEN a post carries the standard profile fields anyway
    submission = validate_submission(
        form, make_post({"email": "jane@example.com", "first_name": "Jane", "phone": "+49 30 1234567"}), NOW
    )

    # THEN they are kept (they are the public contract of every form)
    assert submission.profile == {"first_name": "Jane", "phone": "+49 30 1234567"}


def test_unknown_fields_are_not_stored_on_the_lead(demo: FormDefinition):
    # GIVEN a post with fields the form does not declare
    post = make_post({"email": "jane@example.com", "favourite_colour": "teal", "utm_id": "42"})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN they are in neither the profile nor the custom fields (only in the raw record)
    assert "favourite_colour" not in submission.profile
    assert "favourite_colour" not in submission.custom
    assert submission.raw_fields["favourite_colour"] == ["teal"]


def test_the_form_hidden_fields_are_not_kept_in_the_raw_record(demo: FormDefinition):
    # GIVEN a post with the snippet's render time and nonce
    post = make_post({"email": "jane@example.com", "_lf_ts": ms(NOW - timedelta(seconds=30)), "_lf_nonce": "n-1"})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN they are not part of the raw fields
    assert set(submission.raw_fields) == {"email"}


# ---------------------------------------------------------------------------- protected fields


@pytest.mark.parametrize("name", ["score", "grade", "stage", "owner", "lead_id", "created_at", "consent", "tags"])
def test_a_form_cannot_declare_a_field_leadflow_manages(name: str):
    # GIVEN a field named like something leadflow manages
    # WHEN it is declared
    with pytest.raises(ValueError) as refused:  # a ConfigProblem; pydantic reports it as a ValidationError
        FormField(name=name)

    # THEN the definition is refused, naming why
    assert "managed by leadflow" in str(refused.value)


def test_posting_managed_fields_changes_nothing(demo: FormDefinition):
    # GIVEN a post that tries to set the score, stage and owner
    post = make_post({"email": "jane@example.com", "score": "100", "stage": "customer", "owner": "mallory"})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN none of them reach the lead
    assert not {"score", "stage", "owner"} & (set(submission.profile) | set(submission.custom))
    assert submission.lifecycle_stage == "lead"


# ---------------------------------------------------------------------------- field types


@pytest.mark.parametrize("size", ["1-10", "11-50", "1000+"])
def test_a_listed_select_option_is_kept(demo: FormDefinition, size: str):
    # GIVEN a post choosing a listed company size
    # WHEN it is validated
    submission = validate_submission(demo, make_post({"email": "jane@example.com", "company_size": size}), NOW)

    # THEN the option is a custom field
    assert submission.custom == {"company_size": size}


@pytest.mark.parametrize("size", ["12", "1-10 ; DROP TABLE", "11-50x", "Enterprise"])
def test_an_unlisted_select_option_is_refused(demo: FormDefinition, size: str):
    # GIVEN a post with a company size that is not an option
    # WHEN it is validated
    errors = refusals(demo, make_post({"email": "jane@example.com", "company_size": size}))

    # THEN the field is named
    assert errors == {"company_size": "must be one of the listed options"}


@pytest.mark.parametrize("phone", ["+1 (555) 010-2030", "030/1234567", "+44 20 7946 0958 ext. 12", "555.0100 x42"])
def test_a_phone_number_is_kept(phone: str):
    # GIVEN a form with a phone field
    form = make_form({"name": "phone", "type": "phone"})

    # WHEN a plausible number is posted
    submission = validate_submission(form, make_post({"email": "jane@example.com", "phone": phone}), NOW)

    # THEN it is the profile's phone
    assert submission.profile["phone"] == phone


@pytest.mark.parametrize("phone", ["call me", "12", "+1 555 <script>", "1" * 40])
def test_a_phone_field_refuses_what_is_not_a_number(phone: str):
    # GIVEN a form with a phone field
    form = make_form({"name": "phone", "type": "phone"})

    # WHEN something else is posted
    errors = refusals(form, make_post({"email": "jane@example.com", "phone": phone}))

    # THEN the phone is named
    assert set(errors) == {"phone"}


@pytest.mark.parametrize(("raw", "number"), [("42", 42.0), (" 3.5 ", 3.5), ("-1e3", -1000.0), ("0", 0.0)])
def test_a_number_field_stores_a_number(raw: str, number: float):
    # GIVEN a form with a number field
    form = make_form({"name": "seats", "type": "number"})

    # WHEN a number is posted
    submission = validate_submission(form, make_post({"email": "jane@example.com", "seats": raw}), NOW)

    # THEN it is stored as a number
    assert submission.custom == {"seats": number}


@pytest.mark.parametrize("raw", ["many", "nan", "inf", "-Infinity", "1e999", "4,5", "1e125", "-3e200"])
def test_a_number_field_refuses_what_is_not_a_storable_number(raw: str):
    # GIVEN a form with a number field
    form = make_form({"name": "seats", "type": "number"})

    # WHEN something else is posted (or a number beyond DynamoDB's range of magnitudes)
    errors = refusals(form, make_post({"email": "jane@example.com", "seats": raw}))

    # THEN the field is named
    assert set(errors) == {"seats"}


def test_a_number_too_small_for_dynamodb_is_stored_as_zero():
    # GIVEN a form with a number field
    form = make_form({"name": "seats", "type": "number"})

    # WHEN a number below DynamoDB's smallest magnitude is posted
    submission = validate_submission(form, make_post({"email": "jane@example.com", "seats": "1e-200"}), NOW)

    # THEN it is stored as zero
    assert submission.custom == {"seats": 0.0}


def test_a_url_field_keeps_an_http_url():
    # GIVEN a form with a URL field
    form = make_form({"name": "website_url", "type": "url"})

    # WHEN an https URL is posted
    post = make_post({"email": "jane@example.com", "website_url": "https://acme.example/about?x=1"})
    submission = validate_submission(form, post, NOW)

    # THEN it is kept
    assert submission.custom == {"website_url": "https://acme.example/about?x=1"}


@pytest.mark.parametrize("raw", ["javascript:alert(1)", "acme.example", "ftp://acme.example/", "https://", "data:,x"])
def test_a_url_field_refuses_what_is_not_an_http_url(raw: str):
    # GIVEN a form with a URL field
    form = make_form({"name": "website_url", "type": "url"})

    # WHEN something else is posted
    errors = refusals(form, make_post({"email": "jane@example.com", "website_url": raw}))

    # THEN the field is named
    assert errors == {"website_url": "must be an http(s) URL"}


@pytest.mark.parametrize("raw", ["http://[", "https://[::1/", "http://acme\uff03example/"], ids=repr)
def test_a_url_field_refuses_an_unparseable_url_with_a_field_error(raw: str):
    # GIVEN a form with a URL field
    form = make_form({"name": "website_url", "type": "url"})

    # WHEN a URL that urlsplit cannot parse is posted
    errors = refusals(form, make_post({"email": "jane@example.com", "website_url": raw}))

    # THEN the field is named (not an unexpected exception, which would be a 500)
    assert set(errors) == {"website_url"}


@pytest.mark.parametrize(("raw", "ticked"), [("on", True), ("yes", True), ("TRUE", True), ("off", False), ("0", False)])
def test_a_posted_checkbox_is_stored_as_a_boolean(raw: str, ticked: bool):
    # GIVEN a form with an optional checkbox
    form = make_form({"name": "wants_demo", "type": "checkbox"})

    # WHEN the box is posted ticked or unticked
    submission = validate_submission(form, make_post({"email": "jane@example.com", "wants_demo": raw}), NOW)

    # THEN the custom field is a boolean
    assert submission.custom == {"wants_demo": ticked}


def test_an_absent_checkbox_is_not_stored():
    # GIVEN a form with an optional checkbox
    form = make_form({"name": "wants_demo", "type": "checkbox"})

    # WHEN a post does not carry it (a browser sends nothing for an unticked box)
    submission = validate_submission(form, make_post({"email": "jane@example.com"}), NOW)

    # THEN nothing is stored for it
    assert submission.custom == {}


@pytest.mark.parametrize("fields", [{}, {"terms": "off"}, {"terms": ""}], ids=repr)
def test_a_required_checkbox_must_be_ticked(fields: dict[str, str]):
    # GIVEN a form with a required checkbox
    form = make_form({"name": "terms", "type": "checkbox", "required": True})

    # WHEN it is not ticked
    errors = refusals(form, make_post({"email": "jane@example.com", **fields}))

    # THEN it is named as required
    assert errors == {"terms": "is required"}


@pytest.mark.parametrize(("raw", "country"), [("de", "DE"), (" Fr ", "FR"), ("Germany", "Germany"), ("D1", "D1")])
def test_a_two_letter_country_code_is_uppercased(demo: FormDefinition, raw: str, country: str):
    # GIVEN a post with a country
    # WHEN it is validated
    submission = validate_submission(demo, make_post({"email": "jane@example.com", "country": raw}), NOW)

    # THEN ISO-looking codes are uppercased and names are kept
    assert submission.profile["country"] == country


def test_a_declared_email_type_custom_field_is_normalized():
    # GIVEN a form with a second email field
    form = make_form({"name": "manager_email", "type": "email"})

    # WHEN addresses are posted in both
    post = make_post({"email": "jane@example.com", "manager_email": " Boss@ACME.example.com "})
    submission = validate_submission(form, post, NOW)

    # THEN the second is stored normalized
    assert submission.custom == {"manager_email": "Boss@acme.example.com"}


def test_a_declared_email_type_custom_field_refuses_a_bad_address():
    # GIVEN a form with a second email field
    form = make_form({"name": "manager_email", "type": "email"})

    # WHEN a broken address is posted in it
    errors = refusals(form, make_post({"email": "jane@example.com", "manager_email": "boss@"}))

    # THEN that field is named
    assert set(errors) == {"manager_email"}


def test_a_form_whose_email_field_has_the_default_type_still_captures_the_email():
    # GIVEN a form whose email field leaves the type at its default (as a YAML author easily writes)
    try:
        form = FormDefinition.model_validate(
            {"id": "plain", "name": "Plain", "thank_you_url": "/t", "fields": [{"name": "email", "required": True}]}
        )
    except ValidationError:
        return  # refusing such a definition up front is an equally good outcome

    # WHEN a valid address is posted
    submission = validate_submission(form, make_post({"email": "jane@example.com"}), NOW)

    # THEN it is captured
    assert submission.email.address == "jane@example.com"


# ---------------------------------------------------------------------------- lengths and aliases


def test_a_value_at_max_length_is_kept_and_one_over_is_refused(demo: FormDefinition):
    # GIVEN the demo form's first_name (max 100 characters)
    at_limit = make_post({"email": "jane@example.com", "first_name": "J" * 100})
    over_limit = make_post({"email": "jane@example.com", "first_name": "J" * 101})

    # WHEN both are validated
    kept = validate_submission(demo, at_limit, NOW)
    errors = refusals(demo, over_limit)

    # THEN the limit is inclusive and the error says what it is
    assert kept.profile["first_name"] == "J" * 100
    assert errors == {"first_name": "must be at most 100 characters"}


def test_max_length_counts_the_cleaned_value(demo: FormDefinition):
    # GIVEN a value at the limit once surrounding spaces are trimmed
    post = make_post({"email": "jane@example.com", "first_name": "   " + "J" * 100 + "   "})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN it is kept
    assert submission.profile["first_name"] == "J" * 100


@pytest.fixture
def mautic() -> FormDefinition:
    return FormDefinition.model_validate(
        {
            "id": "mautic-embed",
            "name": "Mautic embed",
            "thank_you_url": "/thanks",
            "fields": [
                {"name": "email", "type": "email", "required": True, "aliases": ["mauticform[email_address]"]},
                {"name": "first_name", "aliases": ["mauticform[f_name]"]},
                {"name": "company_size", "type": "select", "options": ["1-10", "11-50"], "aliases": ["mauticform[s]"]},
                {"name": "utm_source", "type": "hidden", "aliases": ["mauticform[utm_source]"]},
            ],
        }
    )


def test_fields_posted_under_their_aliases_are_understood(mautic: FormDefinition):
    # GIVEN a post from a Mautic-built form (bracketed field names)
    post = make_post(
        {
            "mauticform[email_address]": "jane@example.com",
            "mauticform[f_name]": "Jane",
            "mauticform[s]": "11-50",
            "mauticform[utm_source]": "partner-site",
            "mauticform[formId]": "3",
        }
    )

    # WHEN it is validated
    submission = validate_submission(mautic, post, NOW)

    # THEN each alias fills its field, attribution included
    assert submission.email.address == "jane@example.com"
    assert submission.profile == {"first_name": "Jane"}
    assert submission.custom == {"company_size": "11-50"}
    assert submission.touch["utm_source"] == "partner-site"


def test_the_field_name_wins_over_an_alias(mautic: FormDefinition):
    # GIVEN a post with both the field's own name and its alias
    post = make_post({"email": "jane@example.com", "mauticform[email_address]": "other@example.com"})

    # WHEN it is validated
    submission = validate_submission(mautic, post, NOW)

    # THEN the own name counts
    assert submission.email.address == "jane@example.com"


def test_an_alias_value_is_validated_like_the_field(mautic: FormDefinition):
    # GIVEN an invalid option posted under the alias
    post = make_post({"mauticform[email_address]": "jane@example.com", "mauticform[s]": "huge"})

    # WHEN it is validated
    errors = refusals(mautic, post)

    # THEN the error names the field, not the alias
    assert errors == {"company_size": "must be one of the listed options"}


# ---------------------------------------------------------------------------- consent


@pytest.mark.parametrize("ticked", ["on", "yes", "true", "1", "I agree"])
def test_a_ticked_consent_box_records_a_granted_consent(demo: FormDefinition, ticked: str):
    # GIVEN a post of the demo form with the consent box ticked
    post = make_post({"email": "jane@example.com", "consent": ticked}, user_agent="Mozilla/5.0 (X11)")

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the consent is recorded with the wording, its version and the proof of who and when
    assert submission.consent == ConsentRecord(
        purpose="marketing_email",
        granted=True,
        text=demo.consent.text if demo.consent else "",
        version="2026-11-01",
        form_id="demo-signup",
        at=NOW.isoformat(),
        ip=CLIENT_IP,
        user_agent="Mozilla/5.0 (X11)",
    )


@pytest.mark.parametrize("fields", [{}, {"consent": ""}, {"consent": "off"}, {"consent": "false"}, {"consent": "No"}])
def test_an_unticked_optional_consent_box_records_nothing(demo: FormDefinition, fields: dict[str, str]):
    # GIVEN a post of the demo form (consent optional) without a ticked box
    # WHEN it is validated
    submission = validate_submission(demo, make_post({"email": "jane@example.com", **fields}), NOW)

    # THEN no consent is recorded (not even a refusal: unticked is no withdrawal)
    assert submission.consent is None


def test_an_unticked_required_consent_box_refuses_the_post(webinar: FormDefinition):
    # GIVEN a post of the webinar form (consent required) without consent
    post = make_post({"email": "jane@example.com", "first_name": "Jane", "company": "ACME", "webinar_id": "w-1"})

    # WHEN it is validated
    errors = refusals(webinar, post)

    # THEN the consent field is named
    assert errors == {"consent": "must be ticked to submit this form"}


def test_a_ticked_required_consent_box_is_accepted(webinar: FormDefinition):
    # GIVEN a complete post of the webinar form with consent
    post = make_post(
        {"email": "jane@example.com", "first_name": "Jane", "company": "ACME", "webinar_id": "w-1", "consent": "on"}
    )

    # WHEN it is validated
    submission = validate_submission(webinar, post, NOW)

    # THEN the consent is granted for the form's purpose and wording version
    assert submission.consent is not None
    assert (submission.consent.granted, submission.consent.version) == (True, "2026-09-15")
    assert submission.custom == {"webinar_id": "w-1"}
    assert submission.touch["channel"] == "webinar"


def test_the_consent_record_keeps_at_most_500_characters_of_user_agent(demo: FormDefinition):
    # GIVEN a post with an enormous user agent
    post = make_post({"email": "jane@example.com", "consent": "on"}, user_agent="A" * 5000)

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the proof keeps a bounded user agent
    assert submission.consent is not None
    assert submission.consent.user_agent == "A" * 500


def test_a_consent_record_serializes_with_its_source(demo: FormDefinition):
    # GIVEN a granted consent
    submission = validate_submission(demo, make_post({"email": "jane@example.com", "consent": "on"}), NOW)
    assert submission.consent is not None

    # WHEN it is turned into a stored item
    item = submission.consent.as_item()

    # THEN it says it came from a form
    assert item["source"] == "form"
    assert item["granted"] is True
    assert item["form_id"] == "demo-signup"


# ---------------------------------------------------------------------------- attribution


def test_utm_hidden_fields_make_the_touch(demo: FormDefinition):
    # GIVEN a post with UTM hidden fields, the landing page and a referrer
    post = make_post(
        {
            "email": "jane@example.com",
            "utm_source": "newsletter",
            "utm_medium": "email",
            "utm_campaign": "spring launch",
            "utm_term": "crm",
            "utm_content": "cta-1",
            "page_url": "https://www.example.com/demo",
            "referrer": "https://news.example.org/",
        }
    )

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the touch carries them with the channel, form and time
    assert submission.touch == {
        "channel": "form",
        "form_id": "demo-signup",
        "at": NOW.isoformat(),
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring launch",
        "utm_term": "crm",
        "utm_content": "cta-1",
        "page_url": "https://www.example.com/demo",
        "referrer": "https://news.example.org/",
    }


def test_utm_parameters_of_the_page_url_fill_empty_hidden_fields(demo: FormDefinition):
    # GIVEN empty UTM hidden fields and a page URL that still carries UTM parameters
    post = make_post(
        {
            "email": "jane@example.com",
            "utm_source": "",
            "utm_medium": "",
            "page_url": "https://www.example.com/demo?utm_source=linkedin&utm_medium=paid%20social&utm_campaign=q4",
        }
    )

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the page URL's parameters are the attribution
    assert submission.touch["utm_source"] == "linkedin"
    assert submission.touch["utm_medium"] == "paid social"
    assert submission.touch["utm_campaign"] == "q4"


def test_a_filled_hidden_field_wins_over_the_page_url(demo: FormDefinition):
    # GIVEN a UTM hidden field and a page URL that disagree
    post = make_post(
        {"email": "jane@example.com", "utm_source": "newsletter", "page_url": "https://x.example/?utm_source=ads"}
    )

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the hidden field counts
    assert submission.touch["utm_source"] == "newsletter"


def test_the_referer_header_is_the_page_url_when_none_was_posted(demo: FormDefinition):
    # GIVEN a post without page_url, from a page whose address carries UTM parameters
    post = make_post({"email": "jane@example.com"}, referer="https://www.example.com/pricing?utm_medium=cpc")

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the Referer header is the page and its parameters count
    assert submission.touch["page_url"] == "https://www.example.com/pricing?utm_medium=cpc"
    assert submission.touch["utm_medium"] == "cpc"


def test_a_posted_page_url_wins_over_the_referer_header(demo: FormDefinition):
    # GIVEN a post with a page_url and a different Referer
    post = make_post(
        {"email": "jane@example.com", "page_url": "https://www.example.com/landing"},
        referer="https://www.example.com/other",
    )

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the posted page counts
    assert submission.touch["page_url"] == "https://www.example.com/landing"


def test_attribution_values_are_cut_to_2000_characters(demo: FormDefinition):
    # GIVEN an absurdly long campaign name
    post = make_post({"email": "jane@example.com", "utm_campaign": "c" * 5000})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the touch keeps a bounded value
    assert submission.touch["utm_campaign"] == "c" * 2000


@pytest.mark.parametrize("code", ["ana-k", "acme_partner", "X" * 64])
def test_a_well_formed_ref_code_is_the_referral(demo: FormDefinition, code: str):
    # GIVEN a post that came through a share link
    # WHEN it is validated
    submission = validate_submission(demo, make_post({"email": "jane@example.com", "ref": code}), NOW)

    # THEN the code is both attribution and the referral
    assert submission.touch["ref"] == code
    assert submission.referral_code == code


@pytest.mark.parametrize("code", ["ana k", "<script>", "a/b", "X" * 65, "ana-k;drop"])
def test_a_malformed_ref_code_is_dropped(demo: FormDefinition, code: str):
    # GIVEN a post with a ref code that cannot be a share code
    # WHEN it is validated
    submission = validate_submission(demo, make_post({"email": "jane@example.com", "ref": code}), NOW)

    # THEN the post is accepted without a referral
    assert "ref" not in submission.touch
    assert submission.referral_code is None


@pytest.mark.parametrize("page_url", ["http://[", "https://[::1/landing", "//[x", "http://www\uff0eexample\u2100/"])
def test_an_unparseable_page_url_does_not_break_the_submission(demo: FormDefinition, page_url: str):
    # GIVEN a post whose page_url cannot be parsed as a URL
    post = make_post({"email": "jane@example.com", "page_url": page_url})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the lead is still captured (attribution is best effort)
    assert submission.email.address == "jane@example.com"


def test_an_unparseable_referer_header_does_not_break_the_submission(demo: FormDefinition):
    # GIVEN a post whose Referer header cannot be parsed as a URL
    post = make_post({"email": "jane@example.com"}, referer="http://[")

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the lead is still captured
    assert submission.email.address == "jane@example.com"


# ---------------------------------------------------------------------------- spam


def test_a_filled_honeypot_is_spam(demo: FormDefinition):
    # GIVEN a post whose hidden honeypot field was filled in (by a bot)
    fields = {"email": ["jane@example.com"], "website": ["http://spam.example"]}

    # WHEN it is judged
    # THEN it is spam
    assert spam_verdict(demo, fields, NOW) is SpamReason.HONEYPOT


@pytest.mark.parametrize("honeypot", [[], [""], ["   "]], ids=repr)
def test_an_empty_honeypot_is_not_spam(demo: FormDefinition, honeypot: list[str]):
    # GIVEN a post whose honeypot is empty or absent
    fields = {"email": ["jane@example.com"], "website": honeypot}

    # WHEN it is judged
    # THEN it is not spam
    assert spam_verdict(demo, fields, NOW) is None


@pytest.mark.parametrize("elapsed", [0.0, 0.5, 1.999, -10.0, -299.0])
def test_a_post_sooner_than_the_minimum_fill_time_is_spam(demo: FormDefinition, elapsed: float):
    # GIVEN a post sent this soon after the form was rendered (the demo form wants 2 seconds;
    # a render time slightly in the future is clock skew of a fast bot)
    fields = {"email": ["jane@example.com"], "_lf_ts": [ms(NOW - timedelta(seconds=elapsed))]}

    # WHEN it is judged
    # THEN it is too fast
    assert spam_verdict(demo, fields, NOW) is SpamReason.TOO_FAST


@pytest.mark.parametrize("elapsed", [2.0, 3.0, 3600.0, -301.0])
def test_a_post_after_the_minimum_fill_time_is_not_spam(demo: FormDefinition, elapsed: float):
    # GIVEN a post sent this long after rendering (or with a render time far in the future: not judged)
    fields = {"email": ["jane@example.com"], "_lf_ts": [ms(NOW - timedelta(seconds=elapsed))]}

    # WHEN it is judged
    # THEN it is not spam
    assert spam_verdict(demo, fields, NOW) is None


@pytest.mark.parametrize("rendered", [[], [""], ["yesterday"], ["nan"], ["inf"], ["1e400"], ["\ud800"]], ids=repr)
def test_a_missing_or_unreadable_render_time_is_not_judged(demo: FormDefinition, rendered: list[str]):
    # GIVEN a post without a usable render time (a form embedded elsewhere may not send one)
    fields = {"email": ["jane@example.com"], "_lf_ts": rendered}

    # WHEN it is judged
    # THEN it is not spam
    assert spam_verdict(demo, fields, NOW) is None


def test_a_form_without_spam_rules_judges_nothing():
    # GIVEN a form with no honeypot and no minimum fill time
    form = make_form()

    # WHEN an instant post with a "website" field arrives
    fields = {"email": ["jane@example.com"], "website": ["x"], "_lf_ts": [ms(NOW)]}

    # THEN it is not spam
    assert spam_verdict(form, fields, NOW) is None


# ---------------------------------------------------------------------------- idempotency


def test_the_idempotency_key_comes_from_the_header(demo: FormDefinition):
    # GIVEN a post with an Idempotency-Key header and a form nonce
    post = make_post({"email": "jane@example.com", "_lf_nonce": "nonce-1"}, idempotency_key="header-key-1")

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the header wins
    assert submission.idempotency_key == "header-key-1"


def test_the_idempotency_key_falls_back_to_the_form_nonce(demo: FormDefinition):
    # GIVEN a post with only the form nonce
    post = make_post({"email": "jane@example.com", "_lf_nonce": "01JCZ3Q8X8F5T9Y4N2M1K0H7GE"})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the nonce is the key
    assert submission.idempotency_key == "01JCZ3Q8X8F5T9Y4N2M1K0H7GE"


def test_without_header_or_nonce_there_is_no_idempotency_key(demo: FormDefinition):
    # GIVEN a post with neither
    # WHEN it is validated
    submission = validate_submission(demo, make_post({"email": "jane@example.com"}), NOW)

    # THEN there is no key
    assert submission.idempotency_key is None


@pytest.mark.parametrize("key", ["has space", "x" * 129, "ключ", "", "tab\tkey"], ids=repr)
def test_a_malformed_idempotency_key_is_ignored(key: str):
    # GIVEN a post with a key that is not 1-128 printable ASCII characters
    post = make_post({"_lf_nonce": key}, idempotency_key=key)

    # WHEN its key is read
    # THEN there is none
    assert idempotency_key(post) is None


# ---------------------------------------------------------------------------- hostile text


def test_control_characters_are_stripped_but_line_breaks_kept(demo: FormDefinition):
    # GIVEN values with NUL, BEL, ESC and a multi-line message
    post = make_post(
        {"email": "jane@example.com", "first_name": "Ja\x00ne\x07", "company": "\x1b[31mACME", "interest": "a\r\nb\tc"}
    )

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN invisible control characters are gone, line breaks and tabs stay
    assert submission.profile == {"first_name": "Jane", "company": "[31mACME"}
    assert submission.custom == {"interest": "a\r\nb\tc"}


def test_text_is_stored_in_composed_unicode(demo: FormDefinition):
    # GIVEN a name typed with a combining accent
    post = make_post({"email": "jane@example.com", "first_name": "Rene\u0301"})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN it is stored NFC
    assert submission.profile["first_name"] == "Ren\u00e9"


@pytest.mark.parametrize(
    "field", ["email", "first_name", "last_name", "company", "title", "country", "company_size", "interest"]
)
def test_a_lone_surrogate_is_refused_with_a_field_error(demo: FormDefinition, field: str):
    # GIVEN a post (e.g. JSON with a "\ud800" escape) carrying a lone surrogate in one field
    fields = {"email": "jane@example.com", field: "Jane\ud800"}

    # WHEN it is validated
    errors = refusals(demo, make_post(fields))

    # THEN exactly that field is named
    assert set(errors) == {field}


def test_a_lone_surrogate_in_the_consent_box_is_refused(demo: FormDefinition):
    # GIVEN a post whose consent value is a lone surrogate
    post = make_post({"email": "jane@example.com", "consent": "\udc80"})

    # WHEN it is validated
    errors = refusals(demo, post)

    # THEN the consent field is named, as any other field would be
    assert set(errors) == {"consent"}


def test_lone_surrogates_in_attribution_and_client_details_are_dropped(demo: FormDefinition):
    # GIVEN lone surrogates in attribution fields, the user agent and the Referer header
    post = make_post(
        {"email": "jane@example.com", "utm_source": "\ud800", "page_url": "https://x.example/\udfff", "consent": "on"},
        user_agent="Mozilla\ud800",
        referer="https://r.example/\ud800",
    )

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the post is accepted and nothing unencodable is kept
    assert "utm_source" not in submission.touch
    assert "page_url" not in submission.touch
    assert submission.consent is not None
    assert submission.consent.user_agent == ""
    assert all(value.encode("utf-8") for values in submission.raw_fields.values() for value in values)


@pytest.mark.parametrize("name", ["bad\ud800name", "", "   ", "\x00\x01"], ids=repr)
def test_a_field_name_that_cannot_be_stored_is_left_out_of_the_raw_record(demo: FormDefinition, name: str):
    # GIVEN a post with a field whose name is not valid Unicode, or blank once cleaned
    # (DynamoDB refuses empty map keys)
    post = make_post({"email": "jane@example.com", name: "x"})

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN the raw record has only encodable names
    assert set(submission.raw_fields) == {"email"}


def test_a_complete_post_puts_every_value_where_it_belongs(demo: FormDefinition):
    # GIVEN the demo form and a full, ordinary post
    post = make_post(
        {
            "email": "jane@acme.example",
            "first_name": "Jane",
            "last_name": "Doe",
            "company": "ACME",
            "title": "CTO",
            "country": "de",
            "company_size": "51-200",
            "interest": "Lead scoring",
            "consent": "on",
            "utm_source": "newsletter",
            "ref": "ana-k",
        }
    )

    # WHEN it is validated
    submission = validate_submission(demo, post, NOW)

    # THEN every part is where it belongs
    assert isinstance(submission, Submission)
    assert submission.profile == {
        "first_name": "Jane",
        "last_name": "Doe",
        "company": "ACME",
        "title": "CTO",
        "country": "DE",
    }
    assert submission.custom == {"company_size": "51-200", "interest": "Lead scoring"}
    assert submission.email.company_domain == "acme.example"
    assert submission.referral_code == "ana-k"
