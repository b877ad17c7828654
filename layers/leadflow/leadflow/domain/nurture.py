"""The nurture engine: for one enrollment of one lead in one sequence, what happens next.

``advance`` walks an active enrollment from its current step as far as it can go now:

- the sequence-wide ``goal`` is checked before every step: once it holds, the lead leaves
  as converted;
- ``branch`` goes to ``then`` or ``otherwise``; ``goal`` leaves (converted) when its
  condition holds, else goes on; ``action`` collects its actions for the caller to run;
- ``wait`` wakes ``duration`` after the step began, then (with ``until``) at the first
  allowed weekday and time in the lead's timezone; ``until_event`` ends it early; until
  then the enrollment sleeps with ``due_at`` at the wake time, and an early look puts it
  back to sleep with the same ``due_at``;
- ``email`` passes its gates in order: suppressed (exit), unsubscribed from everything or
  from the email's topic (exit), double opt-in not confirmed (wait, exit once the link has
  expired), quiet hours in the lead's timezone (wait for their end), frequency caps across
  every sequence (wait until a counted send leaves its window); then it is sent, at most
  one email per call, never two with the same message id (an email already in the
  enrollment is passed over);
- ``end`` completes the enrollment; more than ``MAX_STEPS`` steps in one call fails it.

The message id of an email is a hash of lead, sequence, entry and step: a retry after a
crash produces the same id, and the sender refuses an id it has already sent.

Pure: no AWS, no environment, no clock reads; the time of evaluation is always ``now``.
Sequences and conditions are compiled on first use (step index, condition closures) and
the compiled form is kept per object, so a warm Lambda pays for it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from leadflow.config.scoring import GRADES
from leadflow.config.sequences import (
    END,
    PREVIOUS,
    WEEKDAYS,
    Action,
    ActionStep,
    BranchStep,
    Condition,
    EmailStep,
    FrequencyCaps,
    GoalStep,
    MessagingConfig,
    QuietHours,
    Segment,
    SegmentList,
    Sequence,
    StepType,
    UntilTime,
    Variant,
    WaitStep,
)

ACTIVE = "active"
COMPLETED = "completed"
CONVERTED = "converted"
EXITED = "exited"
FAILED = "failed"
TERMINAL_STATUSES = frozenset({COMPLETED, CONVERTED, EXITED, FAILED})

MAX_STEPS = 100
"""Steps one ``advance`` call may pass through before the enrollment fails (a runaway guard)."""
MAX_SEGMENT_DEPTH = 8
"""How deep segments may refer to segments; deeper (or circular) references do not match."""
PAUSE_RECHECK = timedelta(hours=1)
CONFIRMATION_RECHECK = timedelta(hours=6)
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_GRADE_RANK = {letter: rank for rank, letter in enumerate(GRADES)}
_COLLECTIONS = (list, tuple, set, frozenset)

# ---------------------------------------------------------------------------- the state


@dataclass(frozen=True, slots=True)
class SentEmail:
    """An email sent in an enrollment, and what the lead did with it."""

    step_id: str
    message_id: str
    sent_at: datetime
    opened: bool = False
    clicked: bool = False
    link_tags: tuple[str, ...] = ()
    """Tags of the links clicked in this email."""


@dataclass(frozen=True, slots=True)
class ActivityView:
    """A recent activity of the lead: ``attrs`` holds url, form_id, link_tag, message_id..."""

    type: str
    at: datetime
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeadView:
    """What the engine knows of a lead.

    ``profile`` is the lead profile item: first_name, country, company, title, custom fields
    as ``cf_<name>``, ``stage``, ``grade`` (a letter or None), ``tags``, ``timezone`` (IANA,
    optional), ``unsubscribed``, ``unsubscribed_topics``, ``consent_pending`` (double opt-in
    not confirmed yet).
    """

    lead_id: str
    profile: Mapping[str, Any]
    scores: Mapping[str, float] = field(default_factory=dict)
    """The decayed score per model, as of now."""
    activities: tuple[ActivityView, ...] = ()
    """Recent activities, in any order."""
    suppressed: bool = False
    """The address is on the suppression list (bounce, complaint, unsubscribe)."""
    recent_sends: tuple[datetime, ...] = ()
    """When marketing emails were sent to this lead in the last 7 days, across all sequences."""
    default_model: str | None = None
    """scoring.yaml's default_model: what a score test without ``model`` reads. When not given,
    such a test reads the lead's only score if it has exactly one model, else 0."""


