"""The API explorer at /api/v1/docs (Swagger UI from the package, no CDN) and the styled 404 page."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from tests.conftest import ROOT, StackClient
from tests.e2e.test_browser import browser  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.e2e


def test_the_explorer_page_and_its_files_come_from_the_stack_itself(dev: StackClient):
    # WHEN the explorer is asked for, without credentials (it is public, like the document)
    page = dev.http.get(f"{dev.url}/api/v1/docs", timeout=30)
    # THEN an HTML page that loads only files of this origin, under a policy without inline scripts
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text), "nothing from another host"
    files = re.findall(r'(?:src|href)="(/api/v1/docs/[^"]+)"', page.text)
    assert len(files) == 4
    for path in files:
        answer = dev.http.get(f"{dev.url}{path}", timeout=30)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith(("text/javascript", "text/css")), path
        assert len(answer.content) > 100
    # AND anything else under it is a 404, never a file of the package
    for name in ("index.html", "swagger-editor-bundle.js", "swagger-ui.js.map"):
        assert dev.http.get(f"{dev.url}/api/v1/docs/{name}", timeout=30).status_code == 404, name
    # (a path that climbs out is another route: the admin API's, behind its authorizer)
    assert dev.http.get(f"{dev.url}/api/v1/docs/..%2F..%2Fapp.py", timeout=30).status_code == 401
    # AND /docs leads there
    moved = dev.http.get(f"{dev.url}/docs", allow_redirects=False, timeout=10)
    assert moved.status_code == 308 and moved.headers["location"] == "/api/v1/docs"


def test_the_explorer_lists_every_operation_in_chromium(dev: StackClient, browser: Any):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    operations = sum(
        len(ops) for ops in dev.http.get(f"{dev.url}/api/v1/openapi.json", timeout=30).json()["paths"].values()
    )
    browser.get(f"{dev.url}/api/v1/docs")
    WebDriverWait(browser, 30).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) >= operations)
    assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("leadflow admin API")
    assert browser.find_elements(By.CSS_SELECTOR, ".btn.authorize")  # the security schemes are offered
    if os.environ.get("LEADFLOW_SCREENSHOTS"):  # refreshes the README's picture
        browser.save_screenshot(str(ROOT / "docs" / "screenshots" / "api-explorer.png"))


def test_a_missing_page_is_a_page_for_people_and_json_for_programs(dev: StackClient):
    page = dev.http.get(f"{dev.url}/no/such/page", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Nothing here" in page.text and 'href="/api/v1/docs"' in page.text and "/no/such/page" in page.text
    program = dev.http.get(f"{dev.url}/no/such/page", headers={"Accept": "application/json"}, timeout=10)
    assert program.status_code == 404 and program.json() == {"message": "Not Found"}
    # AND an /api/ path a program asks for is JSON too; the page is the template's $default route's
    api = dev.http.get(f"{dev.url}/api/v2/leads", headers={"Accept": "application/json"}, timeout=10)
    assert api.status_code == 404 and api.json() == {"message": "Not Found"}
    assert 'href="/console/"' in page.text and 'href="/_dev/"' in page.text  # the local stack's pages too
