"""``leadflow report ...``: reports from the command line, and ``verify`` (0 drift or a list).

leadflow report verify (--dev URL | --table LEADS --reports-table REPORTS) [--workspace PATH]
leadflow report funnel [--from DAY] [--to DAY] [--by source] [--view events] (--dev URL | ...)
leadflow report sequence ID | forms | reps | handoffs [--from DAY] [--to DAY] [--csv | --html OUT] (--dev URL | ...)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadflow.config.workspace import Workspace
    from leadflow.services.report_drift import VerifyResult


def _tables(args: argparse.Namespace) -> tuple[str, str]:
    from leadflow.dev.cli import resolve_table

    leads = resolve_table(args, "report")
    reports = str(args.reports_table or "")
    if args.dev and not reports:
        import urllib.request

        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310 - the local stack's URL given with --dev  # nosec B310
            reports = json.load(response)["outputs"]["ReportsTableName"]
    if not reports:
        raise SystemExit("leadflow report: name --reports-table (the ReportsTableName output) or --dev URL")
    return leads, reports


def _workspace(args: argparse.Namespace) -> Any:
    from leadflow.config.workspace import Workspace
    from leadflow.dev.cli import project_root

    return Workspace(Path(args.workspace) if args.workspace else project_root() / "workspace")


def verify_tables(
    leads_table: str,
    reports_table: str,
    workspace: Workspace,
    client: Any = None,
    keep: Callable[[tuple[str, str]], bool] = lambda _: True,
) -> VerifyResult:
    """Every report recomputed from the two tables' records (``verify_reports``); ``client``: a
    DynamoDB client to read them with (default: the adapters' own); ``keep``: which counter items
    to compare (default: all).

    Raises:
        ValueError: a partition's items came apart.
    """
    from leadflow.adapters.reports import DynamoLeadFacts, DynamoReportStore
    from leadflow.bootstrap.clock import system_clock
    from leadflow.bootstrap.reporting import reporting_for
    from leadflow.services.report_verify import VERIFIED_ACTIVITIES, engagement_of, verify_reports

    forms = {form_id: workspace.form(form_id).lifecycle_stage for form_id in workspace.form_ids()}
    return verify_reports(
        DynamoLeadFacts(leads_table, client).scan_records(VERIFIED_ACTIVITIES),
        DynamoReportStore(reports_table, client).scan_all(),
        lambda form_id: forms.get(form_id, "lead"),
        engagement_of(reporting_for(leads_table, reports_table, workspace, client)),
        system_clock().now(),
        keep=keep,
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from leadflow.services.report_drift import REPORTS

    leads_table, reports_table = _tables(args)
    try:
        result = verify_tables(leads_table, reports_table, _workspace(args))
    except ValueError as error:
        raise SystemExit(f"leadflow report verify: {error}") from None
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0 if result.clean else 1
    print(
        f"verified {summary['counter_items']} counter items against {summary['leads']} leads and "
        f"{summary['stage_records']} stage records: drift {summary['drift']}, "
        f"missing stage records {summary['missing_stage_records']}"
    )
    print(f"  sends compared with the mail logs from {summary['mail_logs_since']} (they keep 7 days)")
    for row in summary["sends_unlike_sent"]:  # informational: not drift (rejected or uncertain sends stay logged)
        print(f"  note: {row['pk']} {row['sk']}: {row['in_mail_logs']} in mail logs, {row['counted_sent']} sent")
    print(f"  {'report':<10} {'counters':>9} {'drift':>6} {'uncounted':>10}")
    for name in REPORTS:
        row = summary["reports"][name]
        print(f"  {name:<10} {row['counter_items']:>9} {row['drift']:>6} {row['uncounted']:>10}")
    for d in summary["drifted"]:
        print(f"  {d['report']}: {d['pk']} {d['sk']} {d['field']}: stored {d['stored']}, recomputed {d['expected']}")
    if summary["drift"] > len(summary["drifted"]):
        print(f"  ... and {summary['drift'] - len(summary['drifted'])} more (--json lists the first ones too)")
    return 0 if result.clean else 1


def cmd_funnel(args: argparse.Namespace) -> int:
    from leadflow.bootstrap.clock import system_clock
    from leadflow.bootstrap.reporting import reporting_for
    from leadflow.transport.report_models import FunnelReport, funnel_csv
    from leadflow.transport.report_routes import default_period

    leads_table, reports_table = _tables(args)
    service = reporting_for(leads_table, reports_table, _workspace(args))
    start, end = default_period(args.start, args.end, system_clock().now().date())
    report = FunnelReport.model_validate(service.funnel(start, end, args.by, args.view))
    if args.html:
        from leadflow.transport.report_charts import funnel_section, page

        return _write_html(args.html, page("leadflow funnel", [funnel_section(report.model_dump(by_alias=True))]))
    sys.stdout.write(funnel_csv(report) if args.csv else report.json_body() + "\n")
    return 0


def _write_html(path: str, html: str) -> int:
    Path(path).write_text(html, encoding="utf-8")
    print(f"wrote {path} ({len(html):,} bytes, self-contained)", file=sys.stderr)
    return 0


def cmd_sequence(args: argparse.Namespace) -> int:
    from leadflow.bootstrap.clock import system_clock
    from leadflow.bootstrap.reporting import reporting_for
    from leadflow.domain.report_views import BadPeriod
    from leadflow.transport.report_models import SequenceReport, sequence_csv
    from leadflow.transport.report_routes import default_period

    leads_table, reports_table = _tables(args)
    service = reporting_for(leads_table, reports_table, _workspace(args))
    start, end = default_period(args.start, args.end, system_clock().now().date())
    try:
        report = SequenceReport.model_validate(service.sequence(args.sequence_id, start, end))
    except KeyError:
        raise SystemExit(f"leadflow report sequence: no sequence {args.sequence_id!r}") from None
    except BadPeriod as error:
        raise SystemExit(f"leadflow report sequence: {error}") from None
    if args.html:
        from leadflow.transport.report_charts import page, sequence_section

        title = f"leadflow sequence {args.sequence_id}"
        return _write_html(args.html, page(title, [sequence_section(report.model_dump(by_alias=True))]))
    sys.stdout.write(sequence_csv(report) if args.csv else report.json_body() + "\n")
    return 0


def cmd_table_report(args: argparse.Namespace) -> int:
    """``leadflow report forms|reps|handoffs``: JSON, ``--csv`` or ``--html``, as the API answers them."""
    from leadflow.bootstrap.clock import system_clock
    from leadflow.bootstrap.reporting import reporting_for
    from leadflow.domain.report_views import BadPeriod
    from leadflow.transport.report_charts import TABLE_SECTIONS, page
    from leadflow.transport.report_models import TABLE_REPORTS
    from leadflow.transport.report_routes import default_period

    model, to_csv = TABLE_REPORTS[args.report]
    leads_table, reports_table = _tables(args)
    service = reporting_for(leads_table, reports_table, _workspace(args))
    start, end = default_period(args.start, args.end, system_clock().now().date())
    try:
        report = model.model_validate(getattr(service, args.report)(start, end))
    except BadPeriod as error:
        raise SystemExit(f"leadflow report {args.report}: {error}") from None
    if args.html:
        html = page(f"leadflow {args.report}", [TABLE_SECTIONS[args.report](report.model_dump(by_alias=True))])
        return _write_html(args.html, html)
    sys.stdout.write(to_csv(report) if args.csv else report.json_body() + "\n")
    return 0


def add_report_commands(commands: Any) -> None:
    """``leadflow report verify|funnel`` on the CLI's sub-command parser."""
    report = commands.add_parser("report", help="reports, and verify them against the raw records")
    which = report.add_subparsers(dest="report", required=True)
    verify = which.add_parser(
        "verify", help="recompute every report from the raw records; the drift per report and key; exit 1 on drift"
    )
    funnel = which.add_parser("funnel", help="the funnel report (JSON, or --csv)")
    funnel.add_argument(
        "--by",
        default="source",
        choices=["source", "medium", "campaign", "form", "channel", "ref"],
        help="the dimension of the conversion table (default: source)",
    )
    funnel.add_argument(
        "--view",
        default="events",
        choices=["events", "cohort"],
        help="events: what happened in the period; cohort: what became of the leads created in it",
    )
    sequence = which.add_parser("sequence", help="a sequence's report: steps, variants, A/B verdicts (JSON, or --csv)")
    sequence.add_argument("sequence_id", help="the sequence id, e.g. welcome")
    tables = [
        which.add_parser("forms", help="forms and pages: views, submissions, spam, new leads (JSON, or --csv)"),
        which.add_parser("reps", help="reps and partners: leads, MQL, SQL, won per share code (JSON, or --csv)"),
        which.add_parser("handoffs", help="hand-offs per owner and team: accepted, rejected, won (JSON, or --csv)"),
    ]
    for parser in (funnel, sequence, *tables):
        parser.add_argument("--from", dest="start", help="first day, YYYY-MM-DD (default: 30 days ago)")
        parser.add_argument("--to", dest="end", help="last day, YYYY-MM-DD (default: today)")
        parser.add_argument("--csv", action="store_true", help="CSV instead of JSON")
        parser.add_argument("--html", metavar="OUT", help="write the charts and tables as one self-contained HTML file")
    runs = [
        (verify, cmd_verify),
        (funnel, cmd_funnel),
        (sequence, cmd_sequence),
        *((t, cmd_table_report) for t in tables),
    ]
    for parser, run in runs:
        parser.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8000")
        parser.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
        parser.add_argument("--reports-table", help="stack output ReportsTableName")
        parser.add_argument("--workspace", help="the workspace folder (default: ./workspace)")
        parser.set_defaults(run=run)
    verify.add_argument("--json", action="store_true", help="the result as JSON")
