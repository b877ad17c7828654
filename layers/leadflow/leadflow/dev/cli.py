"""The ``leadflow`` command: the local stack and workspace tools.

leadflow --version
leadflow dev [--port N] [--workspace PATH] [--parameter KEY=VALUE ...] [--state DIR] [--verbose]
leadflow validate [--workspace PATH]
leadflow compile --out DIR [--workspace PATH]
leadflow rescore (--table NAME | --dev URL) [--workspace PATH]   (dev/operator_cli.py)
leadflow broadcast SEQUENCE (--table NAME | --dev URL) [--workspace PATH]   (dev/operator_cli.py)
leadflow handoff LEAD_ID (--dev URL | --table NAME --queue-url URL --dlq-url URL) [--reason TEXT]  (dev/operator_cli.py)
leadflow replay QUEUE|all (--dev URL | --stack NAME) [--limit N] [--enable-destinations]   (dev/operator_cli.py)
leadflow enroll EMAIL|LEAD_ID SEQUENCE (--dev URL | --api URL)   (dev/enroll_cli.py)
leadflow gdpr export|erase EMAIL (--dev URL | --table NAME --secret-arn ARN), migrate-suppressions   (dev/gdpr_cli.py)
leadflow report verify|funnel (--dev URL | --table NAME --reports-table NAME)   (dev/report_cli.py)
leadflow segment list|count|export|refresh [ID] (--dev URL | --table NAME)   (dev/segment_cli.py)
leadflow import FILE [--mapping ...] [--consent-basis ...] [--tag ...] [--dry-run] [--enroll SEQ]   (dev/import_cli.py)
leadflow migrate account-index (--dev URL | --table NAME)   (dev/migrate_cli.py)
leadflow schema [--out DIR]
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

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
        f"  landing page {stack.url}/ · console {stack.url}/console/ · dev view {stack.url}/_dev/"
        f" · admin token {stack.admin_token}"
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
    from leadflow.config.compiled import compile_workspace
    from leadflow.config.workspace import Workspace
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


def cmd_schema(args: argparse.Namespace) -> int:
    from leadflow.config.compiled import write_json_schemas

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
    from leadflow.dev.operator_cli import add_operator_commands

    add_operator_commands(commands)
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
    from leadflow.dev.migrate_cli import add_migrate_commands

    add_migrate_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
