"""The workspace: a folder of plain files that configures leadflow.

Layout::

    forms/<form_id>.yaml     one form each (FormDefinition)
    referrers.yaml           share codes of reps and partners (ReferrerList)

Files are read on first use and cached; a broken file raises ``InvalidWorkspace`` naming
the file and each bad field.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from leadflow.config.forms import FORM_ID_PATTERN, FormDefinition
from leadflow.config.referrers import Referrer, ReferrerList
from leadflow.domain.errors import FormNotFound, InvalidWorkspace

Model = TypeVar("Model", bound=BaseModel)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _describe(error: ValidationError, path: Path) -> str:
    lines = [f"{path}: {error.error_count()} problem(s)"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(file)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def load_model(path: Path, model: type[Model]) -> Model:
    """Read one YAML file into ``model``.

    Raises:
        InvalidWorkspace: the file is not YAML or breaks the model; the message names
            the file and every bad field.
    """
    try:
        data: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        raise InvalidWorkspace(f"{path}: not valid YAML: {error}") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidWorkspace(_describe(error, path)) from None


class Workspace:
    """Read access to one workspace folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._forms: dict[str, FormDefinition] = {}

    def form(self, form_id: str) -> FormDefinition:
        """The form with this id.

        Raises:
            FormNotFound: no such form (an id that could not be a file name included).
            InvalidWorkspace: the form's file is broken.
        """
        cached = self._forms.get(form_id)
        if cached is not None:
            return cached
        if not re.match(FORM_ID_PATTERN, form_id):
            raise FormNotFound(form_id)
        path = self.root / "forms" / f"{form_id}.yaml"
        if not path.is_file():
            raise FormNotFound(form_id)
        form = load_model(path, FormDefinition)
        if form.id != form_id:
            raise InvalidWorkspace(f"{path}: id '{form.id}' does not match the file name")
        self._forms[form_id] = form
        return form

    def forms(self) -> list[FormDefinition]:
        """Every form of the workspace, sorted by id."""
        folder = self.root / "forms"
        problems = self.validate()
        if problems:
            raise InvalidWorkspace("\n".join(problems))
        return [self.form(p.stem) for p in sorted(folder.glob("*.yaml"))] if folder.is_dir() else []

    @cached_property
    def referrers(self) -> dict[str, Referrer]:
        path = self.root / "referrers.yaml"
        if not path.is_file():
            return {}
        return {r.code: r for r in load_model(path, ReferrerList).referrers}

    def validate(self) -> list[str]:
        """Load every file; return the problems found (empty when the workspace is sound)."""
        problems: list[str] = []
        folder = self.root / "forms"
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            try:
                self.form(path.stem)
            except FormNotFound:
                problems.append(f"{path}: the file name must be the form id (a-z, 0-9, - and _, at most 64)")
            except InvalidWorkspace as error:
                problems.append(str(error))
        try:
            _ = self.referrers
        except InvalidWorkspace as error:
            problems.append(str(error))
        return problems


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of every workspace file kind, for editors (yaml-language-server)."""
    return {
        "form.schema.json": FormDefinition.model_json_schema(),
        "referrers.schema.json": ReferrerList.model_json_schema(),
    }


def write_json_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = folder / name
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
