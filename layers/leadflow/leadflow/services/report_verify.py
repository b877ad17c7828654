"""``leadflow report verify``: recompute every report's aggregates from the raw records and compare.

Each report is recomputed from what it counts, read from the stores, never from the counters:

- **funnel** and **reps** (the funnel by share code): leads created from the lead profiles
  themselves (creation time, first touch, the form's starting stage); stages reached from the
  once-per-lead stage records, and every lead's *current* stage must have one (a lost stage
  change shows up here).
- **sequences** (per day, version, step and variant) and **ab** (its rows per variant, which the
  A/B tests read): opens, clicks, bounces and complaints from the leads' email activities, each
  once per email (placed where its marker says it was counted, else where the reporting function
  would place it now); enrolled, sent, skips, goals, exits and unsubscribes
  from the ``nurture.counted`` events as their markers keep them (the nurture functions' own
  record of what they did: a skip or a deferral leaves no other trace).
- **forms** (pages and forms): submissions and new leads from the capture activities (the
  activity of a lead's creation is the one at its ``created_at``), views from the tracked
  ``page_viewed`` activities of visitors and leads (each once, by activity id).
- **handoffs** (per owner and team): assigned from the hand-off records, outcomes, rejection
  reasons and time to accept from the ``sales_feedback`` activities (once per hand-off and outcome).

Any difference between what is stored and what is recomputed is drift, listed per report and
counter item; a raw record the reports never counted (its marker is missing) is listed as
uncounted. Records of an erased lead are gone while its counts stay (erasure keeps the
aggregates): verify after an erasure shows that lead's counts as drift.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadflow.domain.events import SOURCE_EMAIL, SOURCE_TRACKING
from leadflow.domain.form_reports import form_posted, page_view_key
from leadflow.domain.reporting import (
    REPORTED_STAGES,
    Fact,
    Key,
    day_of,
    lead_created,
    merge_increments,
    reached_increments,
)
from leadflow.domain.sales_reports import handoff_created, handoff_outcome
from leadflow.domain.sequence_reports import (
    ENGAGEMENT,
    SendRecord,
    counted_increments,
    sends_of,
    sequence_key,
)
from leadflow.services.report_drift import Drift, VerifyResult, report_of
from leadflow.services.reporting import BusEvent, ReportingService

CAPTURE_TYPES = frozenset({"form_submitted", "lead_saved", "lead_imported"})
ENGAGEMENT_TYPES = frozenset(ENGAGEMENT)
MAIL_LOG_DAYS = 7  # the mail log keeps a lead's sends of the last 7 days (docs/data-model.md)
VERIFIED_ACTIVITIES = CAPTURE_TYPES | ENGAGEMENT_TYPES | {"sales_feedback", "page_viewed"}
"""The activity types the reports are recomputed from (``DynamoLeadFacts.scan_records``)."""
ERASED = "ERASED#"
"""Prefix of the items that keep what erased people's records had added to a counter
(``ERASED#<counter PK>``, ``<counter SK>``; ``erased_contribution``): no id, no address."""


def _numbers(item: Mapping[str, Any]) -> dict[str, int]:
    """The counts of a counter item (its numeric attributes)."""
    return {k: int(v) for k, v in item.items() if k not in ("PK", "SK") and isinstance(v, int)}


def _add(totals: dict[Key, dict[str, int]], increments: Mapping[Key, Mapping[str, int]]) -> None:
    for key, fields in increments.items():
        into = totals.setdefault(key, {})
        for name, n in fields.items():
            into[name] = into.get(name, 0) + n


# ---------------------------------------------------------------------------- funnel and reps
def expected_funnel(
    profiles: Iterable[Mapping[str, Any]],
    stage_records: Iterable[Mapping[str, Any]],
    form_stage: Callable[[str], str],
    result: VerifyResult,
) -> dict[Key, dict[str, int]]:
    """The funnel counters recomputed from lead profiles and stage records (``LEADRPT#`` items)."""
    totals, reached = _stages(stage_records, result)
    _add(totals, _created(profiles, form_stage, reached, result))
    return totals


def _stages(
    stage_records: Iterable[Mapping[str, Any]], result: VerifyResult
) -> tuple[dict[Key, dict[str, int]], set[tuple[str, str]]]:
    """The stage records' counters, and which lead reached which stage."""
    facts = []
    reached: set[tuple[str, str]] = set()
    for record in stage_records:
        sk = str(record["SK"])
        if not sk.startswith("REACHED#") or not all(record.get(k) is not None for k in ("day", "cohort", "dims")):
            continue  # not a stage record as the reporting function writes them
        lead_id, stage = str(record["PK"]).removeprefix("LEADRPT#"), sk.removeprefix("REACHED#")
        reached.add((lead_id, stage))
        result.stage_records += 1
        facts.append(reached_increments(stage, record))
    totals: dict[Key, dict[str, int]] = {}
    for increments in facts:
        _add(totals, increments)
    return totals, reached


def _created(
    profiles: Iterable[Mapping[str, Any]],
    form_stage: Callable[[str], str],
    reached: set[tuple[str, str]],
    result: VerifyResult,
) -> dict[Key, dict[str, int]]:
    """Leads created, from their profiles; a current stage without its record is listed as missing."""
    created = []
    for profile in profiles:
        if not profile.get("created_at"):
            continue
        result.leads += 1
        lead_id = str(profile["lead_id"])
        touch = profile.get("first_touch") or {}
        creation = lead_created(
            lead_id, datetime.fromisoformat(str(profile["created_at"])), touch, form_stage(str(touch.get("form_id")))
        )
        created.append(creation[0])
        stage = str(profile.get("stage") or "")
        if stage in REPORTED_STAGES and (lead_id, stage) not in reached:
            result.missing_stage_records.append((lead_id, stage))
    return merge_increments(created)


# ---------------------------------------------------------------------------- the raw records
@dataclass
class LeadRecords:
    """What verify reads of the LeadsTable, sorted by kind (``DynamoLeadFacts.scan_records``)."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    sends: dict[str, list[SendRecord]] = field(default_factory=dict)
    activities: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """``(lead id or "", activity)``: captures, email engagement, sales feedback, page views."""
    handoffs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, items: Iterable[Mapping[str, Any]]) -> LeadRecords:
        records = cls()
        for item in items:
            pk, sk = str(item["PK"]), str(item["SK"])
            lead_id = pk.removeprefix("LEAD#") if pk.startswith("LEAD#") else ""
            if sk == "PROFILE" and lead_id:
                records.profiles[lead_id] = dict(item)
            elif sk == "MAIL" and lead_id:
                records.sends[lead_id] = sends_of(item.get("sends") or [])
            elif sk.startswith("HANDOFF#") and lead_id:
                records.handoffs.append(dict(item))
            elif sk.startswith("ACT#"):
                records.activities.append((lead_id, dict(item)))
        return records


EngagementFacts = Callable[[str, str, Mapping[str, Any], list[SendRecord]], list[Fact]]
"""``(kind, lead id, activity, the lead's sends) -> facts``: what the reporting function counts for it."""


def expected_sequences(
    records: LeadRecords,
    markers: Mapping[Key, Mapping[str, Any]],
    engagement: EngagementFacts,
    result: VerifyResult,
) -> dict[Key, dict[str, int]]:
    """The sequence counters of these records: each email engagement once.

    Args:
        markers: the ReportsTable's marker items by key (``MSGRPT#``, ...).
        engagement: what the reporting function counts for an engagement activity, its marker aside.
    """
    totals: dict[Key, dict[str, int]] = {}
    seen: set[Key] = set()
    for lead_id, activity in records.activities:
        kind = str(activity.get("type"))
        if kind not in ENGAGEMENT_TYPES or not activity.get("message_id") or not lead_id:
            continue
        for fact in engagement(kind, lead_id, activity, records.sends.get(lead_id, [])):
            if fact.marker in seen:
                continue  # once per email and kind (a second open of the same email)
            seen.add(fact.marker)
            marker = markers.get(fact.marker)
            if marker is None:
                result.uncounted[report_of(next(iter(fact.increments), ("", ""))) or "sequences"] += 1
                _add(totals, fact.increments)
            elif marker.get("pk") and marker.get("sk"):  # counted where the mail log said then
                _add(totals, {(str(marker["pk"]), str(marker["sk"])): {str(fact.marker[1]): 1}})
            else:
                _add(totals, fact.increments)
    return totals


def counted_events(markers: Iterable[Mapping[str, Any]]) -> dict[Key, dict[str, int]]:
    """The sequence counters the ``nurture.counted`` events stand for, as their markers keep them."""
    totals: dict[Key, dict[str, int]] = {}
    for item in markers:
        if "counts" in item and "day" in item:
            _add(totals, counted_increments(str(item["day"]), item["counts"]))
    return totals


def engagement_of(service: ReportingService) -> EngagementFacts:
    """What ``service`` (the reporting function's own logic) counts for an engagement activity."""

    def facts(kind: str, lead_id: str, activity: Mapping[str, Any], sends: list[SendRecord]) -> list[Fact]:
        source = SOURCE_TRACKING if kind in ("email_opened", "email_clicked") else SOURCE_EMAIL
        detail = {**activity, "lead_id": lead_id, "occurred_at": activity.get("recorded_at") or activity.get("at")}
        event = BusEvent("verify", "activity.recorded", detail, source)
        return service.engagement_facts(kind, event, sends) if event.engagement == kind else []

    return facts


def expected_forms(records: LeadRecords, views: set[str] | None = None) -> dict[Key, dict[str, int]]:
    """Pages and forms: every capture (a submission of its page and form; a new lead's first) and
    every tracked page view (once by activity id: a visitor's views are copied to the lead).

    Args:
        views: the page views counted so far (by activity id), when records come part by part."""
    facts: list[Fact] = []
    views = set() if views is None else views
    totals: dict[Key, dict[str, int]] = {}
    for lead_id, activity in records.activities:
        kind = str(activity.get("type"))
        if not activity.get("at"):
            continue
        if kind == "page_viewed":
            activity_id = str(activity.get("activity_id"))
            if activity_id not in views:
                views.add(activity_id)
                _add(totals, {page_view_key(day_of(str(activity["at"])), activity.get("url")): {"views": 1}})
        elif kind in CAPTURE_TYPES and lead_id and "touch" in activity:
            touch = activity.get("touch") or {}
            profile = records.profiles.get(lead_id) or {}
            at = str(activity["at"])
            is_new = str(profile.get("created_at")) == at
            form_id = str(touch.get("form_id") or activity.get("form_id") or "")
            facts.append(
                form_posted(str(activity.get("activity_id")), datetime.fromisoformat(at), form_id, touch, is_new)
            )
    _add(totals, merge_increments(facts))
    return totals


def expected_handoffs(
    records: LeadRecords, markers: Mapping[Key, Mapping[str, Any]], result: VerifyResult
) -> dict[Key, dict[str, int]]:
    """Hand-offs per owner and team from the hand-off records and the sales feedback on them."""
    facts: list[Fact] = []
    created: dict[str, dict[str, Any]] = {}
    for record in records.handoffs:
        if not record.get("handoff_id") or not record.get("created_at"):
            continue
        owner = record.get("owner") or {}
        fact = handoff_created(
            str(record["handoff_id"]),
            datetime.fromisoformat(str(record["created_at"])),
            owner.get("id"),
            owner.get("team"),
        )
        created[str(record["handoff_id"])] = fact.marker_item
        facts.append(fact)
    feedback = sorted(
        (a for _, a in records.activities if a.get("type") == "sales_feedback" and a.get("handoff_id")),
        key=lambda a: str(a.get("recorded_at") or a.get("at")),
    )
    for activity in feedback:
        handoff_id = str(activity["handoff_id"])
        at = datetime.fromisoformat(str(activity["at"]))
        outcome = handoff_outcome(
            handoff_id, str(activity.get("outcome")), activity.get("reason"), at, created.get(handoff_id)
        )
        if outcome is not None:
            facts.append(outcome)
    totals: dict[Key, dict[str, int]] = {}
    once: set[Key] = set()
    for fact in facts:
        if fact.marker in once:
            continue  # the first feedback of each outcome counts
        once.add(fact.marker)
        if fact.marker not in markers:
            result.uncounted["handoffs"] += 1
        _add(totals, fact.increments)
    return totals


def compare(
    stored_items: Iterable[Mapping[str, Any]],
    expected: Mapping[Key, Mapping[str, int]],
    result: VerifyResult,
    keep: Callable[[Key], bool] = lambda _: True,
) -> None:
    """Drift between the stored counter items and the recomputed ones (missing counts as 0).

    ``keep``: only the counter items it accepts are compared (e.g. one campaign's)."""
    stored: dict[Key, dict[str, int]] = {}
    expected = {k: v for k, v in expected.items() if keep(k)}
    for item in stored_items:
        key = (str(item["PK"]), str(item["SK"]))
        if not keep(key):
            continue
        stored[key] = _numbers(item)
    result.counters += len(stored)
    for key in stored:
        result.checked[report_of(key) or "?"] += 1
    for key in sorted(set(stored) | set(expected)):
        have, want = stored.get(key, {}), expected.get(key, {})
        for name in sorted(set(have) | set(want)):
            if have.get(name, 0) != want.get(name, 0):
                result.drift.append(Drift(key, name, have.get(name, 0), want.get(name, 0)))


def verify_reports(
    lead_items: Iterable[Mapping[str, Any]],
    report_items: Iterable[Mapping[str, Any]],
    form_stage: Callable[[str], str],
    engagement: EngagementFacts,
    now: datetime,
    *,
    keep: Callable[[Key], bool] = lambda _: True,
) -> VerifyResult:
    """Every report recomputed from the raw records and compared with its counter items.

    Args:
        lead_items: the LeadsTable's profiles, mail logs, hand-offs and activities, each partition's
            items together (as a ``Scan`` returns them): read one partition at a time.
        report_items: every item of the ReportsTable.
        form_stage: the stage a form creates leads in.
        engagement: what the reporting function counts for an email engagement activity.
        now: the time of the run (the newest send of a mail log, if later: a dev clock ahead).
        keep: which counter items to compare (default: all).

    Raises:
        ValueError: a partition's items came apart.
    """
    counters: list[Mapping[str, Any]] = []
    markers: dict[Key, Mapping[str, Any]] = {}
    erased: dict[Key, dict[str, int]] = {}
    for item in report_items:
        key = (str(item["PK"]), str(item["SK"]))
        if key[0].startswith(ERASED):  # what erased people's records had added: their records are gone
            _add(erased, {(key[0].removeprefix(ERASED), key[1]): _numbers(item)})
        elif report_of(key) is not None:
            counters.append(item)
        else:
            markers[key] = item
    result = VerifyResult()
    expected, reached = _stages((m for k, m in markers.items() if k[0].startswith("LEADRPT#")), result)
    _add(expected, counted_events(markers.values()))
    _add(expected, erased)
    views: set[str] = set()
    newest = now.isoformat()
    logged: Counter[Key] = Counter()
    for partition in _partitions(lead_items):
        records = LeadRecords.of(partition)
        _add(expected, _created(records.profiles.values(), form_stage, reached, result))
        _add(expected, expected_sequences(records, markers, engagement, result))
        _add(expected, expected_forms(records, views))
        _add(expected, expected_handoffs(records, markers, result))
        newest = max([newest, *(s.at for sends in records.sends.values() for s in sends)], key=datetime.fromisoformat)
        logged.update(
            sequence_key(s.sequence_id, day_of(s.at), s.version, s.step_id, s.variant)
            for sends in records.sends.values()
            for s in sends
        )
    since = day_of(datetime.fromisoformat(newest) - timedelta(days=MAIL_LOG_DAYS - 1))
    result.logged_since = since
    for item in counters:
        if str(item["PK"]).startswith("SEQRPT#") and "delivered" in item:
            # Counted from SES's Delivery events before they were dropped (a report now derives
            # delivered from sent and bounces): nothing recounts it, it is compared as stored.
            key = (str(item["PK"]), str(item["SK"]))
            expected.setdefault(key, {})["delivered"] = int(item["delivered"])
    compare(counters, expected, result, keep)
    sent = {(str(i["PK"]), str(i["SK"])): int(i.get("sent", 0)) for i in counters if str(i["PK"]).startswith("SEQRPT#")}
    for key in sorted(k for k in set(sent) | set(logged) if k[1] >= since and keep(k)):
        if logged[key] != sent.get(key, 0):
            result.sends_unlike_sent.append((key, logged[key], sent.get(key, 0)))
    return result


def _partitions(items: Iterable[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    """The items a partition at a time (a lead's profile, mail log, hand-offs and activities; a
    visitor's visits), so that verify holds one lead's records, not the table's.

    Raises:
        ValueError: a partition's items came apart (a ``Scan`` keeps them together)."""
    done: set[str] = set()
    group: list[Mapping[str, Any]] = []
    for item in items:
        pk = str(item["PK"])
        if group and pk != str(group[0]["PK"]):
            yield group
            group = []
        if not group:
            if pk in done:
                raise ValueError(f"the items of partition {pk.split('#', 1)[0]}#... came apart")
            done.add(pk)
        group.append(item)
    if group:
        yield group


def erased_contribution(
    items: Iterable[Mapping[str, Any]], markers: Iterable[Mapping[str, Any]], form_stage: Callable[[str], str]
) -> dict[Key, dict[str, int]]:
    """What one person's records added to the counters, as ``verify`` recomputes it: written beside
    the counters when an erasure deletes the records, so the reports keep their counts and verify
    still finds 0 drift.

    Args:
        items: the person's items of the LeadsTable (their lead partition, their visits).
        markers: the person's markers in the ReportsTable (``LEADRPT#``, ``HANDOFFRPT#``, ``MSGRPT#``).
        form_stage: the stage a form creates leads in.
    """
    records = LeadRecords.of(items)
    found = {(str(m["PK"]), str(m["SK"])): m for m in markers}
    scratch = VerifyResult()
    stages = [m for key, m in found.items() if key[0].startswith("LEADRPT#")]
    totals = expected_funnel(records.profiles.values(), stages, form_stage, scratch)
    _add(totals, expected_sequences(records, found, _counted_engagement, scratch))
    _add(totals, expected_forms(records))
    _add(totals, expected_handoffs(records, found, scratch))
    return totals


def _counted_engagement(kind: str, lead_id: str, activity: Mapping[str, Any], sends: list[SendRecord]) -> list[Fact]:
    """An engagement's markers, with nothing to add of its own: only what a marker says was counted
    is the person's contribution (a click counts its email's open too)."""
    kinds = ("email_clicked", "email_opened") if kind == "email_clicked" else (kind,)
    return [Fact((f"MSGRPT#{activity['message_id']}", ENGAGEMENT[k]), {}) for k in kinds]