@dataclass(frozen=True, slots=True)
class Enrollment:
    """One lead's walk through one version of one sequence."""

    lead_id: str
    sequence_id: str
    version: int
    """The version of the sequence definition this enrollment runs on."""
    entry: int
    """1 for the lead's first enrollment in the sequence, 2 for its first re-entry..."""
    step_id: str
    """The current step ('end' is never stored while active)."""
    status: str
    """active, completed, converted, exited or failed."""
    entered_at: datetime
    step_started_at: datetime
    """When the current step began: waits count from here."""
    due_at: datetime | None
    """When the current step must be looked at again; None when not active."""
    emails: tuple[SentEmail, ...] = ()
    """Emails sent in this enrollment, oldest first."""
    exit_reason: str | None = None
    """goal, unsubscribed, suppressed, unconfirmed, completed, manual, step limit..."""
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmailToSend:
    """An email the caller must send (then store the outcome's enrollment)."""

    step_id: str
    message_id: str
    """Deterministic per lead, sequence, entry and step: the send's idempotency key."""
    template: str
    subject: str
    variant: str | None
    """The A/B variant chosen for this lead (stable), None without variants."""
    topic: str
    sender: str | None
    """The step's sender address; None for messaging.yaml's."""
    sender_name: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one ``advance`` call decided."""

    enrollment: Enrollment
    """The state to store (with the email already recorded, if there is one)."""
    email: EmailToSend | None = None
    """Send this first; store ``enrollment`` only once it is sent (or found already sent)."""
    actions: tuple[Action, ...] = ()
    """Run these (tag, set_field, handoff, enroll...) after storing."""
    deferred: str | None = None
    """Why nothing moved: quiet_hours, frequency_cap, awaiting_confirmation, waiting or paused."""
    trail: tuple[str, ...] = ()
    """The step ids passed through in this call, for the history."""


# ---------------------------------------------------------------------------- conditions

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
    assert test is not None
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
    assert test is not None
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
    assert test is not None
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
    assert test is not None
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


# ---------------------------------------------------------------------------- timezones

# A country's main timezone, by ISO 3166 alpha-2 code and English name (lower case).
_COUNTRY_ZONES: dict[str, tuple[str, ...]] = {
    "America/New_York": ("us", "usa", "united states", "united states of america", "america"),
    "America/Toronto": ("ca", "canada"),
    "America/Mexico_City": ("mx", "mexico"),
    "America/Sao_Paulo": ("br", "brazil", "brasil"),
    "America/Argentina/Buenos_Aires": ("ar", "argentina"),
    "America/Santiago": ("cl", "chile"),
    "America/Bogota": ("co", "colombia"),
    "America/Lima": ("pe", "peru"),
    "America/Caracas": ("ve", "venezuela"),
    "America/Guayaquil": ("ec", "ecuador"),
    "America/Montevideo": ("uy", "uruguay"),
    "America/Asuncion": ("py", "paraguay"),
    "America/La_Paz": ("bo", "bolivia"),
    "America/Costa_Rica": ("cr", "costa rica"),
    "America/Panama": ("pa", "panama"),
    "America/Guatemala": ("gt", "guatemala"),
    "America/Santo_Domingo": ("do", "dominican republic"),
    "America/Puerto_Rico": ("pr", "puerto rico"),
    "America/Jamaica": ("jm", "jamaica"),
    "America/Havana": ("cu", "cuba"),
    "Europe/London": ("gb", "uk", "united kingdom", "great britain", "britain", "england", "scotland", "wales"),
    "Europe/Dublin": ("ie", "ireland"),
    "Europe/Paris": ("fr", "france"),
    "Europe/Berlin": ("de", "germany", "deutschland"),
    "Europe/Amsterdam": ("nl", "netherlands", "the netherlands", "holland"),
    "Europe/Brussels": ("be", "belgium"),
    "Europe/Luxembourg": ("lu", "luxembourg"),
    "Europe/Zurich": ("ch", "switzerland"),
    "Europe/Vienna": ("at", "austria"),
    "Europe/Rome": ("it", "italy"),
    "Europe/Madrid": ("es", "spain"),
    "Europe/Lisbon": ("pt", "portugal"),
    "Europe/Copenhagen": ("dk", "denmark"),
    "Europe/Stockholm": ("se", "sweden"),
    "Europe/Oslo": ("no", "norway"),
    "Europe/Helsinki": ("fi", "finland"),
    "Atlantic/Reykjavik": ("is", "iceland"),
    "Europe/Warsaw": ("pl", "poland"),
    "Europe/Prague": ("cz", "czechia", "czech republic"),
    "Europe/Bratislava": ("sk", "slovakia"),
    "Europe/Budapest": ("hu", "hungary"),
    "Europe/Bucharest": ("ro", "romania"),
    "Europe/Sofia": ("bg", "bulgaria"),
    "Europe/Athens": ("gr", "greece"),
    "Europe/Zagreb": ("hr", "croatia"),
    "Europe/Ljubljana": ("si", "slovenia"),
    "Europe/Belgrade": ("rs", "serbia"),
    "Europe/Kyiv": ("ua", "ukraine"),
    "Europe/Minsk": ("by", "belarus"),
    "Europe/Vilnius": ("lt", "lithuania"),
    "Europe/Riga": ("lv", "latvia"),
    "Europe/Tallinn": ("ee", "estonia"),
    "Europe/Moscow": ("ru", "russia", "russian federation"),
    "Europe/Istanbul": ("tr", "turkey", "türkiye", "turkiye"),
    "Europe/Malta": ("mt", "malta"),
    "Asia/Nicosia": ("cy", "cyprus"),
    "Asia/Jerusalem": ("il", "israel"),
    "Asia/Dubai": ("ae", "uae", "united arab emirates"),
    "Asia/Riyadh": ("sa", "saudi arabia"),
    "Asia/Qatar": ("qa", "qatar"),
    "Asia/Kuwait": ("kw", "kuwait"),
    "Asia/Bahrain": ("bh", "bahrain"),
    "Asia/Muscat": ("om", "oman"),
    "Asia/Amman": ("jo", "jordan"),
    "Asia/Beirut": ("lb", "lebanon"),
    "Asia/Tehran": ("ir", "iran"),
    "Asia/Baghdad": ("iq", "iraq"),
    "Africa/Cairo": ("eg", "egypt"),
    "Africa/Casablanca": ("ma", "morocco"),
    "Africa/Algiers": ("dz", "algeria"),
    "Africa/Tunis": ("tn", "tunisia"),
    "Africa/Lagos": ("ng", "nigeria"),
    "Africa/Accra": ("gh", "ghana"),
    "Africa/Nairobi": ("ke", "kenya"),
    "Africa/Addis_Ababa": ("et", "ethiopia"),
    "Africa/Dar_es_Salaam": ("tz", "tanzania"),
    "Africa/Kampala": ("ug", "uganda"),
    "Africa/Johannesburg": ("za", "south africa"),
    "Africa/Dakar": ("sn", "senegal"),
    "Africa/Abidjan": ("ci", "ivory coast", "côte d'ivoire", "cote d'ivoire"),
    "Asia/Kolkata": ("in", "india"),
    "Asia/Karachi": ("pk", "pakistan"),
    "Asia/Dhaka": ("bd", "bangladesh"),
    "Asia/Colombo": ("lk", "sri lanka"),
    "Asia/Kathmandu": ("np", "nepal"),
    "Asia/Shanghai": ("cn", "china", "people's republic of china"),
    "Asia/Hong_Kong": ("hk", "hong kong"),
    "Asia/Taipei": ("tw", "taiwan"),
    "Asia/Tokyo": ("jp", "japan"),
    "Asia/Seoul": ("kr", "south korea", "korea", "republic of korea"),
    "Asia/Singapore": ("sg", "singapore"),
    "Asia/Kuala_Lumpur": ("my", "malaysia"),
    "Asia/Bangkok": ("th", "thailand"),
    "Asia/Ho_Chi_Minh": ("vn", "vietnam", "viet nam"),
    "Asia/Manila": ("ph", "philippines"),
    "Asia/Jakarta": ("id", "indonesia"),
    "Asia/Almaty": ("kz", "kazakhstan"),
    "Asia/Tashkent": ("uz", "uzbekistan"),
    "Australia/Sydney": ("au", "australia"),
    "Pacific/Auckland": ("nz", "new zealand"),
}
COUNTRY_TIMEZONES: dict[str, str] = {name: zone for zone, names in _COUNTRY_ZONES.items() for name in names}
"""Country code or English name (lower case) -> its main IANA timezone."""


def lead_timezone(profile: Mapping[str, Any], default: str) -> ZoneInfo:
    """The lead's timezone: ``timezone`` if a valid IANA name, else its ``country``'s, else ``default``.

    Args:
        profile: the lead profile (``timezone``, ``country``: an ISO 3166 alpha-2 code or an
            English name, any case).
        default: messaging.yaml's ``default_timezone`` (validated there).

    Raises:
        zoneinfo.ZoneInfoNotFoundError: only when ``default`` itself is not a timezone.
    """
    name = profile.get("timezone")
    country = profile.get("country")
    return _resolve_zone(
        name if isinstance(name, str) else None, country if isinstance(country, str) else None, default
    )


@lru_cache(maxsize=4096)
def _resolve_zone(name: str | None, country: str | None, default: str) -> ZoneInfo:
    if name:
        zone = _zone(name.strip())
        if zone is not None:
            return zone
    if country:
        key = " ".join(country.replace(".", "").split()).casefold()
        zone_name = COUNTRY_TIMEZONES.get(key)
        if zone_name is not None:
            zone = _zone(zone_name)
            if zone is not None:
                return zone
    return ZoneInfo(default)


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    """The timezone named ``name`` (any case), None if there is none."""
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError, TypeError):
        canonical = _zone_names().get(name.casefold())
        return ZoneInfo(canonical) if canonical is not None and canonical != name else None


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {zone.casefold(): zone for zone in available_timezones()}


@lru_cache(maxsize=256)
def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at ``at`` in ``zone``, as a UTC instant (a time skipped by a DST change counts as after it)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _next_local_time(after: datetime, until: UntilTime, zone: ZoneInfo) -> datetime:
    """The first allowed weekday at ``until.time`` in ``zone``, at or after ``after``."""
    at = _clock(until.time)
    allowed = {WEEKDAYS.index(day) for day in until.weekdays}
    start = after.astimezone(zone).date()
    for offset in range(8):
        day = start + timedelta(days=offset)
        if day.weekday() in allowed:
            candidate = _local(day, at, zone)
            if candidate >= after:
                return candidate
    # Unreachable: within 8 days every weekday recurs once after ``after``'s own day.
    return after + _WEEK  # pragma: no cover


def _quiet_until(now: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours around ``now`` end, None outside them (a window may wrap midnight)."""
    if quiet is None:
        return None
    start, end = _clock(quiet.start), _clock(quiet.end)
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(second=0, microsecond=0, tzinfo=None)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + _DAY
    ends = _local(day, end, zone)
    # A DST change inside the window can fold the end back onto now: never wake in the past.
    return ends if ends > now else now + timedelta(minutes=1)


