"""``leadflow migrate``: one-off moves of a deployment's data after an upgrade.

leadflow migrate account-index (--dev URL | --table NAME)   profiles' account keys from GSI1 to GSI5
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_account_index(args: argparse.Namespace) -> int:
    from leadflow.adapters.account_index import DynamoAccountIndexMigration
    from leadflow.dev.cli import resolve_table

    table = resolve_table(args, "migrate account-index")
    seen = [0]

    def progress(count: int) -> None:
        seen[0] += count
        print(f"\r{seen[0]} profiles with GSI1 account keys", end="", file=sys.stderr, flush=True)

    result = DynamoAccountIndexMigration(table).migrate(progress)
    print(file=sys.stderr)
    print(
        f"account index: {result.moved} profile(s) moved from GSI1 to GSI5, "
        f"{result.gone} no longer on GSI1 when reached (moved alongside or erased)"
    )
    return 0


def add_migrate_commands(commands: Any) -> None:
    """``leadflow migrate ...`` on the CLI's sub-command parser."""
    migrate = commands.add_parser("migrate", help="one-off data moves after an upgrade (idempotent, safe to rerun)")
    which = migrate.add_subparsers(dest="migration", required=True)
    account_index = which.add_parser(
        "account-index", help="move profiles' account keys from GSI1 (projects all) to GSI5 (lead_id, title)"
    )
    account_index.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8000")
    account_index.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    account_index.set_defaults(run=cmd_account_index)
