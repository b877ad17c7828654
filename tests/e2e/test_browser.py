"""The demo landing page and a real Mautic form, submitted by headless Chromium.

Chromium and ChromeDriver come from Debian's packages (``.ci/run`` installs them).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import external, unique_email

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _browser(javascript: bool) -> object:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("Chromium and ChromeDriver must be installed in CI (apt-get install chromium chromium-driver)")
        pytest.skip("Chromium / ChromeDriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1600",
    ):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture
def browser() -> Iterator[object]:
    driver = _browser(javascript=True)
    yield driver
    driver.quit()  # type: ignore[attr-defined]


@pytest.fixture
def browser_without_js() -> Iterator[object]:
    driver = _browser(javascript=False)
    yield driver
    driver.quit()  # type: ignore[attr-defined]


def _fill_demo_form(driver, email: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "first_name").send_keys("Marie")
    driver.find_element(By.NAME, "last_name").send_keys("Curie")
    driver.find_element(By.NAME, "company").send_keys("Radium Labs")
    Select(driver.find_element(By.NAME, "company_size")).select_by_visible_text("51-200")
    driver.find_element(By.ID, "f-consent").click()
    time.sleep(2.2)  # a person takes longer than the form's minimum fill time
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def _wait_for(driver, url_part: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15).until(lambda d: url_part in d.current_url)


def test_demo_form_with_javascript_fills_attribution_from_the_query(dev, browser):
    # GIVEN a visitor arriving from a rep's share link in a newsletter
    email = unique_email("chromium")
    browser.get(f"{dev.url}/?utm_source=newsletter&utm_medium=email&utm_campaign=spring&ref=ana-k")
    # WHEN they fill in the form and send it
    _fill_demo_form(browser, email)
    _wait_for(browser, "/thank-you")
    # THEN they see the thank-you page and the lead carries attribution, share code and consent
    assert "Thank you" in browser.page_source
    lead = dev.lead_by_email(email)
    touch = lead["attribution"]["first_touch"]
    assert (touch["utm_source"], touch["utm_medium"], touch["utm_campaign"]) == ("newsletter", "email", "spring")
    assert touch["page_url"].startswith(dev.url + "/?utm_source=newsletter")
    assert lead["attribution"]["referred_by"] == {"code": "ana-k", "name": "Ana Kowalski", "kind": "rep"}
    assert lead["custom"]["company_size"] == "51-200"
    assert lead["consent"]["marketing_email"]["granted"] is True


def test_demo_form_works_with_javascript_off(dev, browser_without_js):
    # GIVEN JavaScript is off: the hidden attribution fields stay empty
    email = unique_email("nojs")
    browser_without_js.get(f"{dev.url}/?utm_source=print&utm_campaign=flyer")
    _fill_demo_form(browser_without_js, email)
    _wait_for(browser_without_js, "/thank-you")
    # THEN the post still lands, attributed from the page the browser names as Referer
    lead = dev.lead_by_email(email)
    assert lead is not None
    assert lead["profile"]["company"] == "Radium Labs"
    assert lead["attribution"]["first_touch"]["utm_source"] == "print"
    assert lead["attribution"]["first_touch"]["utm_campaign"] == "flyer"


def test_real_mautic_form_posts_to_leadflow_unchanged(dev, browser, tmp_path):
    # GIVEN the real Mautic-generated form, only its action pointed at leadflow
    html = external("forms/mautic_generated_form_with_utm_hidden_fields.html").read_text(encoding="utf-8")
    html = html.replace("https://e.resortrelease.com/form/submit?formId=12", f"{dev.url}/forms/mautic-resort-enquiry")
    page = tmp_path / "mautic.html"
    page.write_text(html, encoding="utf-8")
    from selenium.webdriver.common.by import By

    email = unique_email("mautic-browser")
    browser.get(page.as_uri())
    # WHEN a visitor fills it (Mautic posts multipart/form-data with bracketed names)
    browser.find_element(By.NAME, "mauticform[full_name]").send_keys("Jean Valjean")
    browser.find_element(By.NAME, "mauticform[email_address]").send_keys(email)
    browser.find_element(By.NAME, "mauticform[phonenumber]").send_keys("+33 1 23 45 67 89")
    browser.find_element(By.NAME, "mauticform[resortname]").send_keys("Hotel Montreuil")
    browser.find_element(By.NAME, "mauticform[comments]").send_keys("Two rooms, please.")
    browser.execute_script("document.getElementsByName('mauticform[utm_source]')[0].value = 'bing';")
    browser.find_element(By.NAME, "mauticform[submit]").click()
    _wait_for(browser, "example.com/thanks")
    # THEN the lead is in leadflow, mapped through the form's aliases
    lead = dev.lead_by_email(email)
    assert lead["profile"]["company"] == "Hotel Montreuil"
    assert lead["custom"]["full_name"] == "Jean Valjean"
    assert lead["custom"]["lead_source"] == "RESORT RELEASE"
    assert lead["attribution"]["first_touch"]["utm_source"] == "bing"


def test_a_tracked_click_in_a_dev_console_email_raises_the_score_and_moves_the_stage(dev, browser):
    from selenium.webdriver.common.by import By

    # GIVEN a lead who fits well, a few points short of MQL
    lead_id = dev.capture(
        "demo-signup",
        {"email": unique_email("clicker"), "title": "VP Sales", "company_size": "201-1000", "country": "US"},
    )
    dev.tick()
    before = dev.api(f"/leads/{lead_id}/score").json()
    # WHEN, in the dev console, they click the tracked pricing link of test emails, as a recipient would
    for _ in range(6):
        browser.get(f"{dev.url}/_dev/leads/{lead_id}")
        browser.find_element(By.ID, "tracked-pricing").click()
        _wait_for(browser, "utm_content=pricing")
    dev.tick()
    # THEN the score rose and the lead became an MQL, which the console shows
    after = dev.api(f"/leads/{lead_id}/score").json()
    assert after["models"]["smb"]["score"] > before["models"]["smb"]["score"]
    assert before["stage"] == "lead" and after["stage"] == "mql"
    browser.get(f"{dev.url}/_dev/leads/{lead_id}")
    assert browser.find_element(By.ID, "stage").text == "mql"