def _cap_until(now: datetime, sends: tuple[datetime, ...], caps: FrequencyCaps) -> datetime | None:
    """When sending would be within both frequency caps again, None if it is now."""
    free_at: datetime | None = None
    for window, limit in ((_DAY, caps.per_day), (_WEEK, caps.per_week)):
        since = now - window
        counted = sorted(sent for sent in sends if since < sent <= now)
        if len(counted) >= limit:
            # Sends leave the window oldest first; enough must leave to get below the limit.
            frees = counted[len(counted) - limit] + window
            free_at = frees if free_at is None or frees > free_at else free_at
    return free_at


# ---------------------------------------------------------------------------- ids and variants


def message_id_for(lead_id: str, sequence_id: str, entry: int, step_id: str) -> str:
    """The id of the email a step sends to a lead in one enrollment: the same inputs, the same id."""
    digest = hashlib.sha256(f"{lead_id}\x1f{sequence_id}\x1f{entry}\x1f{step_id}".encode()).hexdigest()
    return f"m_{digest[:24]}"


def choose_variant(variants: tuple[Variant, ...], lead_id: str, sequence_id: str, step_id: str) -> Variant | None:
    """The A/B variant a lead gets at a step: weighted by ``weight``, stable for the lead (a hash, no randomness).

    Returns:
        The variant, or None when the step has none.
    """
    if not variants:
        return None
    total = sum(variant.weight for variant in variants)
    digest = hashlib.sha256(f"{sequence_id}\x1f{step_id}\x1f{lead_id}".encode()).digest()
    point = (int.from_bytes(digest[:8], "big") * total) >> 64
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return variant
    return variants[-1]  # pragma: no cover - point < total by construction


