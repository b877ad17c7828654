"""``leadflow import FILE``: bring contacts in from HubSpot, Mautic, Mailchimp or Amazon Pinpoint.

leadflow import FILE.csv [--mapping auto|hubspot|mautic|mailchimp|pinpoint|FILE] [--consent-basis BASIS]
                [--tag TAG ...] [--dry-run] [--enroll SEQUENCE] [--via auto|engine|direct]
                (--dev URL | --api URL | --table NAME --secret-arn ARN [--api URL])

Two paths, one set of rules. The stack's engine (``--via engine``; what ``auto`` picks for a file
of more than 1,000 rows with ``--dev`` or ``--api``): the file is uploaded to the stack's presigned
URL and read there by a Step Functions Distributed Map, a chunk per worker, with a progress bar
here until it is done (``leadflow.dev.import_upload``). The direct path (``--via direct``; what
``auto`` picks for smaller files, and always with ``--table``, ``--dry-run``, ``--enroll`` or a
mapping file): this process writes each row to the table.

A CSV (UTF-8, a BOM and Windows line endings welcome) or a Pinpoint endpoint export (JSON lines,
``.gz`` read as it streams). The file is read row by row, never whole. Bad rows never stop it:
each is reported with its row number and reason, and written to ``FILE.rejected.csv`` (the
original columns, then ``leadflow_row`` and ``leadflow_reason``) to be fixed and imported again.
The import's id is the file's SHA-256 (``--import-id`` to choose one): running the same file
again resumes an interrupted import without writing a row twice.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from leadflow.domain.imports import (
    FORMATS,
    NDJSON_COLUMNS,
    ImportOptions,
    RejectedRow,
    UnknownFormat,
    csv_records,
    mapping_for,
    ndjson_records,
    rejected_csv,
)

ENGINE_ROWS = 1000
"""Lines beyond which ``--via auto`` imports on the stack's engine (the admin API's inline limit)."""


def _open(path: Path) -> IO[str]:
    """The file as text, streamed (gzip recognised by its magic bytes); the caller closes it."""
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return path.open(encoding="utf-8-sig", errors="replace", newline="")


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        for block in iter(lambda: raw.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


def _lines(path: Path) -> int:
    with _open(path) as text:
        return sum(1 for _ in text)


def _is_ndjson(path: Path) -> bool:
    with _open(path) as text:
        first = next((line for line in text if line.strip()), "")
    return first.lstrip().startswith("{")


def _records(path: Path, ndjson: bool) -> tuple[list[str], Iterator[Any]]:
    """The file's columns and its records (the header excluded)."""
    if ndjson:
        text = _open(path)
        records = ndjson_records(text)
        return list(NDJSON_COLUMNS), records
    records = csv_records(_open(path))
    first = next(records, None)
    if first is None or isinstance(first, RejectedRow):
        raise SystemExit(f"leadflow import: {path} has no header row")
    return [str(h) for h in first[1]], records


def _mapping_file(value: str) -> dict[str, str] | None:
    if value in FORMATS:
        return None
    path = Path(value)
    if not path.is_file():
        raise SystemExit(f"leadflow import: --mapping is {', '.join(FORMATS)} or a JSON/YAML file (column: target)")
    import yaml

    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise SystemExit(f"leadflow import: {path} must map each column to a target")
    return {str(k): str(v) for k, v in loaded.items()}


def _secret_arn(args: argparse.Namespace) -> str:
    if args.secret_arn:
        return str(args.secret_arn)
    if args.dev:
        import urllib.request

        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310 - the local stack's URL given with --dev  # nosec B310
            return str(json.load(response)["outputs"]["SuppressionKeySecretArn"])
    raise SystemExit("leadflow import: --secret-arn (stack output SuppressionKeySecretArn) lists opt-outs")


