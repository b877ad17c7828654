"""Large imports on the local stack (issue 16): a file uploaded through the presigned URL and read
by the import state machine (a Distributed Map over the chunk manifest), counts, rejected rows,
a chunk retried without double counting, a failed import resumed."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from typing import Any

import pytest
import requests

from tests.conftest import FIXTURES, StackClient

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("caught_up")]  # imports leave many events
IMPORTS = FIXTURES / "imports"


def admin(client: StackClient, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return client.http.request(
        method, f"{client.url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {client.token}"}, timeout=60
    )


def upload(client: StackClient, data: bytes, **fields: Any) -> dict[str, Any]:
    """Open an upload, PUT the file, start the import; its view as started."""
    opened = admin(client, "POST", "/imports", {"upload": True, **fields})
    assert opened.status_code == 201, opened.text
    view = opened.json()
    assert view["status"] == "awaiting_upload" and view["upload"]["method"] == "PUT"
    put = requests.put(view["upload"]["url"], data=data, timeout=60)
    assert put.status_code == 200, put.text
    started = admin(client, "POST", f"/imports/{view['import_id']}/start")
    assert started.status_code == 202, started.text
    return dict(started.json())


def wait_done(client: StackClient, import_id: str, seconds: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        view = admin(client, "GET", f"/imports/{import_id}").json()
        if view["status"] in {"done", "failed"} or time.monotonic() > deadline:
            return dict(view)
        time.sleep(0.2)


def big_csv(rows: int, domain: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Email", "First Name", "Company", "Notes"])
    for i in range(rows):
        writer.writerow([f"p{i}@{domain}", f"P{i}", "Acme", "line one\nline two" if i % 97 == 0 else ""])
    writer.writerow(["not-an-address", "Bad", "", ""])
    out.write("short@" + domain + "\r\n")  # fewer cells than the header
    writer.writerow([f"extra@{domain}", "X", "Y", "Z", "one too many"])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def test_a_large_csv_runs_through_the_state_machine_in_chunks(local_stack: Any, client: StackClient) -> None:
    # GIVEN a CSV of 253 rows (three chunks of 100): quoted newlines, a BOM, CRLF, three bad rows
    data = big_csv(250, "engine-import.example")
    # WHEN it is uploaded and started
    started = upload(client, data, file_name="big.csv", tags=["engine"])
    assert started["status"] == "running"
    began = time.monotonic()
    view = wait_done(client, started["import_id"])
    print(f"import of 253 rows: {time.monotonic() - began:.1f} s")
    # THEN every row was read once, the good ones created, the bad ones rejected with their row numbers
    assert view["status"] == "done", view
    assert view["rows_total"] == 253 and view["read"] == 253 and view["progress"] == 1.0
    assert view["created"] == 250 and view["rejected"] == 3, view
    assert [r["row"] for r in view["rejected_rows"]] == [252, 253, 254]
    # AND the rejected rows download as a CSV to fix and import again
    rejected = requests.get(view["rejected_csv"], timeout=30)
    assert rejected.status_code == 200
    rows = list(csv.DictReader(io.StringIO(rejected.content.decode("utf-8"))))
    assert [(r["leadflow_row"], r["Email"]) for r in rows] == [
        ("252", "not-an-address"),
        ("253", "short@engine-import.example"),
        ("254", "extra@engine-import.example"),
    ]
    # AND the leads are there, merged by the rules of capture, tagged
    lead = client.lead_by_email("p97@engine-import.example")
    assert lead is not None and lead["profile"]["company"] == "Acme" and "engine" in lead["tags"]
    assert lead["custom"]["notes"] == "line one\nline two"
    # AND starting it again changes nothing (it is done)
    again = admin(client, "POST", f"/imports/{view['import_id']}/start")
    assert again.status_code == 202 and again.json()["created"] == 250


def test_a_pinpoint_export_gzip_runs_through_the_same_engine(local_stack: Any, client: StackClient) -> None:
    # GIVEN Amazon Pinpoint's endpoint export (JSON lines, gzip): two EMAIL endpoints, one SMS,
    # one OptOut ALL, one line that is not JSON
    data = (IMPORTS / "pinpoint_endpoints.json.gz").read_bytes()
    text = gzip.decompress(data).decode().replace("pinpoint-import.example", "pinpoint-engine.example")
    # WHEN it is uploaded as it is exported (gzip) and started
    started = upload(client, gzip.compress(text.encode()), file_name="endpoints.json.gz")
    view = wait_done(client, started["import_id"])
    # THEN it is read as Pinpoint's: EMAIL endpoints imported, the SMS one skipped, the opt-out suppressed
    assert view["status"] == "done" and view["format"] == "pinpoint", view
    assert (view["created"], view["skipped"], view["suppressed"], view["rejected"]) == (2, 1, 1, 1), view
    pia = client.lead_by_email("pia@pinpoint-engine.example")
    assert pia is not None and pia["custom"]["interests"] == "Science;Music"
    out = client.lead_by_email("out@pinpoint-engine.example")
    assert out is not None and out["consent"]["marketing_email"]["granted"] is False


def test_bad_uploads_are_clear_4xx(client: StackClient) -> None:
    # An import started before its upload: 409; without an email column: 400; unknown: 404
    opened = admin(client, "POST", "/imports", {"upload": True, "file_name": "none.csv"}).json()
    assert admin(client, "POST", f"/imports/{opened['import_id']}/start").status_code == 409
    assert requests.put(opened["upload"]["url"], data=b"name,company\nAda,Acme\n", timeout=30).status_code == 200
    refused = admin(client, "POST", f"/imports/{opened['import_id']}/start")
    assert refused.status_code == 400 and "email" in refused.json()["message"]
    assert admin(client, "POST", "/imports/no-such-import/start").status_code == 404
    # Neither a body nor an upload, or both: 400
    assert admin(client, "POST", "/imports", {"file_name": "x.csv"}).status_code == 400
    assert admin(client, "POST", "/imports", {"upload": True, "csv": "email\na@b.example\n"}).status_code == 400
    # An inline import has no file to start
    inline = admin(client, "POST", "/imports", {"csv": "email\ninline@engine-4xx.example\n"}).json()
    assert admin(client, "POST", f"/imports/{inline['import_id']}/start").status_code == 409


def manifest_items(local_stack: Any, job: dict[str, Any]) -> list[dict[str, str]]:
    body = local_stack.client("s3").get_object(Bucket=job["bucket"], Key=job["manifest"])["Body"].read()
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_a_retried_chunk_counts_once_and_an_interrupted_import_resumes(local_stack: Any, client: StackClient) -> None:
    from leadflow.dev.faults import Fault

    # GIVEN an uploaded file of 250 rows (three chunks), planned, not started
    opened = admin(client, "POST", "/imports", {"upload": True, "file_name": "resume.csv"}).json()
    import_id = opened["import_id"]
    data = big_csv(250, "resume-import.example")
    assert requests.put(opened["upload"]["url"], data=data, timeout=30).status_code == 200
    job = local_stack.runner.invoke("ImportFunction", {"action": "plan", "import_id": import_id})
    first, *_ = manifest_items(local_stack, job)
    # WHEN the first chunk's worker fails after a row's write landed (its answer lost), and is retried
    # (every transaction fails while it runs, not just the next one: the stack's pollers may take one first)
    local_stack.faults.add(Fault("dynamodb", "TransactWriteItems", "ValidationException", count=-1, after=True))
    try:
        with pytest.raises(Exception, match="ValidationException"):
            local_stack.runner.invoke("ImportFunction", {"action": "chunk", "job": job, "chunk": first})
    finally:
        local_stack.faults.clear()
    done = local_stack.runner.invoke("ImportFunction", {"action": "chunk", "job": job, "chunk": first})
    # THEN the retry counts the chunk, once; a third try (a duplicate delivery) counts nothing
    assert done["counted"] is True
    again = local_stack.runner.invoke("ImportFunction", {"action": "chunk", "job": job, "chunk": first})
    assert again["counted"] is False
    view = admin(client, "GET", f"/imports/{import_id}").json()
    assert (view["read"], view["created"] + view["updated"]) == (100, 100), view
    # WHEN the run is interrupted there (its failure step marks it failed) and started again
    local_stack.runner.invoke("ImportFunction", {"action": "fail", "import_id": import_id, "error": {"Error": "X"}})
    assert admin(client, "GET", f"/imports/{import_id}").json()["status"] == "failed"
    assert admin(client, "POST", f"/imports/{import_id}/start").status_code == 202
    view = wait_done(client, import_id)
    # THEN it resumes: every row read once, none written twice
    assert view["status"] == "done" and view["read"] == 253 and view["rejected"] == 3, view
    assert view["created"] + view["updated"] == 250, view
    lead = client.lead_by_email("p1@resume-import.example")
    assert lead is not None
    activities = client.api(f"/leads/{lead['lead_id']}").json()["activities"]
    assert [a["type"] for a in activities].count("lead_imported") == 1


def test_the_import_samples_run_through_their_handlers(local_stack: Any, client: StackClient) -> None:
    from tests.conftest import EVENTS, load_json

    # GIVEN the upload sample through the admin API, and the HubSpot export PUT to its URL
    opened = local_stack.runner.invoke("LeadApiFunction", load_json(EVENTS / "lead_api_upload_import.json"))
    assert opened["statusCode"] == 201, opened
    upload_url = json.loads(opened["body"])["upload"]["url"]
    # (its addresses moved to a domain of the same length: the chunk sample's byte ranges still hold)
    data = (IMPORTS / "hubspot_contacts.csv").read_bytes().replace(b"@hub-import.", b"@hub-sample.")
    assert requests.put(upload_url, data=data, timeout=30).status_code == 200
    # WHEN the import function's samples run as the state machine would run them
    job = local_stack.runner.invoke("ImportFunction", load_json(EVENTS / "imports_plan.json"))
    chunk = load_json(EVENTS / "imports_chunk.json")
    # THEN the plan answers the job the chunk sample carries (but for this stack's bucket name)
    assert {**chunk["job"], "bucket": job["bucket"]} == job
    chunk["job"]["bucket"] = job["bucket"]
    assert local_stack.runner.invoke("ImportFunction", chunk)["counted"] is True
    assert local_stack.runner.invoke("ImportFunction", load_json(EVENTS / "imports_finish.json"))["status"] == "done"
    view = admin(client, "GET", "/imports/hubspot-contacts-sample-01").json()
    assert (view["status"], view["format"], view["rejected"]) == ("done", "hubspot", 2), view
    assert view["read"] == view["rows_total"] == int(chunk["chunk"]["rows"])
    # AND the start sample answers the import as it stands (done: nothing run again)
    started = local_stack.runner.invoke("LeadApiFunction", load_json(EVENTS / "lead_api_start_import.json"))
    assert started["statusCode"] == 202 and json.loads(started["body"])["status"] == "done"


def test_an_export_with_a_header_and_no_rows_is_done_at_once(client: StackClient) -> None:
    started = upload(client, b"\xef\xbb\xbfEmail,First Name\r\n", file_name="empty.csv")
    view = wait_done(client, started["import_id"])
    assert (view["status"], view["rows_total"], view["read"], view["progress"]) == ("done", 0, 0, 1.0), view
    assert view["rejected_csv"] is None