# ---------------------------------------------------------------------------- compiled sequences


class _Plan:
    """A sequence ready to walk: steps by id, where each goes next, conditions compiled."""

    __slots__ = ("conditions", "goal", "next", "sequence", "steps", "wait_for")

    def __init__(self, sequence: Sequence) -> None:
        self.sequence = sequence
        steps: tuple[StepType, ...] = sequence.steps
        self.steps: dict[str, StepType] = {step.id: step for step in steps}
        self.next: dict[str, str] = {}
        self.conditions: dict[str, Predicate] = {}
        self.wait_for: dict[str, timedelta] = {}
        for index, step in enumerate(steps):
            following = steps[index + 1].id if index + 1 < len(steps) else END
            if not isinstance(step, BranchStep):
                self.next[step.id] = step.next or following
            if isinstance(step, BranchStep | GoalStep):
                self.conditions[step.id] = _compile(step.when)
            elif isinstance(step, WaitStep):
                self.wait_for[step.id] = timedelta(seconds=step.seconds)
                if step.until_event is not None:
                    self.conditions[step.id] = _compile(step.until_event)
        self.goal = _compile(sequence.goal) if sequence.goal is not None else None


# Keyed by identity: a Sequence is unhashable once it has migrations (Migration.steps is a
# dict), and slots dataclasses cannot be weakly referenced. The entry holds the sequence, so
# its id cannot be reused while it is cached.
_PLANS: dict[int, _Plan] = {}


