"""Sequences, segments and messaging.yaml: what the config refuses, where it says so, the demo files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from leadflow.config.compiled import compile_workspace, json_schemas
from leadflow.config.workspace import Workspace
from leadflow.domain.definitions import models
from leadflow.domain.definitions.conditions import SegmentList
from leadflow.domain.definitions.messaging import MessagingConfig
from leadflow.domain.definitions.sequences import Sequence
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit


def sequence(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "s",
        "name": "S",
        "purpose": "marketing_email",
        "steps": [
            {"id": "hello", "type": "email", "template": "welcome", "subject": "Hi"},
            {"id": "pause", "type": "wait", "days": 2, "until_event": {"opened": "hello"}},
            {"id": "opened", "type": "branch", "when": {"opened": "hello"}, "then": "end", "otherwise": "pause"},
        ],
    }
    data.update(changes)
    return data


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        Sequence.model_validate(data)
    return str(caught.value)


def test_a_sound_sequence_validates_and_has_a_stable_content_hash():
    # GIVEN the same content twice, and an edit
    first, second = Sequence.model_validate(sequence()), Sequence.model_validate(sequence())
    edited = Sequence.model_validate(sequence(name="S2"))
    # THEN equal content has one hash and an edit makes a new one
    assert first.content_hash == second.content_hash
    assert edited.content_hash != first.content_hash


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            sequence(steps=[{"id": "a", "type": "branch", "when": {"tag": "x"}, "then": "a", "otherwise": "end"}]),
            "loop",
        ),
        (
            sequence(
                steps=[
                    {"id": "m", "type": "email", "template": "t", "subject": "s"},
                    {"id": "b", "type": "branch", "when": {"tag": "x"}, "then": "m", "otherwise": "end"},
                ]
            ),
            "loop without a wait",
        ),
        (sequence(steps=[{"id": "a", "type": "branch", "when": {"tag": "x"}, "then": "zz", "otherwise": "end"}]), "zz"),
        (sequence(steps=[{"id": "a", "type": "wait"}]), "duration"),
        (sequence(steps=[{"id": "a", "type": "teleport"}]), "teleport"),
        (sequence(steps=[{"id": "a", "type": "goal", "when": {"tag": "x", "stage": ["sql"]}}]), "exactly one"),
        (sequence(steps=[{"id": "a", "type": "goal", "when": {"stage": ["vip"]}}]), "not a stage"),
        (sequence(steps=[{"id": "a", "type": "goal", "when": {"opened": "nope"}}]), "names no email step"),
        (sequence(triggers=[{"stage_reached": "vip"}]), "not a stage"),
        (sequence(triggers=[{"broadcast": {"segment": "all", "at": "2026-12-01T09:00:00"}}]), "timezone"),
        (sequence(migrations=[{"from_version": 1, "steps": {"old": "missing"}}]), "not a step"),
        (sequence(reentry={"policy": "sometimes"}), "policy"),
        (sequence(unknown_key=1), "unknown_key"),
        # SES deliveries are no activity (issue 17): a goal or a wait on one could never be reached
        (sequence(goal={"activity": {"type": "email_delivered"}}), "goal.activity.type"),
        (
            sequence(
                steps=[
                    {"id": "m", "type": "email", "template": "t", "subject": "s"},
                    {"id": "w", "type": "wait", "days": 1, "until_event": {"activity": {"type": "email_delivered"}}},
                ]
            ),
            "until_event.activity.type",
        ),
    ],
)
def test_broken_sequences_are_refused_with_the_reason(data, expected):
    assert expected in problems(data)


def test_messaging_and_segments_check_themselves():
    with pytest.raises(ValidationError, match="IANA"):
        MessagingConfig.model_validate({"default_timezone": "Mars/Olympus"})
    with pytest.raises(ValidationError, match="equal"):
        MessagingConfig.model_validate({"quiet_hours": {"start": "09:00", "end": "09:00"}})
    with pytest.raises(ValidationError, match="unknown segment"):
        SegmentList.model_validate({"segments": [{"id": "a", "name": "A", "when": {"segment": "b"}}]})
    with pytest.raises(ValidationError, match="enrollment"):
        SegmentList.model_validate({"segments": [{"id": "a", "name": "A", "when": {"opened": "previous"}}]})


def broken_copy(tmp_path: Path, edit: str, replacement: str) -> Workspace:
    folder = tmp_path / "workspace"
    shutil.copytree(WORKSPACE, folder)
    path = folder / "sequences" / "welcome.yaml"
    path.write_text(path.read_text().replace(edit, replacement, 1))
    return Workspace(folder)


def test_validate_names_file_line_and_field(tmp_path):
    # GIVEN a wait with a negative duration on line 19 of welcome.yaml
    workspace = broken_copy(tmp_path, "    days: 3\n", "    days: -3\n")
    line = next(
        n
        for n, text in enumerate((workspace.root / "sequences" / "welcome.yaml").read_text().splitlines(), 1)
        if "days: -3" in text
    )
    # WHEN the workspace is validated
    report = "\n".join(workspace.validate())
    # THEN the problem names the file, the line and the field
    assert "welcome.yaml" in report
    assert f"welcome.yaml:{line}: steps.1.days" in report


def test_validate_checks_what_sequences_refer_to(tmp_path):
    workspace = broken_copy(tmp_path, "template: welcome_tips", "template: welcome_tipz")
    report = "\n".join(workspace.validate())
    assert "welcome_tipz.html.j2' is missing" in report


def test_the_demo_workspace_compiles_with_sequences_and_templates(tmp_path):
    # WHEN the demo workspace is compiled, as the layer build does
    target = compile_workspace(WORKSPACE, tmp_path)
    compiled = Workspace(tmp_path)
    source = Workspace(WORKSPACE)
    # THEN the compiled workspace reads back the same sequences, segments, messaging and templates
    assert compiled.compiled and target.is_file()
    assert {k: v.content_hash for k, v in compiled.sequences.items()} == {
        k: v.content_hash for k, v in source.sequences.items()
    }
    assert {"welcome", "push-discount"} <= set(compiled.sequences)
    assert compiled.segments == source.segments
    assert compiled.messaging == source.messaging
    assert compiled.templates == source.templates


def test_demo_files_match_their_exported_json_schemas():
    schemas = json_schemas()
    for path in sorted((WORKSPACE / "sequences").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schemas["sequence.schema.json"])
    jsonschema.validate(yaml.safe_load((WORKSPACE / "segments.yaml").read_text()), schemas["segments.schema.json"])
    jsonschema.validate(yaml.safe_load((WORKSPACE / "messaging.yaml").read_text()), schemas["messaging.schema.json"])
    for name, schema in schemas.items():
        assert json.loads((WORKSPACE / "schemas" / name).read_text()) == schema, f"run leadflow schema ({name})"


def test_the_push_example_is_the_documents_worked_example():
    push = Workspace(WORKSPACE).sequences["push-discount"]
    emails = [s.template for s in push.email_steps()]
    assert emails == ["push_discount", "push_product", "push_coupon"]
    assert any(t.broadcast and t.broadcast.segment == "all-subscribers" for t in push.triggers)
    actions = [a.key for s in push.steps if s.type == "action" for a in s.actions]
    assert "handoff" in actions
    assert models.dump(Sequence, push)["id"] == "push-discount"


def test_nurture_listens_to_the_lead_events_its_sequences_read(tmp_path: Path):
    # GIVEN the demo workspace: no trigger, wait or goal reads scores or tags; goals read the stage
    demo = Workspace(WORKSPACE).nurture_listens
    assert demo == {"lead.scored": False, "lead.tagged": False, "lead.stage_changed": True, "activity": False}
    # WHEN a sequence's goal reads a score, and (in another copy) a trigger waits for a segment
    scored = tmp_path / "scored"
    shutil.copytree(WORKSPACE, scored)
    (scored / "sequences" / "hot.yaml").write_text(
        "id: hot\nname: Hot\ngoal: {score: {gte: 50}}\npurpose: marketing_email\nsteps:\n"
        "  - {id: hello, type: email, template: push_discount, subject: Hi}\n"
    )
    joined = tmp_path / "joined"
    shutil.copytree(WORKSPACE, joined)
    segment = Workspace(WORKSPACE).segments.segments[0].id
    (joined / "sequences" / "join.yaml").write_text(
        f"id: join\nname: Join\ntriggers: [{{segment_joined: {segment}}}]\npurpose: marketing_email\nsteps:\n"
        "  - {id: hello, type: email, template: push_discount, subject: Hi}\n"
    )
    # THEN score events matter to the first (the scoring function marks them for the nurture rule),
    # and every event to the second
    assert Workspace(scored).nurture_listens["lead.scored"] is True
    assert all(Workspace(joined).nurture_listens.values())
