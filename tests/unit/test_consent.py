"""Consent on every send: consent.yaml, the decision, the send gate's consent matrix, what
``leadflow validate`` refuses and warns about."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from leadflow.config.compiled import compile_workspace
from leadflow.config.workspace import Workspace
from leadflow.dev.cli import main
from leadflow.domain.consent import consent_decision, lead_country, may_track
from leadflow.domain.definitions import models
from leadflow.domain.definitions.consent import ConsentPolicy
from leadflow.domain.definitions.messaging import MessagingConfig
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.nurture import Enrollment, LeadView, advance, enroll
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # a Wednesday, noon UTC
NO_QUIET = MessagingConfig(quiet_hours=None)
GRANTED = {"granted": True, "at": "2026-11-01T09:00:00+00:00", "form_id": "demo-signup"}
WITHDRAWN = {"granted": False, "at": "2026-11-03T09:00:00+00:00", "source": "unsubscribe_link"}


def policy(**data: Any) -> ConsentPolicy:
    return ConsentPolicy.model_validate(data)


# ---------------------------------------------------------------------------- the decision


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({"consent_marketing_email": GRANTED}, "granted"),
        ({}, "no_consent"),
        ({"consent_marketing_email": WITHDRAWN}, "no_consent"),
        ({"consent_marketing_email": GRANTED, "consent_pending": True}, "awaiting_confirmation"),
        ({"consent_marketing_email": WITHDRAWN, "consent_pending": True}, "no_consent"),
        ({"consent_marketing_email": {"granted": "true"}}, "granted"),  # an import's text form
        ({"consent_marketing_email": "no"}, "no_consent"),
        ({"consent_event_invitations": GRANTED}, "no_consent"),  # consent for another purpose
    ],
    ids=["granted", "never given", "withdrawn", "pending", "withdrawn while pending", "text", "plain no", "other"],
)
def test_the_default_policy_needs_a_granted_unwithdrawn_consent(profile: dict[str, Any], expected: str):
    assert consent_decision("marketing_email", profile) == expected


def test_a_transactional_email_is_tracked_only_for_people_who_consented():
    # GIVEN the transactional reply (no purpose) and a marketing email, to people with and without consent
    # THEN the reply is tracked only with consent; a marketing email (sent only with it) always is
    assert may_track(None, {"consent_marketing_email": GRANTED}) is True
    assert may_track(None, {}) is False
    assert may_track(None, {"consent_marketing_email": WITHDRAWN}) is False
    assert may_track(None, {"consent_marketing_email": GRANTED, "consent_pending": True}) is False
    assert may_track("marketing_email", {}) is True


def test_regions_set_the_lawful_basis_by_country_as_leads_write_it():
    # GIVEN opt-out for the US, soft opt-in for the UK (enquiries on the demo form), opt-in elsewhere
    rules = policy(
        regions=[
            {"countries": ["US"], "basis": "opt_out"},
            {"countries": ["GB"], "basis": "soft_opt_in"},
        ],
        soft_opt_in_forms=["demo-signup"],
    )
    # THEN a lead who never ticked a box...
    assert consent_decision("marketing_email", {"country": "United States"}, rules) == "granted"
    assert consent_decision("marketing_email", {"country": "us"}, rules) == "granted"
    assert consent_decision("marketing_email", {"country": "Germany"}, rules) == "no_consent"
    assert consent_decision("marketing_email", {}, rules) == "no_consent"  # unknown country: the default
    # ... in the UK only after an enquiry on a soft opt-in form
    assert consent_decision("marketing_email", {"country": "GB", "forms_submitted": ["demo-signup"]}, rules) == (
        "granted"
    )
    assert consent_decision("marketing_email", {"country": "uk", "last_form_id": "demo-signup"}, rules) == "granted"
    assert consent_decision("marketing_email", {"country": "GB", "forms_submitted": ["webinar"]}, rules) == (
        "no_consent"
    )
    # ... and a withdrawal stops it under every basis
    for country in ("US", "GB", "DE"):
        profile = {"country": country, "forms_submitted": ["demo-signup"], "consent_marketing_email": WITHDRAWN}
        assert consent_decision("marketing_email", profile, rules) == "no_consent"


def test_double_opt_in_counts_only_a_confirmed_consent_where_it_is_required():
    # GIVEN double opt-in required in Germany only
    rules = policy(regions=[{"countries": ["DE"], "basis": "opt_in", "double_opt_in": True}])
    unconfirmed = {"country": "DE", "consent_marketing_email": GRANTED}
    # THEN an unconfirmed German consent does not count, a confirmed one does, elsewhere either counts
    assert consent_decision("marketing_email", unconfirmed, rules) == "no_consent"
    assert consent_decision("marketing_email", {**unconfirmed, "consent_pending": True}, rules) == (
        "awaiting_confirmation"
    )
    assert consent_decision("marketing_email", {**unconfirmed, "consent_confirmed_at": "2026-11-02"}, rules) == (
        "granted"
    )
    assert consent_decision("marketing_email", {**unconfirmed, "country": "FR"}, rules) == "granted"
    # ... and with it required everywhere, a French one does not count either
    assert consent_decision("marketing_email", {**unconfirmed, "country": "FR"}, policy(double_opt_in=True)) == (
        "no_consent"
    )


def test_a_region_may_name_the_purposes_it_covers():
    rules = policy(
        purposes=[{"id": "marketing_email", "name": "M"}, {"id": "event_invitations", "name": "E"}],
        regions=[{"countries": ["US"], "basis": "opt_out", "purposes": ["event_invitations"]}],
    )
    assert consent_decision("event_invitations", {"country": "US"}, rules) == "granted"
    assert consent_decision("marketing_email", {"country": "US"}, rules) == "no_consent"


def test_the_country_is_read_as_a_code_or_an_english_name():
    assert lead_country({"country": "the netherlands"}) == "NL"
    assert lead_country({"country": " U.S.A. "}) == "US"
    assert lead_country({"country": "Narnia"}) is None
    assert lead_country({"country": ""}) is None
    assert lead_country({"country": 49}) is None


# ---------------------------------------------------------------------------- consent.yaml


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"default_basis": "maybe"}, "default_basis"),
        ({"regions": [{"countries": ["Germany"], "basis": "opt_in"}]}, "alpha-2"),
        ({"regions": [{"countries": ["GB"], "basis": "soft_opt_in"}]}, "soft_opt_in_forms"),
        ({"purposes": [{"id": "Marketing Email", "name": "M"}]}, "purpose"),
        ({"purposes": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]}, "differ"),
        ({"purposes": []}, "purposes"),
        ({"regions": [{"countries": ["US"], "basis": "opt_out", "purposes": ["sms"]}]}, "'sms'"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_consent_yaml_is_refused_with_the_reason(data: dict[str, Any], expected: str):
    with pytest.raises(ValidationError) as caught:
        ConsentPolicy.model_validate(data)
    assert expected in str(caught.value)


def test_the_demo_consent_yaml_is_opt_in_and_round_trips_through_the_compiled_workspace(tmp_path: Path):
    demo = Workspace(WORKSPACE).consent
    assert demo.default_basis == "opt_in" and "marketing_email" in demo.purpose_ids()
    compiled = Workspace(compile_workspace(WORKSPACE, tmp_path).parent).consent
    assert models.dump(ConsentPolicy, compiled) == models.dump(ConsentPolicy, demo)


# ---------------------------------------------------------------------------- the send gate


def sequence(*steps: dict[str, Any], **extra: Any) -> Sequence:
    return Sequence.model_validate(
        {"id": "test", "name": "Test", "purpose": "marketing_email", "steps": steps, **extra}
    )


def email(step_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "email", "template": step_id, "subject": step_id, **extra}


# The welcome series in small: the reply to the request, two days, then a marketing email.
SERIES = sequence(
    email("reply", transactional=True, reply=True),
    {"id": "pause", "type": "wait", "days": 2},
    email("nudge"),
)


def lead(**profile: Any) -> LeadView:
    return LeadView("lead-1", {"lead_id": "lead-1", "stage": "lead", **profile})


def walk(profile_now: dict[str, Any], profile_later: dict[str, Any] | None = None) -> tuple[list[str], Enrollment]:
    """The series run for a lead: the reply at once, the nudge two days later (the lead as it is then)."""
    enrollment = enroll(SERIES, 1, "lead-1", NOW, None)
    assert enrollment is not None
    sent = []
    first = advance(SERIES, enrollment, lead(**profile_now), NOW, NO_QUIET)
    if first.email is not None:
        sent.append(first.email.step_id)
    later = NOW + timedelta(days=2)
    second = advance(SERIES, first.enrollment, lead(**(profile_later or profile_now)), later, NO_QUIET)
    if second.email is not None:
        sent.append(second.email.step_id)
    return sent, second.enrollment


def test_consent_matrix_for_step_emails():
    # granted: both
    assert walk({"consent_marketing_email": GRANTED})[0] == ["reply", "nudge"]
    # never given: the transactional reply only; the enrollment says why it ended
    sent, ended = walk({})
    assert sent == ["reply"]
    assert (ended.status, ended.exit_reason, ended.step_id) == ("exited", "no_consent", "nudge")
    # withdrawn between the two steps: the next one does not go
    sent, ended = walk({"consent_marketing_email": GRANTED}, {"consent_marketing_email": WITHDRAWN})
    assert sent == ["reply"] and ended.exit_reason == "no_consent"
    # double opt-in pending: the reply goes, the nudge waits for the confirmation
    sent, waiting = walk({"consent_marketing_email": GRANTED, "consent_pending": True})
    assert sent == ["reply"]
    assert (waiting.status, waiting.step_id, waiting.due_at) == ("active", "nudge", NOW + timedelta(days=2, hours=6))
    # ... and it goes once the link is followed
    confirmed = {"consent_marketing_email": GRANTED, "consent_pending": False, "consent_confirmed_at": "x"}
    later = advance(SERIES, waiting, lead(**confirmed), waiting.due_at or NOW, NO_QUIET)
    assert later.email is not None and later.email.step_id == "nudge"


def test_a_broadcast_email_is_gated_the_same_at_its_first_step():
    # GIVEN a broadcast sequence (every step marketing) and leads in each consent state
    broadcast = sequence(email("offer"), triggers=[{"broadcast": {"segment": "everyone"}}])
    states = {
        "granted": {"consent_marketing_email": GRANTED},
        "never": {},
        "withdrawn": {"consent_marketing_email": WITHDRAWN},
        "pending": {"consent_marketing_email": GRANTED, "consent_pending": True},
    }
    outcomes = {}
    for name, profile in states.items():
        enrollment = enroll(broadcast, 1, "lead-1", NOW, None)
        assert enrollment is not None
        outcome = advance(broadcast, enrollment, lead(**profile), NOW, NO_QUIET)
        outcomes[name] = (outcome.email is not None, outcome.enrollment.exit_reason or outcome.deferred)
    assert outcomes == {
        "granted": (True, "completed"),
        "never": (False, "no_consent"),
        "withdrawn": (False, "no_consent"),
        "pending": (False, "awaiting_confirmation"),
    }


def test_a_transactional_email_ignores_caps_and_consent_but_never_suppression():
    # GIVEN a lead without consent, unsubscribed and over the frequency caps, and a suppressed one
    capped = LeadView("lead-1", {"lead_id": "lead-1", "unsubscribed": True}, recent_sends=(NOW, NOW, NOW))
    enrollment = enroll(SERIES, 1, "lead-1", NOW, None)
    assert enrollment is not None
    assert advance(SERIES, enrollment, capped, NOW, MessagingConfig()).email is not None
    suppressed = LeadView("lead-1", {"lead_id": "lead-1"}, suppressed=True)
    assert advance(SERIES, enrollment, suppressed, NOW, NO_QUIET).enrollment.exit_reason == "suppressed"


def test_a_step_purpose_overrides_the_sequences():
    invitation = sequence(email("invite", purpose="event_invitations"))
    enrollment = enroll(invitation, 1, "lead-1", NOW, None)
    assert enrollment is not None
    rules = policy(purposes=[{"id": "marketing_email", "name": "M"}, {"id": "event_invitations", "name": "E"}])
    only_marketing = lead(consent_marketing_email=GRANTED)
    assert advance(invitation, enrollment, only_marketing, NOW, NO_QUIET, None, rules).enrollment.exit_reason == (
        "no_consent"
    )
    invited = lead(consent_event_invitations=GRANTED)
    assert advance(invitation, enrollment, invited, NOW, NO_QUIET, None, rules).email is not None


# ---------------------------------------------------------------------------- leadflow validate


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"steps": [email("m")]}, "marketing email without a purpose"),
        ({"purpose": "Marketing!", "steps": [email("m")]}, "purpose"),
        (
            {"triggers": [{"broadcast": {"segment": "s"}}], "steps": [email("m", transactional=True)]},
            "broadcast trigger enrolls people who asked for nothing",
        ),
        (
            {"triggers": [{"stage_reached": "mql"}], "steps": [email("m", transactional=True)]},
            "stage_reached",
        ),
    ],
)
def test_sequences_refuse_marketing_steps_without_a_purpose_and_unasked_transactional_ones(
    data: dict[str, Any], expected: str
):
    with pytest.raises(ValidationError) as caught:
        Sequence.model_validate({"id": "s", "name": "S", **data})
    assert expected in str(caught.value)


def copy_workspace(tmp_path: Path) -> Path:
    target = tmp_path / "workspace"
    shutil.copytree(WORKSPACE, target, ignore=shutil.ignore_patterns("schemas"))
    return target


def test_validate_refuses_purposes_consent_yaml_does_not_list(tmp_path: Path):
    # GIVEN a step and a form naming purposes consent.yaml lacks, and an unknown soft opt-in form
    workspace = copy_workspace(tmp_path)
    recycle = workspace / "sequences" / "recycle.yaml"
    recycle.write_text(recycle.read_text().replace("purpose: marketing_email", "purpose: sms_offers"))
    form = workspace / "forms" / "webinar-registration.yaml"
    form.write_text(form.read_text().replace("consent:\n", "consent:\n  purpose: webinar_news\n"))
    (workspace / "consent.yaml").write_text(
        "default_basis: soft_opt_in\nsoft_opt_in_forms: [no-such-form]\nregions: []\n"
    )
    # WHEN it is validated
    problems = "\n".join(Workspace(workspace).validate())
    # THEN each is named with its file
    assert "recycle.yaml: step 'checkin' purpose 'sms_offers' is not in consent.yaml" in problems
    assert "webinar-registration.yaml: consent purpose 'webinar_news' is not in consent.yaml" in problems
    assert "soft_opt_in_forms names unknown form 'no-such-form'" in problems


def test_validate_warns_about_triggers_that_enroll_leads_who_can_never_have_consent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # GIVEN the welcome series also started by the Mautic form (no consent box), and a sequence
    # whose emails need a purpose no form asks for
    workspace = copy_workspace(tmp_path)
    welcome = workspace / "sequences" / "welcome.yaml"
    data = yaml.safe_load(welcome.read_text())
    data["triggers"].append({"form_submitted": "mautic-resort-enquiry"})
    welcome.write_text(yaml.safe_dump(data))
    consent = yaml.safe_load((workspace / "consent.yaml").read_text())
    (workspace / "sequences" / "invite.yaml").write_text(
        "id: invite\nname: Invite\ntriggers: [{api: true}]\npurpose: event_invitations\n"
        "steps:\n  - {id: invite, type: email, template: push_discount, subject: Join us}\n"
    )
    # WHEN it is validated
    code = main(["validate", "--workspace", str(workspace)])
    err = capsys.readouterr().err
    # THEN it is valid, with a warning for each
    assert code == 0
    assert (
        "warning: " + str(workspace / "sequences" / "welcome.yaml") + ": trigger form 'mautic-resort-enquiry' "
        "has no consent box for 'marketing_email'"
    ) in err
    assert "steps 'nudge', 'tips', 'demo-offer'" in err
    assert "invite.yaml: steps 'invite' need consent for 'event_invitations', which no form asks for" in err
    # ... and none once the region's basis lets those emails go without a ticked box
    consent["default_basis"] = "opt_out"
    (workspace / "consent.yaml").write_text(yaml.safe_dump(consent))
    assert Workspace(workspace).warnings() == []


def test_the_demo_workspace_validates_without_warnings():
    assert Workspace(WORKSPACE).validate() == []
    assert Workspace(WORKSPACE).warnings() == []
