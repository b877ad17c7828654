"""One page view counts once (issue 13, defect 12): the snippet reports the time on a page as
``page_time`` when it is left, which only time-on-page rules read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadflow.config.workspace import Workspace
from leadflow.domain.scoring import Activity, Ledger
from leadflow.domain.scoring_compiled import compile_models
from leadflow.domain.tracking import parse_site_event
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
LF_JS = Path(__file__).resolve().parents[2] / "layers" / "leadflow" / "leadflow" / "transport" / "lf.js"


def visit(url: str, seconds: int) -> list[Activity]:
    """What the snippet sends for one visit of ``url``: the view, then the time when it is left."""
    events = [
        {"visitor_id": "v_12345678", "type": "page_view", "url": url},
        {"visitor_id": "v_12345678", "type": "page_time", "url": url, "seconds": seconds},
    ]
    return [
        Activity(f"act{i}", "lead1", parsed.activity_type, AT, parsed.attributes)
        for i, parsed in enumerate(parse_site_event(e) for e in events)
    ]


def points(url: str, seconds: int) -> dict[str, float]:
    models = compile_models(Workspace(WORKSPACE).scoring)
    ledger = Ledger()
    for activity in visit(url, seconds):
        for model in models.values():
            ledger.record(model, activity)
    by_rule: dict[str, float] = {}
    for entry in ledger.entries:
        if entry.model == "smb":
            by_rule[entry.rule_id] = by_rule.get(entry.rule_id, 0) + entry.points
    return by_rule


def test_one_visit_of_the_pricing_page_scores_once():
    # was 2 x 10: the view on load and the report on leave both matched the pricing rule
    assert points("https://www.example.com/pricing", 45) == {"page_viewed": 1, "pricing_page": 10}


def test_the_time_on_a_page_still_reaches_time_on_page_rules():
    assert points("https://www.example.com/customers/acme", 90) == {"page_viewed": 1, "read_case_study": 5}
    assert points("https://www.example.com/customers/acme", 20) == {"page_viewed": 1}


def test_the_snippet_reports_leaving_as_page_time_not_a_second_view():
    source = LF_JS.read_text(encoding="utf-8")
    assert source.count('type: "page_view"') == 1
    assert 'type: "page_time"' in source
