"""Segment membership changes (domain.segments): what to write when a lead changes (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow.config.workspace import Workspace
from leadflow.domain.segments import changes, definition_hash, lead_view, reads_activity, segments_of
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
SEGMENTS = Workspace(WORKSPACE).segments


def view(activities: list[dict[str, str]] | None = None, **profile: object) -> object:
    return lead_view({"lead_id": "L1", "stage": "lead", **profile}, activities or [], "smb")


def test_a_lead_joins_and_leaves_as_it_changes() -> None:
    member = view(cf_company_size="1000+", tags={"vip"})
    assert segments_of(SEGMENTS, member, NOW) == {"all-subscribers", "key-account-contacts"}  # type: ignore[arg-type]
    found = changes(SEGMENTS, member, NOW, {("SEG", "all-subscribers"), ("TAG", "old")})  # type: ignore[arg-type]
    assert (found.joined, found.left) == (("key-account-contacts",), ())
    assert (found.tags_added, found.tags_removed) == (("vip",), ("old",))
    customer = view(stage="customer")
    left = changes(SEGMENTS, customer, NOW, {("SEG", "all-subscribers"), ("SEG", "gone-from-yaml")})  # type: ignore[arg-type]
    assert left.left == ("all-subscribers", "gone-from-yaml") and not left.joined
    assert not changes(
        SEGMENTS, member, NOW, {("SEG", "all-subscribers"), ("SEG", "key-account-contacts"), ("TAG", "vip")}
    )  # type: ignore[arg-type]


def test_scores_grades_and_activity_windows_are_read() -> None:
    hot = view(scores={"smb": 75}, grade="B")
    assert "hot-smb" in segments_of(SEGMENTS, hot, NOW)  # type: ignore[arg-type]
    recent = [{"type": "page_viewed", "at": (NOW - timedelta(days=2)).isoformat(), "url": "https://x.example/pricing"}]
    old = [{"type": "page_viewed", "at": (NOW - timedelta(days=9)).isoformat(), "url": "https://x.example/pricing"}]
    assert "pricing-visitors" in segments_of(SEGMENTS, view(recent), NOW)  # type: ignore[arg-type]
    assert "pricing-visitors" not in segments_of(SEGMENTS, view(old), NOW)  # type: ignore[arg-type]
    assert reads_activity(SEGMENTS)


def test_a_changed_rule_has_another_hash() -> None:
    first, second = SEGMENTS.segments[0], SEGMENTS.segments[1]
    assert definition_hash(first) == definition_hash(first) != definition_hash(second)
