"""The ``leadflow`` command: the local stack and workspace tools.

leadflow dev [--port N] [--workspace PATH] [--parameter KEY=VALUE ...]
leadflow validate [--workspace PATH]
leadflow compile --out DIR [--workspace PATH]
leadflow rescore (--table NAME | --dev URL) [--workspace PATH]
leadflow broadcast SEQUENCE (--table NAME | --dev URL) [--workspace PATH]
leadflow handoff LEAD_ID (--dev URL | --table NAME --queue-url URL --dlq-url URL) [--reason TEXT]
leadflow replay handoff (--dev URL | --table NAME --queue-url URL --dlq-url URL) [--enable-destinations]
leadflow schema [--out DIR]
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """The folder holding template.yaml: the current one or a parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "template.yaml").is_file():
            return folder
    raise SystemExit("leadflow: no template.yaml here or in a parent folder; run from the project")


def _parameters(values: list[str]) -> dict[str, str]:
    parameters = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise SystemExit(f"leadflow: --parameter takes KEY=VALUE, got {value!r}")
        parameters[key] = val
    return parameters


def cmd_dev(args: argparse.Namespace) -> int:
    from leadflow.dev.stack import LocalStack

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("werkzeug", "moto", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose else logging.ERROR)
    root = project_root()
    workspace = Path(args.workspace) if args.workspace else root / "workspace"
    if not (workspace / "forms").is_dir():
        raise SystemExit(f"leadflow: {workspace} is not a workspace (no forms/ folder)")
    from leadflow.config.workspace import Workspace

    problems = Workspace(workspace).validate()
    if problems:
        raise SystemExit("leadflow: the workspace has problems:\n" + "\n".join(problems))
    started = time.perf_counter()
    stack = LocalStack(
        root,
        workspace,
        port=args.port,
        host=args.host,
        parameters=_parameters(args.parameter),
        log_level="INFO" if args.verbose else "WARNING",
    ).start()
    stopped = threading.Event()
    # Ctrl-C and SIGTERM set the event instead of raising wherever the main thread happens to be.
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"leadflow dev ready: {stack.url}", flush=True)
    print(
        f"  landing page {stack.url}/ · console {stack.url}/_dev/ · admin token {stack.admin_token}"
        f" · started in {time.perf_counter() - started:.1f}s · Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    while not stopped.wait(0.5):
        pass
    print("leadflow dev: stopping", file=sys.stderr, flush=True)
    stack.stop()
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from leadflow.config.workspace import Workspace

    workspace = Path(args.workspace) if args.workspace else project_root() / "workspace"
    problems = Workspace(workspace).validate()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{workspace}: valid")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from leadflow.config.workspace import compile_workspace
    from leadflow.domain.errors import InvalidWorkspace

    workspace = Path(args.workspace) if args.workspace else project_root() / "workspace"
    try:
        target = compile_workspace(workspace, Path(args.out))
    except InvalidWorkspace as error:
        print(error, file=sys.stderr)
        return 1
    print(target)
    return 0


class Progress:
    """A progress bar on stderr (no dependency): ``[#####.....] 50/100 leads``."""

    def __init__(self, total: int, label: str, width: int = 30) -> None:
        self.total, self.label, self.width, self.done = total, label, width, 0
        self.started = time.perf_counter()

    def step(self, count: int = 1) -> None:
        self.done += count
        filled = int(self.width * self.done / self.total) if self.total else self.width
        rate = self.done / max(time.perf_counter() - self.started, 1e-6)
        print(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} {self.label} ({rate:.0f}/s)",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        print(file=sys.stderr, flush=True)


def resolve_table(args: argparse.Namespace, command: str) -> str:
    """The LeadsTable to work on: ``--table``, or a running ``leadflow dev`` (``--dev URL``), whose
    embedded AWS endpoint this process then talks to."""
    import json
    import os
    import urllib.request

    table = str(args.table or "")
    if args.dev:
        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310
            info = json.load(response)
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "leadflow-dev")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "leadflow-dev")
        os.environ.setdefault("AWS_DEFAULT_REGION", info.get("region", "us-east-1"))
        os.environ["AWS_ENDPOINT_URL"] = info["aws_endpoint_url"]
        table = table or info["outputs"]["LeadsTableName"]
    if not table:
        raise SystemExit(f"leadflow {command}: name the table (--table: the LeadsTableName output) or --dev URL")
    return table