def _write_rejected(path: Path, header: list[str], rejected: list[RejectedRow]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.writelines(rejected_csv(header, rejected))


def cmd_import(args: argparse.Namespace) -> int:
    from leadflow.bootstrap.admin_api import import_service_for
    from leadflow.dev.cli import Progress, resolve_table

    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"leadflow import: no file {path}")
    ndjson = args.mapping == "pinpoint" or (args.mapping == "auto" and _is_ndjson(path))
    header, records = _records(path, ndjson)
    chosen = "pinpoint" if ndjson else args.mapping
    try:
        mapping = mapping_for(header, chosen if chosen in FORMATS else "auto", _mapping_file(chosen))
    except UnknownFormat as error:
        raise SystemExit(f"leadflow import: {error}") from None
    import_id = args.import_id or _digest(path)
    if _through_engine(args, path):
        from leadflow.dev.import_upload import import_through_engine

        return import_through_engine(args, path, import_id)
    table = resolve_table(args, "import")
    service = import_service_for(table, _secret_arn(args))
    options = ImportOptions(
        consent_basis=args.consent_basis, source=f"import:{mapping.format}:{path.name}", tags=tuple(args.tag or ())
    )
    bar = Progress(max(_lines(path) - (0 if ndjson else 1), 0), "rows")
    meta = {"file": path.name, "consent_basis": args.consent_basis or "none"}
    result = service.run(import_id, records, mapping, options, meta, dry_run=args.dry_run, progress=bar.step)
    bar.close()
    counts = result.counts
    verb = "would import" if args.dry_run else "imported"
    print(
        f"{verb} {path.name} as {mapping.format} (import {import_id}): read {counts['read']:,}, "
        f"created {counts['created']:,}, updated {counts['updated']:,}, rejected {counts['rejected']:,}, "
        f"skipped {counts['skipped']:,}, suppressed {counts['suppressed']:,}"
    )
    if result.ignored_columns:
        print(f"columns not imported: {', '.join(result.ignored_columns)}", file=sys.stderr)
    if not args.consent_basis:
        print("no --consent-basis: every row is imported as not consented", file=sys.stderr)
    for row in result.rejected[:20]:
        print(f"  row {row.row}: {row.reason}", file=sys.stderr)
    if result.rejected:
        out = Path(args.rejected or f"{path}.rejected.csv")
        _write_rejected(out, header, result.rejected)
        print(
            f"{len(result.rejected):,} rejected rows written to {out} (fix them and import that file)", file=sys.stderr
        )
    if args.enroll and not args.dry_run:
        _enroll(args, result.lead_ids)
    return 0


def _through_engine(args: argparse.Namespace, path: Path) -> bool:
    """Whether the import runs on the stack's engine (see the module's docstring)."""
    direct_only = [
        flag
        for flag, given in (
            ("--table", args.table),
            ("--dry-run", args.dry_run),
            ("--enroll", args.enroll),
            ("a mapping file", args.mapping not in FORMATS),
        )
        if given
    ]
    if args.via == "engine" and (direct_only or not (args.dev or args.api)):
        raise SystemExit(
            f"leadflow import --via engine: needs --dev or --api, and not {', '.join(direct_only) or 'that'}"
        )
    if args.via == "direct" or direct_only or not (args.dev or args.api):
        return False
    if args.api and not args.dev:
        return True  # a deployed stack without --table: the engine is the only path
    return args.via == "engine" or _lines(path) - 1 > ENGINE_ROWS


def _enroll(args: argparse.Namespace, lead_ids: list[str]) -> None:
    """Enroll the imported leads in a sequence through the admin API (its re-entry rules decide)."""
    from leadflow.dev.enroll_cli import client_for

    client = client_for(args)
    enrolled = refused = 0
    for lead_id in dict.fromkeys(lead_ids):
        status, body = client.call("POST", f"/api/v1/sequences/{args.enroll}/enrollments", {"lead_id": lead_id})
        if status == 404:
            raise SystemExit(f"leadflow import --enroll: {body}")
        enrolled, refused = (enrolled + 1, refused) if status == 201 else (enrolled, refused + 1)
    print(f"enrolled {enrolled:,} in {args.enroll} ({refused:,} already enrolled or refused by re-entry)")


def add_import_command(commands: Any) -> None:
    """``leadflow import`` on the CLI's sub-command parser."""
    parser = commands.add_parser("import", help="import contacts (HubSpot, Mautic, Mailchimp CSV; Pinpoint export)")
    parser.add_argument("file", help="a CSV file, or a Pinpoint endpoint export (JSON lines, .gz too)")
    parser.add_argument(
        "--mapping", default="auto", help="auto (detect), hubspot, mautic, mailchimp, pinpoint, or a file"
    )
    parser.add_argument(
        "--consent-basis",
        choices=["consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests"],
        help="the lawful basis of the opt-ins the file records (without it no row is imported as consented)",
    )
    parser.add_argument("--tag", action="append", help="a tag for every imported lead (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    parser.add_argument("--enroll", metavar="SEQUENCE", help="enroll the imported leads in this sequence")
    parser.add_argument("--import-id", help="the import's id (default: the file's SHA-256; same id = resume)")
    parser.add_argument(
        "--rejected", metavar="OUT", help="where to write the rejected rows (default: FILE.rejected.csv)"
    )
    parser.add_argument(
        "--via",
        choices=["auto", "engine", "direct"],
        default="auto",
        help="engine: upload to the stack and import there (a Step Functions Distributed Map), with a progress "
        "bar; direct: write each row from here. auto: the engine for a file of more than 1,000 rows with --dev, "
        "for any file with --api alone, else direct (always direct with --table, --dry-run, --enroll or a mapping "
        "file)",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds to follow an import on the engine (default 3600)"
    )
    parser.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8000")
    parser.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    parser.add_argument("--secret-arn", help="stack output SuppressionKeySecretArn (with --table)")
    parser.add_argument(
        "--api", metavar="URL", help="the stack's API URL (SigV4): the engine path, or --enroll with --table"
    )
    parser.set_defaults(run=cmd_import)
