"""The ``leadflow`` command: the local stack and workspace tools.

leadflow --version
leadflow dev [--port N] [--workspace PATH] [--parameter KEY=VALUE ...] [--state DIR] [--verbose]
leadflow validate [--workspace PATH]
leadflow compile --out DIR [--workspace PATH]
leadflow rescore (--table NAME | --dev URL) [--workspace PATH]
leadflow broadcast SEQUENCE (--table NAME | --dev URL) [--workspace PATH]
leadflow handoff LEAD_ID (--dev URL | --table NAME --queue-url URL --dlq-url URL) [--reason TEXT]
leadflow replay QUEUE|all (--dev URL | --stack NAME) [--limit N] [--enable-destinations]
leadflow enroll EMAIL|LEAD_ID SEQUENCE (--dev URL | --api URL)   (dev/enroll_cli.py)
leadflow gdpr export|erase EMAIL (--dev URL | --table NAME --secret-arn ARN), gdpr migrate-suppressions
leadflow report verify|funnel (--dev URL | --table NAME --reports-table NAME)   (dev/report_cli.py)
leadflow segment list|count|export|refresh [ID] (--dev URL | --table NAME)   (dev/segment_cli.py)
leadflow import FILE [--mapping ...] [--consent-basis ...] [--tag ...] [--dry-run] [--enroll SEQ]   (dev/import_cli.py)
leadflow schema [--out DIR]
"""

from __future__ import annotations

