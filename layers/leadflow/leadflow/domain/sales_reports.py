"""Hand-off and rep reports: counting hand-offs and sales feedback, and the reports. Pure.

Hand-off counters (ReportsTable): ``PK=HANDOFFS#owner`` / ``HANDOFFS#team``, ``SK=<day>#<owner or
team>`` with ``assigned``, ``accepted``, ``rejected``, ``opportunity``, ``won``, ``lost``,
``reason_<text>`` (rejections by reason) and ``tta_<bucket>`` (hours from assignment to
acceptance). Each hand-off is counted once when created and once per outcome (a marker per
hand-off and outcome); a hand-off's owner and team are those it was assigned to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from leadflow.domain.report_views import timing
from leadflow.domain.reporting import HOUR_BUCKETS, MARKER_DAYS, Fact, day_of, hour_bucket

OUTCOMES = ("accepted", "rejected", "opportunity", "won", "lost")
NOBODY = "(queue)"
REASON_LENGTH = 40


def _expires(at: datetime) -> int:
    return int(at.timestamp()) + MARKER_DAYS * 86_400


def reason_key(reason: object) -> str:
    """A rejection reason as a counter name: lower case, words joined by ``-``, bounded."""
    text = re.sub(r"[^a-z0-9]+", "-", str(reason or "").lower()).strip("-")
    return text[:REASON_LENGTH] or "unspecified"


def handoff_created(handoff_id: str, at: datetime, owner_id: object, team: object) -> Fact:
    """A hand-off assigned to an owner (or the queue) of a team: ``assigned`` once."""
    owner, crew = str(owner_id or NOBODY), str(team or NOBODY)
    fact = Fact(
        (f"HANDOFFRPT#{handoff_id}", "CREATED"),
        {"at": at.isoformat(), "owner": owner, "team": crew, "expires_at": _expires(at)},
    )
    day = day_of(at)
    fact.add(("HANDOFFS#owner", f"{day}#{owner}"), "assigned")
    fact.add(("HANDOFFS#team", f"{day}#{crew}"), "assigned")
    return fact


def handoff_outcome(
    handoff_id: str, outcome: str, reason: object, at: datetime, created: Mapping[str, Any] | None
) -> Fact | None:
    """Sales feedback on a hand-off, once per hand-off and outcome, for its owner and team.

    Args:
        created: the hand-off's creation record (``handoff_created``'s marker), None if not counted.
    Returns:
        None for an outcome the reports do not count.
    """
    if outcome not in OUTCOMES:
        return None
    created = created or {}
    owner, crew = str(created.get("owner") or NOBODY), str(created.get("team") or NOBODY)
    fact = Fact((f"HANDOFFRPT#{handoff_id}", f"OUTCOME#{outcome}"), {"at": at.isoformat(), "expires_at": _expires(at)})
    day = day_of(at)
    for key in (("HANDOFFS#owner", f"{day}#{owner}"), ("HANDOFFS#team", f"{day}#{crew}")):
        fact.add(key, outcome)
        if outcome == "rejected":
            fact.add(key, f"reason_{reason_key(reason)}")
        if outcome == "accepted" and created.get("at"):
            hours = max((at - datetime.fromisoformat(str(created["at"]))).total_seconds() / 3600, 0.0)
            fact.add(key, f"tta_{hour_bucket(hours)}")
    return fact


def handoff_report(
    owners: Iterable[Mapping[str, Any]], teams: Iterable[Mapping[str, Any]], *, start: str, end: str
) -> dict[str, Any]:
    """Hand-offs per owner and per team over a period, from their counter items."""

    def rows(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        grouped: dict[str, dict[str, int]] = {}
        for item in items:
            name = str(item["SK"]).split("#", 1)[1]
            into = grouped.setdefault(name, {})
            for field, value in item.items():
                if field not in ("PK", "SK") and isinstance(value, int):
                    into[field] = into.get(field, 0) + value
        out = []
        for name, counts in sorted(grouped.items(), key=lambda kv: (-kv[1].get("assigned", 0), kv[0])):
            assigned = counts.get("assigned", 0)
            histogram = [counts.get(f"tta_{i}", 0) for i in range(len(HOUR_BUCKETS) + 1)]
            out.append(
                {
                    "name": name,
                    **{outcome: counts.get(outcome, 0) for outcome in ("assigned", *OUTCOMES)},
                    "rejection_reasons": {
                        k.removeprefix("reason_"): v for k, v in sorted(counts.items()) if k.startswith("reason_")
                    },
                    "acceptance_rate": round(counts.get("accepted", 0) / assigned, 4) if assigned else None,
                    "win_rate": round(counts.get("won", 0) / assigned, 4) if assigned else None,
                    "time_to_accept": timing(histogram),
                }
            )
        return out

    return {"from": start, "to": end, "owners": rows(owners), "teams": rows(teams)}


def reps_report(funnel: Mapping[str, Any], referrers: Mapping[str, tuple[str | None, str | None]]) -> dict[str, Any]:
    """Leads, MQL, SQL and won per share code, from the funnel by ``ref``.

    Args:
        funnel: ``report_views.funnel_report(..., by="ref")``.
        referrers: share code -> (name, kind) from ``referrers.yaml``.
    """
    rows = []
    for row in funnel["rows"]:
        name, kind = referrers.get(row["key"], (None, None))
        reached = row["reached"]
        rows.append(
            {
                "ref": row["key"],
                "name": name,
                "kind": kind,
                "leads": row["created"],
                "mql": reached["mql"],
                "sql": reached["sql"],
                "won": reached["customer"],
                "lead_to_mql": row["conversion"]["lead_to_mql"],
                "mql_to_sql": row["conversion"]["mql_to_sql"],
            }
        )
    return {"from": funnel["from"], "to": funnel["to"], "view": funnel["view"], "reps": rows}
