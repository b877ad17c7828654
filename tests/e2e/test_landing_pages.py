"""Hosted landing pages (GET /f/{form_id}, served by LandingFunction from the template) and the embed
snippet (one script tag that shows a form on another site, with its hidden fields)."""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, StackClient, unique_email
from tests.e2e.conftest import free_port, start_dev, stop_dev
from tests.e2e.test_browser import browser  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.e2e


def test_a_form_page_is_themed_accessible_and_carries_its_hidden_fields(dev: StackClient):
    page = dev.http.get(f"{dev.url}/f/demo-signup", params={"utm_source": "linkedin"}, timeout=30)
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    html = page.text
    # THEN the workspace theme styles it, every visible field has its label, required ones say so
    assert "background: #f6f7fb" in html and 'lang="en"' in html
    for field_id in re.findall(r'<(?:input|select|textarea) id="(f-[a-z_]+)"', html):
        assert f'for="{field_id}"' in html or f'id="{field_id}"' in html.split("<label", 1)[1], field_id
    assert 'required aria-required="true"' in html
    # AND it carries a nonce and a render time signed by leadflow
    signed = re.search(r'name="_lf_ts" value="(\d+)\.([\w-]+)"', html)
    assert signed and re.search(r'name="_lf_nonce" value="[0-9a-f]{32}"', html)
    # WHEN a person fills it in as served (taking longer than the form's min_fill_seconds)
    time.sleep(2.5)
    email = unique_email("hosted")
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    answer = dev.post_form(
        "demo-signup", {**fields, "email": email, "first_name": "Hana", "consent": "yes", "website": ""}
    )
    # THEN it is taken as a person's post: a lead
    assert answer.status_code == 303
    assert dev.lead_by_email(email) is not None


def test_a_missing_form_is_a_page_that_says_so(dev: StackClient):
    page = dev.http.get(f"{dev.url}/f/no-such-form", timeout=30)
    assert page.status_code == 404 and "No such form" in page.text and "no-such-form" in page.text


def test_the_embed_script_frames_the_hosted_page_for_the_forms_own_sites(dev: StackClient):
    script = dev.http.get(f"{dev.url}/f/demo-signup/embed.js", timeout=30)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert f'"{dev.url}/f/demo-signup"' in script.text and 'createElement("iframe")' in script.text
    embedded = dev.http.get(f"{dev.url}/f/demo-signup", params={"embed": "1", "utm_campaign": "spring"}, timeout=30)
    # THEN only the sites the form takes posts from may frame it, and the campaign is in the hidden field
    policy = embedded.headers["content-security-policy"]
    assert "frame-ancestors http://localhost:8000 https://*.example.com" in policy
    assert 'name="utm_campaign" value="spring"' in embedded.text


@pytest.fixture
def site_and_stack(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A customer's site (a static page on its own origin) and a stack whose demo form allows it."""
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    workspace = tmp_path / "workspace"
    shutil.copytree(ROOT / "workspace", workspace)
    form = workspace / "forms" / "demo-signup.yaml"
    form.write_text(form.read_text().replace("allowed_origins:\n", f"allowed_origins:\n  - {site}\n", 1))
    server = start_dev("--workspace", str(workspace))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text(
        "<!doctype html><html lang='en'><head><title>Customer site</title></head><body><h1>Our product</h1>"
        f'<script src="{server.url}/f/demo-signup/embed.js" async></script></body></html>'
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield site, server.url
    finally:
        httpd.shutdown()
        stop_dev(server)


def test_the_embed_snippet_shows_the_form_on_another_site_and_posts_it(site_and_stack, browser: Any):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    site, stack_url = site_and_stack
    email = unique_email("embedded")
    # WHEN a visitor opens the customer's page from a campaign link and fills in the embedded form
    browser.get(f"{site}/index.html?utm_source=partner&utm_campaign=autumn")
    frame = WebDriverWait(browser, 20).until(lambda b: b.find_element(By.TAG_NAME, "iframe"))
    browser.switch_to.frame(frame)
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "f-email"))
    browser.find_element(By.ID, "f-email").send_keys(email)
    browser.find_element(By.ID, "f-first_name").send_keys("Emma")
    time.sleep(2.5)  # a person takes longer than the form's min_fill_seconds (a faster post is a bot's)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 20).until(lambda b: "/forms/" not in b.current_url)
    # THEN the lead carries the host page's campaign and address
    lead = StackClient(stack_url).lead_by_email(email)
    assert lead is not None
    touch = lead["attribution"]["first_touch"]
    assert touch["utm_source"] == "partner" and touch["utm_campaign"] == "autumn"
    assert touch.get("page_url", "").startswith(site)
