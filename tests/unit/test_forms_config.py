"""Form definitions and the workspace folder: what is refused, and how problems are reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from leadflow.config.compiled import json_schemas
from leadflow.config.workspace import Workspace
from leadflow.domain.definitions.forms import FormDefinition
from leadflow.domain.errors import FormNotFound, InvalidWorkspace
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit


def definition(**overrides: Any) -> dict[str, Any]:
    """A valid form definition, as the YAML file would hold it, with some keys replaced."""
    return {
        "id": "newsletter",
        "name": "Newsletter",
        "thank_you_url": "/thanks",
        "fields": [{"name": "email", "type": "email", "required": True}],
        **overrides,
    }


def refusal(data: dict[str, Any]) -> str:
    """The message of loading ``data``, which must be refused."""
    with pytest.raises(ValidationError) as refused:
        FormDefinition.model_validate(data)
    return str(refused.value)


def refused_at(data: dict[str, Any]) -> set[str]:
    """Where loading ``data`` (which must be refused) went wrong, as dotted locations."""
    with pytest.raises(ValidationError) as refused:
        FormDefinition.model_validate(data)
    return {".".join(str(part) for part in error["loc"]) for error in refused.value.errors()}


# ---------------------------------------------------------------------------- FormDefinition


def test_a_minimal_definition_is_valid():
    # GIVEN the smallest sensible form
    # WHEN it is loaded
    form = FormDefinition.model_validate(definition())

    # THEN the defaults apply
    assert (form.channel, form.lifecycle_stage, form.min_fill_seconds, form.honeypot) == ("form", "lead", 0, None)


def test_a_form_without_an_email_field_is_refused():
    # GIVEN a form that asks only for a name
    data = definition(fields=[{"name": "first_name"}])

    # WHEN it is loaded
    # THEN it is refused, saying the email is how leads are told apart
    assert "needs an 'email' field" in refusal(data)


def test_a_field_declared_twice_is_refused():
    # GIVEN a form that declares company twice
    data = definition(fields=[{"name": "email", "type": "email"}, {"name": "company"}, {"name": "company"}])

    # WHEN it is loaded
    # THEN the duplicate is named
    assert "fields declared twice: ['company']" in refusal(data)


def test_a_honeypot_that_is_also_a_field_is_refused():
    # GIVEN a honeypot named like a declared field (every real post would be spam)
    data = definition(fields=[{"name": "email", "type": "email"}, {"name": "website"}], honeypot="website")

    # WHEN it is loaded
    # THEN it is refused
    assert "honeypot" in refusal(data)


@pytest.mark.parametrize(
    "origin",
    [
        "www.example.com",
        "https://www.example.com/",
        "https://www.example.com/path",
        "ftp://example.com",
        "*",
        "https://*",
    ],
)
def test_an_allowed_origin_that_is_not_an_origin_is_refused(origin: str):
    # GIVEN an allowed origin with a path, no scheme or a bare wildcard
    # WHEN the form is loaded
    # THEN the setting and the value are named
    data = definition(allowed_origins=[origin])
    assert refused_at(data) == {"allowed_origins"}
    assert f"'{origin}' is not an origin" in refusal(data)


def test_a_select_without_options_is_refused():
    # GIVEN a select field with no options
    data = definition(fields=[{"name": "email", "type": "email"}, {"name": "size", "type": "select"}])

    # WHEN it is loaded
    # THEN it is refused
    assert "a select field needs options" in refusal(data)


@pytest.mark.parametrize("form_id", ["", "Demo", "../etc", "a/b", "-lead", "x" * 65, "demo signup", "démo"])
def test_a_form_id_that_cannot_be_a_file_name_is_refused(form_id: str):
    # GIVEN an id with capitals, slashes, spaces or too long
    # WHEN the form is loaded
    # THEN the id is refused
    assert refused_at(definition(id=form_id)) == {"id"}


@pytest.mark.parametrize("name", ["Email2", "2nd_email", "first-name", "mauticform[email]", "", "x" * 65])
def test_a_field_name_that_is_not_a_lowercase_identifier_is_refused(name: str):
    # GIVEN a field name that is not a lowercase identifier (aliases exist for posted names like these)
    data = definition(fields=[{"name": "email", "type": "email"}, {"name": name}])

    # WHEN the form is loaded
    # THEN that field's name is refused
    assert refused_at(data) == {"fields.1.name"}
    assert "lowercase identifier" in refusal(data)


@pytest.mark.parametrize(
    "overrides",
    [
        {"thank_you_url": "//evil.example/"},
        {"thank_you_url": "thanks"},
        {"min_fill_seconds": -1},
        {"min_fill_seconds": 3601},
        {"lifecycle_stage": "customer"},
        {"unexpected": True},
        {"fields": []},
    ],
    ids=repr,
)
def test_other_bad_settings_are_refused(overrides: dict[str, Any]):
    # GIVEN a definition with one bad setting
    # WHEN it is loaded
    # THEN it is refused
    refusal(definition(**overrides))


def test_a_field_max_length_must_be_between_1_and_10000():
    # GIVEN fields with a zero and an enormous max_length
    for max_length in (0, 10_001):
        data = definition(fields=[{"name": "email", "type": "email"}, {"name": "bio", "max_length": max_length}])

        # WHEN the form is loaded
        # THEN it is refused
        assert refused_at(data) == {"fields.1.max_length"}


# ---------------------------------------------------------------------------- origin_allowed


@pytest.fixture
def cors_form() -> FormDefinition:
    return FormDefinition.model_validate(
        definition(allowed_origins=["https://www.example.com", "https://*.example.org", "http://localhost:8000"])
    )


@pytest.mark.parametrize(
    "origin",
    ["https://www.example.com", "https://app.example.org", "https://eu.app.example.org", "http://localhost:8000"],
)
def test_listed_and_wildcard_origins_are_allowed(cors_form: FormDefinition, origin: str):
    # GIVEN a form with an exact origin, a wildcard origin and a local one
    # WHEN a browser at a matching origin posts
    # THEN it is allowed
    assert cors_form.origin_allowed(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "https://example.com",
        "http://www.example.com",
        "https://www.example.com:8443",
        "https://example.org",
        "http://app.example.org",
        "https://app.example.org.evil.example",
        "https://evilexample.org",
        "http://localhost:8001",
        "null",
        "",
    ],
)
def test_other_origins_are_not_allowed(cors_form: FormDefinition, origin: str):
    # GIVEN the same form
    # WHEN a browser at another scheme, port, apex or look-alike domain posts
    # THEN it is not allowed
    assert not cors_form.origin_allowed(origin)


def test_a_form_without_allowed_origins_allows_none():
    # GIVEN a form that lists no origins
    form = FormDefinition.model_validate(definition())

    # WHEN any origin asks
    # THEN it is refused
    assert not form.origin_allowed("https://www.example.com")


# ---------------------------------------------------------------------------- the workspace


def test_the_shipped_forms_load():
    # GIVEN the shipped workspace
    workspace = Workspace(WORKSPACE)

    # WHEN its forms are listed
    forms = workspace.forms()

    # THEN there is one per file, in id order, the demo and webinar forms among them
    ids = [f.id for f in forms]
    assert ids == sorted(p.stem for p in (WORKSPACE / "forms").glob("*.yaml"))
    assert {"demo-signup", "webinar-registration"} <= set(ids)


@pytest.mark.parametrize(
    "form_id",
    ["no-such-form", "../x", "../forms/demo-signup", "..", "", "demo-signup/../demo-signup", "DEMO-SIGNUP", "%2e%2e"],
)
def test_an_unknown_or_path_like_form_id_is_not_found(form_id: str):
    # GIVEN the shipped workspace
    workspace = Workspace(WORKSPACE)

    # WHEN a form is asked for by an id that is unknown or looks like a path
    # THEN it is not found (nothing outside forms/ is read)
    with pytest.raises(FormNotFound):
        workspace.form(form_id)


def test_a_yaml_file_outside_forms_cannot_be_reached_by_its_relative_path(tmp_path: Path):
    # GIVEN a workspace with a valid form definition stored outside forms/
    (tmp_path / "forms").mkdir()
    (tmp_path / "secret.yaml").write_text(yaml.safe_dump(definition(id="secret")), encoding="utf-8")

    # WHEN it is asked for with a traversal id
    # THEN it is not found
    with pytest.raises(FormNotFound):
        Workspace(tmp_path).form("../secret")


def test_the_shipped_workspace_is_sound():
    # GIVEN the shipped workspace
    # WHEN it is validated
    problems = Workspace(WORKSPACE).validate()

    # THEN there are no problems
    assert problems == []


def test_the_shipped_referrers_load():
    # GIVEN the shipped workspace
    # WHEN its share codes are read
    referrers = Workspace(WORKSPACE).referrers

    # THEN the reps and the partner are there
    assert set(referrers) == {"ana-k", "tom-r", "acme-partner"}
    assert referrers["acme-partner"].kind == "partner"


@pytest.fixture
def broken_workspace(tmp_path: Path) -> Path:
    forms = tmp_path / "forms"
    forms.mkdir()
    good = definition(id="good")
    bad_type = definition(
        id="bad-type", fields=[{"name": "email", "type": "email"}, {"name": "size", "type": "dropdown"}]
    )
    (forms / "good.yaml").write_text(yaml.safe_dump(good), encoding="utf-8")
    (forms / "bad-type.yaml").write_text(yaml.safe_dump(bad_type), encoding="utf-8")
    (forms / "renamed.yaml").write_text(yaml.safe_dump(definition(id="original")), encoding="utf-8")
    (forms / "not-yaml.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    (tmp_path / "referrers.yaml").write_text(yaml.safe_dump({"referrers": [{"code": "bad code", "name": "X"}]}))
    return tmp_path


def test_a_broken_workspace_names_each_file_and_field(broken_workspace: Path):
    # GIVEN a workspace with a bad field type, a mismatched id, a broken YAML file and a bad share code
    # WHEN it is validated
    problems = Workspace(broken_workspace).validate()

    # THEN each problem names its file, and the field where there is one
    by_file = {Path(p.split(":", 1)[0]).name: p for p in problems}
    assert set(by_file) == {"bad-type.yaml", "renamed.yaml", "not-yaml.yaml", "referrers.yaml"}
    assert "fields.1.type" in by_file["bad-type.yaml"]
    assert "'original' does not match the file name" in by_file["renamed.yaml"]
    assert "not valid YAML" in by_file["not-yaml.yaml"]
    assert "referrers.0.code" in by_file["referrers.yaml"]


def test_a_broken_form_file_raises_invalid_workspace_when_asked_for(broken_workspace: Path):
    # GIVEN the broken workspace
    # WHEN its broken form is asked for
    with pytest.raises(InvalidWorkspace) as refused:
        Workspace(broken_workspace).form("bad-type")

    # THEN the error names the file and the field
    assert "bad-type.yaml" in str(refused.value)
    assert "fields.1.type" in str(refused.value)


def test_a_good_form_of_a_broken_workspace_still_loads(broken_workspace: Path):
    # GIVEN the broken workspace
    # WHEN its good form is asked for
    form = Workspace(broken_workspace).form("good")

    # THEN it loads (one bad file does not take the others down)
    assert form.id == "good"


def test_an_empty_form_file_is_a_problem(tmp_path: Path):
    # GIVEN a workspace with an empty form file
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "empty.yaml").write_text("", encoding="utf-8")

    # WHEN it is validated
    problems = Workspace(tmp_path).validate()

    # THEN the file is named
    assert len(problems) == 1
    assert "empty.yaml" in problems[0]


def test_a_workspace_without_forms_or_referrers_is_empty(tmp_path: Path):
    # GIVEN an empty folder
    workspace = Workspace(tmp_path)

    # WHEN it is read
    # THEN it has no forms, no share codes and no problems
    assert (workspace.forms(), workspace.referrers, workspace.validate()) == ([], {}, [])


def test_a_form_file_whose_name_cannot_be_an_id_is_reported_with_its_file(tmp_path: Path):
    # GIVEN a form file named with a capital letter
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "Demo.yaml").write_text(yaml.safe_dump(definition(id="Demo")), encoding="utf-8")

    # WHEN the workspace is validated
    problems = Workspace(tmp_path).validate()

    # THEN the problem names the file
    assert len(problems) == 1
    assert "Demo.yaml" in problems[0]


# ---------------------------------------------------------------------------- JSON Schemas


@pytest.mark.parametrize("name", ["form.schema.json", "referrers.schema.json"])
def test_json_schemas_are_valid_json_schemas(name: str):
    # GIVEN the schema of one workspace file kind
    schema = json_schemas()[name]

    # WHEN it is checked against the JSON Schema meta-schema
    # THEN it is valid
    jsonschema.Draft202012Validator.check_schema(schema)


SHIPPED_FORM_FILES = sorted((WORKSPACE / "forms").glob("*.yaml"))
# The loader leadflow reads the workspace with (libyaml when PyYAML has it).
PRODUCT_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.mark.parametrize("path", SHIPPED_FORM_FILES, ids=lambda p: p.name)
def test_the_shipped_forms_satisfy_the_form_schema(path: Path):
    # GIVEN a shipped form file and the form schema
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=PRODUCT_LOADER)
    validator = jsonschema.Draft202012Validator(json_schemas()["form.schema.json"])

    # WHEN the file is checked the way an editor would
    # THEN there are no errors
    assert list(validator.iter_errors(data)) == []


def test_the_form_schema_flags_what_the_model_refuses():
    # GIVEN a definition with an unknown key and a bad field type
    data = definition(colour="red", fields=[{"name": "email", "type": "dropdown"}])
    validator = jsonschema.Draft202012Validator(json_schemas()["form.schema.json"])

    # WHEN it is checked against the schema
    errors = list(validator.iter_errors(data))

    # THEN the editor would flag it too
    assert errors


def test_the_demo_form_reads_the_same_without_libyaml():
    # GIVEN the shipped demo form file
    text = (WORKSPACE / "forms" / "demo-signup.yaml").read_text(encoding="utf-8")

    # WHEN it is read by PyYAML's pure-Python safe loader (what leadflow falls back to without libyaml)
    data = yaml.load(text, Loader=yaml.SafeLoader)

    # THEN it is the same document
    assert data == yaml.load(text, Loader=PRODUCT_LOADER)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("form.schema.json"),
        "referrers.schema.json",
    ],
)
def test_the_shipped_schema_files_are_up_to_date(name: str):
    # GIVEN a schema file shipped in the workspace (used by yaml-language-server)
    shipped = json.loads((WORKSPACE / "schemas" / name).read_text(encoding="utf-8"))

    # WHEN it is compared with the schema the models give today
    # THEN it has not drifted
    assert shipped == json_schemas()[name]
