"""Reading a workspace's email templates (``templates/**.j2``) from disk."""

from __future__ import annotations

from pathlib import Path


def load_template_sources(folder: Path) -> dict[str, str]:
    """Every ``*.j2`` file under ``folder`` (recursively), keyed by its posix path relative to ``folder``."""
    return {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*.j2"))
        if path.is_file()
    }