def _plan(sequence: Sequence) -> _Plan:
    plan = _PLANS.get(id(sequence))
    if plan is not None and plan.sequence is sequence:
        return plan
    if len(_PLANS) >= _CACHE_LIMIT:
        _PLANS.clear()
    plan = _PLANS[id(sequence)] = _Plan(sequence)
    return plan


# ---------------------------------------------------------------------------- advance


def advance(  # noqa: PLR0917 - the service's contract: the sequence, the enrollment, the lead, when, the rules
    sequence: Sequence,
    enrollment: Enrollment,
    lead: LeadView,
    now: datetime,
    messaging: MessagingConfig,
    segments: SegmentList | None = None,
) -> Outcome:
    """Walk an enrollment from its current step as far as it may go at ``now``.

    Args:
        sequence: the sequence definition of the enrollment's version.
        enrollment: the stored enrollment.
        lead: the lead as of now (profile, decayed scores, recent activities, suppression,
            recent marketing sends across every sequence).
        now: the time of evaluation.
        messaging: messaging.yaml (default timezone, quiet hours, frequency caps, confirmation days).
        segments: segments.yaml, for conditions naming a segment.

    Returns:
        The outcome: the enrollment to store, at most one email to send first, the actions
        to run after storing, and why it waits when nothing moved. An enrollment that is not
        active comes back unchanged. Never raises for any sequence, enrollment or lead.
    """
    if enrollment.status != ACTIVE:
        return Outcome(enrollment)
    if sequence.status == "paused":
        return Outcome(replace(enrollment, due_at=now + PAUSE_RECHECK), deferred="paused")
    plan = _plan(sequence)
    goal = plan.goal
    step_id = enrollment.step_id
    started = enrollment.step_started_at
    emails = enrollment.emails
    actions: list[Action] = []
    trail: list[str] = []
    email: EmailToSend | None = None

    def stop(due: datetime, deferred: str | None) -> Outcome:
        moved = replace(enrollment, step_id=step_id, step_started_at=started, due_at=due, emails=emails)
        return Outcome(moved, email, tuple(actions), deferred, tuple(trail))

    def end(status: str, reason: str) -> Outcome:
        ended = replace(
            enrollment,
            step_id=step_id,
            step_started_at=started,
            status=status,
            exit_reason=reason,
            due_at=None,
            ended_at=now,
            emails=emails,
        )
        return Outcome(ended, email, tuple(actions), None, tuple(trail))

    for _ in range(MAX_STEPS):
        if goal is not None and goal(lead, now, emails, segments, 0):
            return end(CONVERTED, "goal")
        if step_id == END:
            return end(COMPLETED, COMPLETED)
        step = plan.steps.get(step_id)
        if step is None:
            return end(FAILED, "unknown step")
        trail.append(step_id)
        if isinstance(step, BranchStep):
            holds = plan.conditions[step_id](lead, now, emails, segments, 0)
            following = step.then if holds else step.otherwise
        elif isinstance(step, GoalStep):
            if plan.conditions[step_id](lead, now, emails, segments, 0):
                return end(CONVERTED, "goal")
            following = plan.next[step_id]
        elif isinstance(step, ActionStep):
            actions.extend(step.actions)
            following = plan.next[step_id]
        elif isinstance(step, WaitStep):
            wake = started + plan.wait_for[step_id]
            if step.until is not None:
                wake = _next_local_time(wake, step.until, lead_timezone(lead.profile, messaging.default_timezone))
            event = plan.conditions.get(step_id)
            if now < wake and not (event is not None and event(lead, now, emails, segments, 0)):
                return stop(wake, "waiting")
            following = plan.next[step_id]
        else:
            if email is not None:
                # One email per call: the next one is looked at on the next call, at once.
                return stop(now, None)
            message_id = message_id_for(enrollment.lead_id, enrollment.sequence_id, enrollment.entry, step_id)
            # Passed over when already sent (a loop back, a migration): no email, so no gate applies.
            if not any(sent.message_id == message_id for sent in emails):
                gate = _gate(step.topic or sequence.topic, enrollment.entered_at, lead, now, messaging, step.reply)
                if gate is not None:
                    status, reason, due = gate
                    if status == EXITED:
                        return end(EXITED, reason)
                    return stop(due, reason)
                email = _email_to_send(step, sequence, enrollment.lead_id, message_id)
                emails = (*emails, SentEmail(step_id, message_id, now))
            following = plan.next[step_id]
        step_id = following
        started = now
    return end(FAILED, "step limit")


