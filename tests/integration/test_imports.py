"""``leadflow import`` on the local stack (issue 16, part 1): real export headers detected, rows
merged by the rules of capture, consent only with a basis, opt-outs suppressed, bad rows reported
with a rejected-rows file, a second run writes nothing twice."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest

from leadflow.dev.cli import main
from tests.conftest import FIXTURES, StackClient, suppression_key

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("caught_up")]  # imports leave many events
IMPORTS = FIXTURES / "imports"


def lead(client: StackClient, email: str) -> dict[str, Any]:
    found = client.lead_by_email(email)
    assert found is not None, email
    return found


def test_a_mailchimp_export_imports_with_consent_only_under_a_basis(
    client: StackClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "members.csv"
    shutil.copy(IMPORTS / "mailchimp_members.csv", source)
    # WHEN the export is imported with a lawful basis and a tag
    code = main(["import", str(source), "--consent-basis", "consent", "--tag", "Spring Import", "--dev", client.url])
    assert code == 0
    out = capsys.readouterr()
    # THEN it is detected as Mailchimp; two rows created, the one with too many cells rejected
    assert "as mailchimp" in out.out and "created 2" in out.out and "rejected 1" in out.out, out
    mia = lead(client, "mia@mc-import.example")
    assert mia["profile"]["first_name"] == "Mia" and mia["profile"]["country"] == "DE"
    assert "spring-import" in mia["tags"] and mia["custom"]["notes"] == "likes long emails"
    # AND only the row with opt-in evidence is consented, with the basis and the file as its source
    assert mia["consent"]["marketing_email"]["basis"] == "consent"
    assert mia["consent"]["marketing_email"]["source"] == "import:mailchimp:members.csv"
    assert mia["consent"]["marketing_email"]["at"].startswith("2019-04-01T08:05:00")
    assert lead(client, "leo@mc-import.example")["consent"] == {}
    # AND the rejected row is in the rejected-rows file with its number and reason
    rejected = list(csv.DictReader((tmp_path / "members.csv.rejected.csv").open(encoding="utf-8")))
    assert [(r["leadflow_row"], r["Email Address"]) for r in rejected] == [("4", "too@many-cells.example")]
    assert "more cell" in rejected[0]["leadflow_reason"]
    # WHEN the same file is imported again (an interrupted import resumed)
    assert main(["import", str(source), "--consent-basis", "consent", "--dev", client.url]) == 0
    # THEN nothing is written twice: the same leads, one import activity each
    again = capsys.readouterr().out
    assert "created 0" in again and "updated 0" in again, again
    activities = client.api(f"/leads/{mia['lead_id']}").json()["activities"]
    assert [a["type"] for a in activities].count("lead_imported") == 1


def test_hubspot_mautic_and_pinpoint_exports_merge_reject_and_suppress(
    local_stack: Any, client: StackClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a lead who told us her name on a form
    client.capture("demo-signup", {"email": "ada@hub-import.example", "first_name": "Augusta", "consent": True})
    # WHEN the HubSpot export is imported (no basis)
    hub = tmp_path / "hubspot.csv"
    shutil.copy(IMPORTS / "hubspot_contacts.csv", hub)
    assert main(["import", str(hub), "--dev", client.url]) == 0
    out = capsys.readouterr()
    assert "as hubspot" in out.out and "rejected 2" in out.out, out
    # THEN the import fills blanks and never overwrites what she told us; her form consent stays
    ada = lead(client, "ada@hub-import.example")
    assert ada["profile"]["first_name"] == "Augusta" and ada["profile"]["last_name"] == "Lovelace"
    assert ada["custom"]["hubspot_id"] == "1001" and ada["consent"]["marketing_email"]["form_id"] == "demo-signup"
    # AND a quoted cell with a line break is read as one cell
    assert lead(client, "multi@hub-import.example")["profile"]["last_name"] == "Line"
    reasons = {
        r["leadflow_row"]: r["leadflow_reason"] for r in csv.DictReader((tmp_path / "hubspot.csv.rejected.csv").open())
    }
    assert reasons["4"] == "no email address" and reasons["5"].startswith("email:")
    # WHEN a Mautic export and a Pinpoint endpoint export (gzip, JSON lines) are imported
    mautic = tmp_path / "mautic.csv"
    shutil.copy(IMPORTS / "mautic_contacts.csv", mautic)
    assert main(["import", str(mautic), "--dev", client.url]) == 0
    maud = lead(client, "maud@mautic-import.example")
    assert maud["profile"]["title"] == "CMO" and maud["custom"]["mautic_stage"] == "MQL"
    assert maud["custom"]["linkedin"] == "https://www.linkedin.com/in/maud-example"
    pinpoint = tmp_path / "endpoints.json.gz"
    shutil.copy(IMPORTS / "pinpoint_endpoints.json.gz", pinpoint)
    capsys.readouterr()
    assert main(["import", str(pinpoint), "--dev", client.url]) == 0
    out = capsys.readouterr().out
    # THEN EMAIL endpoints become leads, the SMS one is skipped, OptOut ALL is suppressed
    assert "as pinpoint" in out and "created 2" in out and "skipped 1" in out and "suppressed 1" in out, out
    pia = lead(client, "pia@pinpoint-import.example")
    assert pia["profile"]["first_name"] == "Pia" and pia["custom"]["interests"] == "Science;Music"
    opted_out = lead(client, "out@pinpoint-import.example")
    assert opted_out["consent"]["marketing_email"]["granted"] is False
    key = suppression_key(local_stack, "out@pinpoint-import.example")
    table = local_stack.outputs["LeadsTableName"]
    item = local_stack.client("dynamodb").get_item(
        TableName=table, Key={"PK": {"S": f"SUPPRESS#{key}"}, "SK": {"S": "SUPPRESS"}}
    )
    assert item["Item"]["reason"]["S"] == "import_opt_out"


def test_a_dry_run_writes_nothing(client: StackClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "dry.csv"
    source.write_text("email,first_name\r\ndry@dry-run.example,Dee\r\n", encoding="utf-8")
    assert main(["import", str(source), "--dry-run", "--dev", client.url]) == 0
    assert "would import" in capsys.readouterr().out
    assert client.lead_by_email("dry@dry-run.example") is None


def test_a_small_csv_imports_through_the_api_and_its_status_is_kept(client: StackClient) -> None:
    headers = {"Authorization": f"Bearer {client.token}"}
    text = (IMPORTS / "mautic_contacts.csv").read_text(encoding="utf-8").replace("mautic-import", "api-import")
    text += "9,,Bad,,,,no-at-sign" + "," * 23 + "\n"  # Mautic's 30 columns
    # WHEN a Mautic export is posted in the body with a tag
    answer = client.http.post(
        f"{client.url}/api/v1/imports",
        json={"csv": text, "file_name": "mautic.csv", "tags": ["api-import"]},
        headers=headers,
        timeout=60,
    )
    # THEN it is imported at once: counts, and the bad row named with its number and reason
    assert answer.status_code == 201, answer.text
    view = answer.json()
    assert (view["format"], view["status"], view["created"], view["rejected"]) == ("mautic", "done", 2, 1)
    assert view["rejected_rows"][0]["row"] == 4 and view["rejected_rows"][0]["reason"].startswith("email:")
    assert "api-import" in lead(client, "maud@api-import.example")["tags"]
    # AND its status can be read again; an unknown import is a 404; a file without an email column a 400
    again = client.http.get(f"{client.url}/api/v1/imports/{view['import_id']}", headers=headers, timeout=30)
    assert again.status_code == 200 and again.json()["created"] == 2
    missing = client.http.get(f"{client.url}/api/v1/imports/nope", headers=headers, timeout=30)
    assert missing.status_code == 404
    no_email = client.http.post(
        f"{client.url}/api/v1/imports", json={"csv": "name\nAda\n"}, headers=headers, timeout=30
    )
    assert no_email.status_code == 400


def test_enroll_puts_the_imported_leads_in_a_sequence(
    client: StackClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "enroll.csv"
    source.write_text("email,first_name\r\nenroll-1@import-enroll.example,Ena\r\n", encoding="utf-8")
    # WHEN an import asks for a sequence with an api trigger
    assert main(["import", str(source), "--enroll", "push-discount", "--dev", client.url]) == 0
    assert "enrolled 1 in push-discount" in capsys.readouterr().out
    # THEN the imported lead is enrolled (and no form sequence enrolled it on its own)
    lead_id = lead(client, "enroll-1@import-enroll.example")["lead_id"]
    sequences = {e["sequence_id"] for e in client.api(f"/leads/{lead_id}/enrollments").json()["enrollments"]}
    assert "push-discount" in sequences and "welcome" not in sequences
