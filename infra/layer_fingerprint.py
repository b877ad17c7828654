"""Print one SHA-256 of everything the Lambda layers are built from (``sam build`` of FormCaptureFunction).

FormCaptureFunction runs on SnapStart, which needs a published version behind an alias (SAM's
``AutoPublishAlias``). SAM publishes a new version only when the function's own package changes,
not when only a layer does (aws/serverless-application-model#3610, aws/aws-sam-cli#7775): a deploy
that changed only leadflow's code would leave the alias, and every form post, on the old layers.
The function's build (``functions/form_capture/Makefile``) writes this fingerprint beside
``app.py``, so that its package changes whenever the layers' sources do.

What is hashed: every file under ``layers/leadflow`` (the package and its pinned requirements)
and ``workspace`` (the workspace layer's sources), by path and content, in sorted order; caches
and build leftovers are left out. Standard library only: ``sam build`` may run it with any Python.

    python infra/layer_fingerprint.py [ROOT]
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

SOURCES = ("layers/leadflow", "workspace")
SKIPPED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
SKIPPED_SUFFIXES = (".pyc", ".egg-info")


def fingerprint(root: Path) -> str:
    """The SHA-256 (hex) of the layers' source files under ``root``, by path and content."""
    digest = hashlib.sha256()
    for source in SOURCES:
        files = sorted(
            path
            for path in (root / source).rglob("*")
            if path.is_file()
            and not SKIPPED_PARTS.intersection(path.parts)
            and not any(part.endswith(SKIPPED_SUFFIXES) for part in path.parts)
        )
        for path in files:
            name = path.relative_to(root).as_posix().encode("utf-8")
            content = path.read_bytes()
            digest.update(b"%d:%s%d:" % (len(name), name, len(content)))
            digest.update(content)
    return digest.hexdigest()


if __name__ == "__main__":
    print(fingerprint(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)))
