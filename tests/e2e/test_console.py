"""The console for people at /console/: Cognito sign-in (moto's, real RS256 tokens checked against its
JWKS), roles from groups, changes behind a confirmation and in the audit log, the admin API with a
person's ID token, pages that show everything with JavaScript off."""

from __future__ import annotations

import html
import os
import re
from typing import Any

import pytest
import requests

from tests.conftest import ROOT, StackClient, unique_email
from tests.e2e.test_browser import browser, browser_without_js  # noqa: F401 - fixtures used by name

pytestmark = pytest.mark.e2e


def people(dev: StackClient) -> dict[str, dict[str, str]]:
    return {user["group"]: user for user in dev.info["console_users"]}


def hosted_sign_in(session: requests.Session, dev: StackClient, email: str, password: str) -> requests.Response:
    """Press *Sign in* and fill the hosted sign-in page (the local stack's stand-in): its answer."""
    start = session.get(f"{dev.url}/console/sign-in", allow_redirects=False, timeout=30)
    assert start.status_code == 302 and "/_dev/cognito/oauth2/authorize?" in start.headers["location"]
    assert "HttpOnly" in start.headers["set-cookie"] and "SameSite=Lax" in start.headers["set-cookie"]
    form = session.get(start.headers["location"], timeout=30)
    asked = {
        k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.text)
    }
    assert asked["code_challenge_method"] == "S256" and asked["response_type"] == "code"
    return session.post(
        f"{dev.url}/_dev/cognito/oauth2/authorize",
        data={**asked, "email": email, "password": password},
        headers={"Origin": dev.url},
        allow_redirects=False,
        timeout=30,
    )