def _gate(  # noqa: PLR0917 - one private call site
    topic: str,
    entered_at: datetime,
    lead: LeadView,
    now: datetime,
    messaging: MessagingConfig,
    replies: bool = False,
) -> tuple[str, str, datetime] | None:
    """Why this email may not go out now: (exited, reason, now) or (active, deferral, when to look again)."""
    if lead.suppressed:
        return EXITED, "suppressed", now
    profile = lead.profile
    topics = profile.get("unsubscribed_topics")
    if _flag(profile.get("unsubscribed")) or (isinstance(topics, _COLLECTIONS) and topic in topics):
        return EXITED, "unsubscribed", now
    if _flag(profile.get("consent_pending")):
        if now - entered_at > timedelta(days=messaging.confirmation_days):
            return EXITED, "unconfirmed", now
        return ACTIVE, "awaiting_confirmation", now + CONFIRMATION_RECHECK
    if messaging.quiet_hours is not None and not replies:
        zone = lead_timezone(profile, messaging.default_timezone)
        quiet_end = _quiet_until(now, messaging.quiet_hours, zone)
        if quiet_end is not None:
            return ACTIVE, "quiet_hours", quiet_end
    if lead.recent_sends:
        free_at = _cap_until(now, lead.recent_sends, messaging.frequency)
        if free_at is not None:
            return ACTIVE, "frequency_cap", free_at
    return None


def _flag(value: Any) -> bool:
    """A yes/no profile field: a boolean, or its text form ("true", "1", "yes") as some imports store it."""
    if isinstance(value, str):
        return value.strip().casefold() in ("true", "1", "yes")
    return bool(value)


