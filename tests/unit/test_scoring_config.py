"""scoring.yaml: what the scoring config refuses, where it says so, and the shipped demo file."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from leadflow.config.workspace import load_model
from leadflow.domain.definitions import models
from leadflow.domain.definitions.scoring import (
    DEFAULT_THRESHOLDS,
    DEPARTMENTS,
    SCORING_FILE,
    ActivityType,
    ScoringConfig,
)
from leadflow.domain.errors import InvalidWorkspace
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

DEMO_FILE = WORKSPACE / SCORING_FILE
# The loader leadflow reads the workspace with (libyaml when PyYAML has it).
PRODUCT_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def config(**overrides: Any) -> dict[str, Any]:
    """A valid scoring.yaml, as parsed YAML, with some keys replaced."""
    return {
        "default_model": "smb",
        "models": {"smb": {"half_life_days": 30, "rules": [{"id": "visit", "activity": "page_viewed", "points": 1}]}},
        "stages": {"mql": {"score_at_least": 100}},
        **overrides,
    }


def with_rule(**rule: Any) -> dict[str, Any]:
    """A config whose smb model has this one rule."""
    return config(models={"smb": {"rules": [{"id": "r", "activity": "page_viewed", "points": 5, **rule}]}})


def with_grade_rule(**rule: Any) -> dict[str, Any]:
    """A config whose grade has this one rule."""
    return config(grade={"rules": [{"id": "g", "points": 10, **rule}]})


def refused_at(data: dict[str, Any]) -> dict[str, str]:
    """Where loading ``data`` (which must be refused) went wrong: dotted location -> message."""
    with pytest.raises(ValidationError) as refused:
        ScoringConfig.model_validate(data)
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in refused.value.errors()}


# ---------------------------------------------------------------------------- the shipped demo file


def test_the_demo_scoring_file_loads_with_its_three_markets():
    # GIVEN the workspace's scoring.yaml
    # WHEN it is loaded the way the workspace loads files
    scoring = load_model(DEMO_FILE, ScoringConfig)

    # THEN it has the three markets the documents distinguish, and MQL is judged on smb
    assert set(scoring.models) == {"smb", "key_account", "customer"}
    assert (scoring.default_model, scoring.mql_model, scoring.account_model) == ("smb", "smb", "key_account")
    assert (scoring.stages.mql.score_at_least, scoring.stages.mql.grade_at_least) == (100, "B")
    assert scoring.stages.on_decay == "recycled"


def test_the_demo_scoring_file_scores_every_activity_type():
    # GIVEN the shipped scoring file
    scoring = load_model(DEMO_FILE, ScoringConfig)

    # WHEN the activity types its smb rules score are listed
    scored = {rule.activity for rule in scoring.models["smb"].rules}

    # THEN every activity type the product records has a rule
    assert scored == set(ActivityType)


def test_the_demo_scoring_file_has_the_points_of_the_issue():
    # GIVEN the shipped smb model
    smb = load_model(DEMO_FILE, ScoringConfig).models["smb"]
    points = {rule.id: rule.points for rule in smb.rules}

    # THEN the points are the ones agreed, and email opens are capped at 10 per 7 days
    assert points["email_opened"] == 2 and points["email_clicked"] == 5 and points["pricing_page"] == 10
    assert points["download"] == 15 and points["video_half"] == 10 and points["video_complete"] == 20
    assert points["webinar_attended"] == 25 and points["form_submitted"] == 20
    assert (points["unsubscribed"], points["email_bounced"], points["email_complained"]) == (-50, -10, -100)
    opened = smb.rule("email_opened")
    assert opened is not None and opened.cap is not None
    assert (opened.cap.max_points, opened.cap.period_days) == (10, 7)


def test_the_demo_scoring_file_round_trips_through_its_compiled_form():
    # GIVEN the shipped scoring file, loaded
    scoring = load_model(DEMO_FILE, ScoringConfig)

    # WHEN it is dumped as a compiled workspace holds it (JSON) and read back without pydantic
    dumped = json.loads(json.dumps(models.dump(ScoringConfig, scoring)))
    rebuilt = ScoringConfig.from_trusted(dumped)

    # THEN it is the same config
    assert rebuilt == scoring
    assert models.dump(ScoringConfig, rebuilt) == dumped


def test_the_demo_scoring_file_starts_with_its_schema_comment():
    # GIVEN the shipped scoring file
    first_line = DEMO_FILE.read_text(encoding="utf-8").splitlines()[0]

    # THEN editors with yaml-language-server find its schema
    assert first_line == "# yaml-language-server: $schema=schemas/scoring.schema.json"


def test_the_scoring_schema_is_a_valid_json_schema_the_demo_file_satisfies():
    # GIVEN the JSON Schema of the scoring file and the shipped file
    schema = models.json_schema(ScoringConfig)
    data = yaml.load(DEMO_FILE.read_text(encoding="utf-8"), Loader=PRODUCT_LOADER)

    # WHEN the schema is checked, and the file is checked against it as an editor would
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))

    # THEN both are sound
    assert errors == []


def test_the_scoring_schema_flags_an_unknown_key_and_activity_type():
    # GIVEN a config with a misspelt key and an activity type that does not exist
    data = with_rule(activity="page_visited", pionts=3)
    validator = jsonschema.Draft202012Validator(models.json_schema(ScoringConfig))

    # WHEN it is checked against the schema
    # THEN the editor would flag it too
    assert list(validator.iter_errors(data))


def test_a_broken_scoring_file_names_the_file_and_the_field(tmp_path):
    # GIVEN a scoring file whose default model does not exist
    path = tmp_path / SCORING_FILE
    path.write_text(yaml.safe_dump(config(default_model="enterprise")), encoding="utf-8")

    # WHEN the workspace loads it
    with pytest.raises(InvalidWorkspace) as refused:
        load_model(path, ScoringConfig)

    # THEN the message names the file, the field and the models there are
    message = str(refused.value)
    assert SCORING_FILE in message and "default_model" in message and "(models: smb)" in message


def test_reading_the_scoring_config_needs_no_pydantic():
    # GIVEN a fresh process, as a Lambda cold start
    script = (
        "import sys\n"
        "import leadflow.domain.definitions.scoring, leadflow.domain.scoring, leadflow.domain.scoring_decay\n"
        "import leadflow.domain.grading, leadflow.domain.accounts\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml', 'boto3')))\n"
    )

    # WHEN the scoring config and engine are imported
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout

    # THEN neither pydantic, YAML nor boto3 came with them
    assert loaded.strip() == "[]"


# ---------------------------------------------------------------------------- defaults


def test_a_minimal_config_takes_the_defaults():
    # GIVEN the smallest sensible scoring file
    # WHEN it is loaded
    scoring = ScoringConfig.model_validate(config())

    # THEN grade, stage and account rules have their defaults
    assert scoring.grade.rules == () and scoring.grade.thresholds == DEFAULT_THRESHOLDS
    assert scoring.stages.on_decay == "recycled" and scoring.stages.recycle_threshold == 100
    assert scoring.stages.promote_from == ("subscriber", "lead", "recycled")
    assert scoring.accounts.committee == DEPARTMENTS and scoring.account_model == "smb"
    assert scoring.models["smb"].rules[0].when.given() == []


def test_a_minimal_config_round_trips_too():
    # GIVEN a minimal config, dumped
    scoring = ScoringConfig.model_validate(config())
    dumped = models.dump(ScoringConfig, scoring)

    # WHEN it is read back without pydantic, also with the optional sections left out
    sparse = {key: value for key, value in dumped.items() if key not in ("grade", "accounts")}

    # THEN it is the same config
    assert ScoringConfig.from_trusted(dumped) == scoring
    assert ScoringConfig.from_trusted(sparse) == scoring


def test_a_rule_label_falls_back_to_its_id():
    # GIVEN a rule without a description
    rule = ScoringConfig.model_validate(config()).models["smb"].rules[0]

    # THEN its label is readable anyway
    assert rule.label == "visit"


# ---------------------------------------------------------------------------- refusals, and where


@pytest.mark.parametrize(
    ("data", "where", "says"),
    [
        pytest.param(config(default_model="enterprise"), "default_model", "no model named 'enterprise'", id="default"),
        pytest.param(
            config(stages={"mql": {"score_at_least": 100, "model": "x"}}), "stages", "mql.model", id="mql-model"
        ),
        pytest.param(config(accounts={"model": "x"}), "accounts", "no model named 'x'", id="account-model"),
        pytest.param(
            config(models={"Key Account": {"rules": [{"id": "a", "activity": "download", "points": 1}]}}),
            "models",
            "lowercase identifier",
            id="model-name",
        ),
        pytest.param(
            config(
                models={
                    "smb": {
                        "rules": [
                            {"id": "a", "activity": "download", "points": 1},
                            {"id": "a", "activity": "page_viewed", "points": 2},
                        ]
                    }
                }
            ),
            "models.smb.rules",
            "rule ids used twice: ['a']",
            id="duplicate-rule",
        ),
        pytest.param(with_rule(id="Pricing Page"), "models.smb.rules.0.id", "lowercase identifier", id="rule-id"),
        pytest.param(with_rule(points=0), "models.smb.rules.0.points", "0 does nothing", id="zero-points"),
        pytest.param(
            with_rule(when={"min_video_percent": 50}), "models.smb.rules.0.when", "video_progress", id="video"
        ),
        pytest.param(with_rule(when={"form_id": "demo"}), "models.smb.rules.0.when", "form_submitted", id="form"),
        pytest.param(with_rule(when={"link_tag": "pricing"}), "models.smb.rules.0.when", "email_clicked", id="tag"),
        pytest.param(with_rule(when={"url_glob": " "}), "models.smb.rules.0.when.url_glob", "blank", id="blank-glob"),
        pytest.param(
            with_rule(cap={"max_points": 10, "period_days": 7, "per": "form_id"}),
            "models.smb.rules.0.cap",
            "per: form_id",
            id="cap-per",
        ),
        pytest.param(
            config(stages={"mql": {"score_at_least": 100}, "promote_from": ["lead", "sql", "customer"]}),
            "stages.promote_from",
            "['customer', 'sql']",
            id="sales-owned",
        ),
        pytest.param(
            config(stages={"mql": {"score_at_least": 100}, "promote_from": ["mql"]}),
            "stages.promote_from",
            "['mql']",
            id="mql-from-mql",
        ),
        pytest.param(
            config(stages={"mql": {"score_at_least": 100}, "recycle_below": 120}),
            "stages.recycle_below",
            "must not be above",
            id="recycle-above-mql",
        ),
        pytest.param(
            config(stages={"mql": {"score_at_least": 100, "grade_at_least": "B"}}),
            "grade",
            "needs grade rules",
            id="grade-without-rules",
        ),
        pytest.param(with_grade_rule(field="title", matches="(vp"), "grade.rules.0.matches", "regular", id="regex"),
        pytest.param(
            with_grade_rule(field="title", equals="CEO", one_of=["CFO"]),
            "grade.rules.0",
            "exactly one of",
            id="two-kinds",
        ),
        pytest.param(with_grade_rule(field="title"), "grade.rules.0", "exactly one of", id="no-kind"),
        pytest.param(with_grade_rule(equals="CEO"), "grade.rules.0.field", "needs the field", id="no-field"),
        pytest.param(
            with_grade_rule(field="email", free_mail=True), "grade.rules.0.field", "leave field out", id="free-field"
        ),
        pytest.param(with_grade_rule(field="Company Size", equals="x"), "grade.rules.0.field", "lead field", id="fld"),
        pytest.param(
            with_grade_rule(field="cf_employees", at_least=500, below=100), "grade.rules.0.below", "greater", id="range"
        ),
        pytest.param(with_grade_rule(field="title", one_of=[]), "grade.rules.0.one_of", "at least one", id="empty-in"),
        pytest.param(
            config(grade={"thresholds": {"A": 50, "B": 60}}), "grade.thresholds", "A needs more points", id="order"
        ),
        pytest.param(config(grade={"thresholds": {}}), "grade.thresholds", "at least one", id="no-thresholds"),
        pytest.param(config(accounts={"committee": ["it", "it"]}), "accounts.committee", "twice", id="committee-twice"),
    ],
)
def test_a_broken_config_is_refused_at_the_field(data: dict[str, Any], where: str, says: str):
    # GIVEN a scoring file with one mistake
    # WHEN it is loaded
    problems = refused_at(data)

    # THEN the problem is reported at the field, saying what is wrong
    assert where in problems, problems
    assert says in problems[where]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        pytest.param(with_rule(pionts=5), "models.smb.rules.0.pionts", id="unknown-key"),
        pytest.param(with_rule(activity="page_visited"), "models.smb.rules.0.activity", id="unknown-activity"),
        pytest.param(with_rule(when={"min_video_percent": 150}), "models.smb.rules.0.when.min_video_percent", id="pct"),
        pytest.param(with_rule(cap={"max_points": 0, "period_days": 7}), "models.smb.rules.0.cap.max_points", id="cap"),
        pytest.param(config(grade={"thresholds": {"F": 0}}), "grade.thresholds.F.[key]", id="grade-f"),
        pytest.param(config(stages={"mql": {"score_at_least": 0}}), "stages.mql.score_at_least", id="mql-zero"),
        pytest.param(config(stages={"mql": {"score_at_least": 1}, "on_decay": "drop"}), "stages.on_decay", id="decay"),
        pytest.param(config(models={}), "models", id="no-models"),
    ],
)
def test_what_breaks_the_types_is_refused_at_the_field(data: dict[str, Any], where: str):
    # GIVEN a scoring file with a value of the wrong kind
    # WHEN it is loaded
    # THEN the problem is located at the field
    assert where in refused_at(data)


def test_a_country_code_yaml_reads_as_false_is_refused_not_misread():
    # GIVEN a grade rule listing Norway unquoted (YAML reads NO as false)
    data = yaml.safe_load("rules: [{id: nordics, field: country, one_of: [SE, NO], points: 10}]")

    # WHEN it is loaded
    problems = refused_at(config(grade=data))

    # THEN the value is refused rather than compared as the text "False"
    assert "grade.rules.0.one_of.1" in problems
