"""Function settings: read from the environment at cold start, every problem named at once."""

from __future__ import annotations

import pytest

from leadflow.settings import CaptureSettings, MissingSetting, NurtureSettings

pytestmark = pytest.mark.unit

CAPTURE_ENV = {
    "LEADS_TABLE": "leads",
    "INTAKE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/intake",
    "LEADFLOW_WORKSPACE": "/opt/workspace",
    "RATE_LIMIT_PER_MINUTE": " 30 ",
    "TRACKING_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:tracking",
}


def test_settings_are_read_from_the_variables_named_after_the_fields():
    # GIVEN the form capture function's environment
    # WHEN its settings are read
    settings = CaptureSettings.from_env(CAPTURE_ENV)

    # THEN each field holds its variable, whole numbers parsed, surrounding space dropped
    assert settings.leads_table == "leads"
    assert settings.intake_queue_url.endswith("/intake")
    assert settings.leadflow_workspace == "/opt/workspace"
    assert settings.rate_limit_per_minute == 30
    assert settings == CaptureSettings.from_env(dict(CAPTURE_ENV))
    assert "rate_limit_per_minute=30" in repr(settings)


def test_every_missing_or_malformed_variable_is_named_in_one_error():
    # GIVEN an environment with one variable missing, one blank and one not a number
    env = {**CAPTURE_ENV, "LEADS_TABLE": "  ", "RATE_LIMIT_PER_MINUTE": "many"}
    del env["INTAKE_QUEUE_URL"]

    # WHEN the settings are read
    with pytest.raises(MissingSetting) as raised:
        CaptureSettings.from_env(env)

    # THEN the cold start fails naming each problem
    message = str(raised.value)
    assert message.startswith("CaptureSettings: ")
    assert "LEADS_TABLE is not set" in message
    assert "INTAKE_QUEUE_URL is not set" in message
    assert "RATE_LIMIT_PER_MINUTE must be a whole number, not 'many'" in message


@pytest.mark.parametrize("value", ["0", "-3"])
def test_whole_numbers_must_be_at_least_one(value: str):
    # GIVEN a rate limit of zero or less
    # WHEN the settings are read
    # THEN the cold start fails rather than disabling the limit
    with pytest.raises(MissingSetting, match="RATE_LIMIT_PER_MINUTE must be at least 1"):
        CaptureSettings.from_env({**CAPTURE_ENV, "RATE_LIMIT_PER_MINUTE": value})


def test_settings_are_read_only_and_take_exactly_their_fields():
    # GIVEN settings read at cold start
    settings = CaptureSettings.from_env(CAPTURE_ENV)

    # WHEN code tries to change one, or builds settings with a wrong field
    # THEN it is refused
    with pytest.raises(AttributeError):
        settings.leads_table = "other"  # type: ignore[misc]
    with pytest.raises(TypeError, match="unknown"):
        CaptureSettings(leads_table="x", intake_queue_url="y", leadflow_workspace="z", rate_limit_per_minute=1, x=1)
    with pytest.raises(TypeError, match="missing"):
        CaptureSettings(leads_table="x")


def test_each_function_reads_only_its_own_variables():
    # GIVEN the form capture environment only
    # WHEN the nurture function's settings are read from it
    with pytest.raises(MissingSetting) as raised:
        NurtureSettings.from_env(CAPTURE_ENV)

    # THEN it names what nurture lacks, not what it has
    assert "NURTURE_SHARDS is not set" in str(raised.value)
    assert "LEADS_TABLE" not in str(raised.value)


def test_local_mode_is_off_unless_the_dev_stack_says_so():
    from leadflow.settings import local_base_url

    # GIVEN AWS (no LEADFLOW_LOCAL) or an explicit false
    # THEN hand-off delivery is not in local mode
    assert local_base_url({}) is None
    assert local_base_url({"LEADFLOW_LOCAL": "false", "PUBLIC_BASE_URL": "http://x"}) is None
    # GIVEN the dev stack's variables
    # THEN local mode holds the stack's URL
    assert local_base_url({"LEADFLOW_LOCAL": "TRUE", "PUBLIC_BASE_URL": " http://127.0.0.1:8000 "}) == (
        "http://127.0.0.1:8000"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEADFLOW_LOCAL": "true"}, "LEADFLOW_LOCAL=true needs PUBLIC_BASE_URL"),
        ({"LEADFLOW_LOCAL": "yes", "PUBLIC_BASE_URL": "http://x"}, "LEADFLOW_LOCAL must be true or false, not 'yes'"),
    ],
)
def test_a_half_set_local_mode_fails_clearly(env: dict[str, str], message: str):
    from leadflow.settings import local_base_url

    # GIVEN local mode without its URL, or a flag that is neither true nor false
    # THEN the cold start fails naming the variable (never a silent default)
    with pytest.raises(MissingSetting, match=message):
        local_base_url(env)
