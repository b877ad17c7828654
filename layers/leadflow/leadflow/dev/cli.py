"""The ``leadflow`` command: the local stack and workspace tools.

leadflow dev [--port N] [--workspace PATH] [--parameter KEY=VALUE ...]
leadflow validate [--workspace PATH]
leadflow compile --out DIR [--workspace PATH]
leadflow schema [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
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
    schema = commands.add_parser("schema", help="write the JSON Schemas of workspace files (for editors)")
    schema.add_argument("--out")
    schema.set_defaults(run=cmd_schema)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
