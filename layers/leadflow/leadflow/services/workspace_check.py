"""``leadflow validate``: a workspace's problems, its files' and its email templates'.

``Workspace.validate`` checks what the files declare (schemas, names that must exist); whether
each template compiles is the renderer's to say, and config does not import the domain.
"""

from __future__ import annotations

from leadflow.config.workspace import Workspace
from leadflow.domain.rendering import EmailRenderer


def workspace_problems(workspace: Workspace) -> list[str]:
    """Every problem of the workspace, one line each naming its file (empty: sound)."""
    problems = workspace.validate()
    if workspace.templates:
        problems += [f"{workspace.root / 'templates'}: {p}" for p in EmailRenderer(workspace.templates).check()]
    return problems
