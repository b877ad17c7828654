"""``leadflow import`` on the stack's engine, end to end over HTTP (issue 16): the command line, in
its own process, uploads a file to the presigned URL a running ``leadflow dev`` answers, starts the
import, follows it with a progress bar until the Distributed Map has read every chunk, and writes
the rejected rows it downloads; run again, it resumes (nothing is written twice)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import StackClient
from tests.e2e.conftest import DevServer

pytestmark = pytest.mark.e2e


def leadflow_import(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "leadflow"), "import", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_the_cli_imports_through_the_engine_with_a_progress_bar(
    dev_server: DevServer, dev: StackClient, tmp_path: Path
) -> None:
    # GIVEN a HubSpot-style export of 120 people, one without an address, one with a bad one
    source = tmp_path / "contacts.csv"
    with source.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Record ID", "First Name", "Last Name", "Email", "Company Name"])
        for i in range(118):
            writer.writerow([str(5000 + i), f"Cli{i}", "Engine", f"cli{i}@engine-cli.example", "Acme"])
        writer.writerow(["6000", "No", "Address", "", ""])
        writer.writerow(["6001", "Bad", "Email", "not-an-address", ""])
    # WHEN it is imported on the dev stack's engine
    done = leadflow_import(str(source), "--dev", dev_server.url, "--via", "engine", "--tag", "CLI Engine")
    # THEN the command uploads, follows the run with a progress bar, and reports the counts
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on the stack's engine" in done.stdout and "as hubspot" in done.stdout, done.stdout
    assert "created 118" in done.stdout and "rejected 2" in done.stdout, done.stdout
    assert "bytes uploaded" in done.stderr and "120/120 rows" in done.stderr, done.stderr
    # AND the rejected rows are downloaded next to the file, with their row numbers and reasons
    rejected = list(csv.DictReader((tmp_path / "contacts.csv.rejected.csv").open(encoding="utf-8")))
    assert [(r["leadflow_row"], r["Record ID"]) for r in rejected] == [("120", "6000"), ("121", "6001")]
    # AND the leads are in the stack, tagged
    lead = dev.lead_by_email("cli7@engine-cli.example")
    assert lead is not None and lead["profile"]["company"] == "Acme" and "cli-engine" in lead["tags"]
    # WHEN the same file is imported again
    again = leadflow_import(str(source), "--dev", dev_server.url, "--via", "engine")
    # THEN it is the same import, done: nothing uploaded or written again
    assert again.returncode == 0 and "created 118" in again.stdout, again.stdout + again.stderr
    assert "bytes uploaded" not in again.stderr
    activities = dev.api(f"/leads/{lead['lead_id']}").json()["activities"]
    assert [a["type"] for a in activities].count("lead_imported") == 1
