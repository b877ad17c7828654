"""The funnel report adds up whatever counter items it is given: each row, day and the totals equal a
plain sum of the items' fields (``counts_of`` reads an item's fields once for all three)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.domain.report_views import funnel_report
from leadflow.domain.reporting import HOUR_BUCKETS, REPORTED_STAGES

DAYS = ("2026-12-01", "2026-12-02", "2026-12-03")
FIELD_NAMES = (
    ["created", "reached_nowhere", "ttm_x", "tts_", "other", "PK", "SK"]
    + [f"reached_{stage}" for stage in REPORTED_STAGES]
    + [f"{prefix}_{i}" for prefix in ("ttm", "tts") for i in range(len(HOUR_BUCKETS) + 3)]
)

items_strategy = st.lists(
    st.tuples(
        st.sampled_from((*DAYS, "2026-11-30")),
        st.sampled_from(("google", "linkedin", "(none)")),
        st.dictionaries(st.sampled_from(FIELD_NAMES), st.integers(min_value=0, max_value=10**6), max_size=8),
    ),
    max_size=40,
)


def counted(name: str) -> bool:
    """Whether the report counts a field of this name: leads created, a stage reached, a bucket."""
    if name == "created" or (name.startswith("reached_") and name[8:] in REPORTED_STAGES):
        return True
    return name[:4] in ("ttm_", "tts_") and name[4:].isdigit() and int(name[4:]) <= len(HOUR_BUCKETS)


def naive(items: list[tuple[str, str, dict[str, Any]]]) -> Counter[str]:
    """What the report should show, summed field by field with no parsing shortcut."""
    total: Counter[str] = Counter()
    for _, _, fields in items:
        total.update({name: value for name, value in fields.items() if counted(name)})
    return total


def shown(row: dict[str, Any]) -> Counter[str]:
    found: Counter[str] = Counter({"created": row["created"]})
    found.update({f"reached_{stage}": n for stage, n in row["reached"].items()})
    return +found


@settings(max_examples=200, deadline=None)
@given(items_strategy)
def test_every_row_day_and_the_totals_are_the_sums_of_their_items(items):
    report = funnel_report(items, start=DAYS[0], end=DAYS[-1], by="source", view="events")
    assert shown(report["totals"]) == +Counter(
        {k: v for k, v in naive(items).items() if not k.startswith(("ttm_", "tts_"))}
    )
    assert report["totals"]["time_to_mql"]["count"] == sum(v for k, v in naive(items).items() if k.startswith("ttm_"))
    assert report["totals"]["time_to_sql"]["count"] == sum(v for k, v in naive(items).items() if k.startswith("tts_"))
    for row in report["rows"]:
        mine = [item for item in items if item[1] == row["key"]]
        assert shown(row) == +Counter({k: v for k, v in naive(mine).items() if not k.startswith(("ttm_", "tts_"))})
    for day in report["days"]:
        mine = [item for item in items if item[0] == day["day"]]
        assert shown(day) == +Counter({k: v for k, v in naive(mine).items() if not k.startswith(("ttm_", "tts_"))})
