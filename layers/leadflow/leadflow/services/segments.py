"""Segments you can see: membership kept event by event, counts without a scan, a back-fill.

``on_change`` is what the segments function runs for every bus event about a lead: the lead's
segments are evaluated (``domain.segments``) and the differences written as membership items
and counter moves. ``overview`` answers counts from the counters (one BatchGetItem), members
page through the index (``AudienceService.page``). ``refresh`` back-fills: every profile is
re-evaluated (a parallel Scan) and each segment recounted from its index; run it after adding
or changing a segment (``leadflow segment refresh``), or let ``overview`` tell: a counter
counted under another rule is marked ``stale``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from leadflow.config.workspace import Workspace
from leadflow.domain.errors import SegmentNotFound
from leadflow.domain.segments import MembershipChanges, changes, definition, definition_hash, lead_view, reads_activity
from leadflow.ports.clock import Clock

SCAN_PARTS = 4


class SegmentStore(Protocol):
    def membership_state(
        self, lead_id: str, with_activities: bool
    ) -> tuple[dict[str, Any] | None, set[tuple[str, str]], list[dict[str, Any]]]: ...

    def apply_membership(self, lead_id: str, changes: MembershipChanges, at: str) -> int: ...

    def counters(self, segment_ids: list[str]) -> dict[str, dict[str, Any]]: ...

    def recount(self, segment_id: str, rule_hash: str, at: str) -> int: ...

    def profiles(self, part: int, parts: int) -> Iterator[list[dict[str, Any]]]: ...


class SegmentService:
    def __init__(self, store: SegmentStore, workspace: Workspace, clock: Clock) -> None:
        self.store = store
        self.workspace = workspace
        self.clock = clock

    def _default_model(self) -> str | None:
        try:
            return self.workspace.scoring.default_model
        except Exception:  # noqa: BLE001 - a workspace without scoring.yaml
            return None

    def on_change(self, lead_id: str) -> MembershipChanges:
        """Bring the lead's membership items and the counters in line with the lead now (nothing
        for a lead that no longer exists: an erasure removed its items and moved the counters)."""
        segments = self.workspace.segments
        profile, members, activities = self.store.membership_state(lead_id, reads_activity(segments))
        if profile is None:
            return MembershipChanges()
        now = self.clock.now()
        return self._apply(profile, members, activities, now)

    def _apply(
        self, profile: dict[str, Any], members: set[tuple[str, str]], activities: list[dict[str, Any]], now: datetime
    ) -> MembershipChanges:
        view = lead_view(profile, activities, self._default_model())
        found = changes(self.workspace.segments, view, now, members)
        if found:
            self.store.apply_membership(str(profile["lead_id"]), found, now.isoformat())
        return found

    def overview(self) -> list[dict[str, Any]]:
        """Every segment with its rule and member count (from its counter: no scan)."""
        segments = self.workspace.segments.segments
        counted = self.store.counters([s.id for s in segments])
        return [_view(s, counted.get(s.id)) for s in segments]

    def get(self, segment_id: str) -> dict[str, Any]:
        """One segment with its rule and member count. Raises SegmentNotFound."""
        found = next((v for v in self.overview() if v["segment_id"] == segment_id), None)
        if found is None:
            raise SegmentNotFound(segment_id)
        return found

    def refresh(
        self, segment_id: str | None = None, progress: Callable[[int], None] | None = None, parts: int = SCAN_PARTS
    ) -> dict[str, int]:
        """Back-fill: re-evaluate every lead (all segments: one pass serves them all), then recount
        ``segment_id`` (every segment when None) from its index. Returns the counts."""
        wanted = [s for s in self.workspace.segments.segments if segment_id in (None, s.id)]
        if not wanted:
            raise SegmentNotFound(str(segment_id))
        needs_activity = reads_activity(self.workspace.segments)
        now = self.clock.now()

        def part(index: int) -> None:
            for page in self.store.profiles(index, parts):
                for profile in page:
                    _, members, activities = self.store.membership_state(str(profile["lead_id"]), needs_activity)
                    self._apply(profile, members, activities, now)
                if progress is not None:
                    progress(len(page))

        with ThreadPoolExecutor(max_workers=parts) as pool:
            list(pool.map(part, range(parts)))
        at = self.clock.now().isoformat()
        return {s.id: self.store.recount(s.id, definition_hash(s), at) for s in wanted}


def _view(segment: Any, counter: Mapping[str, Any] | None) -> dict[str, Any]:
    rule_hash = definition_hash(segment)
    return {
        "segment_id": segment.id,
        "name": segment.name,
        "description": segment.description,
        "definition": definition(segment),
        "member_count": max(0, int((counter or {}).get("n", 0))),
        "counted_at": (counter or {}).get("counted_at"),
        "stale": counter is None or counter.get("definition") != rule_hash,
    }
