"""The OpenAPI document is good enough to generate a working client: openapi-python-client generates
one from the document the local stack serves, and every operation is called with it.

The list of operations below must name every operation the document has (the test fails on a
new route until it is called here too). Each call must answer a success whose body the client
parsed into the operation's own model (not an error body, not None). The stack is its own
process: the calls include a broadcast and an erasure.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import StackClient, unique_email
from tests.e2e.conftest import DevServer, start_dev, stop_dev
from tests.e2e.test_console import api_token

pytestmark = pytest.mark.e2e
PACKAGE = "leadflow_api_client"


@pytest.fixture(scope="module")
def stack() -> Iterator[DevServer]:
    server = start_dev()
    try:
        yield server
    finally:
        stop_dev(server)


def generate(url: str, folder: Path) -> Any:
    """The client generated from the served document, imported."""
    document = folder / "openapi.json"
    document.write_bytes(requests.get(f"{url}/api/v1/openapi.json", timeout=30).content)
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", str(document), "--meta", "none",
         "--output-path", str(folder / PACKAGE)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout  # nothing of the document was skipped
    sys.path.insert(0, str(folder))
    return importlib.import_module(PACKAGE)


def test_a_generated_client_calls_every_operation(stack: DevServer, tmp_path: Path):
    client_package = generate(stack.url, tmp_path)
    api = importlib.import_module(f"{PACKAGE}.api.default")
    models = importlib.import_module(f"{PACKAGE}.models")
    dev = StackClient(stack.url)
    client = client_package.AuthenticatedClient(base_url=stack.url, token=dev.token, raise_on_unexpected_status=True)
    email = unique_email("generated")
    found: dict[str, str] = {}

    def op(name: str) -> Any:
        return importlib.import_module(f"{api.__name__}.{name}")

    def lead() -> str:
        return found["lead_id"]

    def remember(response: Any) -> Any:
        found["lead_id"] = response.parsed.leads[0].lead_id
        return response

    def remember_import(response: Any) -> Any:
        found["import_id"] = response.parsed.import_id
        return response

    def uploaded_import() -> str:
        """An import of a file uploaded to its presigned URL (the upload itself is S3's, not the API's)."""
        opened = requests.post(f"{stack.url}/api/v1/imports", json={"upload": True, "file_name": "generated.csv"},
                               headers={"Authorization": f"Bearer {dev.token}"}, timeout=30).json()  # fmt: skip
        body = f"email,first_name\n{unique_email('uploaded')},Upo\n".encode()
        assert requests.put(opened["upload"]["url"], data=body, timeout=30).status_code == 200
        return str(opened["import_id"])

    calls: list[tuple[str, Callable[[Any], Any], Any]] = [
        ("create_lead_api_v1_leads_post",
         lambda m: m.sync_detailed(client=client, body=models.LeadWrite(email=email, first_name="Gen", country="DE")),
         models.LeadSummary),
        ("find_leads_api_v1_leads_get", lambda m: remember(m.sync_detailed(client=client, email=email)),
         models.LeadList),
        ("get_lead_api_v1_leads_lead_id_get", lambda m: m.sync_detailed(lead(), client=client), models.LeadDetail),
        ("update_lead_api_v1_leads_lead_id_patch",
         lambda m: m.sync_detailed(lead(), client=client, body=models.LeadPatch(title="CTO")), models.LeadSummary),
        ("add_tag_api_v1_leads_lead_id_tags_tag_post", lambda m: m.sync_detailed(lead(), "vip", client=client),
         models.LeadSummary),
        ("remove_tag_api_v1_leads_lead_id_tags_tag_delete", lambda m: m.sync_detailed(lead(), "vip", client=client),
         models.LeadSummary),
        ("get_score_api_v1_leads_lead_id_score_get", lambda m: m.sync_detailed(lead(), client=client),
         models.LeadScore),
        ("get_account_api_v1_accounts_domain_get", lambda m: m.sync_detailed("example.com", client=client),
         models.AccountView),
        ("list_segments_api_v1_segments_get", lambda m: m.sync_detailed(client=client), models.SegmentsView),
        ("get_segment_api_v1_segments_segment_id_get", lambda m: m.sync_detailed("all-subscribers", client=client),
         models.SegmentView),
        ("segment_members_api_v1_segments_segment_id_members_get",
         lambda m: m.sync_detailed("all-subscribers", client=client, limit=10), models.LeadList),
        ("export_leads_api_v1_leads_export_get", lambda m: m.sync_detailed(client=client, stage="lead"), str),
        ("list_sequences_api_v1_sequences_get", lambda m: m.sync_detailed(client=client), models.SequenceList),
        ("enroll_lead_api_v1_sequences_sequence_id_enrollments_post",
         lambda m: m.sync_detailed("push-discount", client=client, body=models.EnrollRequest(lead_id=lead())),
         models.EnrollmentView),
        ("lead_enrollments_api_v1_leads_lead_id_enrollments_get", lambda m: m.sync_detailed(lead(), client=client),
         models.EnrollmentList),
        ("start_broadcast_api_v1_sequences_sequence_id_broadcast_post",
         lambda m: m.sync_detailed("push-discount", client=client), models.BroadcastStarted),
        ("start_handoff_api_v1_leads_lead_id_handoff_post",
         lambda m: m.sync_detailed(lead(), client=client, body=models.HandoffRequest(reason="generated client")),
         models.HandoffView),
        ("list_handoffs_api_v1_leads_lead_id_handoffs_get", lambda m: m.sync_detailed(lead(), client=client),
         models.HandoffList),
        ("funnel_api_v1_reports_funnel_get", lambda m: m.sync_detailed(client=client), models.FunnelReport),
        ("forms_api_v1_reports_forms_get", lambda m: m.sync_detailed(client=client), models.FormsReport),
        ("reps_api_v1_reports_reps_get", lambda m: m.sync_detailed(client=client), models.RepsReport),
        ("handoffs_api_v1_reports_handoffs_get", lambda m: m.sync_detailed(client=client), models.HandoffsReport),
        ("sequence_api_v1_reports_sequences_sequence_id_get", lambda m: m.sync_detailed("welcome", client=client),
         models.SequenceReport),
        ("create_import_api_v1_imports_post",
         lambda m: remember_import(m.sync_detailed(client=client, body=models.ImportRequest(
             csv=f"email,first_name\n{unique_email('imported')},Imo\n", file_name="generated.csv"))),
         models.ImportView),
        ("get_import_api_v1_imports_import_id_get", lambda m: m.sync_detailed(found["import_id"], client=client),
         models.ImportView),
        ("start_import_api_v1_imports_import_id_start_post",
         lambda m: m.sync_detailed(uploaded_import(), client=client), models.ImportView),
        ("export_lead_api_v1_leads_lead_id_export_get", lambda m: m.sync_detailed(lead(), client=client),
         models.LeadExport),
        ("erase_lead_api_v1_leads_lead_id_delete", lambda m: m.sync_detailed(lead(), client=client),
         models.ErasureView),
    ]  # fmt: skip
    # THEN the generated client has exactly the operations called here
    generated = {m.name for m in pkgutil.iter_modules(api.__path__)}
    assert generated == {name for name, _, _ in calls}
    # AND each answers a success, parsed into its own model
    for name, call, model in calls:
        response = call(op(name))
        assert 200 <= response.status_code < 300, (name, response.status_code, response.content[:300])
        assert isinstance(response.parsed, model), (name, type(response.parsed))
    # AND the same client works for a person, on the /console server with their Cognito ID token
    people = client_package.AuthenticatedClient(base_url=f"{stack.url}/console", token=api_token(dev, "sales-viewer"))
    sequences = op("list_sequences_api_v1_sequences_get").sync_detailed(client=people)
    assert sequences.status_code == 200 and isinstance(sequences.parsed, models.SequenceList)
    refused = op("start_broadcast_api_v1_sequences_sequence_id_broadcast_post").sync_detailed("welcome", client=people)
    assert refused.status_code == 403 and isinstance(refused.parsed, models.ErrorBody)
