"""What the command line writes from a workspace: the compiled ``workspace.json`` the Lambda layer
ships (``leadflow compile``: validated once, read without YAML or pydantic) and the JSON Schemas
editors use to check the workspace's files (``leadflow schema``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leadflow.config.workspace import COMPILED_FILE, Workspace
from leadflow.domain.definitions import models
from leadflow.domain.definitions.forms import FormDefinition
from leadflow.errors import InvalidWorkspace

COMPILED_VERSION = 1


def compile_workspace(source: Path, out: Path) -> Path:
    """Validate a workspace and write it as one ``workspace.json`` into ``out``.

    Raises:
        InvalidWorkspace: listing every problem; nothing is written.
    """
    from leadflow.domain.definitions.referrers import ReferrerList
    from leadflow.domain.definitions.scoring import ScoringConfig
    from leadflow.domain.definitions.tracking import TrackingConfig

    workspace = Workspace(source)
    forms = workspace.forms()
    compiled = {
        "version": COMPILED_VERSION,
        "forms": {form.id: models.dump(FormDefinition, form) for form in forms},
        "referrers": models.dump(ReferrerList, ReferrerList(tuple(workspace.referrers.values()))),
        "tracking": models.dump(TrackingConfig, workspace.tracking),
    }
    if (source / "scoring.yaml").is_file():
        compiled["scoring"] = models.dump(ScoringConfig, workspace.scoring)
    problems = workspace.validate()
    if problems:
        raise InvalidWorkspace("\n".join(problems))
    from leadflow.domain.definitions.conditions import SegmentList
    from leadflow.domain.definitions.messaging import MessagingConfig
    from leadflow.domain.definitions.sequences import Sequence

    compiled["sequences"] = {k: models.dump(Sequence, v) for k, v in workspace.sequences.items()}
    compiled["segments"] = models.dump(SegmentList, workspace.segments)
    compiled["messaging"] = models.dump(MessagingConfig, workspace.messaging)
    compiled["nurture_listens"] = workspace.nurture_listens
    compiled["templates"] = workspace.templates
    from leadflow.domain.definitions.handoff import HandoffConfig

    compiled["handoff"] = models.dump(HandoffConfig, workspace.handoff)
    from leadflow.domain.definitions.crm_feedback import CrmFeedbackConfig

    compiled["crm_feedback"] = models.dump(CrmFeedbackConfig, workspace.crm_feedback)
    from leadflow.domain.definitions.consent import ConsentPolicy

    compiled["consent"] = models.dump(ConsentPolicy, workspace.consent)
    from leadflow.domain.definitions.retention import RetentionConfig

    compiled["retention"] = models.dump(RetentionConfig, workspace.retention)
    from leadflow.domain.definitions.theme import Theme

    compiled["theme"] = models.dump(Theme, workspace.theme)
    out.mkdir(parents=True, exist_ok=True)
    target = out / COMPILED_FILE
    target.write_text(json.dumps(compiled, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of every workspace file kind, for editors (yaml-language-server)."""
    from leadflow.domain.definitions.conditions import SegmentList
    from leadflow.domain.definitions.consent import ConsentPolicy
    from leadflow.domain.definitions.crm_feedback import CrmFeedbackConfig
    from leadflow.domain.definitions.handoff import HandoffConfig
    from leadflow.domain.definitions.messaging import MessagingConfig
    from leadflow.domain.definitions.referrers import ReferrerList
    from leadflow.domain.definitions.retention import RetentionConfig
    from leadflow.domain.definitions.scoring import ScoringConfig
    from leadflow.domain.definitions.sequences import Sequence
    from leadflow.domain.definitions.theme import Theme
    from leadflow.domain.definitions.tracking import TrackingConfig

    return {
        "consent.schema.json": models.json_schema(ConsentPolicy),
        "sequence.schema.json": models.json_schema(Sequence),
        "segments.schema.json": models.json_schema(SegmentList),
        "messaging.schema.json": models.json_schema(MessagingConfig),
        "form.schema.json": models.json_schema(FormDefinition),
        "referrers.schema.json": models.json_schema(ReferrerList),
        "tracking.schema.json": models.json_schema(TrackingConfig),
        "scoring.schema.json": models.json_schema(ScoringConfig),
        "handoff.schema.json": models.json_schema(HandoffConfig),
        "crm_feedback.schema.json": models.json_schema(CrmFeedbackConfig),
        "retention.schema.json": models.json_schema(RetentionConfig),
        "theme.schema.json": models.json_schema(Theme),
    }


def write_json_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = folder / name
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