def _email_to_send(step: EmailStep, sequence: Sequence, lead_id: str, message_id: str) -> EmailToSend:
    variant = choose_variant(step.variants, lead_id, sequence.id, step.id)
    return EmailToSend(
        step_id=step.id,
        message_id=message_id,
        template=(variant.template if variant is not None and variant.template else step.template),
        subject=(variant.subject if variant is not None and variant.subject else step.subject),
        variant=variant.id if variant is not None else None,
        topic=step.topic or sequence.topic,
        sender=step.sender,
        sender_name=step.sender_name,
    )


# ---------------------------------------------------------------------------- held enrollments

ENGAGEMENT_KEYS = frozenset({"all", "any", "none", "opened", "clicked", "clicked_tag"})
"""Conditions that read only the enrollment's emails (what the lead did with them)."""
WAKING_KEYS = ENGAGEMENT_KEYS | {"stage", "score", "grade", "tag"}
"""Conditions whose every change reaches the nurture events function as an event (``lead.stage_changed``,
``lead.scored``, ``lead.tagged``), which looks at the lead's waits and goals at once (``_wake``)."""
_NOBODY = LeadView(lead_id="", profile={})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reads_only(condition: Condition, keys: frozenset[str]) -> bool:
    return all(part.key in keys for part in condition.walk())


_QUIET: dict[tuple[int, str, tuple[tuple[str, bool, bool, tuple[str, ...]], ...]], tuple[Sequence, bool]] = {}


def lapses_quietly(sequence: Sequence, step_id: str, emails: tuple[SentEmail, ...]) -> bool:
    """``_lapses_quietly``, remembered per sequence, step and what the lead did with its emails
    (a broadcast asks it for every lead, nearly always with the same answer)."""
    key = (id(sequence), step_id, tuple((e.step_id, e.opened, e.clicked, e.link_tags) for e in emails))
    found = _QUIET.get(key)
    if found is not None and found[0] is sequence:
        return found[1]
    if len(_QUIET) >= _CACHE_LIMIT:
        _QUIET.clear()
    answer = _lapses_quietly(sequence, step_id, emails)
    _QUIET[key] = (sequence, answer)
    return answer


def _lapses_quietly(sequence: Sequence, step_id: str, emails: tuple[SentEmail, ...]) -> bool:
    """Whether a lead waiting at wait step ``step_id`` ends the sequence, doing nothing and sending
    nothing, when the wait runs out: for every lead alike, given only the enrollment's ``emails``.

    True when the wait has a plain duration (no local weekday or time, which depend on the lead's
    timezone) and every step after it up to the end is a branch or goal step that reads only the
    emails (opened, clicked, clicked a link tag), taking the path to the end; the wait's
    ``until_event`` and the sequence goal may also read stage, score, grade or tags, whose changes
    arrive as events that look at the lead's waits at once. Such an enrollment needs no write and no
    due-index entry to end: it is *held* by the lead's mail log (the one write of its email) and
    reads as completed once its wait is over (``held_state``).
    """
    plan = _plan(sequence)
    step = plan.steps.get(step_id)
    if not isinstance(step, WaitStep) or step.until is not None:
        return False
    if step.until_event is not None and not _reads_only(step.until_event, WAKING_KEYS):
        return False
    goal = sequence.goal
    if goal is not None:
        if not _reads_only(goal, WAKING_KEYS):
            return False
        if _reads_only(goal, ENGAGEMENT_KEYS) and plan.goal is not None and plan.goal(_NOBODY, _EPOCH, emails, None, 0):
            return False
    current = plan.next[step_id]
    for _ in range(MAX_STEPS):
        if current == END:
            return True
        step = plan.steps.get(current)
        if not isinstance(step, BranchStep | GoalStep) or not _reads_only(step.when, ENGAGEMENT_KEYS):
            return False
        holds = plan.conditions[current](_NOBODY, _EPOCH, emails, None, 0)
        if isinstance(step, GoalStep):
            if holds:
                return False  # it converts: an outcome to record
            current = plan.next[current]
        else:
            current = step.then if holds else step.otherwise
    return False


