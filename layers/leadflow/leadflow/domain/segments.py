"""Segment membership kept as leads change: which segments and tags a lead is in now, and what
changed since it was last looked at. Pure: the caller gives the lead, its recent activities and
``now``.

Membership is re-evaluated event by event (``services.segments``): every change of a lead
(captured, scored, stage, tags, an activity) re-evaluates the segments of segments.yaml on it,
and the differences become membership items and counter moves. A segment whose rule reads a
time window (``activity: {within_days: N}``) is exact as of the lead's last event; a lead
that does nothing stays listed until its next event or the next ``leadflow segment refresh``
(which also back-fills a new or changed segment).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from leadflow.domain.definitions.conditions import Segment, SegmentList
from leadflow.domain.nurture.conditions import in_segment
from leadflow.domain.nurture.state import ActivityView, LeadView

SEGMENT: Final = "SEG"
TAG: Final = "TAG"


@dataclass(frozen=True)
class MembershipChanges:
    """What to write for one lead: segments joined and left (each moves its counter), tags whose
    index items are missing or stale."""

    joined: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    tags_added: tuple[str, ...] = ()
    tags_removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.joined or self.left or self.tags_added or self.tags_removed)


def lead_view(
    profile: Mapping[str, Any], activities: Iterable[Mapping[str, Any]], default_model: str | None
) -> LeadView:
    """A stored profile (and its recent activities) as segment rules read it."""
    scores = profile.get("scores") or {}
    return LeadView(
        str(profile["lead_id"]),
        profile,
        {k: float(v) for k, v in scores.items()},
        tuple(
            ActivityView(str(a.get("type")), datetime.fromisoformat(str(a["at"])), a) for a in activities if a.get("at")
        ),
        default_model=default_model,
    )


def reads_activity(segments: SegmentList) -> bool:
    """Whether any segment's rule reads the lead's activities (only then are they read)."""
    return any(part.key == "activity" for segment in segments.segments for part in segment.when.walk())


def segments_of(segments: SegmentList, lead: LeadView, now: datetime) -> frozenset[str]:
    """The ids of the segments ``lead`` is in at ``now``."""
    return frozenset(s.id for s in segments.segments if in_segment(s, lead, now, segments))


def changes(
    segments: SegmentList, lead: LeadView, now: datetime, member_of: Iterable[tuple[str, str]]
) -> MembershipChanges:
    """The membership writes that bring the stored items (``member_of``: (kind, name) pairs,
    kind ``SEG`` or ``TAG``) in line with the lead as it is now. Segments no longer in
    segments.yaml are left too (their counters stop mattering)."""
    stored = set(member_of)
    now_in = segments_of(segments, lead, now)
    was_in = {name for kind, name in stored if kind == SEGMENT}
    tags = {str(t) for t in (lead.profile.get("tags") or ())}
    tagged = {name for kind, name in stored if kind == TAG}
    return MembershipChanges(
        joined=tuple(sorted(now_in - was_in)),
        left=tuple(sorted(was_in - now_in)),
        tags_added=tuple(sorted(tags - tagged)),
        tags_removed=tuple(sorted(tagged - tags)),
    )


def definition(segment: Segment) -> dict[str, Any]:
    """A segment's rule as plain data (what the API shows), without unset keys."""
    return _without_none(asdict(segment.when))


def definition_hash(segment: Segment) -> str:
    """A short hash of a segment's rule: a counter counted under another rule is stale."""
    text = json.dumps(definition(segment), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None and v not in ((), [])}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value]
    return value
