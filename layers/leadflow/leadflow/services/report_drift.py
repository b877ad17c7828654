"""What ``leadflow report verify`` finds: drift per counter item and field, and the run's summary.

``report_of`` tells which report a counter item belongs to; ``VerifyResult`` gathers what a run
compared, what drifted and what was never counted (``services.report_verify`` fills it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.reporting import Key
from leadflow.domain.sequence_reports import NO_VARIANT

REPORTS = ("funnel", "reps", "sequences", "ab", "forms", "handoffs")
SHOWN = 50  # drifted items listed in a summary


def report_of(key: Key) -> str | None:
    """Which report a counter item belongs to (None: not a counter)."""
    pk, sk = key
    if pk.startswith("FUNNEL#"):
        return "reps" if pk.endswith("#ref") else "funnel"
    if pk.startswith("SEQRPT#"):
        return "sequences" if sk.endswith("#" + NO_VARIANT) else "ab"
    if pk == "PAGES" or pk.startswith("FORMPAGES#"):
        return "forms"
    if pk.startswith("HANDOFFS#"):
        return "handoffs"
    return None


@dataclass
class Drift:
    key: Key
    field: str
    stored: int
    expected: int

    @property
    def report(self) -> str:
        return report_of(self.key) or "?"


@dataclass
class VerifyResult:
    leads: int = 0
    counters: int = 0
    stage_records: int = 0
    missing_stage_records: list[tuple[str, str]] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    """Counter items compared, per report."""
    uncounted: Counter[str] = field(default_factory=Counter)
    """Raw records whose marker is missing (the reports never counted them), per report."""
    logged_since: str = ""
    """The first day whose sends the mail logs still hold (they keep 7 days)."""
    sends_unlike_sent: list[tuple[Key, int, int]] = field(default_factory=list)
    """Informational: ``(counter, emails in the mail logs, sent counted)`` where they differ, from
    ``logged_since`` on (an email SES rejected, or whose send stayed uncertain, is logged and not
    counted as sent; one claimed just before midnight may be counted the next day)."""

    @property
    def clean(self) -> bool:
        return not self.drift and not self.missing_stage_records

    def summary(self) -> dict[str, Any]:
        drifted = Counter(d.report for d in self.drift)
        return {
            "leads": self.leads,
            "counter_items": self.counters,
            "stage_records": self.stage_records,
            "missing_stage_records": len(self.missing_stage_records),
            "drift": len(self.drift),
            "mail_logs_since": self.logged_since,
            "sends_unlike_sent": [
                {"pk": k[0], "sk": k[1], "in_mail_logs": logged, "counted_sent": sent}
                for k, logged, sent in self.sends_unlike_sent[:SHOWN]
            ],
            "reports": {
                name: {"counter_items": self.checked[name], "drift": drifted[name], "uncounted": self.uncounted[name]}
                for name in REPORTS
            },
            "drifted": [
                {
                    "report": d.report,
                    "pk": d.key[0],
                    "sk": d.key[1],
                    "field": d.field,
                    "stored": d.stored,
                    "expected": d.expected,
                }
                for d in self.drift[:SHOWN]
            ],
        }
