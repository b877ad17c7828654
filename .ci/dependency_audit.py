"""Audit the project's installed dependencies for known vulnerabilities (pip-audit), where its source answers.

pip-audit asks PyPI's JSON API (``https://pypi.org/pypi/<name>/<version>/json``, which carries
the advisories of the Python Packaging Advisory Database) about each pinned package of the
development virtualenv (the Lambda layer's packages included, at the same pins), without
installing anything. CI machines reach only package registries; where PyPI's JSON API does not
answer for our first pin (no route to pypi.org, or a mirror or proxy that serves packages but
not their advisories), the audit is skipped with a message saying so, and exits 0.

Usage: .venv/audit/bin/python .ci/dependency_audit.py .venv/bin/python
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

SOURCE = "https://pypi.org/pypi/{name}/{version}/json"
TIMEOUT_SECONDS = 5


def source_unreachable(pin: str) -> str | None:
    """None when PyPI's JSON API answers for this pin (``name==version``); else why not."""
    name, _, version = pin.partition("==")
    url = SOURCE.format(name=name, version=version)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - an https URL of ours
            response.read(1)
            return None
    except OSError as error:  # DNS, refused, timeout, TLS, HTTP errors (a 404 from a partial mirror)
        return f"{url}: {error or type(error).__name__}"


def main(project_python: str) -> int:
    frozen = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [project_python, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
    ).stdout
    pins = [line for line in frozen.splitlines() if "==" in line and not line.startswith("#")]
    if not pins:
        print("dependency audit: nothing pinned to audit")
        return 0
    why = source_unreachable(pins[0])
    if why is not None:
        print(
            f"dependency audit skipped: pip-audit's vulnerability source (PyPI's JSON API) does not answer here ({why})"
        )
        return 0
    with tempfile.TemporaryDirectory() as folder:
        requirements = Path(folder) / "requirements.txt"
        requirements.write_text("\n".join(pins) + "\n", encoding="utf-8")
        print(f"dependency audit: {len(pins)} pinned packages of {project_python} against PyPI's advisories")
        audit = [sys.executable, "-m", "pip_audit", "--requirement", str(requirements), "--no-deps", "--disable-pip"]
        return subprocess.run([*audit, "--progress-spinner", "off"], check=False).returncode  # noqa: S603 - fixed arguments


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
