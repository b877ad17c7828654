"""Leads stated through the admin API or an import (domain.audience): the rules of capture, no
implied consent, no form counted, PATCH semantics (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadflow.domain.audience import (
    API,
    IMPORT,
    StatedConsent,
    plan_update,
    stated_plan,
    stated_submission,
    tag_activity,
    tag_events,
)
from leadflow.domain.consent import consent_decision
from leadflow.domain.errors import InvalidSubmission
from leadflow.domain.leads import apply_changes
from leadflow.domain.nurture.triggers import triggered_by

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
IDS = ("A1", "L1", "E1", "E2")


def fields_of(error: pytest.ExceptionInfo[InvalidSubmission]) -> set[str]:
    return {e.field for e in error.value.errors}


def test_a_stated_lead_is_checked_as_capture_checks_a_form_post() -> None:
    submission = stated_submission(
        API,
        {"email": " Ada@Example.COM ", "phone": "+44 20 7946 0958", "country": "gb"},
        {"seats": 12, "vip": True},
        NOW,
    )
    assert submission.email.address == "Ada@example.com"
    assert submission.profile == {"phone": "+44 20 7946 0958", "country": "GB"}
    assert submission.custom == {"seats": 12.0, "vip": True}
    assert submission.consent is None and submission.touch["channel"] == "api"


def test_every_bad_field_is_named() -> None:
    with pytest.raises(InvalidSubmission) as error:
        stated_submission(
            API,
            {"email": "no-at-sign", "phone": "call me", "nickname": "x"},
            {"Bad": "x", "stage": "customer", "n": 1e200},
            NOW,
        )
    assert fields_of(error) == {"custom.Bad", "custom.stage", "nickname"}
    with pytest.raises(InvalidSubmission) as error:
        stated_submission(API, {"email": "no-at-sign", "phone": "call me"}, {"n": 1e200}, NOW)
    assert fields_of(error) == {"email", "phone", "custom.n"}


def test_consent_needs_a_lawful_basis_and_a_source_and_is_kept_with_them() -> None:
    with pytest.raises(InvalidSubmission) as error:
        stated_submission(API, {"email": "a@example.com"}, {}, NOW, StatedConsent("marketing_email", "because", " "))
    assert fields_of(error) == {"consent.basis", "consent.source"}
    stated = StatedConsent("marketing_email", "consent", "trade show", at="2025-03-01T10:00:00+00:00")
    submission = stated_submission(IMPORT, {"email": "a@example.com"}, {}, NOW, stated)
    assert submission.consent is not None
    item = submission.consent.as_item()
    assert (item["basis"], item["source"], item["at"]) == ("consent", "trade show", "2025-03-01T10:00:00+00:00")


def test_an_import_fills_blanks_counts_no_form_and_fires_no_form_trigger() -> None:
    known = {"lead_id": "L0", "email": "a@example.com", "first_name": "Ada", "submissions": 2, "stage": "mql"}
    submission = stated_submission(IMPORT, {"email": "a@example.com", "first_name": "Adeline", "title": "CTO"}, {}, NOW)
    plan = stated_plan(submission, IMPORT, "cli:ops", IDS, "import:x:2", {"import_id": "x", "row": 2})
    write = plan.for_lead("L0", is_new=False)
    lead = apply_changes(known, write.changes)
    # what the lead told us stays; blanks are filled; no submission, no form, stage kept
    assert (lead["first_name"], lead["title"], lead["submissions"], lead["stage"]) == ("Ada", "CTO", 2, "mql")
    assert "forms_submitted" not in lead and "last_form_id" not in lead
    assert write.activity["type"] == "lead_imported" and write.activity["by"] == "cli:ops"
    assert write.activity["row"] == 2
    captured = write.events[0]
    assert captured.source == "leadflow.api" and captured.detail["via"] == IMPORT


def test_an_api_or_import_lead_triggers_no_form_sequence() -> None:
    class Trigger:
        key = "form_submitted"
        form_submitted = "*"

    class Sequence:
        id = "welcome"
        status = "active"
        triggers = (Trigger(),)

    assert triggered_by([Sequence()], "lead.captured", {"form_id": "demo"}, "default") == ["welcome"]  # type: ignore[list-item]
    assert triggered_by([Sequence()], "lead.captured", {"form_id": "api", "via": "api"}, "default") == []  # type: ignore[list-item]


def test_an_imported_lead_without_consent_is_not_consented_under_opt_in() -> None:
    submission = stated_submission(IMPORT, {"email": "a@example.com"}, {}, NOW)
    lead = apply_changes(None, stated_plan(submission, IMPORT, "cli", IDS).for_lead("L1", is_new=True).changes)
    assert consent_decision("marketing_email", lead) == "no_consent"


def test_patch_sets_clears_and_checks_values() -> None:
    lead = {"lead_id": "L1", "email": "a@example.com", "title": "CTO", "company": "Acme", "cf_plan": "pro"}
    update = plan_update(
        lead,
        {"title": None, "company": "Acme", "phone": "+1 555 0100"},
        {"plan": None, "seats": 3},
        "ops",
        NOW,
        ("A", "E"),
    )
    assert update.sets == {"updated_at": NOW.isoformat(), "phone": "+1 555 0100", "cf_seats": 3.0}
    assert update.removes == ("cf_plan", "title")
    assert update.email_key is None and update.activity["by"] == "ops"
    assert update.activity["changed"] == ["cf_seats", "phone"]
    moved = plan_update(lead, {"email": "B@Example.com"}, {}, "ops", NOW, ("A", "E"))
    assert moved.email_key == ("a@example.com", "b@example.com") and moved.sets["email"] == "B@example.com"
    with pytest.raises(InvalidSubmission) as error:
        plan_update(lead, {"email": None, "phone": "nope"}, {"Bad": 1}, "ops", NOW, ("A", "E"))
    assert fields_of(error) == {"email", "custom.Bad"}
    assert not plan_update(lead, {"company": "Acme"}, {}, "ops", NOW, ("A", "E")).changed


def test_a_tag_added_announces_lead_tagged() -> None:
    added = tag_activity("L1", "vip", True, "ops", NOW, "A")
    events = tag_events(added, ("E1", "E2"), NOW)
    assert [e.detail_type for e in events] == ["activity.recorded", "lead.tagged"]
    assert events[1].detail == {"lead_id": "L1", "tag": "vip", "by": "ops"}
    removed = tag_activity("L1", "vip", False, "ops", NOW, "A")
    assert [e.detail_type for e in tag_events(removed, ("E1", "E2"), NOW)] == ["activity.recorded"]
