"""What ``leadflow validate`` checks about nurture across the workspace's files.

Everything a sequence names must exist: its topic and its email steps' topics (messaging.yaml),
its steps' templates (templates/emails/), the forms, segments and scoring models of its
triggers, the sequences its actions enroll in or exit, and the segments of its goal and of its
steps' conditions. (Consent across files is checked in ``consent_checks``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leadflow.config.workspace import Workspace
    from leadflow.domain.definitions.sequences import Sequence


def nurture_problems(workspace: Workspace) -> list[str]:
    """Cross-file checks: what sequences name must exist (templates, segments, forms, topics, models)."""
    models: set[str] | None = None
    if "scoring" in (workspace._compiled or {}) or (workspace.root / "scoring.yaml").is_file():
        models = set(workspace.scoring.models)
    known = _Known(
        sequences=set(workspace.sequences),
        segments={s.id for s in workspace.segments.segments},
        topics={t.id for t in workspace.messaging.topics},
        forms=set(workspace.form_ids()),
        templates=set(workspace.templates),
        models=models,
    )
    problems: list[str] = []
    for sequence in workspace.sequences.values():
        where = f"{workspace.root / 'sequences' / sequence.id}.yaml"
        if sequence.topic not in known.topics:
            problems.append(f"{where}: topic '{sequence.topic}' is not in messaging.yaml topics")
        problems += _trigger_problems(sequence, where, known) + _step_problems(sequence, where, known)
    for sequence in workspace.sequences.values():
        where = f"{workspace.root / 'sequences' / sequence.id}.yaml"
        problems += [
            f"{where}: unknown segment '{s}'" for s in _condition_segments(sequence) if s not in known.segments
        ]
    return problems


class _Known:
    """The names a workspace defines, that its sequences may refer to (``models`` None: the
    workspace has no scoring.yaml, so no model name can be checked)."""

    def __init__(
        self,
        *,
        sequences: set[str],
        segments: set[str],
        topics: set[str],
        forms: set[str],
        templates: set[str],
        models: set[str] | None,
    ) -> None:
        self.sequences, self.segments, self.topics = sequences, segments, topics
        self.forms, self.templates, self.models = forms, templates, models


def _trigger_problems(sequence: Sequence, where: str, known: _Known) -> list[str]:
    problems: list[str] = []
    for trigger in sequence.triggers:
        if trigger.form_submitted not in (None, "*") and trigger.form_submitted not in known.forms:
            problems.append(f"{where}: trigger form '{trigger.form_submitted}' does not exist")
        segment = trigger.segment_joined or (trigger.broadcast.segment if trigger.broadcast else None)
        if segment is not None and segment not in known.segments:
            problems.append(f"{where}: segment '{segment}' is not in segments.yaml")
        model = trigger.score_crossed.model if trigger.score_crossed else None
        if model is not None and known.models is not None and model not in known.models:
            problems.append(f"{where}: scoring model '{model}' does not exist")
    return problems


def _step_problems(sequence: Sequence, where: str, known: _Known) -> list[str]:
    problems: list[str] = []
    for step in sequence.steps:
        if getattr(step, "type", "") == "email":
            topic = step.topic or sequence.topic  # type: ignore[union-attr]
            if topic not in known.topics:
                problems.append(f"{where}: step '{step.id}' topic '{topic}' is not in messaging.yaml topics")
            names = [step.template, *(v.template for v in step.variants if v.template)]  # type: ignore[union-attr]
            problems += [
                f"{where}: step '{step.id}' template 'templates/emails/{name}.html.j2' is missing"
                for name in names
                if f"emails/{name}.html.j2" not in known.templates
            ]
        for action in getattr(step, "actions", ()):
            problems += [
                f"{where}: step '{step.id}' names unknown sequence '{other}'"
                for other in (action.enroll, action.exit_sequence)
                if other is not None and other not in known.sequences
            ]
    return problems


def _condition_segments(sequence: Sequence) -> list[str]:
    """The segments the sequence's goal and its steps' conditions name, in order."""
    conditions = [sequence.goal] if sequence.goal else []
    for step in sequence.steps:
        conditions += [getattr(step, name) for name in ("when", "until_event") if getattr(step, name, None) is not None]
    return [part.segment for condition in conditions for part in condition.walk() if part.segment is not None]
