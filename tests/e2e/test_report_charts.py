"""The report charts in headless Chromium: on ``/_dev/reports`` and in ``leadflow report ... --html``.

The charts must be there, not blank (bars with a width), and show the numbers the API answers.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StackClient, unique_email
from tests.e2e.conftest import api_csv, run_leadflow
from tests.e2e.test_browser import browser  # noqa: F401 - the fixture is used by name

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def bars(driver: Any, chart: str) -> list[dict[str, Any]]:
    """Every bar of a chart: its row, series, value and drawn width (as Chromium laid it out)."""
    from selenium.webdriver.common.by import By

    svg = driver.find_element(By.CSS_SELECTOR, f'svg[data-chart="{chart}"]')
    return [
        {
            "row": rect.get_attribute("data-row"),
            "series": rect.get_attribute("data-series"),
            "value": float(rect.get_attribute("data-value")),
            "width": rect.size["width"],
        }
        for rect in svg.find_elements(By.CSS_SELECTOR, "rect[data-value]")
    ]


def check_funnel(driver: Any, funnel: dict[str, Any]) -> None:
    drawn = {b["row"]: b for b in bars(driver, "Funnel")}
    totals = funnel["totals"]
    assert drawn["created"]["value"] == totals["created"] > 0
    for stage in ("lead", "mql", "sql", "opportunity", "customer"):
        assert drawn[stage]["value"] == totals["reached"][stage]
    assert all(b["width"] > 0 for b in drawn.values() if b["value"] > 0), drawn  # not blank
    by_source = {(b["row"], b["series"]): b["value"] for b in bars(driver, f"Conversion by {funnel['by']}")}
    for row in funnel["rows"][:12]:
        assert by_source[(row["key"], "leads created")] == row["created"]
        assert by_source[(row["key"], "MQL")] == row["reached"]["mql"]


def test_the_reports_page_draws_the_apis_numbers(dev: StackClient, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    # GIVEN sign-ups from two sources; one of them opens its welcome email
    source = f"rpt-{uuid.uuid4().hex[:6]}"
    addresses = [unique_email("charts") for _ in range(3)]
    for n, address in enumerate(addresses):
        body = {"email": address, "utm_source": source if n else "newsletter", "consent": True}
        assert dev.post_form("demo-signup", body, as_json=True).status_code == 200
    dev.tick()
    welcome = next(m for m in dev.http.get(f"{dev.url}/_dev/outbox", timeout=30).json() if m["to"] == [addresses[0]])
    from tests.e2e.test_push_campaign import pixel_url

    assert dev.http.get(pixel_url(welcome), timeout=10).status_code == 200
    day = dev.tick()["now"][:10]
    period = {"from": day, "to": day}
    funnel = dev.api("/reports/funnel", by="source", **period).json()
    sequence = dev.api("/reports/sequences/welcome", **period).json()
    # WHEN the reports page is opened in Chromium
    browser.get(f"{dev.url}/_dev/reports?from={day}&to={day}&by=source&sequence=welcome")
    # THEN the funnel and conversion charts show the API's figures, drawn
    check_funnel(browser, funnel)
    # AND the sequence's step flow shows its sent, opens and clicks per step
    flow = {(b["row"], b["series"]): b for b in bars(browser, "Sequence welcome: step by step")}
    for step in sequence["flow"]:
        if step["counts"]["sent"]:
            assert flow[(step["step"], "sent")]["value"] == step["counts"]["sent"]
            assert flow[(step["step"], "sent")]["width"] > 0
            assert flow[(step["step"], "unique opens")]["value"] == step["counts"]["unique_opens"]
            assert flow[(step["step"], "unique clicks")]["value"] == step["counts"]["unique_clicks"]
    assert flow[("welcome", "unique opens")]["value"] >= 1
    flow_values = {key: bar["value"] for key, bar in flow.items()}

    # AND `leadflow report sequence welcome` answers as the API does: JSON, CSV, and one HTML page
    # that Chromium draws with the same step-by-step figures
    cli = ("report", "sequence", "welcome", "--dev", dev.url, "--from", day, "--to", day)
    done = run_leadflow(*cli)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == sequence
    as_csv = run_leadflow(*cli, "--csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines() == api_csv(dev, "/reports/sequences/welcome", **period).splitlines()
    sequence_page = tmp_path / "welcome.html"
    assert run_leadflow(*cli, "--html", str(sequence_page)).returncode == 0
    browser.get(sequence_page.as_uri())
    drawn = {(b["row"], b["series"]): b["value"] for b in bars(browser, "Sequence welcome: step by step")}
    assert drawn == flow_values

    # WHEN the same funnel is written by the command line as one HTML file
    out = tmp_path / "funnel.html"
    done = run_leadflow("report", "funnel", "--dev", dev.url, "--from", day, "--to", day, "--html", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    # THEN it is self-contained (no script, nothing fetched) and Chromium draws the same numbers
    assert "<script" not in html and "src=" not in html and "<link" not in html
    browser.get(out.as_uri())
    check_funnel(browser, funnel)


def test_a_bad_reports_query_is_400(dev: StackClient) -> None:
    assert dev.http.get(f"{dev.url}/_dev/reports?by=country", timeout=10).status_code == 400
    assert dev.http.get(f"{dev.url}/_dev/reports?from=2026-12-02&to=2026-12-01", timeout=10).status_code == 400
