"""Report charts as inline SVG, and one self-contained HTML page (no script, no CDN, no font).

Plain SVG drawn from the reports' JSON (the API's response models, dumped by alias): a funnel,
conversion by source, a sequence's step-by-step flow with its rates, an A/B comparison with
its confidence. Every bar carries ``data-series`` and ``data-value`` (the number the API gave)
and shows it as text, so a reader, a screen reader and a test see the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from leadflow.domain.sequence_reports import METRICS, held_back

WIDTH = 720
BAR = 26
GAP = 10
LABEL = 190
COLORS = ("#2f6fdf", "#1f9d74", "#e08a1e", "#a04cc9", "#d0453a", "#5c6b7a")
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:980px;
color:#1d2733;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}h3{font-size:15px}
figure{margin:12px 0 24px}figcaption{color:#5c6b7a;font-size:13px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border-bottom:1px solid #e3e8ee;padding:4px 10px;text-align:right}th:first-child,td:first-child{text-align:left}
.verdict{font-weight:600}.muted{color:#5c6b7a}
svg text{font:12px system-ui,sans-serif;fill:#1d2733}
"""
CHART_STYLE = "svg text{font:12px system-ui,sans-serif;fill:#1d2733}"
"""The charts' own rule, for a page that keeps its own style for the rest."""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _bar_rows(title: str, rows: Sequence[tuple[str, Sequence[tuple[str, float, str]]]]) -> str:
    """Horizontal bars: per row a label and one bar per series ``(series, value, shown text)``."""
    top = max((v for _, bars in rows for _, v, _ in bars), default=0) or 1
    series_count = max((len(bars) for _, bars in rows), default=1)
    row_height = series_count * BAR + GAP * 2
    height = len(rows) * row_height + 40
    span = WIDTH - LABEL - 120
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" data-chart="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for index, (label, bars) in enumerate(rows):
        y0 = 20 + index * row_height
        parts.append(
            f'<text x="0" y="{y0 + row_height / 2:.0f}" data-label="{escape(label)}">{escape(label[:28])}</text>'
        )
        for k, (series, value, shown) in enumerate(bars):
            y = y0 + GAP + k * BAR
            width = 0 if top <= 0 else max(span * value / top, 1 if value else 0)
            parts.append(
                f'<rect x="{LABEL}" y="{y}" width="{width:.1f}" height="{BAR - 6}" fill="{COLORS[k % len(COLORS)]}" '
                f'data-series="{escape(series)}" data-row="{escape(label)}" data-value="{value:g}"/>'
                f'<text x="{LABEL + width + 6:.1f}" y="{y + BAR / 2 + 1:.0f}">{escape(shown)}</text>'
            )
    legend = list(dict.fromkeys(series for _, bars in rows for series, _, _ in bars))
    x = LABEL
    for k, series in enumerate(legend):
        parts.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{COLORS[k % len(COLORS)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{height - 5}">{escape(series)}</text>')
        x += 18 + 8 * len(series)
    parts.append("</svg>")
    return "".join(parts)


def funnel_chart(report: Mapping[str, Any]) -> str:
    """Leads created, then each funnel stage reached, with the conversion from the stage before."""
    totals = report["totals"]
    reached, conversion = totals["reached"], totals["conversion"]
    rows: list[tuple[str, Sequence[tuple[str, float, str]]]] = [
        ("created", [("leads", totals["created"], f"{totals['created']}")])
    ]
    previous = None
    for stage in ("lead", "mql", "sql", "opportunity", "customer"):
        rate = conversion.get(f"{previous}_to_{stage}") if previous else None
        shown = f"{reached[stage]}" + (f"  ({_pct(rate)} of {previous})" if previous else "")
        rows.append((stage, [("leads", reached[stage], shown)]))
        previous = stage
    return _bar_rows("Funnel", rows)


def conversion_chart(report: Mapping[str, Any], most: int = 12) -> str:
    """Per value of the report's dimension: leads created and the lead-to-MQL rate."""
    rows = []
    for row in report["rows"][:most]:
        rate = row["conversion"]["lead_to_mql"]
        rows.append(
            (
                str(row["key"]),
                [
                    ("leads created", row["created"], f"{row['created']}"),
                    ("MQL", row["reached"]["mql"], f"{row['reached']['mql']} ({_pct(rate)} lead to MQL)"),
                ],
            )
        )
    return _bar_rows(f"Conversion by {report['by']}", rows)


def flow_chart(report: Mapping[str, Any]) -> str:
    """A sequence's steps in order: sent, unique opens and clicks, with their rates over sent."""
    rows = []
    for step in report["flow"]:
        counts, rates = step["counts"], step["rates"]
        if not (counts["sent"] or counts["enrolled"] or counts["goal_reached"] or counts["exits"]):
            continue
        rows.append(
            (
                str(step["step"]),
                [
                    ("sent", counts["sent"], f"{counts['sent']} sent"),
                    ("unique opens", counts["unique_opens"], f"{counts['unique_opens']} ({_pct(rates['open_rate'])})"),
                    (
                        "unique clicks",
                        counts["unique_clicks"],
                        f"{counts['unique_clicks']} ({_pct(rates['click_rate'])})",
                    ),
                ],
            )
        )
    return _bar_rows(f"Sequence {report['sequence_id']}: step by step", rows)


def ab_chart(test: Mapping[str, Any]) -> str:
    """The variants' rates with a normal-approximation interval at the test's confidence."""
    z = _z_of(float(test["confidence"]))
    rows = []
    for arm in test["variants"]:
        rate, sent = float(arm["rate"]), int(arm["sent"])
        half = z * math.sqrt(rate * (1 - rate) / sent) if sent else 0.0
        shown = f"{_pct(rate)} ± {half * 100:.1f} pts of {sent} sent"
        rows.append((f"variant {arm['variant']}", [(f"{test['metric']} rate", rate, shown)]))
    return _bar_rows(f"A/B {test['step']} (v{test['version']}): {test['verdict']}", rows)


def _z_of(confidence: float) -> float:
    """The two-sided normal quantile of a confidence (bisection on erfc; no scipy)."""
    target = 1 - confidence
    low, high = 0.0, 10.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if math.erfc(mid / math.sqrt(2)) > target else (low, mid)
    return (low + high) / 2


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def funnel_section(report: Mapping[str, Any]) -> str:
    rows = [
        [
            r["key"],
            r["created"],
            *(r["reached"][s] for s in ("lead", "mql", "sql", "opportunity", "customer")),
            _pct(r["conversion"]["lead_to_mql"]),
            r["time_to_mql"]["p50_hours"],
        ]
        for r in report["rows"]
    ]
    caption = f"{report['from']} to {report['to']}, {report['view']} view, by {report['by']}"
    return (
        f"<h2>Funnel</h2><figure>{funnel_chart(report)}<figcaption>{escape(caption)}</figcaption></figure>"
        f"<h3>Conversion by {escape(report['by'])}</h3><figure>{conversion_chart(report)}</figure>"
        + table(
            [
                report["by"],
                "created",
                "lead",
                "MQL",
                "SQL",
                "opportunity",
                "customer",
                "lead to MQL",
                "hours to MQL (p50)",
            ],
            rows,
        )
    )


def sequence_section(report: Mapping[str, Any]) -> str:
    parts = [
        f"<h2>Sequence {escape(report['sequence_id'])}</h2>",
        f'<p class="muted">{escape(report["from"])} to {escape(report["to"])}</p>',
        f"<figure>{flow_chart(report)}</figure>",
    ]
    for test in report["ab_tests"]:
        verdict = f"{test['verdict']} at {test['confidence'] * 100:g}% confidence ({test['metric']} rate)"
        parts.append(
            f'<figure>{ab_chart(test)}<figcaption class="verdict" data-verdict="{escape(test["verdict"])}">'
            f"{escape(verdict)}</figcaption></figure>"
        )
    parts.append(
        table(
            [
                "version",
                "step",
                "variant",
                "enrolled",
                "sent",
                "delivered",
                "opens",
                "clicks",
                "unsubscribes",
                "bounces",
                "complaints",
                "skipped",
                "goal",
                "exits",
                "open rate",
                "click rate",
            ],
            [
                [
                    c["version"],
                    c["step"],
                    c["variant"],
                    *(c["counts"][k] for k in METRICS[:8]),
                    held_back(c["counts"]),
                    c["counts"]["goal_reached"],
                    c["counts"]["exits"],
                    _pct(c["rates"]["open_rate"]),
                    _pct(c["rates"]["click_rate"]),
                ]
                for c in report["steps"]
            ],
        )
    )
    return "".join(parts)


def forms_section(report: Mapping[str, Any], most: int = 12) -> str:
    """Forms and pages: tracked views, submissions, spam, new leads and the conversion rate."""
    chart = _bar_rows(
        "Forms",
        [
            (
                str(f["form_id"]),
                [
                    ("submissions", f["submissions"], f"{f['submissions']} ({_pct(f['conversion_rate'])} of views)"),
                    ("new leads", f["new_leads"], f"{f['new_leads']}"),
                ],
            )
            for f in report["forms"][:most]
        ],
    )
    forms = table(
        ["form", "views", "submissions", "spam", "new leads", "conversion"],
        (
            [f["form_id"], f["views"], f["submissions"], f["spam"], f["new_leads"], _pct(f["conversion_rate"])]
            for f in report["forms"]
        ),
    )
    pages = table(
        ["page", "views", "submissions", "new leads", "conversion"],
        (
            [p["page"], p["views"], p["submissions"], p["new_leads"], _pct(p["conversion_rate"])]
            for p in report["pages"]
        ),
    )
    return f"<h2>Forms and pages</h2><figure>{chart}</figure>{forms}<h3>Pages</h3>{pages}"


def reps_section(report: Mapping[str, Any]) -> str:
    """Leads, MQL, SQL and won per share code (reps and partners)."""
    rows = [
        [
            r["ref"],
            r["name"] or "(unknown code)",
            r["kind"] or "",
            r["leads"],
            r["mql"],
            r["sql"],
            r["won"],
            _pct(r["lead_to_mql"]),
            _pct(r["mql_to_sql"]),
        ]
        for r in report["reps"]
    ]
    header = ["share code", "name", "kind", "leads", "MQL", "SQL", "won", "lead to MQL", "MQL to SQL"]
    return f"<h2>Reps and partners</h2>{table(header, rows)}"


def handoffs_section(report: Mapping[str, Any]) -> str:
    """Hand-offs per owner and per team: assigned, accepted, rejected (with reasons), won, time to accept."""

    def rows(group: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        return [
            [
                h["name"],
                h["assigned"],
                h["accepted"],
                h["rejected"],
                ", ".join(f"{reason} {n}" for reason, n in sorted(h["rejection_reasons"].items())),
                h["won"],
                _pct(h["acceptance_rate"]),
                h["time_to_accept"]["p50_hours"],
            ]
            for h in group
        ]

    header = [
        "name",
        "assigned",
        "accepted",
        "rejected",
        "reasons",
        "won",
        "accepted of assigned",
        "hours to accept (p50)",
    ]
    chart = _bar_rows(
        "Hand-offs by owner",
        [
            (
                str(h["name"]),
                [
                    ("assigned", h["assigned"], f"{h['assigned']}"),
                    ("accepted", h["accepted"], f"{h['accepted']} ({_pct(h['acceptance_rate'])})"),
                    ("won", h["won"], f"{h['won']}"),
                ],
            )
            for h in report["owners"][:12]
        ],
    )
    return (
        f"<h2>Hand-offs</h2><figure>{chart}</figure><h3>By owner</h3>{table(header, rows(report['owners']))}"
        f"<h3>By team</h3>{table(header, rows(report['teams']))}"
    )


TABLE_SECTIONS = {"forms": forms_section, "reps": reps_section, "handoffs": handoffs_section}


def table_section(service: Any, kind: str, start: str, end: str) -> str:
    """One of the table reports (``TABLE_REPORTS``: forms, reps, handoffs) over a period, drawn from
    the JSON the API answers (``service``: the ``ReportingService``).

    Raises:
        BadPeriod: the period is not valid.
    """
    from leadflow.transport.report_models import TABLE_REPORTS

    model = TABLE_REPORTS[kind][0]
    return TABLE_SECTIONS[kind](model.model_validate(getattr(service, kind)(start, end)).model_dump(by_alias=True))


def page(title: str, sections: Iterable[str]) -> str:
    """One self-contained HTML document (inline style and SVG only)."""
    body = "".join(sections)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
