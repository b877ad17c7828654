"""The workspace: a folder of plain files that configures leadflow.

Layout::

    forms/<form_id>.yaml     one form each (FormDefinition)
    referrers.yaml           share codes of reps and partners (ReferrerList)
    tracking.yaml            click redirect hosts, site-event origins, token lifetime (TrackingConfig)
    scoring.yaml             scoring models, fit grade, stage rules (ScoringConfig)
    sequences/<id>.yaml      nurture sequences (Sequence)
    segments.yaml            dynamic lists (SegmentList)
    messaging.yaml           sender, footer address, frequency caps, quiet hours, send rate (MessagingConfig)
    handoff.yaml             sales hand-off: trigger stage, destinations, assignment, SLA (HandoffConfig)
    crm_feedback.yaml        what sales feedback from the CRM means (CrmFeedbackConfig)
    consent.yaml             consent purposes, lawful basis per region, double opt-in (ConsentPolicy)
    retention.yaml           erase leads inactive for N months in the daily sweep (RetentionConfig)
    theme.yaml               how the hosted landing pages look (Theme)
    templates/**.j2          email templates, layouts and partials (Jinja2)

Files are read on first use and cached; a broken file raises ``InvalidWorkspace`` naming
the file and each bad field. A *compiled* workspace (``workspace.json``, written by
``leadflow compile`` when the Lambda layer is built) holds the same content already
validated, and is read without YAML or pydantic: that keeps cold starts short (it is written by
``config.compiled``). ``Workspace.validate`` loads every file, then runs the checks across files
(``config.workspace_checks`` for nurture, ``config.consent_checks`` for consent).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from leadflow.domain.definitions.forms import FORM_ID_PATTERN, FormDefinition
from leadflow.errors import FormNotFound, InvalidWorkspace

if TYPE_CHECKING:  # loaded on first use: form capture's cold start needs none of them
    from leadflow.domain.definitions.conditions import SegmentList
    from leadflow.domain.definitions.consent import ConsentPolicy
    from leadflow.domain.definitions.crm_feedback import CrmFeedbackConfig
    from leadflow.domain.definitions.handoff import HandoffConfig
    from leadflow.domain.definitions.messaging import MessagingConfig
    from leadflow.domain.definitions.referrers import Referrer
    from leadflow.domain.definitions.retention import RetentionConfig
    from leadflow.domain.definitions.scoring import ScoringConfig
    from leadflow.domain.definitions.sequences import Sequence
    from leadflow.domain.definitions.theme import Theme
    from leadflow.domain.definitions.tracking import TrackingConfig

COMPILED_FILE = "workspace.json"


class _Validating(Protocol):
    @classmethod
    def model_validate(cls, data: Any) -> Any: ...


Model = TypeVar("Model", bound=_Validating)


def _describe(error: Any, path: Path, text: str = "") -> str:
    lines = [f"{path}: {error.error_count()} problem(s)"]
    for item in error.errors():
        loc = [part for part in item["loc"] if not _is_union_tag(part)]
        where = ".".join(str(part) for part in loc) or "(file)"
        line = _line_of(text, loc) if text else None
        lines.append(f"  {path.name}:{line}: {where}: {item['msg']}" if line else f"  {where}: {item['msg']}")
    return "\n".join(lines)


def _is_union_tag(part: Any) -> bool:
    """pydantic names the member of a tagged union in the location ('email' in steps.1.email.subject)."""
    return isinstance(part, str) and part in {"email", "wait", "branch", "action", "goal"}


def _line_of(text: str, loc: list[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    import yaml

    try:
        node: Any = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == str(part)), None)
            if child is None:  # a missing key: point at the mapping that lacks it
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def load_model(path: Path, model: type[Model]) -> Model:
    """Read one YAML file into ``model``.

    Raises:
        InvalidWorkspace: the file is not YAML or breaks the model; the message names
            the file and every bad field.
    """
    import yaml
    from pydantic import ValidationError

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = path.read_text(encoding="utf-8")
    try:
        data: Any = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader  # nosec B506
    except yaml.YAMLError as error:
        raise InvalidWorkspace(f"{path}: not valid YAML: {error}") from None
    try:
        result: Model = model.model_validate(data)
    except ValidationError as error:
        raise InvalidWorkspace(_describe(error, path, text)) from None
    return result


class Workspace:
    """Read access to one workspace folder (its YAML files, or its compiled form)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._forms: dict[str, FormDefinition] = {}
        self._referrers: dict[str, Referrer] | None = None
        self._tracking: TrackingConfig | None = None
        self._scoring: ScoringConfig | None = None
        self._sequences: dict[str, Sequence] | None = None
        self._segments: SegmentList | None = None
        self._messaging: MessagingConfig | None = None
        self._templates: dict[str, str] | None = None
        self._handoff: HandoffConfig | None = None
        self._crm_feedback: CrmFeedbackConfig | None = None
        self._consent: ConsentPolicy | None = None
        self._retention: RetentionConfig | None = None
        self._theme: Theme | None = None
        self._nurture_listens: dict[str, bool] | None = None
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
    def nurture_listens(self) -> dict[str, bool]:
        """Which lead events the nurture sequences act on (``config.sequences.nurture_listens``):
        from the compiled workspace when it has the answer (so the scoring function, which marks
        its events with it, never loads the sequences), else worked out from them."""
        if self._nurture_listens is None:
            from leadflow.domain.definitions.sequences import nurture_listens

            known = (self._compiled or {}).get("nurture_listens")
            self._nurture_listens = dict(known) if known else nurture_listens(self.sequences.values(), self.segments)
        return self._nurture_listens

    @property
    def referrers(self) -> dict[str, Referrer]:
        from leadflow.domain.definitions.referrers import ReferrerList

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
        from leadflow.domain.definitions.tracking import TrackingConfig

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
        if self._scoring is not None:  # read per lead: no import on this path
            return self._scoring
        from leadflow.domain.definitions.scoring import ScoringConfig

        if self._scoring is None:
            if self._compiled is not None:
                self._scoring = ScoringConfig.from_trusted(self._compiled["scoring"])
            else:
                path = self.root / "scoring.yaml"
                if not path.is_file():
                    raise InvalidWorkspace(f"{path}: missing (scoring rules, grade and stage rules)")
                self._scoring = load_model(path, ScoringConfig)
        return self._scoring

    @property
    def sequences(self) -> dict[str, Sequence]:
        """Every sequence (sequences/<id>.yaml), by id.

        Raises:
            InvalidWorkspace: a file is broken, or its id differs from its file name.
        """
        if self._sequences is not None:  # read per lead: no import on this path
            return self._sequences
        from leadflow.domain.definitions.sequences import Sequence

        if self._sequences is None:
            found: dict[str, Sequence] = {}
            if self._compiled is not None:
                for sequence_id, data in self._compiled.get("sequences", {}).items():
                    found[sequence_id] = Sequence.from_trusted(data)
            else:
                folder = self.root / "sequences"
                problems = []
                for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
                    try:
                        sequence = load_model(path, Sequence)
                    except InvalidWorkspace as error:
                        problems.append(str(error))
                        continue
                    if sequence.id != path.stem:
                        problems.append(f"{path}: id '{sequence.id}' does not match the file name")
                    found[sequence.id] = sequence
                if problems:
                    raise InvalidWorkspace("\n".join(problems))
            self._sequences = found
        return self._sequences

    @property
    def segments(self) -> SegmentList:
        if self._segments is not None:  # read per lead: no import on this path
            return self._segments
        from leadflow.domain.definitions.conditions import SegmentList

        if self._segments is None:
            if self._compiled is not None:
                self._segments = SegmentList.from_trusted(self._compiled.get("segments", {}))
            else:
                path = self.root / "segments.yaml"
                self._segments = load_model(path, SegmentList) if path.is_file() else SegmentList()
        return self._segments

    @property
    def messaging(self) -> MessagingConfig:
        if self._messaging is not None:  # read per lead: no import on this path
            return self._messaging
        from leadflow.domain.definitions.messaging import MessagingConfig

        if self._messaging is None:
            if self._compiled is not None:
                self._messaging = MessagingConfig.from_trusted(self._compiled.get("messaging", {}))
            else:
                path = self.root / "messaging.yaml"
                self._messaging = load_model(path, MessagingConfig) if path.is_file() else MessagingConfig()
        return self._messaging

    @property
    def handoff(self) -> HandoffConfig:
        """handoff.yaml (sales hand-off: trigger, destinations, assignment, SLA); defaults when absent."""
        from leadflow.domain.definitions.handoff import HandoffConfig

        if self._handoff is None:
            if self._compiled is not None:
                self._handoff = HandoffConfig.from_trusted(self._compiled.get("handoff", {}))
            else:
                path = self.root / "handoff.yaml"
                self._handoff = load_model(path, HandoffConfig) if path.is_file() else HandoffConfig()
        return self._handoff

    @property
    def crm_feedback(self) -> CrmFeedbackConfig:
        """crm_feedback.yaml (which CRMs report back and what their values mean); defaults when absent."""
        from leadflow.domain.definitions.crm_feedback import CrmFeedbackConfig

        if self._crm_feedback is None:
            if self._compiled is not None:
                self._crm_feedback = CrmFeedbackConfig.from_trusted(self._compiled.get("crm_feedback", {}))
            else:
                path = self.root / "crm_feedback.yaml"
                self._crm_feedback = load_model(path, CrmFeedbackConfig) if path.is_file() else CrmFeedbackConfig()
        return self._crm_feedback

    @property
    def consent(self) -> ConsentPolicy:
        """consent.yaml (purposes, lawful basis per region, double opt-in); opt-in everywhere when absent."""
        if self._consent is not None:  # read per batch: no import on this path
            return self._consent
        from leadflow.domain.definitions.consent import ConsentPolicy

        if self._compiled is not None:
            self._consent = ConsentPolicy.from_trusted(self._compiled.get("consent", {}))
        else:
            path = self.root / "consent.yaml"
            self._consent = load_model(path, ConsentPolicy) if path.is_file() else ConsentPolicy()
        return self._consent

    def warnings(self) -> list[str]:
        """What is valid but probably not meant (e.g. a trigger that enrolls leads who can never have
        consent for the sequence's emails); empty when the workspace has problems."""
        if self.validate():
            return []
        from leadflow.config.consent_checks import consent_warnings

        return consent_warnings(self)

    @property
    def theme(self) -> Theme:
        """theme.yaml (the hosted landing pages' look); the defaults when absent."""
        from leadflow.domain.definitions.theme import Theme

        if self._theme is None:
            if self._compiled is not None:
                self._theme = Theme.from_trusted(self._compiled.get("theme", {}))
            else:
                path = self.root / "theme.yaml"
                self._theme = load_model(path, Theme) if path.is_file() else Theme()
        return self._theme

    @property
    def retention(self) -> RetentionConfig:
        """retention.yaml (erase inactive leads in the daily sweep); off when absent."""
        from leadflow.domain.definitions.retention import RetentionConfig

        if self._retention is None:
            if self._compiled is not None:
                self._retention = RetentionConfig.from_trusted(self._compiled.get("retention", {}))
            else:
                path = self.root / "retention.yaml"
                self._retention = load_model(path, RetentionConfig) if path.is_file() else RetentionConfig()
        return self._retention

    @property
    def templates(self) -> dict[str, str]:
        """Email templates, layouts and partials: path under templates/ -> Jinja source."""
        if self._templates is None:
            if self._compiled is not None:
                self._templates = dict(self._compiled.get("templates", {}))
            else:
                from leadflow.config.templates import load_template_sources

                folder = self.root / "templates"
                self._templates = load_template_sources(folder) if folder.is_dir() else {}
        return self._templates

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
        parts += ["segments", "messaging", "sequences", "handoff", "crm_feedback", "consent", "retention", "theme"]
        for part in parts:
            try:
                getattr(self, part)
            except InvalidWorkspace as error:
                problems.append(str(error))
        if not problems:
            from leadflow.config.consent_checks import consent_problems
            from leadflow.config.workspace_checks import nurture_problems

            problems += nurture_problems(self) + consent_problems(self)
        return problems
