"""`leadflow dev` end to end: start, serve the contract of /_dev/, capture leads, stop cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest
import requests

from tests.conftest import ROOT, unique_email
from tests.e2e.conftest import READY_WITHIN_SECONDS, free_port

pytestmark = pytest.mark.e2e


def test_ready_line_within_15_seconds(dev_server):
    assert dev_server.started_in < READY_WITHIN_SECONDS
    ready = [line for line in dev_server.output if line.startswith("leadflow dev ready: ")]
    assert ready == [f"leadflow dev ready: {dev_server.url}\n"]


def test_stack_route_follows_the_contract(dev):
    info = dev.info
    assert set(info) >= {"outputs", "aws_endpoint_url", "admin_token"}
    assert info["outputs"]["ApiUrl"] == dev.url
    assert {"LeadsTableName", "EventBusName", "IntakeQueueUrl", "IntakeDLQUrl"} <= set(info["outputs"])
    # the endpoint is a real AWS API: boto3 can look inside
    import boto3

    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=info["aws_endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    assert info["outputs"]["LeadsTableName"] in dynamodb.list_tables()["TableNames"]


def test_clock_tick_and_outbox_routes(dev):
    before = dev.http.post(dev.url + "/_dev/clock", json={"advance_seconds": 0}, timeout=10).json()["now"]
    after = dev.http.post(dev.url + "/_dev/clock", json={"advance_seconds": 3600}, timeout=10).json()["now"]
    from datetime import datetime

    assert (datetime.fromisoformat(after) - datetime.fromisoformat(before)).total_seconds() >= 3600
    assert dev.http.post(dev.url + "/_dev/clock", json={"advance_seconds": -5}, timeout=10).status_code == 400
    assert "now" in dev.tick()
    outbox = dev.http.get(dev.url + "/_dev/outbox", timeout=10)
    assert outbox.status_code == 200
    assert isinstance(outbox.json(), list)


def test_landing_page_post_lands_in_console_and_api(dev):
    # GIVEN the demo landing page, as served (a plain HTML form)
    page = dev.http.get(dev.url + "/?utm_source=newsletter", timeout=10).text
    action = re.search(r'<form id="lead-form" method="post" action="([^"]+)"', page).group(1)
    rendered = re.search(r'name="_lf_ts" value="(\d+\.[\w-]+)"', page).group(1)  # signed render time
    nonce = re.search(r'name="_lf_nonce" value="([0-9a-f]+)"', page).group(1)
    email = unique_email("landing")
    # WHEN it is posted as a browser would, from that page, after 5 seconds of typing (on the stack's clock)
    dev.http.post(dev.url + "/_dev/clock", json={"advance_seconds": 5}, timeout=10).raise_for_status()
    response = dev.post_form(
        action.split("/")[-1],
        {
            "email": email,
            "first_name": "Grace",
            "company": "Example Ltd",
            "consent": "yes",
            "_lf_ts": rendered,
            "_lf_nonce": nonce,
            "website": "",
            "utm_source": "",
            "page_url": "",
            "referrer": "",
        },
        headers={"Referer": dev.url + "/?utm_source=newsletter&utm_campaign=launch"},
    )
    # THEN thank-you; the lead is in the console and the API, attributed from the page's address
    assert response.status_code == 303
    assert dev.http.get(dev.url + response.headers["location"], timeout=10).status_code == 200
    lead = dev.lead_by_email(email)
    assert lead["attribution"]["first_touch"]["utm_source"] == "newsletter"
    assert lead["attribution"]["first_touch"]["utm_campaign"] == "launch"
    console = dev.http.get(dev.url + "/_dev/", timeout=10).text
    assert email in console
    assert "IntakeDLQ" in console
    detail = dev.http.get(f"{dev.url}/_dev/leads/{lead['lead_id']}", timeout=10).text
    assert "form_submitted" in detail and "2026-11-01" in detail


def test_the_dev_view_shows_faults_as_a_table_and_never_the_admin_token(dev):
    # GIVEN a fault on a call nothing in the suite makes
    fault = {"service": "sqs", "operation": "ListQueueTags", "error": "ServiceUnavailable", "count": 2, "status": 503}
    dev.http.post(f"{dev.url}/_dev/faults", json=fault, timeout=10).raise_for_status()
    try:
        page = dev.http.get(dev.url + "/_dev/", timeout=10).text
    finally:
        dev.http.delete(f"{dev.url}/_dev/faults", timeout=10).raise_for_status()
    # THEN it is a row of a table, not a Python list; and the page never shows the admin token
    row = re.search(r'<table id="faults">.*?<td>sqs</td><td>ListQueueTags</td><td>ServiceUnavailable</td><td>503</td>'
                    r"\s*<td>2</td><td>instead of the call</td>", page, flags=re.DOTALL)  # fmt: skip
    assert row is not None and "{'service'" not in page
    assert dev.token not in page


def test_console_escapes_what_visitors_typed(dev):
    email = unique_email("xss")
    dev.post_form(
        "demo-signup",
        {"email": email, "first_name": "<script>alert(1)</script>", "company": '"><img src=x onerror=alert(1)>'},
        as_json=True,
    )
    console = dev.http.get(dev.url + "/_dev/", timeout=10).text
    assert "<script>alert(1)</script>" not in console
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in console
    assert "<img src=x" not in console


def test_no_personal_data_in_logs(dev_server, dev):
    # GIVEN the server runs with function logs on (--verbose)
    email = unique_email("private")
    dev.post_form("demo-signup", {"email": email, "first_name": "Zebulon", "phone": "+44 20 7946 0999"}, as_json=True)
    dev.tick()
    logged = "".join(dev_server.output)
    # THEN the logs name the form and the status, never the person
    assert "form post answered" in logged
    assert email not in logged and "Zebulon" not in logged and "7946" not in logged


def test_ctrl_c_stops_cleanly():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "leadflow.dev.cli", "dev", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("leadflow dev ready:")
    # AND a first request (a form post, then the tick that sends its email) prints nothing either
    url = line.split("ready: ", 1)[1].strip()
    posted = requests.post(
        f"{url}/forms/demo-signup", json={"email": unique_email("quiet"), "consent": True}, timeout=30
    )
    assert posted.status_code == 200 and requests.post(f"{url}/_dev/tick", timeout=60).status_code == 200
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0
    # Without --verbose the start prints what matters only: no moto or Powertools warnings
    said = process.stderr.read().splitlines()
    assert said[0].startswith("  landing page http://127.0.0.1:") and "started in" in said[0]
    assert f"console {url}/console/" in said[0] and f"dev view {url}/_dev/" in said[0]
    assert said[1:] == ["leadflow dev: stopping"]


def test_verbose_shows_what_a_quiet_start_hides(dev_server):
    # The suite's server runs with --verbose: moto's notes on the resource types the stack provides
    # itself are shown there (a plain start hides them: test_ctrl_c_stops_cleanly)
    assert "but it's not supported by moto's CloudFormation implementation" in "".join(dev_server.output)


def test_workspace_and_port_options(tmp_path):
    # GIVEN a workspace of one's own with one form
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "contact.yaml").write_text(
        "id: contact\nname: Contact us\nthank_you_url: /thank-you\n"
        "fields:\n  - {name: email, type: email, required: true}\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "leadflow.dev.cli", "dev", "--port", str(port), "--workspace", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline() == f"leadflow dev ready: http://127.0.0.1:{port}\n"
        import requests

        ok = requests.post(f"http://127.0.0.1:{port}/forms/contact", json={"email": unique_email()}, timeout=10)
        missing = requests.post(
            f"http://127.0.0.1:{port}/forms/demo-signup", json={"email": unique_email()}, timeout=10
        )
        assert ok.status_code == 200
        assert missing.status_code == 404
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
