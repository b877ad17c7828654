"""The console's lists for people who manage many leads: every lead reachable through filters and
pages, each sequence with its figures, the reports a marketer shows (forms, reps, hand-offs) with
the API's numbers, and exports and erasures in the audit log (issue 18)."""

from __future__ import annotations

import html
import json
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ROOT, StackClient, unique_email
from tests.e2e.conftest import api_csv, run_leadflow
from tests.e2e.test_browser import browser_without_js  # noqa: F401 - the fixture is used by name
from tests.e2e.test_console import _sign_in_in, signed_in

pytestmark = pytest.mark.e2e

LEAD_LINK = re.compile(r'<a href="/console/leads/([0-9A-Za-z_-]+)">')


def admin_call(dev: StackClient, method: str, path: str, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {dev.token}"}
    return dev.http.request(method, f"{dev.url}/api/v1{path}", headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def tagged_leads(dev: StackClient, tag: str, count: int) -> set[str]:
    """``count`` new leads through the admin API, each with ``tag``: their ids."""

    def one(n: int) -> str:
        made = admin_call(dev, "POST", "/leads", json={"email": unique_email(f"paged{n}"), "first_name": f"P{n}"})
        assert made.status_code == 201, made.text
        lead_id = str(made.json()["lead_id"])
        assert admin_call(dev, "POST", f"/leads/{lead_id}/tags/{tag}").status_code == 200
        return lead_id

    with ThreadPoolExecutor(6) as pool:
        return set(pool.map(one, range(count)))


def test_every_lead_of_a_tag_is_reached_page_by_page_and_bad_filters_say_why(dev: StackClient):
    # GIVEN 53 leads with a tag of their own (more than one page of 50)
    tag = f"paged-{uuid.uuid4().hex[:8]}"
    made = tagged_leads(dev, tag, 53)
    viewer = signed_in(dev, "sales-viewer")
    # WHEN a person lists the tag
    first = viewer.get(f"{dev.url}/console/leads", params={"tag": tag}, timeout=60)
    assert first.status_code == 200 and f'value="{tag}"' in first.text
    page_one = set(LEAD_LINK.findall(first.text))
    following = re.search(r'<a class="button secondary" id="next" href="([^"]+)">', first.text)
    assert len(page_one) == 50 and following is not None and 'id="first"' not in first.text
    # THEN the next page holds the rest, and the two pages together are exactly the tag's leads
    second = viewer.get(f"{dev.url}{html.unescape(following.group(1))}", timeout=60)
    assert second.status_code == 200 and 'id="first"' in second.text and 'id="next"' not in second.text
    page_two = set(LEAD_LINK.findall(second.text))
    assert page_one | page_two == made and not page_one & page_two
    # AND a stage filter narrows the tag's leads (none of them is a customer)
    customers = viewer.get(f"{dev.url}/console/leads", params={"tag": tag, "stage": "customer"}, timeout=60)
    assert (
        customers.status_code == 200 and not LEAD_LINK.findall(customers.text) and "No lead matches." in customers.text
    )
    # AND an address typed whole finds its one lead
    email = admin_call(dev, "GET", f"/leads/{sorted(made)[0]}").json()["profile"]["email"]
    found = viewer.get(f"{dev.url}/console/leads", params={"email": email}, timeout=60)
    assert LEAD_LINK.findall(found.text) == [sorted(made)[0]]
    # AND a bad tag, an unknown segment and a forged cursor each get a page that says why
    bad = {"tag": "Not A Tag!"}, {"segment": "no-such-segment"}, {"cursor": "forged"}
    answers = [viewer.get(f"{dev.url}/console/leads", params=p, timeout=60).status_code for p in bad]
    assert answers == [400, 404, 400]


def test_the_sequences_page_shows_each_sequence_with_its_figures(dev: StackClient):
    # GIVEN a consented sign-up whose welcome email the tick sends
    dev.capture("demo-signup", {"email": unique_email("sequence-figures"), "country": "DE", "consent": True})
    dev.tick()
    viewer = signed_in(dev, "sales-viewer")
    page = viewer.get(f"{dev.url}/console/sequences", timeout=60)
    assert page.status_code == 200
    # THEN each sequence has a row, and welcome's figures are the sequence report's over the same days
    row = re.search(r'<tr data-sequence="welcome">(.*?)</tr>', page.text, flags=re.DOTALL)
    assert row is not None and all(f'data-sequence="{s}"' in page.text for s in ("welcome", "push-discount"))
    period = re.search(r"Figures from (\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d)", page.text)
    assert period is not None
    report = dev.api("/reports/sequences/welcome", **{"from": period.group(1), "to": period.group(2)}).json()
    cells = [re.sub(r"<[^>]+>", "", c).split("(")[0].strip() for c in re.findall(r"<td>(.*?)</td>", row.group(1), re.S)]
    counts = report["totals"]["counts"]
    assert cells[5:9] == [str(counts[k]) for k in ("enrolled", "sent", "unique_opens", "unique_clicks")]
    assert counts["sent"] >= 1


def test_the_reports_page_shows_forms_reps_and_handoffs_with_the_apis_numbers(dev: StackClient, tmp_path: Path):
    dev.capture("demo-signup", {"email": unique_email("forms-report"), "country": "DE", "consent": True})
    viewer = signed_in(dev, "sales-viewer")
    page = viewer.get(f"{dev.url}/console/reports", timeout=60)
    assert page.status_code == 200
    for title in ("Forms and pages", "Reps and partners", "Hand-offs"):
        assert f"<h2>{title}</h2>" in page.text
    start, end = re.search(r'name="from" value="([^"]+)".*?name="to" value="([^"]+)"', page.text, re.S).groups()  # type: ignore[union-attr]
    forms = dev.api("/reports/forms", **{"from": start, "to": end}).json()
    signup = next(f for f in forms["forms"] if f["form_id"] == "demo-signup")
    drawn = re.search(r'<rect [^>]*data-series="submissions" data-row="demo-signup" data-value="([0-9.]+)"', page.text)
    assert drawn is not None and float(drawn.group(1)) == signup["submissions"] >= 1
    # AND `leadflow report forms|reps|handoffs` writes the same as JSON and as one self-contained page
    for report in ("forms", "reps", "handoffs"):
        done = run_leadflow("report", report, "--dev", dev.url, "--from", start, "--to", end)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == dev.api(f"/reports/{report}", **{"from": start, "to": end}).json()
        as_csv = run_leadflow("report", report, "--dev", dev.url, "--from", start, "--to", end, "--csv")
        assert as_csv.returncode == 0, as_csv.stderr
        rows = api_csv(dev, f"/reports/{report}", **{"from": start, "to": end}).splitlines()
        assert as_csv.stdout.splitlines() == rows  # the same lines (their ends are the pipe's)
        assert len(rows) >= (1 if report == "handoffs" else 2)  # a header, and rows (no hand-off in this test)
        out = tmp_path / f"{report}.html"
        written = run_leadflow("report", report, "--dev", dev.url, "--from", start, "--to", end, "--html", str(out))
        assert written.returncode == 0, written.stderr
        assert "<table>" in out.read_text() and "<script" not in out.read_text()


def test_exports_and_erasures_are_in_the_audit_log_without_naming_the_person(dev: StackClient):
    # GIVEN a lead exported and then erased through the admin API
    email = unique_email("audited-gdpr")
    lead_id = dev.capture("demo-signup", {"email": email, "first_name": "Gia", "country": "DE", "consent": True})
    assert admin_call(dev, "GET", f"/leads/{lead_id}/export").status_code == 200
    assert admin_call(dev, "DELETE", f"/leads/{lead_id}").status_code == 200
    # WHEN the admin reads the audit log
    page = signed_in(dev, "admin").get(f"{dev.url}/console/audit", timeout=60)
    assert page.status_code == 200
    table = page.text[page.text.index('id="gdpr-audit"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr><td>(.*?)</tr>", table, flags=re.DOTALL)
    # THEN both are listed, newest first, each with who asked and how many records; never the person
    actions = [re.findall(r"<td>(.*?)</td>", "<td>" + row)[1] for row in rows]
    assert actions[:2] == ["erase", "export"]
    assert email not in page.text and lead_id not in page.text


def test_the_handoffs_page_lists_open_handoffs_and_each_owners_figures(dev: StackClient):
    # GIVEN a lead handed off to sales through the admin API
    lead_id = dev.capture("demo-signup", {"email": unique_email("open-handoff"), "country": "DE", "consent": True})
    made = admin_call(dev, "POST", f"/leads/{lead_id}/handoff", json={"reason": "asked for a quote"})
    assert made.status_code < 300, made.text
    handoff = dev.api(f"/leads/{lead_id}/handoffs").json()["handoffs"][0]
    # WHEN a sales viewer opens the hand-offs page
    page = signed_in(dev, "sales-viewer").get(f"{dev.url}/console/handoffs", timeout=60)
    assert page.status_code == 200 and 'href="/console/handoffs"' in page.text
    # THEN the open hand-off is listed with its lead, status and reason, and the owners' figures follow
    row = next(r for r in re.findall(r"<tr.*?</tr>", page.text, flags=re.DOTALL) if f"/console/leads/{lead_id}" in r)
    assert f"<td>{handoff['status']}</td>" in row and "asked for a quote" in row
    owner = (handoff.get("owner") or {}).get("name")
    assert owner is None or owner in row
    assert "<h2>Hand-offs</h2>" in page.text and 'data-chart="Hand-offs by owner"' in page.text


def test_the_forms_page_gives_each_forms_hosted_page_embed_snippet_and_figures(dev: StackClient):
    dev.capture("demo-signup", {"email": unique_email("forms-page"), "country": "DE", "consent": True})
    page = signed_in(dev, "sales-viewer").get(f"{dev.url}/console/forms", timeout=60)
    assert page.status_code == 200 and 'href="/console/forms"' in page.text
    card = page.text[page.text.index('id="form-demo-signup"') :]
    card = card[: card.index("</table>")]
    # THEN the hosted page and the snippet point at this stack, and both answer what they promise
    assert f'<a href="{dev.url}/f/demo-signup">' in card
    snippet = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", card, re.S).group(1))  # type: ignore[union-attr]
    assert snippet == f'<script src="{dev.url}/f/demo-signup/embed.js" async></script>'
    assert requests.get(f"{dev.url}/f/demo-signup", timeout=30).status_code == 200
    script = requests.get(f"{dev.url}/f/demo-signup/embed.js", timeout=30)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    # AND its figures are the forms report's
    start, end = re.search(r"Figures from (\S+) to (\S+)\.", page.text).groups()  # type: ignore[union-attr]
    signup = next(
        f
        for f in dev.api("/reports/forms", **{"from": start, "to": end}).json()["forms"]
        if f["form_id"] == "demo-signup"
    )
    cells = re.findall(r"<td>(.*?)</td>", card)
    assert cells[:4] == [str(signup[k]) for k in ("views", "submissions", "spam", "new_leads")]


@pytest.mark.browser
def test_the_new_pages_show_their_figures_in_chromium_with_javascript_off(dev: StackClient, browser_without_js: Any):  # noqa: F811
    from selenium.webdriver.common.by import By

    lead_id = dev.capture("demo-signup", {"email": unique_email("chromium-pages"), "country": "DE", "consent": True})
    dev.tick()
    assert admin_call(dev, "POST", f"/leads/{lead_id}/handoff", json={"reason": "wants a demo"}).status_code < 300
    _sign_in_in(browser_without_js, dev, "marketer")
    shots = os.environ.get("LEADFLOW_SCREENSHOTS")
    seen = {}
    for name, element in (
        ("leads", "filters"),
        ("sequences", "sequences"),
        ("handoffs", "waiting"),
        ("forms", "form-demo-signup"),
    ):
        browser_without_js.get(f"{dev.url}/console/{name}")
        seen[name] = browser_without_js.find_element(By.ID, element).text
        if shots:
            browser_without_js.save_screenshot(str(ROOT / "docs" / "screenshots" / f"console-{name}.png"))
    assert "Segment" in seen["leads"] and "Tag" in seen["leads"]
    assert "Welcome series for new sign-ups" in seen["sequences"]
    assert "wants a demo" in seen["handoffs"] and lead_id not in seen["handoffs"]
    assert "/f/demo-signup/embed.js" in seen["forms"] and "Submissions" in seen["forms"]