def holdable(sequence: Sequence, outcome: Outcome) -> bool:
    """Whether the outcome's enrollment may be held by the lead's mail log instead of stored: it sent
    an email, runs no action, and now waits at a wait step that lapses quietly."""
    enrollment = outcome.enrollment
    return (
        outcome.email is not None
        and not outcome.actions
        and outcome.deferred == "waiting"
        and enrollment.status == ACTIVE
        and lapses_quietly(sequence, enrollment.step_id, enrollment.emails)
    )


def held_state(sequence: Sequence | None, enrollment: Enrollment, now: datetime) -> Enrollment:
    """A held enrollment as of ``now``: once its wait is over and it lapses quietly (nothing the lead
    did since changes the way), it has completed, at the end of the wait."""
    if (
        sequence is not None
        and enrollment.status == ACTIVE
        and enrollment.due_at is not None
        and now >= enrollment.due_at
        and lapses_quietly(sequence, enrollment.step_id, enrollment.emails)
    ):
        return replace(
            enrollment, step_id=END, status=COMPLETED, exit_reason=COMPLETED, due_at=None, ended_at=enrollment.due_at
        )
    return enrollment


# ---------------------------------------------------------------------------- enroll and migrate


def enroll(
    sequence: Sequence, version: int, lead_id: str, now: datetime, previous: Enrollment | None
) -> Enrollment | None:
    """A new active enrollment of ``lead_id`` at the sequence's first step, due now.

    Args:
        sequence: the sequence, at ``version``.
        version: the version number of that definition.
        lead_id: the lead.
        now: the time of enrollment.
        previous: the lead's latest enrollment in this sequence, if any.

    Returns:
        The enrollment, or None when the sequence is paused or its re-entry policy refuses:
        ``never`` (any previous enrollment), ``after_exit`` (the previous one is still active,
        or ended less than ``cooldown_days`` ago); ``always`` re-enrolls at once (the caller
        ends the previous one).
    """
    if sequence.status == "paused":
        return None
    entry = 1
    if previous is not None:
        reentry = sequence.reentry
        if reentry.policy == "never":
            return None
        if reentry.policy == "after_exit":
            if previous.status == ACTIVE:
                return None
            ended = previous.ended_at or previous.step_started_at
            if now - ended < timedelta(days=reentry.cooldown_days):
                return None
        entry = previous.entry + 1
    return Enrollment(
        lead_id=lead_id,
        sequence_id=sequence.id,
        version=version,
        entry=entry,
        step_id=sequence.steps[0].id,
        status=ACTIVE,
        entered_at=now,
        step_started_at=now,
        due_at=now,
    )


def migrate(
    enrollment: Enrollment, sequence: Sequence, version: int, *, now: datetime | None = None
) -> Enrollment | None:
    """The enrollment moved onto ``version`` of ``sequence``, when a migration of the sequence applies.

    A migration applies when its ``from_version`` is the enrollment's version. The current
    step is mapped through ``Migration.steps``, or kept when that id exists in the new version;
    mapped to 'end', the enrollment completes. The time already spent in the step still counts
    (a wait keeps its start); emails already sent keep their message ids, so a step that keeps
    its id is not sent again.

    Args:
        enrollment: an active enrollment on an older version.
        sequence: the new definition.
        version: its version number.
        now: when the move happens; the enrollment is due then (without it, due at once:
            at the start of its current step, which is already past).

    Returns:
        The moved enrollment, or None when no migration applies or the step has no place in the
        new version (the lead then finishes the version it is on).
    """
    if enrollment.status != ACTIVE or enrollment.version == version:
        return None
    migration = next((m for m in sequence.migrations if m.from_version == enrollment.version), None)
    if migration is None:
        return None
    target = migration.steps.get(enrollment.step_id, enrollment.step_id)
    due = now if now is not None else enrollment.step_started_at
    if target == END:
        return replace(
            enrollment,
            version=version,
            step_id=END,
            status=COMPLETED,
            exit_reason=COMPLETED,
            due_at=None,
            ended_at=due,
        )
    if target not in _plan(sequence).steps:
        return None
    return replace(enrollment, version=version, step_id=target, due_at=due)
