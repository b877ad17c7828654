"""Conditions (branches, goals, waits for an event, segments), compiled once into closures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from leadflow.domain.definitions.conditions import PREVIOUS, Condition, Segment, SegmentList
from leadflow.domain.definitions.scoring import GRADES
from leadflow.domain.nurture.state import Enrollment, LeadView, SentEmail

MAX_SEGMENT_DEPTH = 8
"""How deep segments may refer to segments; deeper (or circular) references do not match."""
_GRADE_RANK = {letter: rank for rank, letter in enumerate(GRADES)}
_COLLECTIONS = (list, tuple, set, frozenset)

# A compiled condition: (lead, now, emails of the enrollment, segments, segment depth) -> holds.
Predicate = Callable[[LeadView, datetime, tuple[SentEmail, ...], SegmentList | None, int], bool]

_CONDITIONS: dict[int, tuple[Condition, Predicate]] = {}
_SEGMENT_INDEXES: dict[int, tuple[SegmentList, dict[str, Predicate]]] = {}
_CACHE_LIMIT = 512


def matches(
    condition: Condition,
    lead: LeadView,
    now: datetime,
    enrollment: Enrollment | None = None,
    segments: SegmentList | None = None,
) -> bool:
    """Whether ``condition`` holds for ``lead`` at ``now``.

    Args:
        condition: the condition (a branch's, a goal's, a segment's...).
        lead: the lead, with its decayed scores and recent activities.
        now: the time of evaluation (activity windows count back from it).
        enrollment: the enrollment whose emails ``opened``/``clicked``/``clicked_tag`` look
            at; without one, those keys never hold.
        segments: segments.yaml, for ``segment`` keys; an unknown segment never matches.

    Returns:
        True when the condition holds.
    """
    emails = enrollment.emails if enrollment is not None else ()
    return _compiled(condition)(lead, now, emails, segments, 0)


def in_segment(segment: Segment, lead: LeadView, now: datetime, segments: SegmentList | None = None) -> bool:
    """Whether ``lead`` belongs to ``segment`` at ``now`` (``segments`` resolves segments it refers to)."""
    return _compiled(segment.when)(lead, now, (), segments, 1)


def _compiled(condition: Condition) -> Predicate:
    # Keyed by identity (conditions are compared deeply by value, which costs more than compiling);
    # the entry holds the condition, so its id cannot be reused while it is cached.
    cached = _CONDITIONS.get(id(condition))
    if cached is not None and cached[0] is condition:
        return cached[1]
    if len(_CONDITIONS) >= _CACHE_LIMIT:
        _CONDITIONS.clear()
    predicate = _compile(condition)
    _CONDITIONS[id(condition)] = (condition, predicate)
    return predicate


def _segment_index(segments: SegmentList) -> dict[str, Predicate]:
    cached = _SEGMENT_INDEXES.get(id(segments))
    if cached is not None and cached[0] is segments:
        return cached[1]
    if len(_SEGMENT_INDEXES) >= _CACHE_LIMIT:
        _SEGMENT_INDEXES.clear()
    index = {segment.id: _compile(segment.when) for segment in segments.segments}
    _SEGMENT_INDEXES[id(segments)] = (segments, index)
    return index


# Complexity C (14), kept: one flat dispatch on the condition's key, one short branch per kind of
# condition; a table of compilers would only move the branches apart from their closures.
def _compile(condition: Condition) -> Predicate:
    """The condition as a closure: its key dispatched and its values prepared once."""
    key = condition.key
    if key in ("all", "any", "none"):
        return _compile_group(key, tuple(_compile(part) for part in getattr(condition, key)))
    if key in ("opened", "clicked"):
        return _compile_email_test(getattr(condition, key), clicked=key == "clicked")
    if key == "clicked_tag":
        tag = condition.clicked_tag

        def clicked_tag(lead: LeadView, now: datetime, emails: tuple[SentEmail, ...], *_: Any) -> bool:
            return any(tag in email.link_tags for email in emails)

        return clicked_tag
    if key == "score":
        return _compile_score(condition)
    if key == "grade":
        return _compile_grade(condition)
    if key == "field":
        return _compile_field(condition)
    if key == "tag":
        return _compile_tag(condition.tag or "")
    if key == "stage":
        stages = frozenset(condition.stage or ())

        def stage(lead: LeadView, *_: Any) -> bool:
            value = lead.profile.get("stage")
            return isinstance(value, str) and value in stages

        return stage
    if key == "activity":
        return _compile_activity(condition)
    return _compile_segment(condition.segment or "")


def _compile_group(key: str, parts: tuple[Predicate, ...]) -> Predicate:
    if key == "all":

        def all_of(
            lead: LeadView, now: datetime, emails: tuple[SentEmail, ...], segments: SegmentList | None, depth: int
        ) -> bool:
            return all(part(lead, now, emails, segments, depth) for part in parts)

        return all_of

    def any_of(
        lead: LeadView, now: datetime, emails: tuple[SentEmail, ...], segments: SegmentList | None, depth: int
    ) -> bool:
        return any(part(lead, now, emails, segments, depth) for part in parts)

    if key == "any":
        return any_of

    def none_of(
        lead: LeadView, now: datetime, emails: tuple[SentEmail, ...], segments: SegmentList | None, depth: int
    ) -> bool:
        return not any_of(lead, now, emails, segments, depth)

    return none_of


def _email_of(emails: tuple[SentEmail, ...], step_id: str) -> SentEmail | None:
    """The email sent at ``step_id`` ('previous': the last one sent), the latest if several."""
    if step_id == PREVIOUS:
        return emails[-1] if emails else None
    for email in reversed(emails):
        if email.step_id == step_id:
            return email
    return None


def _compile_email_test(step_id: str, *, clicked: bool) -> Predicate:
    if clicked:

        def was_clicked(lead: LeadView, now: datetime, emails: tuple[SentEmail, ...], *_: Any) -> bool:
            email = _email_of(emails, step_id)
            return email is not None and email.clicked

        return was_clicked

    def was_opened(lead: LeadView, now: datetime, emails: tuple[SentEmail, ...], *_: Any) -> bool:
        # A click proves an open even when the open pixel was blocked.
        email = _email_of(emails, step_id)
        return email is not None and (email.opened or email.clicked)

    return was_opened


def _compile_score(condition: Condition) -> Predicate:
    test = condition.score
    assert test is not None  # nosec B101 # compiled only for conditions of this kind (type narrowing)
    model, gte, lt = test.model, test.gte, test.lt

    def score(lead: LeadView, *_: Any) -> bool:
        scores = lead.scores
        name = model or lead.default_model
        if name is not None:
            value = scores.get(name) or 0.0
        else:
            value = (next(iter(scores.values())) or 0.0) if len(scores) == 1 else 0.0
        return (gte is None or value >= gte) and (lt is None or value < lt)

    return score


def _compile_grade(condition: Condition) -> Predicate:
    test = condition.grade
    assert test is not None  # nosec B101 # compiled only for conditions of this kind (type narrowing)
    best = _GRADE_RANK[test.at_least] if test.at_least is not None else None
    worst = _GRADE_RANK[test.at_most] if test.at_most is not None else None

    def grade(lead: LeadView, *_: Any) -> bool:
        value = lead.profile.get("grade")
        rank = _GRADE_RANK.get(value.strip().upper()) if isinstance(value, str) else None
        if rank is None:
            return False
        return (best is None or rank <= best) and (worst is None or rank >= worst)

    return grade


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, _COLLECTIONS):
        return all(_is_blank(item) for item in value)
    return False


def _texts(value: Any) -> list[str]:
    """A field's value(s) as folded text: every item of a multi-value field, one text otherwise."""
    items = value if isinstance(value, _COLLECTIONS) else (value,)
    texts = []
    for item in items:
        if _is_blank(item):
            continue
        text = str(int(item)) if isinstance(item, float) and item.is_integer() else str(item)
        texts.append(text.strip().casefold())
    return texts


def _compile_field(condition: Condition) -> Predicate:
    test = condition.field
    assert test is not None  # nosec B101 # compiled only for conditions of this kind (type narrowing)
    name, custom = test.name, f"cf_{test.name}"

    def value_of(profile: Mapping[str, Any]) -> Any:
        value = profile.get(name)
        return profile.get(custom) if _is_blank(value) else value

    if test.exists is not None:
        wanted = test.exists

        def exists(lead: LeadView, *_: Any) -> bool:
            return (not _is_blank(value_of(lead.profile))) is wanted

        return exists
    if test.contains is not None:
        needle = test.contains.strip().casefold()

        def contains(lead: LeadView, *_: Any) -> bool:
            return any(needle in text for text in _texts(value_of(lead.profile)))

        return contains
    options = (
        frozenset(option.strip().casefold() for option in test.one_of)
        if test.one_of is not None
        else frozenset({(test.equals or "").strip().casefold()})
    )

    def equals(lead: LeadView, *_: Any) -> bool:
        return any(text in options for text in _texts(value_of(lead.profile)))

    return equals


def _compile_tag(tag: str) -> Predicate:
    folded = tag.casefold()

    def has_tag(lead: LeadView, *_: Any) -> bool:
        tags = lead.profile.get("tags")
        if not tags:
            return False
        if isinstance(tags, str):
            return tags.strip().casefold() == folded
        if not isinstance(tags, _COLLECTIONS):
            return False
        if tag in tags:
            return True
        return any(isinstance(item, str) and item.strip().casefold() == folded for item in tags)

    return has_tag


def _compile_activity(condition: Condition) -> Predicate:
    test = condition.activity
    assert test is not None  # nosec B101 # compiled only for conditions of this kind (type narrowing)
    kind = str(test.type)
    window = timedelta(days=test.within_days)
    min_count = test.min_count
    url_part = test.url_contains.casefold() if test.url_contains is not None else None
    form_id = test.form_id

    def activity(lead: LeadView, now: datetime, *_: Any) -> bool:
        # Activities dated after now count (clocks of the writers differ a little), as in scoring.
        since = now - window
        count = 0
        for item in lead.activities:
            if item.type != kind or item.at < since:
                continue
            if url_part is not None and url_part not in str(item.attrs.get("url") or "").casefold():
                continue
            if form_id is not None and item.attrs.get("form_id") != form_id:
                continue
            count += 1
            if count >= min_count:
                return True
        return False

    return activity


def _compile_segment(segment_id: str) -> Predicate:
    def in_named_segment(
        lead: LeadView, now: datetime, emails: tuple[SentEmail, ...], segments: SegmentList | None, depth: int
    ) -> bool:
        if segments is None or depth >= MAX_SEGMENT_DEPTH:
            return False
        predicate = _segment_index(segments).get(segment_id)
        # A segment is about the lead, not about one enrollment's emails.
        return predicate is not None and predicate(lead, now, (), segments, depth + 1)

    return in_named_segment
