"""The A/B comparison chart of a sequence report: each variant's rate as drawn, with its interval at
the test's confidence and the verdict, from the report's own figures."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from leadflow.domain.sequence_reports import sequence_key, sequence_report
from leadflow.transport.report_charts import ab_chart, sequence_section

SVG = "{http://www.w3.org/2000/svg}"


def report(clicks: dict[str, tuple[int, int]], confidence: float = 0.95) -> dict[str, Any]:
    """A sequence report of one day whose ``nudge`` step was sent to two variants."""
    items = [
        {"PK": pk, "SK": sk, "sent": sent, "unique_opens": sent // 2, "unique_clicks": clicked}
        for variant, (clicked, sent) in clicks.items()
        for pk, sk in [sequence_key("welcome", "2026-12-01", 1, "nudge", variant)]
    ]
    return sequence_report(
        items,
        sequence_id="welcome",
        start="2026-12-01",
        end="2026-12-01",
        step_order=["nudge"],
        confidence=confidence,
        metric="click",
    )


def drawn(svg: str) -> dict[str, tuple[float, float, str]]:
    """Each variant's bar: its value, its drawn width and the text written beside it (the element
    after the bar)."""
    elements = list(ET.fromstring(svg))
    return {
        str(rect.get("data-row")): (float(rect.get("data-value", 0)), float(rect.get("width", 0)), after.text or "")
        for rect, after in itertools.pairwise(elements)
        if rect.tag == f"{SVG}rect" and rect.get("data-value") is not None
    }


@pytest.mark.parametrize("confidence, z", [(0.95, 1.959964), (0.99, 2.575829)])
def test_each_variant_is_drawn_at_its_rate_with_its_interval_and_the_verdict(confidence, z):
    # GIVEN variant a clicked by 120 of 1,000 and b by 60 of 1,000
    answer = report({"a": (120, 1000), "b": (60, 1000)}, confidence)
    (test,) = answer["ab_tests"]
    # WHEN its chart is drawn
    svg = ab_chart(test)
    bars = drawn(svg)
    # THEN each bar is the variant's rate, b's half as long as a's, with its interval at the confidence
    assert set(bars) == {"variant a", "variant b"}
    for variant, (clicked, sent) in {"a": (120, 1000), "b": (60, 1000)}.items():
        value, _width, text = bars[f"variant {variant}"]
        rate = clicked / sent
        assert value == pytest.approx(rate)
        half = z * math.sqrt(rate * (1 - rate) / sent) * 100
        assert f"± {half:.1f} pts of {sent} sent" in text
    assert bars["variant b"][1] == pytest.approx(bars["variant a"][1] / 2, rel=0.01)
    # AND the title and the caption give the verdict the report reached (a wins: p far below 5%)
    assert test["verdict"] == "a wins"
    assert ET.fromstring(svg).findtext(f"{SVG}title") == "A/B nudge (v1): a wins"
    section = sequence_section(answer)
    caption = re.search(r'<figcaption class="verdict" data-verdict="([^"]+)">([^<]+)<', section)
    assert caption is not None and caption.group(1) == "a wins"
    assert f"at {confidence * 100:g}% confidence (click rate)" in caption.group(2)


def test_a_test_too_small_to_tell_is_drawn_as_not_yet():
    answer = report({"a": (3, 20), "b": (2, 20)})
    (test,) = answer["ab_tests"]
    assert test["verdict"] == "not yet"
    assert ET.fromstring(ab_chart(test)).findtext(f"{SVG}title") == "A/B nudge (v1): not yet"
    assert {row: bar[0] for row, bar in drawn(ab_chart(test)).items()} == {"variant a": 0.15, "variant b": 0.1}