class _OffsetClock:
    """A running ``leadflow dev``'s clock (it may have been advanced), read once and kept in step."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _dev_clock(url: str) -> _OffsetClock:
    import json
    import urllib.request

    with urllib.request.urlopen(url.rstrip("/") + "/_dev/clock", timeout=10) as response:  # noqa: S310
        dev_now = datetime.fromisoformat(json.load(response)["now"])
    return _OffsetClock(dev_now - datetime.now(UTC))


def cmd_broadcast(args: argparse.Namespace) -> int:
    from leadflow.adapters.clock import SystemClock
    from leadflow.adapters.nurture import DynamoNurtureStore
    from leadflow.config.workspace import Workspace
    from leadflow.services.nurture import NurtureService, TokenIssuer
    from leadflow.services.nurture_wiring import NoQueue, NoSender

    table = resolve_table(args, "broadcast")
    workspace = Workspace(Path(args.workspace) if args.workspace else project_root() / "workspace")
    store = DynamoNurtureStore(table, shards=args.shards)

    service = NurtureService(
        workspace=workspace,
        store=store,
        sender=NoSender(),
        tokens=TokenIssuer(lambda: [b"unused"], "", 1),
        due_now=NoQueue(),
        clock=_dev_clock(args.dev) if args.dev else SystemClock(),
    )
    started = time.perf_counter()

    def progress(scanned: int, enrolled: int) -> None:
        rate = scanned / max(time.perf_counter() - started, 1e-6)
        line = f"\rscanned {scanned} leads, enrolled {enrolled} ({rate:.0f} leads/s)"
        print(line, end="", file=sys.stderr, flush=True)

    try:
        counts = service.broadcast(args.sequence, progress)
    except KeyError as error:
        raise SystemExit(f"leadflow broadcast: {error.args[0]}: no such sequence or no broadcast trigger") from None
    print(file=sys.stderr)
    print(
        f"broadcast {args.sequence}: {counts.get('enrolled', 0)} enrolled of {counts.get('scanned', 0)} leads "
        f"({counts.get('already_enrolled', 0)} already enrolled, {counts.get('refused', 0)} refused by re-entry); "
        "the nurture tick sends the emails within the SES rate"
    )
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from leadflow.adapters.clock import SystemClock
    from leadflow.adapters.dynamo import DynamoLeadStore
    from leadflow.config.workspace import Workspace
    from leadflow.services.scoring import ScoringService, rescore_lead

    table = resolve_table(args, "rescore")
    workspace = Workspace(Path(args.workspace) if args.workspace else project_root() / "workspace")
    store = DynamoLeadStore(table)
    service = ScoringService(workspace, store, SystemClock())
    lead_ids = store.lead_ids()
    progress = Progress(len(lead_ids), "leads")
    added = removed = moved = 0
    for lead_id in lead_ids:
        result = rescore_lead(service, store, lead_id)
        added, removed, moved = added + result.added, removed + result.removed, moved + bool(result.stage)
        progress.step()
    progress.close()
    print(f"rescored {len(lead_ids)} leads: {added} ledger entries added, {removed} removed, {moved} stages moved")
    return 0


def _stack_outputs(args: argparse.Namespace, command: str) -> dict[str, str]:
    """Stack outputs of a running ``leadflow dev`` (``--dev``), or the ones given as options."""
    import json
    import urllib.request

    if args.dev:
        resolve_table(args, command)  # points this process at the dev stack's AWS endpoint
        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310
            return dict(json.load(response)["outputs"])
    outputs = {
        "LeadsTableName": args.table or "",
        "HandoffQueueUrl": args.queue_url or "",
        "HandoffDLQUrl": args.dlq_url or "",
    }
    missing = [k for k, v in outputs.items() if not v]
    if missing:
        raise SystemExit(
            f"leadflow {command}: give --dev URL, or --table, --queue-url and --dlq-url (missing {missing})"
        )
    return outputs


def cmd_handoff(args: argparse.Namespace) -> int:
    """Hand one lead to sales now (the admin API's POST /api/v1/leads/{id}/handoff, from a shell)."""
    from leadflow.adapters.clock import SystemClock
    from leadflow.adapters.crm_delivery import SafeHttp, Senders
    from leadflow.adapters.handoff import DynamoHandoffStore, SqsHandoffQueue
    from leadflow.config.workspace import Workspace
    from leadflow.domain.errors import LeadNotFound
    from leadflow.domain.handoff import HandoffDisabled
    from leadflow.services.handoff import HandoffService
    from leadflow.services.scoring import ScoringService

    outputs = _stack_outputs(args, "handoff")
    workspace = Workspace(Path(args.workspace) if args.workspace else project_root() / "workspace")
    store = DynamoHandoffStore(outputs["LeadsTableName"])
    clock = _dev_clock(args.dev) if args.dev else SystemClock()

    class _NoSecrets:
        def get(self, key: str) -> str:
            raise RuntimeError("starting a hand-off sends nothing: the delivery function does")

    service = HandoffService(
        workspace=workspace,
        store=store,
        explainer=ScoringService(workspace, store, clock),
        queue=SqsHandoffQueue(outputs["HandoffQueueUrl"], outputs["HandoffDLQUrl"]),
        sender=Senders(SafeHttp(local_mode=False), _NoSecrets()),
        clock=clock,
    )
    try:
        record, created = service.start(args.lead_id, "manual", args.reason, f"api:cli-{getpass.getuser()}")
    except LeadNotFound:
        raise SystemExit(f"leadflow handoff: no lead {args.lead_id}") from None
    except HandoffDisabled as error:
        raise SystemExit(f"leadflow handoff: {error}") from None
    owner = record.get("owner") or {}
    where = (
        f"{owner.get('name')} <{owner.get('email')}> ({record['assigned_by']})"
        if owner
        else f"queue {record.get('queue')}"
    )
    verb = "handed off" if created else "already handed off"
    print(f"{args.lead_id}: {verb} as {record['handoff_id']}, status {record['status']}, to {where}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Send what a DLQ holds back to its queue (hand-offs: marked as a replay, so failed destinations retry)."""
    import json

    from leadflow.adapters.aws import client
    from leadflow.adapters.handoff import DynamoHandoffStore

    outputs = _stack_outputs(args, "replay")
    sqs = client("sqs")
    if args.enable_destinations:
        store = DynamoHandoffStore(outputs["LeadsTableName"])
        for name in store.disabled_destinations():
            store.enable_destination(name)
            print(f"destination {name}: enabled again", file=sys.stderr)
    dlq, queue = outputs["HandoffDLQUrl"], outputs["HandoffQueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    total = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    if args.limit:
        total = min(total, args.limit)
    progress = Progress(total, "messages")
    moved = 0
    while moved < total:
        batch = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=min(10, total - moved), WaitTimeSeconds=0)
        messages = batch.get("Messages", [])
        if not messages:
            break
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("kind") == "deliver":
                body["replay"] = True
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
            progress.step()
    progress.close()
    print(f"replayed {moved} message(s) from the HandoffDLQ")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from leadflow.config.workspace import write_json_schemas

    out = Path(args.out) if args.out else project_root() / "workspace" / "schemas"
    for path in write_json_schemas(out):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leadflow", description="leadflow: serverless marketing automation")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run the whole product locally (moto, no Docker, no AWS account)")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--workspace", help="workspace folder (default: ./workspace)")
    dev.add_argument("--parameter", action="append", default=[], help="template parameter override KEY=VALUE")
    dev.add_argument("--verbose", action="store_true", help="show function logs and request lines")
    dev.set_defaults(run=cmd_dev)
    validate = commands.add_parser("validate", help="check every workspace file against its schema")
    validate.add_argument("--workspace")
    validate.set_defaults(run=cmd_validate)
    compile_ = commands.add_parser(
        "compile", help="validate a workspace and write it as workspace.json (the layer build)"
    )
    compile_.add_argument("--workspace")
    compile_.add_argument("--out", required=True, help="folder to write workspace.json into")
    compile_.set_defaults(run=cmd_compile)
    rescore = commands.add_parser("rescore", help="replay every lead's history through the current scoring rules")
    rescore.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    rescore.add_argument("--dev", metavar="URL", help="rescore a running `leadflow dev`, e.g. http://127.0.0.1:8000")
    rescore.add_argument("--workspace")
    rescore.set_defaults(run=cmd_rescore)
    broadcast = commands.add_parser("broadcast", help="enroll a sequence's broadcast segment (batched writes)")
    broadcast.add_argument("sequence", help="the sequence id, e.g. push-discount")
    broadcast.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    broadcast.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8790")
    broadcast.add_argument("--shards", type=int, default=16, help="the stack's NurtureShards parameter")
    broadcast.add_argument("--workspace")
    broadcast.set_defaults(run=cmd_broadcast)
    handoff = commands.add_parser("handoff", help="hand a lead to sales now (assigned and delivered like any hand-off)")
    handoff.add_argument("lead_id")
    handoff.add_argument("--reason", default="requested from the command line")
    handoff.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8000")
    handoff.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    handoff.add_argument("--queue-url", help="stack output HandoffQueueUrl")
    handoff.add_argument("--dlq-url", help="stack output HandoffDLQUrl")
    handoff.add_argument("--workspace")
    handoff.set_defaults(run=cmd_handoff)
    replay = commands.add_parser("replay", help="send a DLQ's messages back to their queue (with progress)")
    replay.add_argument("queue", choices=["handoff"], help="which DLQ: handoff (HandoffDLQ -> HandoffQueue)")
    replay.add_argument("--dev", metavar="URL", help="a running `leadflow dev`")
    replay.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    replay.add_argument("--queue-url", help="stack output HandoffQueueUrl")
    replay.add_argument("--dlq-url", help="stack output HandoffDLQUrl")
    replay.add_argument("--limit", type=int, default=0, help="at most this many messages")
    replay.add_argument(
        "--enable-destinations", action="store_true", help="switch destinations a 410 disabled back on first"
    )
    replay.set_defaults(run=cmd_replay)
    schema = commands.add_parser("schema", help="write the JSON Schemas of workspace files (for editors)")
    schema.add_argument("--out")
    schema.set_defaults(run=cmd_schema)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