def signed_in(dev: StackClient, group: str) -> requests.Session:
    """A browser-like session signed in as the stack's person of ``group``, the way a browser goes:
    the console sends it to the hosted sign-in (the local stack's stand-in), which sends it back
    with a code, which the console exchanges for the person's tokens."""
    person = people(dev)[group]
    session = requests.Session()
    back = hosted_sign_in(session, dev, person["email"], person["password"])
    assert back.status_code == 302 and "/console/oauth2/callback?code=" in back.headers["location"], back.text[:300]
    done = session.get(back.headers["location"], allow_redirects=False, timeout=30)
    assert done.status_code == 200 and 'url=/console/leads"' in done.text, done.text[:300]
    cookie = next(c for c in done.headers["set-cookie"].split(", lf_") if c.startswith("lf_console="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return session


def id_token(session: requests.Session) -> str:
    return str(session.cookies.get("lf_console", path="/console"))


def api_token(dev: StackClient, group: str) -> str:
    """A person's ID token for ``/console/api/v1``, as a script gets one: ``InitiateAuth``
    (``USER_PASSWORD_AUTH``) on the scripts' app client (the ``ConsoleUserPoolClientId`` output)."""
    import boto3

    person = people(dev)[group]
    cognito = boto3.client("cognito-idp", endpoint_url=dev.info["aws_endpoint_url"], region_name="us-east-1")
    answer = cognito.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        ClientId=dev.info["outputs"]["ConsoleUserPoolClientId"],
        AuthParameters={"USERNAME": person["email"], "PASSWORD": person["password"]},
    )
    return str(answer["AuthenticationResult"]["IdToken"])


def test_the_console_asks_who_you_are_first(dev: StackClient):
    # WHEN nobody is signed in THEN every page is the sign-in form (401), never data
    for path in ("/console/", "/console/leads", "/console/audit"):
        page = dev.http.get(f"{dev.url}{path}", timeout=30)
        assert page.status_code == 401 and 'action="/console/sign-in"' in page.text, path
    # WHEN a wrong password is given on the sign-in page THEN the form again, saying so (the same
    # for an unknown address), and no code goes back to the console
    for email in ("admin@example.com", "nobody@example.com"):
        wrong = hosted_sign_in(requests.Session(), dev, email, "nope-Nope-123")
        assert wrong.status_code == 401 and "Incorrect username or password." in wrong.text
    # WHEN the cookie holds a token whose signature is not the pool's THEN sign in again
    session = signed_in(dev, "admin")
    header, claims, signature = id_token(session).split(".")
    forged = f"{header}.{claims}.{signature[:-6]}AAAAAA"
    page = requests.get(f"{dev.url}/console/leads", cookies={"lf_console": forged}, timeout=30)
    assert page.status_code == 401 and "sign in again" in page.text


def test_the_code_from_the_hosted_sign_in_counts_once_for_the_sign_in_that_asked(dev: StackClient):
    person = people(dev)["marketer"]
    session = requests.Session()
    back = hosted_sign_in(session, dev, person["email"], person["password"])
    callback = back.headers["location"]
    # WHEN another browser (without this sign-in's state cookie) brings the code THEN refused
    stranger = requests.get(callback, allow_redirects=False, timeout=30)
    assert stranger.status_code == 400 and "lf_console=" not in stranger.headers.get("set-cookie", "").replace(
        "lf_console_signin", ""
    )
    # WHEN this browser brings it THEN signed in; WHEN the same code comes again THEN refused (once only)
    assert session.get(callback, allow_redirects=False, timeout=30).status_code == 200
    assert session.get(f"{dev.url}/console/leads", timeout=30).status_code == 200
    assert requests.get(f"{dev.url}/_dev/cognito/oauth2/token", timeout=30).status_code == 405
    replay = requests.post(
        f"{dev.url}/_dev/cognito/oauth2/token",
        data={"grant_type": "authorization_code", "code": callback.split("code=")[1].split("&")[0]},
        timeout=30,
    )
    assert replay.status_code == 400 and replay.json() == {"error": "invalid_grant"}
    # WHEN a sign-in comes back with a state this browser did not start THEN refused
    other = requests.Session()
    other.get(f"{dev.url}/console/sign-in", allow_redirects=False, timeout=30)
    tampered = other.get(callback.replace("state=", "state=x"), allow_redirects=False, timeout=30)
    assert tampered.status_code == 400 and "expired or was started elsewhere" in tampered.text
    fresh = signed_in(dev, "marketer")
    # WHEN they sign out THEN the cookie goes, the hosted UI's session ends, and they land signed out
    out = fresh.post(f"{dev.url}/console/sign-out", headers={"Origin": dev.url}, allow_redirects=False, timeout=30)
    assert out.status_code == 303 and "/_dev/cognito/logout?" in out.headers["location"]
    landed = fresh.get(out.headers["location"], timeout=30)
    assert landed.url.endswith("/console/signed-out") and 'id="signed-out"' in landed.text
    assert fresh.get(f"{dev.url}/console/leads", timeout=30).status_code == 401


def test_a_sales_viewer_reads_and_changes_nothing(dev: StackClient):
    email = unique_email("viewer-sees")
    lead_id = dev.capture("demo-signup", {"email": email, "first_name": "Vera", "country": "DE", "consent": True})
    session = signed_in(dev, "sales-viewer")
    # THEN the lead is in the list (search by email), readable: a table, not JSON
    listing = session.get(f"{dev.url}/console/leads", params={"email": email}, timeout=30)
    assert listing.status_code == 200 and email in listing.text and f"/console/leads/{lead_id}" in listing.text
    page = session.get(f"{dev.url}/console/leads/{lead_id}", timeout=30).text
    assert 'id="timeline"' in page and "form submitted" in page and "{&#34;" not in page and '{"' not in page
    assert 'id="handoff-button"' not in page
    # AND every change is refused, as is the audit log
    assert session.get(f"{dev.url}/console/leads/{lead_id}/handoff", timeout=30).status_code == 403
    posted = session.post(f"{dev.url}/console/leads/{lead_id}/handoff", headers={"Origin": dev.url}, timeout=30)
    assert posted.status_code == 403 and "may not" in posted.text
    assert session.get(f"{dev.url}/console/audit", timeout=30).status_code == 403
    assert session.get(f"{dev.url}/console/leads/{lead_id}", timeout=30).text.count("<b>assigned</b>") == 0


def test_a_marketer_hands_off_after_a_confirmation_and_the_admin_sees_it_in_the_audit_log(dev: StackClient):
    email = unique_email("handed")
    lead_id = dev.capture("demo-signup", {"email": email, "first_name": "Hal", "country": "DE", "consent": True})
    marketer = signed_in(dev, "marketer")
    page = marketer.get(f"{dev.url}/console/leads/{lead_id}", timeout=30).text
    assert 'id="handoff-button"' in page and 'id="confirm"' not in page
    # WHEN they press the button THEN a confirmation first, and nothing happened yet
    confirm = marketer.get(f"{dev.url}/console/leads/{lead_id}/handoff", timeout=30).text
    assert 'id="confirm-handoff"' in confirm
    assert dev.api(f"/leads/{lead_id}/handoffs").json()["handoffs"] == []
    # WHEN a page of another site posts it THEN refused
    other = marketer.post(
        f"{dev.url}/console/leads/{lead_id}/handoff", headers={"Origin": "https://evil.example"}, timeout=30
    )
    assert other.status_code == 403
    # WHEN they confirm THEN handed off, said on the page
    done = marketer.post(
        f"{dev.url}/console/leads/{lead_id}/handoff",
        data={"reason": "asked for pricing"},
        headers={"Origin": dev.url},
        allow_redirects=False,
        timeout=30,
    )
    assert done.status_code == 303
    after = marketer.get(f"{dev.url}{done.headers['location']}", timeout=30).text
    assert "Handed off to sales." in after and "asked for pricing" in after
    # AND the admin's audit log names who, what and when
    audit = signed_in(dev, "admin").get(f"{dev.url}/console/audit", timeout=30).text
    row = next(r for r in re.findall(r"<tr>.*?</tr>", audit, flags=re.DOTALL) if lead_id in r)
    assert "marketer@example.com" in row and "hand off to sales" in row and "console" in row


def test_the_admin_api_takes_a_persons_id_token_within_their_role(dev: StackClient):
    lead_id = dev.capture("demo-signup", {"email": unique_email("api-person"), "country": "DE", "consent": True})
    viewer, marketer = api_token(dev, "sales-viewer"), api_token(dev, "marketer")
    url = f"{dev.url}/console/api/v1/leads/{lead_id}"

    def call(method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(method, f"{url}{path}", headers=headers, timeout=30, **kwargs)

    # THEN a person reads with their token; without one, or with the machines' token, 401
    assert call("GET", "", viewer).status_code == 200
    # AND the token of a person signed in to the console (the hosted sign-in's app client) counts too
    signed_in_token = id_token(signed_in(dev, "marketer"))
    assert call("GET", "", signed_in_token).status_code == 200
    assert call("GET", "", signed_in_token[:-6] + "AAAAAA").status_code == 401
    assert requests.get(url, timeout=30).status_code == 401
    assert call("GET", "", dev.token).status_code == 401
    # AND a sales viewer may not hand off; a marketer may, and it is audited as theirs
    assert call("POST", "/handoff", viewer, json={"reason": "viewer"}).status_code == 403
    assert call("POST", "/handoff", marketer, json={"reason": "from a script"}).status_code == 201
    audit = signed_in(dev, "admin").get(f"{dev.url}/console/audit", timeout=30).text
    row = next(r for r in re.findall(r"<tr>.*?</tr>", audit, flags=re.DOTALL) if f"{lead_id}/handoff" in r)
    assert "marketer@example.com" in row and "console-api" in row and "201" in row
    # AND a machine's change (the IAM route) is audited too
    dev.http.post(
        f"{dev.url}/api/v1/leads/{lead_id}/handoff",
        json={"reason": "machine"},
        headers={"Authorization": f"Bearer {dev.token}"},
        timeout=30,
    )
    audit = signed_in(dev, "admin").get(f"{dev.url}/console/audit", timeout=30).text
    assert any("machine" in r and lead_id in r for r in re.findall(r"<tr>.*?</tr>", audit, flags=re.DOTALL))


def _sign_in_in(driver: Any, dev: StackClient, group: str) -> None:
    """Sign in as a person does: the console's button, the hosted sign-in page, back to the leads."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    person = people(dev)[group]
    driver.get(f"{dev.url}/console/")
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 15).until(lambda b: "/_dev/cognito/oauth2/authorize" in b.current_url)
    driver.find_element(By.ID, "email").send_keys(person["email"])
    driver.find_element(By.ID, "password").send_keys(person["password"])
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 15).until(lambda b: b.current_url.endswith("/console/leads"))


def test_the_console_shows_everything_with_javascript_off(dev: StackClient, browser_without_js: Any):  # noqa: F811
    from selenium.webdriver.common.by import By

    email = unique_email("no-js")
    lead_id = dev.capture("demo-signup", {"email": email, "first_name": "Nora", "country": "DE", "consent": True})
    _sign_in_in(browser_without_js, dev, "sales-viewer")
    browser_without_js.get(f"{dev.url}/console/leads?email={email}")
    assert email in browser_without_js.find_element(By.ID, "leads").text
    browser_without_js.get(f"{dev.url}/console/leads/{lead_id}")
    assert "form submitted" in browser_without_js.find_element(By.ID, "timeline").text


def test_a_hand_off_in_chromium_with_its_confirmation(dev: StackClient, browser: Any):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    email = unique_email("chromium-console")
    lead_id = dev.capture(
        "demo-signup",
        {"email": email, "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines",
         "title": "VP Marketing", "company_size": "201-1000", "country": "DE", "consent": True,
         "utm_source": "linkedin", "utm_campaign": "spring"},
    )  # fmt: skip
    dev.tick()
    _sign_in_in(browser, dev, "marketer")
    shots = os.environ.get("LEADFLOW_SCREENSHOTS")
    if shots:
        browser.save_screenshot(str(ROOT / "docs" / "screenshots" / "console-leads.png"))
    browser.get(f"{dev.url}/console/leads/{lead_id}")
    browser.find_element(By.ID, "handoff-button").click()
    browser.find_element(By.ID, "reason").send_keys("wants a demo")
    if shots:
        browser.save_screenshot(str(ROOT / "docs" / "screenshots" / "console-confirm.png"))
    browser.find_element(By.ID, "confirm-handoff").click()
    WebDriverWait(browser, 15).until(lambda b: "done=handoff" in b.current_url)
    assert "Handed off to sales." in browser.find_element(By.ID, "done").text
    if shots:
        browser.save_screenshot(str(ROOT / "docs" / "screenshots" / "console-lead.png"))


def test_the_reports_page_shows_the_funnel_and_each_sequence(dev: StackClient):
    dev.capture("demo-signup", {"email": unique_email("reported"), "country": "DE", "consent": True})
    dev.tick()
    viewer = signed_in(dev, "sales-viewer")
    page = viewer.get(f"{dev.url}/console/reports", params={"by": "campaign"}, timeout=60)
    assert page.status_code == 200 and 'id="reports"' in page.text and "<svg" in page.text
    assert "Sequence welcome" in page.text and "<option selected>campaign</option>" in page.text
    # AND either view of the funnel draws the API's figures for it
    for view in ("events", "cohort"):
        page = viewer.get(f"{dev.url}/console/reports", params={"by": "campaign", "view": view}, timeout=60)
        assert page.status_code == 200 and f"<option selected>{view}</option>" in page.text
        start, end = re.search(r'name="from" value="([^"]+)".*?name="to" value="([^"]+)"', page.text, re.S).groups()  # type: ignore[union-attr]
        funnel = dev.api("/reports/funnel", by="campaign", view=view, **{"from": start, "to": end}).json()
        chart = page.text[page.text.index('data-chart="Funnel"') :]
        chart = chart[: chart.index("</svg>")]
        drawn = dict(re.findall(r'<rect [^>]*data-row="([^"]+)" data-value="([0-9.]+)"', chart))
        assert float(drawn["created"]) == funnel["totals"]["created"] >= 1
        for stage in ("lead", "mql", "sql"):
            assert float(drawn[stage]) == funnel["totals"]["reached"][stage]
    bad = viewer.get(f"{dev.url}/console/reports", params={"from": "2026-13-40"}, timeout=60)
    assert bad.status_code == 400


def _ask_then_do(session: requests.Session, dev: StackClient, path: str, **params: str) -> requests.Response:
    """A change as a person makes it: the question first (a GET, nothing changes), then the form it shows."""
    question = session.get(f"{dev.url}{path}", params=params, timeout=30)
    assert question.status_code == 200 and 'id="confirm"' in question.text, question.text[:500]
    asked = question.text[question.text.index('id="confirm"') :]
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', asked, flags=re.DOTALL)
    assert form is not None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(2)))
    fields = {k: v.replace("&#34;", '"').replace("&amp;", "&") for k, v in fields.items()}
    return session.post(
        f"{dev.url}{form.group(1)}", data=fields, headers={"Origin": dev.url}, allow_redirects=False, timeout=60
    )


def test_a_marketers_changes_to_a_lead_each_after_a_question_and_audited(dev: StackClient):
    email = unique_email("changed")
    lead_id = dev.capture("demo-signup", {"email": email, "first_name": "Cleo", "country": "DE", "consent": True})
    marketer = signed_in(dev, "marketer")
    lead_page = f"/console/leads/{lead_id}"
    # WHEN they ask to add a tag THEN the question, and nothing changed yet
    assert "vip" not in dev.api(f"/leads/{lead_id}").json().get("tags", [])
    done = _ask_then_do(marketer, dev, f"{lead_page}/tag", tag="vip")
    assert done.status_code == 303 and done.headers["location"] == f"{lead_page}?done=tag"
    assert (
        "vip"
        in dev.http.get(
            f"{dev.url}/api/v1/leads/{lead_id}", headers={"Authorization": f"Bearer {dev.token}"}, timeout=30
        ).json()["tags"]
    )
    # AND a field edited, the tag removed
    assert (
        _ask_then_do(marketer, dev, f"{lead_page}/edit", field="company", value="Analytical Engines").status_code == 303
    )
    assert _ask_then_do(marketer, dev, f"{lead_page}/untag", tag="vip").status_code == 303
    lead = dev.http.get(
        f"{dev.url}/api/v1/leads/{lead_id}", headers={"Authorization": f"Bearer {dev.token}"}, timeout=30
    ).json()
    assert lead["profile"]["company"] == "Analytical Engines" and "vip" not in lead["tags"]
    # AND enrolled in a sequence open to enrollment, then taken out
    page = marketer.get(f"{dev.url}{lead_page}", timeout=30).text
    sequence = re.search(r'<select id="enroll-sequence" name="sequence"><option>([^<]+)</option>', page)
    assert sequence is not None
    assert _ask_then_do(marketer, dev, f"{lead_page}/enroll", sequence=sequence.group(1)).status_code == 303
    statuses = {e["sequence_id"]: e["status"] for e in dev.api(f"/leads/{lead_id}/enrollments").json()["enrollments"]}
    assert statuses[sequence.group(1)] == "active"
    assert _ask_then_do(marketer, dev, f"{lead_page}/unenroll", sequence=sequence.group(1)).status_code == 303
    statuses = {e["sequence_id"]: e["status"] for e in dev.api(f"/leads/{lead_id}/enrollments").json()["enrollments"]}
    assert statuses[sequence.group(1)] == "exited"
    # AND suppressed; lifting it is the admin's
    assert _ask_then_do(marketer, dev, f"{lead_page}/suppress").status_code == 303
    page = marketer.get(f"{dev.url}{lead_page}", timeout=30).text
    assert "Suppressed" in page and 'id="unsuppress-button"' not in page
    assert marketer.get(f"{dev.url}{lead_page}/unsuppress", timeout=30).status_code == 403
    assert marketer.get(f"{dev.url}{lead_page}/export", timeout=30).status_code == 403
    assert marketer.get(f"{dev.url}{lead_page}/erase", timeout=30).status_code == 403
    # THEN every change is in the audit log, as the marketer's
    audit = signed_in(dev, "admin").get(f"{dev.url}/console/audit", timeout=30).text
    rows = [r for r in re.findall(r"<tr>.*?</tr>", audit, flags=re.DOTALL) if lead_id in r]
    said = " ".join(rows)
    for what in ("add tag vip", "edit company", "remove tag vip", "enroll in", "remove from", "suppress address"):
        assert what in said, what
    assert all("marketer@example.com" in r for r in rows)


def test_the_admin_exports_lifts_and_erases(dev: StackClient):
    email = unique_email("erased-in-console")
    lead_id = dev.capture("demo-signup", {"email": email, "first_name": "Eve", "country": "DE", "consent": True})
    admin = signed_in(dev, "admin")
    lead_page = f"/console/leads/{lead_id}"
    export = _ask_then_do(admin, dev, f"{lead_page}/export")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    document = export.json()
    assert document["type"] == "leadflow.personal_data_export" and document["lead_id"] == lead_id
    assert document["profile"]["email"] == email
    assert _ask_then_do(admin, dev, f"{lead_page}/suppress").status_code == 303
    assert _ask_then_do(admin, dev, f"{lead_page}/unsuppress").status_code == 303
    assert "Not on the suppression list." in admin.get(f"{dev.url}{lead_page}", timeout=30).text
    erased = _ask_then_do(admin, dev, f"{lead_page}/erase")
    assert erased.status_code == 303 and erased.headers["location"] == "/console/leads?done=erased"
    assert admin.get(f"{dev.url}{lead_page}", timeout=30).status_code == 404
    # AND the erased address is on the list, found by typing it, never shown
    listing = admin.get(f"{dev.url}/console/suppression", params={"address": email}, timeout=30).text
    assert 'is <b class="bad">suppressed</b>: erased' in listing
    assert email not in admin.get(f"{dev.url}/console/suppression", timeout=30).text


def test_the_suppression_page_adds_after_a_question_and_only_an_admin_lifts(dev: StackClient):
    email = unique_email("listed-by-hand")
    marketer, viewer = signed_in(dev, "marketer"), signed_in(dev, "sales-viewer")
    found = viewer.get(f"{dev.url}/console/suppression", params={"address": email}, timeout=30).text
    assert "is not on the suppression list" in found and 'id="add-button"' not in found
    assert (
        viewer.get(f"{dev.url}/console/suppression", params={"address": "not an address"}, timeout=30).status_code
        == 200
    )
    added = _ask_then_do(marketer, dev, "/console/suppression/add", address=email)
    assert added.status_code == 303 and added.headers["location"] == "/console/suppression?done=added"
    page = marketer.get(f"{dev.url}/console/suppression", params={"address": email}, timeout=30).text
    assert "manual" in page and 'id="lift-button"' not in page
    assert marketer.get(f"{dev.url}/console/suppression/lift", params={"address": email}, timeout=30).status_code == 403
    lifted = _ask_then_do(signed_in(dev, "admin"), dev, "/console/suppression/lift", address=email)
    assert lifted.status_code == 303
    assert (
        "is not on the suppression list"
        in viewer.get(f"{dev.url}/console/suppression", params={"address": email}, timeout=30).text
    )


def test_an_upload_is_checked_then_imported_and_listed_with_its_rejected_rows(dev: StackClient):
    marker = unique_email("imp").split("@")[0]
    text = (
        f"Email,First Name,Company\n{marker}-a@example.com,Ada,Engines\nnot-an-address,Bob,Nowhere\n"
        f"{marker}-c@example.com,Cy,\n"
    )
    marketer = signed_in(dev, "marketer")
    check = marketer.post(
        f"{dev.url}/console/imports",
        files={"file": ("people.csv", text.encode(), "text/csv")},
        data={"mapping": "auto", "consent_basis": "", "tags": "imported-here"},
        headers={"Origin": dev.url},
        timeout=60,
    )
    assert check.status_code == 200 and 'id="confirm-import"' in check.text and "Import people.csv?" in check.text
    assert dev.lead_by_email(f"{marker}-a@example.com") is None  # a check writes nothing
    csv_field = re.search(r"<textarea name=\"csv\" hidden>(.*?)</textarea>", check.text, flags=re.DOTALL)
    assert csv_field is not None
    import html

    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', check.text))
    fields["csv"] = html.unescape(csv_field.group(1))
    done = marketer.post(
        f"{dev.url}/console/imports", data=fields, headers={"Origin": dev.url}, allow_redirects=False, timeout=60
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/console/imports/")
    page = marketer.get(f"{dev.url}{done.headers['location']}", timeout=30).text
    assert "people.csv" in page and ">done<" in page and 'id="rejected-download"' in page
    rejected = marketer.get(f"{dev.url}{done.headers['location']}/rejected.csv", timeout=30)
    assert rejected.status_code == 200 and rejected.text.splitlines()[0].startswith("row,reason")
    assert "not-an-address" in rejected.text
    assert dev.lead_by_email(f"{marker}-a@example.com") is not None
    listing = signed_in(dev, "sales-viewer").get(f"{dev.url}/console/imports", timeout=30).text
    assert done.headers["location"] in listing and 'id="upload"' not in listing


def test_suppression_imports_and_a_leads_changes_show_with_javascript_off(dev: StackClient, browser_without_js: Any):  # noqa: F811
    from selenium.webdriver.common.by import By

    # GIVEN an import with a rejected row, a suppressed address, and a lead with a tag
    marker = unique_email("shots").split("@")[0]
    csv_text = f"Email,First Name,Company\n{marker}-grace@example.com,Grace,Hopper Labs\nnot-an-address,Bob,Nowhere\n"
    imported = dev.http.post(
        f"{dev.url}/api/v1/imports",
        json={"csv": csv_text, "file_name": "hubspot-contacts.csv", "tags": ["webinar"]},
        headers={"Authorization": f"Bearer {dev.token}"},
        timeout=60,
    )
    assert imported.status_code == 201, imported.text
    email = unique_email("ada-shots")
    lead_id = dev.capture(
        "demo-signup",
        {"email": email, "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines",
         "title": "VP Marketing", "country": "DE", "consent": True, "utm_source": "linkedin"},
    )  # fmt: skip
    admin = signed_in(dev, "admin")
    assert _ask_then_do(admin, dev, f"/console/leads/{lead_id}/tag", tag="vip").status_code == 303
    assert _ask_then_do(admin, dev, "/console/suppression/add", address=unique_email("bounced")).status_code == 303
    # WHEN an admin reads the pages in a browser with JavaScript off THEN the data is there
    _sign_in_in(browser_without_js, dev, "admin")
    shots = os.environ.get("LEADFLOW_SCREENSHOTS")
    browser_without_js.get(f"{dev.url}/console/imports")
    assert "hubspot-contacts.csv" in browser_without_js.find_element(By.ID, "imports").text
    if shots:
        browser_without_js.save_screenshot(str(ROOT / "docs" / "screenshots" / "console-imports.png"))
    browser_without_js.find_element(By.LINK_TEXT, "hubspot-contacts.csv").click()
    assert (
        "Invalid" in browser_without_js.find_element(By.ID, "rejected").text
        or "row" in browser_without_js.find_element(By.ID, "rejected").text.lower()
    )
    browser_without_js.get(f"{dev.url}/console/suppression")
    assert "manual" in browser_without_js.find_element(By.ID, "entries").text
    if shots:
        browser_without_js.save_screenshot(str(ROOT / "docs" / "screenshots" / "console-suppression.png"))
    browser_without_js.get(f"{dev.url}/console/leads/{lead_id}/erase")
    assert "cannot be undone" in browser_without_js.find_element(By.ID, "confirm").text
    assert "vip" in browser_without_js.find_element(By.ID, "actions").text
    if shots:
        browser_without_js.save_screenshot(str(ROOT / "docs" / "screenshots" / "console-lead-actions.png"))


def test_viewing_and_every_question_change_nothing_and_the_simulate_buttons_are_explicit(dev: StackClient):
    # GIVEN a lead, and what is recorded about it
    lead_id = dev.capture("demo-signup", {"email": unique_email("looked-at"), "first_name": "Lou", "country": "DE"})
    dev.tick()

    def recorded() -> tuple[list[str], list[str], int]:
        lead = dev.api(f"/leads/{lead_id}").json()
        audit = signed_in(dev, "admin").get(f"{dev.url}/console/audit", timeout=30).text
        return [a["type"] for a in lead["activities"]], lead["tags"], audit.count(lead_id)

    before = recorded()
    admin = signed_in(dev, "admin")
    page = f"{dev.url}/console/leads/{lead_id}"
    # WHEN an admin views the lead, and asks every question (each a GET), twice
    for _ in range(2):
        shown = admin.get(page, timeout=30).text
        assert "/t/o/" not in shown  # no open pixel on the page
        for change, params in (
            ("tag", {"tag": "vip"}), ("untag", {"tag": "vip"}), ("edit", {"field": "company", "value": "X"}),
            ("enroll", {"sequence": "push-discount"}), ("unenroll", {"sequence": "push-discount"}),
            ("suppress", {}), ("unsuppress", {}), ("export", {}), ("erase", {}), ("handoff", {}),
        ):  # fmt: skip
            assert admin.get(f"{page}/{change}", params=params, timeout=30).status_code in (200, 400), change
    dev.tick()
    # THEN nothing was recorded, changed or audited
    assert recorded() == before
    assert dev.api(f"/leads/{lead_id}/handoffs").json()["handoffs"] == []
    # WHEN they press "Simulate an open" (local stack only) THEN one open, and back to the console's page
    assert 'id="simulate-open"' in shown
    opened = admin.post(
        f"{dev.url}/_dev/leads/{lead_id}/simulate",
        data={"kind": "open", "return_to": f"/console/leads/{lead_id}"},
        headers={"Origin": dev.url},
        allow_redirects=False,
        timeout=30,
    )
    assert opened.status_code == 303 and opened.headers["location"] == f"/console/leads/{lead_id}?simulated=open"
    assert recorded()[0] == ["email_opened", *before[0]]