import argparse
import errno
import getpass
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from leadflow.dev.stack import LocalStack


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
    stopped = threading.Event()
    ready = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        # Ctrl-C (or SIGTERM) sets an event rather than raising wherever the main thread is.
        # While starting there is nothing to keep (moto lives in this process): leave at once.
        # A second Ctrl-C while stopping also leaves at once.
        if not ready.is_set() or stopped.is_set():
            print("leadflow dev: stopped", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    from leadflow.dev.stack import LocalStack

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("werkzeug", "moto", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose else logging.ERROR)
    if not args.verbose:
        quiet_known_warnings()
    port_in_use(args.host, args.port)
    root = project_root()
    workspace = Path(args.workspace) if args.workspace else root / "workspace"
    if not (workspace / "forms").is_dir():
        raise SystemExit(f"leadflow: {workspace} is not a workspace (no forms/ folder)")
    from leadflow.config.workspace import Workspace
    from leadflow.services.workspace_check import workspace_problems

    problems = workspace_problems(Workspace(workspace))
    if problems:
        raise SystemExit("leadflow: the workspace has problems:\n" + "\n".join(problems))
    started = time.perf_counter()
    try:
        stack = LocalStack(
            root,
            workspace,
            port=args.port,
            host=args.host,
            parameters=_parameters(args.parameter),
            log_level="INFO" if args.verbose else "WARNING",
            state_dir=Path(args.state) if args.state else None,
        ).start()
    except OSError as error:  # the port was taken between the check and the start
        if error.errno == errno.EADDRINUSE:
            port_in_use(args.host, args.port, taken=True)
        raise
    ready.set()
    print(f"leadflow dev ready: {stack.url}", flush=True)
    print(
        f"  landing page {stack.url}/ · console {stack.url}/_dev/ · admin token {stack.admin_token}"
        f" · started in {time.perf_counter() - started:.1f}s · Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    if stack.state_dir is not None:
        print(f"  {_state_line(stack, 'restored from')}", file=sys.stderr, flush=True)
    while not stopped.wait(0.5):
        pass
    print("leadflow dev: stopping", file=sys.stderr, flush=True)
    _stop_and_exit(stack, 0)


# What moto says while the local stack deploys the template, and why it does not matter here:
# these resource types are created by the stack itself (schedules, the HTTP API and its stage,
# SES event destinations) or do nothing locally (alarms, queue and topic policies).
MOTO_SKIPS = r"Tried to parse AWS::\S+ but it's not supported by moto's CloudFormation implementation"
# Powertools warns when a handler with @log_metrics publishes no metric; locally metrics are off.
POWERTOOLS_NO_METRICS = r"No application metrics to publish"


def quiet_known_warnings() -> None:
    """Hide the warnings every start prints and that say nothing about the user's project
    (``--verbose`` shows them)."""
    import warnings

    warnings.filterwarnings("ignore", message=MOTO_SKIPS, category=UserWarning)
    warnings.filterwarnings("ignore", message=POWERTOOLS_NO_METRICS)


def port_in_use(host: str, port: int, taken: bool = False) -> None:
    """Stop with a message naming ``PORT=`` when ``host:port`` is taken (0 picks a free one)."""
    import socket

    if not taken and port:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
            try:
                probe.bind((host, port))
            except OSError as error:
                taken = error.errno == errno.EADDRINUSE
    if taken:
        raise SystemExit(
            f"leadflow dev: port {port} is in use (another `leadflow dev`?). Stop it, or choose another port: "
            f"make dev PORT={port + 1}  (or: leadflow dev --port {port + 1})"
        )


def _state_line(stack: LocalStack, verb: str) -> str:
    counts = stack.state_counts
    if counts is None:
        return f"--state {stack.state_dir}: nothing saved there yet (saved when the stack stops)"
    return (
        f"{verb} {stack.state_dir}: {counts['items']} table items, {counts['messages']} queued messages,"
        f" {counts['emails']} emails"
    )


def _stop_and_exit(stack: LocalStack, code: int) -> NoReturn:
    """Stop the stack within seconds and end the process, whatever is still running.

    Handlers run in-process on worker threads (a batch waiting on a slow CRM, a tick, moto's
    state machine executions); Python would wait for every non-daemon one at exit, which is
    why Ctrl-C used to hang while a delivery was in flight. Their messages are not lost:
    undeleted, they are back on their queues after the visibility timeout on the next start.
    """
    try:
        stack.stop(timeout=3.0)
        if stack.state_dir is not None:
            print(f"leadflow dev: {_state_line(stack, 'saved to')}", file=sys.stderr, flush=True)
    except Exception as error:  # stopping half-started parts: leaving matters more than a tidy stop
        logging.getLogger("leadflow.dev").debug("stop", exc_info=True)
        if stack.state_dir is not None:
            print(f"leadflow dev: the state was NOT saved to {stack.state_dir}: {error!r}", file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_validate(args: argparse.Namespace) -> int:
    from leadflow.config.workspace import Workspace
    from leadflow.services.workspace_check import workspace_problems

    workspace = Path(args.workspace) if args.workspace else project_root() / "workspace"
    loaded = Workspace(workspace)
    problems = workspace_problems(loaded)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    for warning in loaded.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{workspace}: valid")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from leadflow.config.workspace import Workspace, compile_workspace
    from leadflow.domain.errors import InvalidWorkspace
    from leadflow.services.workspace_check import workspace_problems

    workspace = Path(args.workspace) if args.workspace else project_root() / "workspace"
    problems = workspace_problems(Workspace(workspace))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
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
        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310 - the local stack's URL given with --dev  # nosec B310
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

    with urllib.request.urlopen(url.rstrip("/") + "/_dev/clock", timeout=10) as response:  # noqa: S310 - the local stack's URL given with --dev  # nosec B310
        dev_now = datetime.fromisoformat(json.load(response)["now"])
    return _OffsetClock(dev_now - datetime.now(UTC))


def cmd_broadcast(args: argparse.Namespace) -> int:
    from leadflow.bootstrap import nurture_reader_for, system_clock
    from leadflow.config.workspace import Workspace

    table = resolve_table(args, "broadcast")
    workspace = Workspace(Path(args.workspace) if args.workspace else project_root() / "workspace")
    clock = _dev_clock(args.dev) if args.dev else system_clock()
    service = nurture_reader_for(table, workspace, clock, shards=args.shards)
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
    _publish_enrollments(args, service)
    print(
        f"broadcast {args.sequence}: {counts.get('enrolled', 0)} enrolled of {counts.get('scanned', 0)} leads "
        f"({counts.get('already_enrolled', 0)} already enrolled, {counts.get('refused', 0)} refused by re-entry); "
        "the nurture tick sends the emails within the SES rate"
    )
    return 0


def _publish_enrollments(args: argparse.Namespace, service: Any) -> None:
    """The enrollments counted for the reports go on the bus (``--bus``, or the dev stack's)."""
    from leadflow.bootstrap import event_bus_for, publish_nurture_counts

    bus = args.bus
    if args.dev and not bus:
        import json
        import urllib.request

        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310 - the local stack's URL given with --dev  # nosec B310
            bus = json.load(response)["outputs"]["EventBusName"]
    if bus:
        publish_nurture_counts(service, event_bus_for(bus))
    else:
        print("(no --bus: the enrollments are not in the sequence report)", file=sys.stderr)


def cmd_rescore(args: argparse.Namespace) -> int:
    from leadflow.bootstrap import scoring_for, system_clock
    from leadflow.config.workspace import Workspace
    from leadflow.services.scoring import rescore_lead

    table = resolve_table(args, "rescore")
    workspace = Workspace(Path(args.workspace) if args.workspace else project_root() / "workspace")
    service, store = scoring_for(table, workspace, system_clock())
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
        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310 - the local stack's URL given with --dev  # nosec B310
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
    from leadflow.bootstrap import handoff_starter_for, system_clock
    from leadflow.config.workspace import Workspace
    from leadflow.domain.errors import LeadNotFound
    from leadflow.domain.handoff import HandoffDisabled

    outputs = _stack_outputs(args, "handoff")
    workspace = Workspace(Path(args.workspace) if args.workspace else project_root() / "workspace")
    clock = _dev_clock(args.dev) if args.dev else system_clock()
    service = handoff_starter_for(
        outputs["LeadsTableName"], outputs["HandoffQueueUrl"], outputs["HandoffDLQUrl"], workspace, clock
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
    """Send what a DLQ holds back to its queue, with progress (see ``leadflow.dev.replay``)."""
    import json
    import urllib.request

    from leadflow.adapters.aws import client
    from leadflow.adapters.redrive import SqsRedrive
    from leadflow.dev.replay import TARGETED_DLQS, mark_handoff_replay, redrive_pairs, replay_targeted, stack_queue_urls
    from leadflow.dev.template import load_template

    pairs = redrive_pairs(load_template(project_root() / "template.yaml"))
    known = [*pairs, *TARGETED_DLQS, "outbox"]
    if args.queue != "all" and args.queue not in known:
        raise SystemExit(f"leadflow replay: no DLQ named {args.queue!r}; one of: all, {', '.join(known)}")
    names = known if args.queue == "all" else [args.queue]
    if args.dev:
        resolve_table(args, "replay")  # this process now talks to the dev stack's AWS endpoint
        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310 - the local stack's URL given with --dev  # nosec B310
            args.stack = args.stack or json.load(response)["stack_name"]
    sqs = client("sqs")
    if args.stack:
        single = {**TARGETED_DLQS, "outbox": "OutboxDLQ"}
        wanted = {i for name in names for i in (pairs[name] if name in pairs else (single[name],))}
        urls = stack_queue_urls(client("cloudformation"), sqs, args.stack, wanted)
    elif names == ["handoff"] and args.queue_url and args.dlq_url:
        urls = {"HandoffQueue": args.queue_url, "HandoffDLQ": args.dlq_url}
    else:
        raise SystemExit("leadflow replay: give --dev URL or --stack NAME (or, for handoff, --queue-url and --dlq-url)")
    if args.enable_destinations:
        from leadflow.adapters.handoff import DynamoHandoffStore

        store = DynamoHandoffStore(resolve_table(args, "replay"))
        for name in store.disabled_destinations():
            store.enable_destination(name)
            print(f"destination {name}: enabled again", file=sys.stderr)
    redrive = SqsRedrive(sqs)
    for name in names:
        if name == "outbox":
            replay_outbox(args.stack, urls["OutboxDLQ"], redrive.depth(urls["OutboxDLQ"]))
            continue
        if name in TARGETED_DLQS:
            dlq = TARGETED_DLQS[name]
            progress = Progress(redrive.depth(urls[dlq]), f"messages of {dlq}")
            moved, kept = replay_targeted(sqs, client("lambda"), urls[dlq], progress.step)
            progress.close()
            print(f"replayed {moved} message(s) from the {dlq} to their targets; {kept} name no target (left)")
            continue
        dlq, source = pairs[name]
        total = redrive.depth(urls[dlq])
        progress = Progress(min(total, args.limit) if args.limit else total, f"messages of {dlq}")
        transform = mark_handoff_replay if name == "handoff" else None
        result = redrive.move_back(urls[dlq], urls[source], args.limit, step=progress.step, transform=transform)
        progress.close()
        print(f"replayed {result.moved} message(s) from the {dlq} to the {source}")
    return 0


def replay_outbox(stack: str, dlq_url: str, depth: int) -> None:
    """Publish again the events of the outbox stream batches the relay gave up on."""
    from leadflow.adapters.aws import client
    from leadflow.adapters.eventbridge import EventBridgePublisher
    from leadflow.adapters.redrive import SqsDeadLetters
    from leadflow.adapters.streams import DynamoStreamReader
    from leadflow.services.outbox import replay_outbox_dead_letters

    outputs = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    bus = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "EventBusName")
    progress = Progress(depth, "failed batches of OutboxDLQ")
    result = replay_outbox_dead_letters(
        SqsDeadLetters(dlq_url), DynamoStreamReader(), EventBridgePublisher(bus), progress.step
    )
    progress.close()
    print(
        f"replayed {result.batches} batch(es) of the OutboxDLQ: {result.events} event(s) on the bus again; "
        f"left: {result.expired} older than the stream's 24 hours, {result.refused} refused by the bus again, "
        f"{result.unreadable} not a stream batch"
    )


def cmd_schema(args: argparse.Namespace) -> int:
    from leadflow.config.workspace import write_json_schemas

    out = Path(args.out) if args.out else project_root() / "workspace" / "schemas"
    for path in write_json_schemas(out):
        print(path)
    return 0


WORKSPACE_HELP = "the workspace folder (default: ./workspace)"
DEV_HELP = "a running `leadflow dev`, e.g. http://127.0.0.1:8000"


def build_parser() -> argparse.ArgumentParser:
    """Every command and flag, each with its help (``leadflow COMMAND --help``)."""
    from leadflow import __version__

    parser = argparse.ArgumentParser(prog="leadflow", description="leadflow: serverless marketing automation")
    parser.add_argument("--version", action="version", version=f"leadflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run the whole product locally (moto, no Docker, no AWS account)")
    dev.add_argument("--port", type=int, default=8000, help="the port to serve on (default 8000; 0 picks a free one)")
    dev.add_argument("--host", default="127.0.0.1", help="the address to serve on (default: this machine only)")
    dev.add_argument("--workspace", help=WORKSPACE_HELP)
    dev.add_argument("--parameter", action="append", default=[], help="template parameter override KEY=VALUE")
    dev.add_argument(
        "--state",
        metavar="DIR",
        help="keep the stack's data between runs in DIR (saved on stop, restored on start; default: in memory)",
    )
    dev.add_argument(
        "--verbose", action="store_true", help="show function logs, request lines and the embedded AWS's warnings"
    )
    dev.set_defaults(run=cmd_dev)
    validate = commands.add_parser("validate", help="check every workspace file against its schema")
    validate.add_argument("--workspace", help=WORKSPACE_HELP)
    validate.set_defaults(run=cmd_validate)
    compile_ = commands.add_parser(
        "compile", help="validate a workspace and write it as workspace.json (the layer build)"
    )
    compile_.add_argument("--workspace", help=WORKSPACE_HELP)
    compile_.add_argument("--out", required=True, help="folder to write workspace.json into")
    compile_.set_defaults(run=cmd_compile)
    rescore = commands.add_parser("rescore", help="replay every lead's history through the current scoring rules")
    rescore.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    rescore.add_argument("--dev", metavar="URL", help="rescore a running `leadflow dev`, e.g. http://127.0.0.1:8000")
    rescore.add_argument("--workspace", help=WORKSPACE_HELP)
    rescore.set_defaults(run=cmd_rescore)
    broadcast = commands.add_parser("broadcast", help="enroll a sequence's broadcast segment (batched writes)")
    broadcast.add_argument("sequence", help="the sequence id, e.g. push-discount")
    broadcast.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    broadcast.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8790")
    broadcast.add_argument("--shards", type=int, default=16, help="the stack's NurtureShards parameter")
    broadcast.add_argument("--bus", help="the EventBusName output: the enrollments are counted for the reports")
    broadcast.add_argument("--workspace", help=WORKSPACE_HELP)
    broadcast.set_defaults(run=cmd_broadcast)
    handoff = commands.add_parser("handoff", help="hand a lead to sales now (assigned and delivered like any hand-off)")
    handoff.add_argument("lead_id", help="the lead's id (as in the console and the API)")
    handoff.add_argument("--reason", default="requested from the command line", help="why, as sales will read it")
    handoff.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8000")
    handoff.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    handoff.add_argument("--queue-url", help="stack output HandoffQueueUrl")
    handoff.add_argument("--dlq-url", help="stack output HandoffDLQUrl")
    handoff.add_argument("--workspace", help=WORKSPACE_HELP)
    handoff.set_defaults(run=cmd_handoff)
    replay = commands.add_parser("replay", help="send a DLQ's messages back to their queue (with progress)")
    replay.add_argument(
        "queue", help="which DLQ, by name (intake, scoring, handoff, nurture-now, ... as in template.yaml), or all"
    )
    replay.add_argument("--dev", metavar="URL", help="a running `leadflow dev`")
    replay.add_argument("--stack", help="the deployed stack's name (its queues are found through CloudFormation)")
    replay.add_argument("--table", help="the LeadsTable name (stack output LeadsTableName)")
    replay.add_argument("--queue-url", help="stack output HandoffQueueUrl")
    replay.add_argument("--dlq-url", help="stack output HandoffDLQUrl")
    replay.add_argument("--limit", type=int, default=0, help="at most this many messages")
    replay.add_argument(
        "--enable-destinations", action="store_true", help="switch destinations a 410 disabled back on first"
    )
    replay.set_defaults(run=cmd_replay)
    schema = commands.add_parser("schema", help="write the JSON Schemas of workspace files (for editors)")
    schema.add_argument("--out", help="the folder to write into (default: workspace/schemas)")
    schema.set_defaults(run=cmd_schema)
    from leadflow.dev.gdpr_cli import add_commands

    add_commands(commands)
    from leadflow.dev.enroll_cli import add_enroll_command
    from leadflow.dev.report_cli import add_report_commands

    add_report_commands(commands)
    add_enroll_command(commands)
    from leadflow.dev.import_cli import add_import_command
    from leadflow.dev.segment_cli import add_segment_commands

    add_segment_commands(commands)
    add_import_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
