"""`leadflow rescore`: a scoring rule change replayed over history, against a running `leadflow dev`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT, WORKSPACE, unique_email

pytestmark = pytest.mark.e2e


def test_rescore_applies_changed_rules_to_history(dev, tmp_path):
    # GIVEN a lead who clicked the pricing link twice, scored with the shipped rules (+10 each in smb)
    lead_id = dev.capture("demo-signup", {"email": unique_email("rescore"), "title": "CTO"})
    for _ in range(2):
        token = dev.http.post(
            dev.url + "/_dev/tokens",
            json={
                "kind": "c",
                "lead_id": lead_id,
                "message_id": uuid.uuid4().hex,
                "link_id": "pricing",
                "url": "https://www.example.com/pricing",
            },
            timeout=10,
        ).json()["token"]
        dev.http.get(f"{dev.url}/t/c/{token}", allow_redirects=False, timeout=10)
    dev.tick()
    before = dev.api(f"/leads/{lead_id}/score").json()["models"]["smb"]
    # WHEN the rule is changed to +50 and history is replayed
    changed = tmp_path / "workspace"
    shutil.copytree(WORKSPACE, changed)
    rules = (changed / "scoring.yaml").read_text()
    marker = "      - id: pricing_link_clicked"
    start = rules.index(marker)
    block_end = rules.index("      - id:", start + len(marker))
    block = rules[start:block_end]
    points_line = next(line for line in block.splitlines() if line.strip().startswith("points:"))
    rules = rules[:start] + block.replace(points_line, points_line.split(":")[0] + ": 50") + rules[block_end:]
    (changed / "scoring.yaml").write_text(rules)
    done = subprocess.run(
        [sys.executable, "-m", "leadflow.dev.cli", "rescore", "--dev", dev.url, "--workspace", str(changed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # THEN the ledger reflects the new rule, with a progress bar on the way
    assert done.returncode == 0, done.stderr
    assert "leads" in done.stderr and "#" in done.stderr
    assert done.stdout.startswith("rescored ")
    after = dev.api(f"/leads/{lead_id}/score").json()["models"]["smb"]
    pricing_before = next(r for r in before["reasons"] if r["rule_id"] == "pricing_link_clicked")
    pricing_after = next(r for r in after["reasons"] if r["rule_id"] == "pricing_link_clicked")
    assert pricing_after["points"] == 100 != pricing_before["points"]
    assert after["score"] > before["score"]
