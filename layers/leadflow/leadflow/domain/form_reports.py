"""Forms and pages: counting page views and submissions by page, and the report. Pure.

Counter items (ReportsTable): ``PK=PAGES``, ``SK=<day>#<page>`` with ``views`` (tracked page views,
added by the tracking function as each is recorded), ``submissions`` and ``new_leads`` (form posts
from that page, from ``lead.captured``); ``PK=FORMPAGES#<form_id>``, ``SK=<day>#<page>`` with the
form's ``submissions`` from that page (which pages a form's views are the views of). A page is
the host and path of its URL (no query, no fragment: no personal data, one row per page).
Submissions, new leads and spam per form come from the capture transaction's own day counters
(LeadsTable ``STATS#<day>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from leadflow.domain.reporting import MARKER_DAYS, NO_VALUE, VALUE_MAX_LENGTH, Fact, Key, day_of


def page_key(url: object) -> str:
    """``host/path`` of a page URL, bounded; ``(none)`` when there is none."""
    text = str(url or "").strip()
    if not text:
        return NO_VALUE
    try:
        parts = urlsplit(text)
    except ValueError:
        return NO_VALUE
    page = f"{parts.hostname or ''}{parts.path or '/'}"
    return page[:VALUE_MAX_LENGTH] if parts.hostname else NO_VALUE


def page_view_key(day: str, url: object) -> Key:
    return "PAGES", f"{day}#{page_key(url)}"


def form_posted(event_id: str, at: datetime, form_id: str, touch: Mapping[str, Any], new: bool) -> Fact:
    """A form post (``lead.captured``): a submission of its page, and of the form from that page."""
    day, page = day_of(at), page_key(touch.get("page_url"))
    fact = Fact(
        (f"EVT#{event_id}", "EVT"), {"at": at.isoformat(), "expires_at": int(at.timestamp()) + MARKER_DAYS * 86_400}
    )
    fact.add(("PAGES", f"{day}#{page}"), "submissions")
    if new:
        fact.add(("PAGES", f"{day}#{page}"), "new_leads")
    fact.add((f"FORMPAGES#{form_id}", f"{day}#{page}"), "submissions")
    return fact


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def forms_report(
    form_stats: Iterable[tuple[str, Mapping[str, Any]]],
    pages: Iterable[Mapping[str, Any]],
    form_pages: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    start: str,
    end: str,
) -> dict[str, Any]:
    """Forms (views, submissions, spam, new leads, conversion) and pages over a period.

    Args:
        form_stats: ``(form_id, {submissions, new_leads, spam, ...})`` per day counter item.
        pages: the ``PAGES`` counter items of the period.
        form_pages: form id -> its ``FORMPAGES`` counter items of the period.
    """
    page_totals: dict[str, dict[str, int]] = {}
    for item in pages:
        page = str(item["SK"]).split("#", 1)[1]
        into = page_totals.setdefault(page, {"views": 0, "submissions": 0, "new_leads": 0})
        for name in into:
            into[name] += int(item.get(name, 0))
    forms: dict[str, dict[str, int]] = {}
    for form_id, stats in form_stats:
        into = forms.setdefault(form_id, {"submissions": 0, "new_leads": 0, "spam": 0})
        for name in into:
            into[name] += int(stats.get(name, 0))
    rows = []
    for form_id in sorted(set(forms) | set(form_pages)):
        counts = forms.get(form_id, {"submissions": 0, "new_leads": 0, "spam": 0})
        its_pages = sorted({str(i["SK"]).split("#", 1)[1] for i in form_pages.get(form_id, [])} - {NO_VALUE})
        views = sum(page_totals.get(p, {}).get("views", 0) for p in its_pages)
        rows.append(
            {
                "form_id": form_id,
                "views": views,
                **counts,
                "conversion_rate": _rate(counts["submissions"], views),
                "pages": its_pages,
            }
        )
    return {
        "from": start,
        "to": end,
        "forms": rows,
        "pages": [
            {"page": page, **t, "conversion_rate": _rate(t["submissions"], t["views"])}
            for page, t in sorted(page_totals.items(), key=lambda kv: (-kv[1]["views"], kv[0]))
        ],
    }
