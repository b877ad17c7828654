"""The workspace: a folder of plain files that configures leadflow.

Layout::

    forms/<form_id>.yaml     one form each (FormDefinition)
    referrers.yaml           share codes of reps and partners (ReferrerList)
    tracking.yaml            click redirect hosts, site-event origins, token lifetime (TrackingConfig)

Files are read on first use and cached; a broken file raises ``InvalidWorkspace`` naming
the file and each bad field. A *compiled* workspace (``workspace.json``, written by
``leadflow compile`` when the Lambda layer is built) holds the same content already
validated, and is read without YAML or pydantic: that keeps cold starts short.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from leadflow.config import models
from leadflow.config.forms import FORM_ID_PATTERN, FormDefinition
from leadflow.config.referrers import Referrer, ReferrerList
from leadflow.domain.errors import FormNotFound, InvalidWorkspace

if TYPE_CHECKING:  # loaded on first use: form capture's cold start needs neither
    from leadflow.config.scoring import ScoringConfig
    from leadflow.config.tracking import TrackingConfig

COMPILED_FILE = "workspace.json"
COMPILED_VERSION = 1


class _Validating(Protocol):
    @classmethod
    def model_validate(cls, data: Any) -> Any: ...


Model = TypeVar("Model", bound=_Validating)


def _describe(error: Any, path: Path) -> str:
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
    import yaml
    from pydantic import ValidationError

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        raise InvalidWorkspace(f"{path}: not valid YAML: {error}") from None
    try:
        result: Model = model.model_validate(data)
    except ValidationError as error:
        raise InvalidWorkspace(_describe(error, path)) from None
    return result


class Workspace:
    """Read access to one workspace folder (its YAML files, or its compiled form)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._forms: dict[str, FormDefinition] = {}
        self._referrers: dict[str, Referrer] | None = None
        self._tracking: TrackingConfig | None = None
        self._scoring: ScoringConfig | None = None
        compiled = self.root / COMPILED_FILE
        self._compiled: dict[str, Any] | None = (
            json.loads(compiled.read_text(encoding="utf-8")) if compiled.is_file() else None
        )

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

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
        if self._compiled is not None:
            data = self._compiled["forms"].get(form_id)
            if data is None:
                raise FormNotFound(form_id)
            form = FormDefinition.from_trusted(data)
        else:
            path = self.root / "forms" / f"{form_id}.yaml"
            if not path.is_file():
                raise FormNotFound(form_id)
            form = load_model(path, FormDefinition)
            if form.id != form_id:
                raise InvalidWorkspace(f"{path}: id '{form.id}' does not match the file name")
        self._forms[form_id] = form
        return form

    def form_ids(self) -> list[str]:
        if self._compiled is not None:
            return sorted(self._compiled["forms"])
        folder = self.root / "forms"
        return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []

    def forms(self) -> list[FormDefinition]:
        """Every form of the workspace, sorted by id.

        Raises:
            InvalidWorkspace: listing every problem of the workspace.
        """
        problems = self.validate()
        if problems:
            raise InvalidWorkspace("\n".join(problems))
        return [self.form(form_id) for form_id in self.form_ids()]

    @property
    def referrers(self) -> dict[str, Referrer]:
        if self._referrers is None:
            if self._compiled is not None:
                listing = ReferrerList.from_trusted(self._compiled["referrers"])
            else:
                path = self.root / "referrers.yaml"
                listing = load_model(path, ReferrerList) if path.is_file() else ReferrerList()
            self._referrers = {r.code: r for r in listing.referrers}
        return self._referrers

    @property
    def tracking(self) -> TrackingConfig:
        from leadflow.config.tracking import TrackingConfig

        if self._tracking is None:
            if self._compiled is not None:
                self._tracking = TrackingConfig.from_trusted(self._compiled.get("tracking", {}))
            else:
                path = self.root / "tracking.yaml"
                self._tracking = load_model(path, TrackingConfig) if path.is_file() else TrackingConfig()
        return self._tracking

    @property
    def scoring(self) -> ScoringConfig:
        """scoring.yaml (required once anything is scored).

        Raises:
            InvalidWorkspace: the file is missing or broken.
        """
        from leadflow.config.scoring import ScoringConfig

        if self._scoring is None:
            if self._compiled is not None:
                self._scoring = ScoringConfig.from_trusted(self._compiled["scoring"])
            else:
                path = self.root / "scoring.yaml"
                if not path.is_file():
                    raise InvalidWorkspace(f"{path}: missing (scoring rules, grade and stage rules)")
                self._scoring = load_model(path, ScoringConfig)
        return self._scoring

    def validate(self) -> list[str]:
        """Load every file; return the problems found (empty when the workspace is sound)."""
        problems: list[str] = []
        for form_id in self.form_ids():
            try:
                self.form(form_id)
            except FormNotFound:
                path = self.root / "forms" / f"{form_id}.yaml"
                problems.append(f"{path}: the file name must be the form id (a-z, 0-9, - and _, at most 64)")
            except InvalidWorkspace as error:
                problems.append(str(error))
        parts = ["referrers", "tracking"]
        if "scoring" in (self._compiled or {}) or (self.root / "scoring.yaml").is_file():
            parts.append("scoring")
        for part in parts:
            try:
                getattr(self, part)
            except InvalidWorkspace as error:
                problems.append(str(error))
        return problems


def compile_workspace(source: Path, out: Path) -> Path:
    """Validate a workspace and write it as one ``workspace.json`` into ``out``.

    Raises:
        InvalidWorkspace: listing every problem; nothing is written.
    """
    from leadflow.config.scoring import ScoringConfig
    from leadflow.config.tracking import TrackingConfig

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
    out.mkdir(parents=True, exist_ok=True)
    target = out / COMPILED_FILE
    target.write_text(json.dumps(compiled, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of every workspace file kind, for editors (yaml-language-server)."""
    from leadflow.config.scoring import ScoringConfig
    from leadflow.config.tracking import TrackingConfig

    return {
        "form.schema.json": models.json_schema(FormDefinition),
        "referrers.schema.json": models.json_schema(ReferrerList),
        "tracking.schema.json": models.json_schema(TrackingConfig),
        "scoring.schema.json": models.json_schema(ScoringConfig),
    }


def write_json_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = folder / name
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
