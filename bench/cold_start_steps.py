"""Where the form capture handler's cold start goes: instructions step by step (valgrind).

``cold_start.py --instructions`` compares the handler's whole span with the floor's. This script
splits the handler's span into cumulative steps, each run in a fresh process under valgrind
(callgrind) against the same DynamoDB stub and with the same environment as ``cold_start.py``'s
handler child, and prints what each step adds:

1. Powertools ``Logger`` and ``Metrics`` created (the floor has them too);
2. ``import email_validator`` (the address check the first request needs; its four patterns with
   the U+0080-U+10FFFF range compile at import);
3. the import of ``functions/form_capture/app.py`` (leadflow's modules on the capture path);
4. ``boto3`` imported and a DynamoDB client created (the floor pays this too);
5. the handler called once with a new-lead JSON post (the transaction, the workspace read).

Instruction counts do not depend on what else the machine runs. Each count is the lowest of
``--runs`` runs (default 2); step 0, the bare child, is what every step's count includes.

    cd /work/main && .venv/bin/python bench/cold_start_steps.py [--runs 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cold_start import CONTEXT, Stub, callgrind, child_env, form_event  # bench/, beside this script

PRELUDE = "import json, os\n" + CONTEXT + "event = json.loads(os.environ['BENCH_EVENT'])\n"
# As the Lambda runtime loads ``app.lambda_handler`` (also bench/cold_start_snapstart.py's).
IMPORT_APP = (
    "import importlib.util\n"
    "spec = importlib.util.spec_from_file_location('app', os.environ['BENCH_APP'])\n"
    "module = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(module)\n"
)
STEPS: tuple[tuple[str, str], ...] = (
    ("bare child (interpreter, the event read)", ""),
    (
        "Powertools Logger and Metrics",
        "from aws_lambda_powertools import Logger, Metrics\n"
        "from aws_lambda_powertools.metrics import MetricUnit\nLogger(); Metrics()",
    ),
    ("import email_validator", "import email_validator"),
    ("import functions/form_capture/app.py", IMPORT_APP),
    ("boto3 imported, a DynamoDB client created", "import boto3\nboto3.client('dynamodb')"),
    ("the handler called once (new lead)", "module.lambda_handler(event, Context())"),
)


def count(code: str, stub: Stub, run: int) -> int:
    """The instructions of ``python -c CODE`` with the handler child's environment and a new table."""
    env = {**child_env(stub.endpoint, stub.queue), "LEADS_TABLE": stub.new_table(), "BENCH_EVENT": form_event(run)}
    return callgrind(["-c", code], env)


def measure(runs: int) -> list[dict[str, Any]]:
    stub = Stub()
    try:
        code, rows, before = PRELUDE, [], None
        for label, step in STEPS:
            code += step + "\n"
            total = min(count(code + "os._exit(0)\n", stub, 800 + run) for run in range(runs))
            rows.append({"step": label, "instructions": total, "added": total - before if before else 0})
            before = total
        return rows
    finally:
        stub.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="valgrind runs per step, the lowest kept (default 2)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.runs)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"form capture cold start, cumulative steps (valgrind instructions, lowest of {args.runs})")
    for row in rows:
        print(f"  {row['step']:44s} {row['instructions'] / 1e6:9.1f} M   +{row['added'] / 1e6:7.1f} M")
    return 0


if __name__ == "__main__":
    sys.exit(main())
