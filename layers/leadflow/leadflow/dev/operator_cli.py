"""``leadflow rescore|broadcast|handoff|replay``: an operator's commands on a stack's data.

leadflow rescore (--table NAME | --dev URL) [--workspace PATH]
leadflow broadcast SEQUENCE (--table NAME | --dev URL) [--workspace PATH]
leadflow handoff LEAD_ID (--dev URL | --table NAME --queue-url URL --dlq-url URL) [--reason TEXT]
leadflow replay QUEUE|all (--dev URL | --stack NAME) [--limit N] [--enable-destinations]

Each works on a deployed stack (its table, queues or name) or on a running ``leadflow dev``
(``--dev URL``), whose embedded AWS endpoint this process then talks to.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import Any


def cmd_broadcast(args: argparse.Namespace) -> int:
    from leadflow.bootstrap.clock import system_clock
    from leadflow.bootstrap.nurture import nurture_reader_for
    from leadflow.config.workspace import Workspace
    from leadflow.dev.cli import _dev_clock, project_root, resolve_table

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
    from leadflow.bootstrap.nurture import event_bus_for, publish_nurture_counts

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
    from leadflow.bootstrap.clock import system_clock
    from leadflow.bootstrap.scoring import scoring_for
    from leadflow.config.workspace import Workspace
    from leadflow.dev.cli import Progress, project_root, resolve_table
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

    from leadflow.dev.cli import resolve_table

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
    from leadflow.bootstrap.clock import system_clock
    from leadflow.bootstrap.handoff import handoff_starter_for
    from leadflow.config.workspace import Workspace
    from leadflow.dev.cli import _dev_clock, project_root
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
    from leadflow.dev.cli import Progress, project_root, resolve_table
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
    from leadflow.dev.cli import Progress
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


def add_operator_commands(commands: Any) -> None:
    """``leadflow rescore``, ``broadcast``, ``handoff`` and ``replay`` on the CLI's sub-command parser."""
    from leadflow.dev.cli import WORKSPACE_HELP

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
