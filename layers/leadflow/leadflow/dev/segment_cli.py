"""``leadflow segment count|list|export|refresh``: segments from the command line.

leadflow segment list [ID] (--dev URL | --table NAME) [--workspace PATH] [--json]
leadflow segment count ID (--dev URL | --table NAME)
leadflow segment export ID [--out FILE] (--dev URL | --table NAME)
leadflow segment refresh [ID] (--dev URL | --table NAME)   back-fill after adding or changing a segment

Counts come from each segment's counter (no scan); members and the export page through the
membership index; ``refresh`` re-evaluates every lead (a parallel Scan) and recounts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from leadflow.domain.errors import SegmentNotFound


def _services(args: argparse.Namespace) -> tuple[Any, Any]:
    from leadflow.bootstrap.admin_api import audience_service_for, segment_service_for
    from leadflow.config.workspace import Workspace
    from leadflow.dev.cli import project_root, resolve_table

    table = resolve_table(args, "segment")
    workspace = Workspace(Path(args.workspace) if args.workspace else project_root() / "workspace")
    return segment_service_for(table, workspace), audience_service_for(table, workspace)


def cmd_list(args: argparse.Namespace) -> int:
    segments, audience = _services(args)
    if args.segment_id is None:
        overview = segments.overview()
        if args.json:
            print(json.dumps(overview, indent=2, default=str))
            return 0
        for s in overview:
            note = "  (stale: run leadflow segment refresh)" if s["stale"] else ""
            print(f"{s['segment_id']:<28} {s['member_count']:>9,}  {s['name']}{note}")
        return 0
    segments.get(args.segment_id)
    cursor = None
    while True:
        leads, cursor = audience.page(args.segment_id, None, None, 100, cursor)
        for lead in leads:
            profile = lead["profile"]
            name = " ".join(p for p in (profile.get("first_name"), profile.get("last_name")) if p)
            print(f"{lead['lead_id']}  {profile.get('email', '')}  {name}  {lead.get('stage') or ''}")
        if cursor is None:
            return 0


def cmd_count(args: argparse.Namespace) -> int:
    segments, _ = _services(args)
    found = segments.get(args.segment_id)
    print(found["member_count"])
    if found["stale"]:
        print("note: never recounted under this rule; run leadflow segment refresh", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    segments, audience = _services(args)
    segments.get(args.segment_id)
    rows = -1
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(Path(args.out).open("w", encoding="utf-8", newline="")) if args.out else sys.stdout
        for line in audience.export_all(args.segment_id):
            out.write(line)
            rows += 1
    print(f"exported {rows:,} leads of {args.segment_id}", file=sys.stderr)
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from leadflow.dev.cli import Progress

    segments, _ = _services(args)
    bar = Progress(0, "leads re-evaluated")
    counts = segments.refresh(args.segment_id, progress=bar.step)
    bar.close()
    for segment_id, count in counts.items():
        print(f"{segment_id:<28} {count:>9,}")
    return 0


def _run(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except SegmentNotFound as missing:
            raise SystemExit(f"leadflow segment: no segment {str(missing)!r} in segments.yaml") from None

    return run


def add_segment_commands(commands: Any) -> None:
    """``leadflow segment ...`` on the CLI's sub-command parser."""
    segment = commands.add_parser("segment", help="segments: counts, members, CSV export, back-fill")
    which = segment.add_subparsers(dest="segment", required=True)
    listing = which.add_parser("list", help="the segments with their counts, or (with ID) a segment's members")
    listing.add_argument("segment_id", nargs="?", help="a segment id: list its members")
    listing.add_argument("--json", action="store_true", help="the segments as JSON")
    count = which.add_parser("count", help="a segment's member count (from its counter)")
    count.add_argument("segment_id", help="the segment id, as in workspace/segments.yaml")
    export = which.add_parser("export", help="a segment's members as CSV (page by page)")
    export.add_argument("segment_id", help="the segment id, as in workspace/segments.yaml")
    export.add_argument("--out", help="write to this file (default: standard output)")
    refresh = which.add_parser(
        "refresh", help="re-evaluate every lead and recount (after adding or changing a segment)"
    )
    refresh.add_argument("segment_id", nargs="?", help="recount only this segment (every lead is re-evaluated)")
    for parser, run in ((listing, cmd_list), (count, cmd_count), (export, cmd_export), (refresh, cmd_refresh)):
        parser.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8000")
        parser.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
        parser.add_argument("--workspace", help="the workspace folder (default: ./workspace)")
        parser.set_defaults(run=_run(run))
