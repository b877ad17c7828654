"""What ``leadflow validate`` checks about consent across the workspace's files.

Problems (the workspace is refused): a form's consent box or an email step names a purpose
consent.yaml does not list; ``soft_opt_in_forms`` names a form that does not exist. (A marketing
step without any purpose is refused by the sequence model itself.)

Warnings (valid, but probably not meant): a sequence's marketing emails need a consent that no
form of the workspace asks for and no region lets go out without, so they can never be sent; a
trigger enrolls leads from a form without a consent box for those emails, who (unless they gave
consent elsewhere) will be skipped as ``no_consent``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leadflow.domain.definitions.consent import ConsentPolicy
from leadflow.domain.definitions.forms import FormDefinition
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.definitions.steps import EmailStep

if TYPE_CHECKING:
    from leadflow.config.workspace import Workspace


def consent_problems(workspace: Workspace) -> list[str]:
    """Purposes named by forms and steps that consent.yaml lacks; unknown soft opt-in forms."""
    policy = workspace.consent
    known = policy.purpose_ids()
    listed = ", ".join(sorted(known))
    problems = []
    for form in _forms(workspace):
        if form.consent is not None and form.consent.purpose not in known:
            path = workspace.root / "forms" / f"{form.id}.yaml"
            problems.append(f"{path}: consent purpose '{form.consent.purpose}' is not in consent.yaml ({listed})")
    for sequence in workspace.sequences.values():
        path = workspace.root / "sequences" / f"{sequence.id}.yaml"
        for step in sequence.email_steps():
            purpose = sequence.purpose_of(step)
            if purpose is not None and purpose not in known:
                problems.append(f"{path}: step '{step.id}' purpose '{purpose}' is not in consent.yaml ({listed})")
    forms = set(workspace.form_ids())
    for form_id in policy.soft_opt_in_forms:
        if form_id not in forms:
            problems.append(f"{workspace.root / 'consent.yaml'}: soft_opt_in_forms names unknown form '{form_id}'")
    return problems


def consent_warnings(workspace: Workspace) -> list[str]:
    """Sequences whose marketing emails can never be sent, and triggers that enroll leads who can
    never have consent for them (see the module docstring)."""
    policy = workspace.consent
    forms = {form.id: form for form in _forms(workspace)}
    collected = {form.consent.purpose for form in forms.values() if form.consent is not None}
    warnings = []
    for sequence in workspace.sequences.values():
        path = workspace.root / "sequences" / f"{sequence.id}.yaml"
        for purpose, steps in _steps_by_purpose(sequence).items():
            names = ", ".join(f"'{s}'" for s in steps)
            if purpose not in collected and not _ever_without_consent(policy, purpose):
                warnings.append(
                    f"{path}: steps {names} need consent for '{purpose}', which no form asks for and no region of "
                    "consent.yaml lets go out without: they can never be sent"
                )
                continue
            for form_id in _trigger_forms(sequence, forms):
                form = forms[form_id]
                has_box = form.consent is not None and form.consent.purpose == purpose
                if has_box or _soft_opt_in_covers(policy, form_id) or policy.default_basis == "opt_out":
                    continue
                warnings.append(
                    f"{path}: trigger form '{form_id}' has no consent box for '{purpose}': leads who only ever used it "
                    f"can never have consent, and steps {names} skip them (no_consent)"
                )
    return warnings


def _forms(workspace: Workspace) -> list[FormDefinition]:
    return [workspace.form(form_id) for form_id in workspace.form_ids()]


def _steps_by_purpose(sequence: Sequence) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for step in sequence.steps:
        if isinstance(step, EmailStep):
            purpose = sequence.purpose_of(step)
            if purpose is not None:
                found.setdefault(purpose, []).append(step.id)
    return found


def _ever_without_consent(policy: ConsentPolicy, purpose: str) -> bool:
    """Whether some lead may get an email of ``purpose`` without having ticked a box for it."""
    bases = {policy.default_basis}
    bases.update(r.basis for r in policy.regions if not r.purposes or purpose in r.purposes)
    return bases != {"opt_in"}


def _soft_opt_in_covers(policy: ConsentPolicy, form_id: str) -> bool:
    return policy.default_basis == "soft_opt_in" and form_id in policy.soft_opt_in_forms


def _trigger_forms(sequence: Sequence, forms: dict[str, FormDefinition]) -> list[str]:
    """The forms whose submissions enroll leads in ``sequence`` (every form for ``*``)."""
    found: list[str] = []
    for trigger in sequence.triggers:
        if trigger.form_submitted == "*":
            found.extend(sorted(forms))
        elif trigger.form_submitted is not None and trigger.form_submitted in forms:
            found.append(trigger.form_submitted)
    return list(dict.fromkeys(found))
