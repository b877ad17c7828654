"""``leadflow gdpr``: a person's export and erasure from a shell, and the suppression list's migration.

leadflow gdpr export EMAIL (--dev URL | --table NAME --secret-arn ARN) [--out FILE]
leadflow gdpr erase EMAIL (--dev URL | --table NAME --secret-arn ARN [--queue-url URL])
leadflow gdpr migrate-suppressions (--dev URL | --table NAME --secret-arn ARN)
leadflow gdpr reapply-erasures (--dev URL | --table NAME --secret-arn ARN)
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any


def _connect(args: argparse.Namespace, command: str) -> dict[str, str]:
    """Table, suppression key secret and hand-off queue: from a running ``leadflow dev`` or the options."""
    from leadflow.dev.cli import resolve_table

    table = resolve_table(args, command)
    outputs: dict[str, str] = {}
    if args.dev:
        import urllib.request

        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310 - the local stack's URL given with --dev  # nosec B310
            outputs = dict(json.load(response)["outputs"])
    secret = args.secret_arn or outputs.get("SuppressionKeySecretArn", "")
    if not secret:
        raise SystemExit(f"leadflow {command}: give --secret-arn (the SuppressionKeySecretArn output) or --dev URL")
    queue = getattr(args, "queue_url", None) or outputs.get("HandoffQueueUrl", "")
    reports = getattr(args, "reports_table", None) or outputs.get("ReportsTableName", "")
    return {"table": table, "secret": secret, "queue": queue, "reports": reports}


def _service(args: argparse.Namespace, command: str) -> Any:
    from leadflow.bootstrap.clock import system_clock
    from leadflow.bootstrap.gdpr import gdpr_service_for
    from leadflow.config.workspace import Workspace
    from leadflow.dev.cli import _dev_clock, project_root

    where = _connect(args, command)
    workspace = Workspace(Path(args.workspace) if args.workspace else project_root() / "workspace")
    clock = _dev_clock(args.dev) if args.dev else system_clock()
    return gdpr_service_for(where["table"], where["secret"], workspace, clock, where["queue"], where["reports"])


def cmd_export(args: argparse.Namespace) -> int:
    from leadflow.domain.errors import LeadNotFound

    service = _service(args, "gdpr export")
    try:
        document = service.export(service.lead_for_email(args.email), f"cli:{getpass.getuser()}", "cli")
    except LeadNotFound:
        raise SystemExit("leadflow gdpr export: no lead has this address") from None
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{args.out}: {sum(document['counts'].values())} items of lead {document['lead_id']}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from leadflow.domain.errors import LeadNotFound

    service = _service(args, "gdpr erase")
    try:
        erasure = service.erase(service.lead_for_email(args.email), f"cli:{getpass.getuser()}", "cli")
    except LeadNotFound:
        raise SystemExit("leadflow gdpr erase: no lead has this address (nothing to erase)") from None
    print(json.dumps(asdict(erasure), indent=2))
    for record in erasure.crm_records:
        print(
            f"operator step: delete {record['provider']} record {record['record_id']} ({record['destination']})",
            file=sys.stderr,
        )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from leadflow.adapters.gdpr import DynamoGdprStore
    from leadflow.adapters.secrets import SecretKey
    from leadflow.services.gdpr import migrate_suppressions

    where = _connect(args, "gdpr migrate-suppressions")
    seen = [0]

    def progress(count: int) -> None:
        seen[0] += count
        print(f"\r{seen[0]} suppression entries", end="", file=sys.stderr, flush=True)

    result = migrate_suppressions(DynamoGdprStore(where["table"]), SecretKey(where["secret"]), progress)
    print(file=sys.stderr)
    print(
        f"suppression list: {result.hashed} entries hashed, {result.already_hashed} already hashed, "
        f"{result.changed_meanwhile} changed meanwhile (run again)"
    )
    return 0 if result.changed_meanwhile == 0 else 1


def cmd_reapply(args: argparse.Namespace) -> int:
    service = _service(args, "gdpr reapply-erasures")
    done = service.reapply_erasures(f"cli:{getpass.getuser()}")
    print(f"erased again: {len(done)} lead(s) the audit trail lists as erased (restored from a backup)")
    return 0


def add_commands(commands: Any) -> None:
    """The ``gdpr`` command and its subcommands."""
    gdpr = commands.add_parser("gdpr", help="a person's data: export, erase; hash the suppression list")
    actions = gdpr.add_subparsers(dest="action", required=True)

    def where(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8000")
        parser.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
        parser.add_argument("--secret-arn", help="the suppression key (stack output SuppressionKeySecretArn)")
        parser.add_argument("--reports-table", help="the ReportsTable name (its once-per-lead markers go too)")
        parser.add_argument("--workspace", help="the workspace folder (default: ./workspace)")

    export = actions.add_parser("export", help="everything held about a person, as JSON (GDPR Art. 15 / 20)")
    export.add_argument("email", help="the person's email address")
    export.add_argument("--out", help="write the JSON here (default: stdout)")
    where(export)
    export.set_defaults(run=cmd_export)
    erase = actions.add_parser("erase", help="erase a person everywhere (GDPR Art. 17); prints counts per kind")
    erase.add_argument("email", help="the person's email address")
    erase.add_argument("--queue-url", help="HandoffQueue URL (stack output HandoffQueueUrl): tell the CRM webhooks")
    where(erase)
    erase.set_defaults(run=cmd_erase)
    migrate = actions.add_parser(
        "migrate-suppressions", help="replace plain addresses on the suppression list by their keyed hashes (once)"
    )
    where(migrate)
    migrate.set_defaults(run=cmd_migrate)
    reapply = actions.add_parser(
        "reapply-erasures", help="after restoring a backup: erase again every lead the audit trail lists as erased"
    )
    reapply.add_argument("--queue-url", help="HandoffQueue URL: tell the CRM webhooks again")
    where(reapply)
    reapply.set_defaults(run=cmd_reapply)
