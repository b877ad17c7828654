"""Form capture's cold start with Lambda SnapStart, against the same floor as ``cold_start.py``.

With SnapStart (``template.yaml``: ``AutoPublishAlias`` and ``SnapStart`` on FormCaptureFunction),
Lambda runs the function's init when a version is published: every import, then the hooks
registered with ``register_before_snapshot`` (``app.py``: the capture service and its DynamoDB
client built), and snapshots the environment. A cold start then resumes that snapshot, runs the
``register_after_restore`` hooks (``random`` seeded afresh) and handles the request. This script
runs those phases as the runtime does, in fresh processes against ``cold_start.py``'s DynamoDB stub
and environment, and measures each span three ways:

- ``floor``: what ``cold_start.py``'s floor child does (import boto3 and Powertools ``Logger`` and
  ``Metrics``, one DynamoDB client, one ``GetItem``): an on-demand cold start of the least such
  function;
- ``on demand``: the handler's whole span without SnapStart (import ``app.py``, the first post);
- ``restored``: the span after the snapshot (the after-restore hooks, the first post), the
  process having imported ``app.py`` and run the before-snapshot hooks first, outside the span;
- ``init at publish``: the import and the before-snapshot hooks, which Lambda runs once per
  published version (not in any visitor's wait).

Each span is counted in instructions with valgrind (callgrind: a run with the span less a run that
stops where it starts; the lowest of ``--runs``), which the machine's load cannot move, and timed
with ``time.perf_counter`` (median of ``--runs`` runs each, alternating). What no local run can
measure is Lambda's own restore of the snapshot (the microVM's memory brought back), which adds to
the restored span in AWS; its ``Restore Duration`` is in the function's REPORT log line.

    cd /work/main && .venv/bin/python bench/cold_start_snapstart.py [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

from cold_start import GOAL_OVERHEAD_PERCENT, ROOT, Stub, child_env, form_event  # bench/, beside this script
from cold_start_steps import IMPORT_APP, PRELUDE, count

MARKER = "BENCH_SPAN "
# As the Lambda runtime calls the hooks (the library's documented registries): before the snapshot
# in the reverse order of registration, after a restore in the order of registration.
BEFORE_SNAPSHOT = (
    "from snapshot_restore_py import get_before_snapshot\n"
    "for hook, args, kwargs in reversed(get_before_snapshot()):\n    hook(*args, **kwargs)\n"
)
AFTER_RESTORE = (
    "from snapshot_restore_py import get_after_restore\n"
    "for hook, args, kwargs in get_after_restore():\n    hook(*args, **kwargs)\n"
)
HANDLER = "answer = module.lambda_handler(event, Context())\nassert answer['statusCode'] == 200, answer\n"
# cold_start.py's floor child, the same calls.
FLOOR = (
    "import boto3\nfrom aws_lambda_powertools import Logger, Metrics\nLogger(); Metrics()\n"
    "client = boto3.client('dynamodb')\n"
    "client.get_item(TableName=os.environ['LEADS_TABLE'], Key={'PK': {'S': 'LEAD#floor'}, 'SK': {'S': 'PROFILE'}})\n"
)
SPANS: dict[str, tuple[str, str]] = {
    # name: (what runs before the span, the span)
    "floor": ("", FLOOR),
    "on demand": ("", IMPORT_APP + HANDLER),
    "restored": (IMPORT_APP + BEFORE_SNAPSHOT, AFTER_RESTORE + HANDLER),
    "init at publish": ("", IMPORT_APP + BEFORE_SNAPSHOT),
}


def span_ms(before: str, span: str, stub: Stub, run: int) -> float:
    """The span's time (``time.perf_counter``) in a fresh child that ran ``before`` first."""
    code = (
        PRELUDE
        + "import time\n"
        + before
        + "started = time.perf_counter()\n"
        + span
        + f"print({MARKER!r} + repr((time.perf_counter() - started) * 1000), flush=True)\n"
    )
    env = {**child_env(stub.endpoint, stub.queue), "LEADS_TABLE": stub.new_table(), "BENCH_EVENT": form_event(run)}
    command = [sys.executable, "-c", code + "os._exit(0)\n"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=900, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
    return float(lines[-1].removeprefix(MARKER))


def measure(runs: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    stub = Stub()
    try:
        for before, span in SPANS.values():  # warm-up: .pyc files, page cache
            span_ms(before, span, stub, 0)
        counted: dict[str, int] = {}
        for name, (before, span) in SPANS.items():
            # no interpreter teardown in any count
            whole = min(count(PRELUDE + before + span + "os._exit(0)\n", stub, 900 + run) for run in range(runs))
            start = min(count(PRELUDE + before + "os._exit(0)\n", stub, 950 + run) for run in range(runs))
            counted[name] = whole - start
        timed: dict[str, list[float]] = {name: [] for name in SPANS}
        for run in range(runs):
            for name, (before, span) in SPANS.items():
                timed[name].append(span_ms(before, span, stub, 1000 + run))
        operations = stub.operations()
    finally:
        stub.stop()
    floor, floor_ms = counted["floor"], statistics.median(timed["floor"])
    return {
        "runs": runs,
        "python": sys.version.split()[0],
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "spans": {
            name: {
                "instructions": counted[name],
                "percent_of_floor": round((counted[name] / floor - 1) * 100, 1),
                "median_ms": round(statistics.median(timed[name]), 1),
                "percent_of_floor_ms": round((statistics.median(timed[name]) / floor_ms - 1) * 100, 1),
            }
            for name in SPANS
        },
        "goal_percent": GOAL_OVERHEAD_PERCENT,
        "stub_operations": operations,
    }


def text(report: dict[str, Any]) -> str:
    spans = report["spans"]
    what = {
        "floor": "floor: boto3 + Powertools, a client, GetItem (on demand)",
        "on demand": "form capture on demand: import app.py + first post",
        "restored": "form capture restored: after-restore hook + first post",
        "init at publish": "init at publish: import app.py + before-snapshot hook",
    }
    lines = [
        f"form capture cold start with SnapStart (Python {report['python']}; instructions: lowest of "
        f"{report['runs']} valgrind runs; time: median of {report['runs']} runs; 1-min load "
        f"{report['load_average_1min']['before']} -> {report['load_average_1min']['after']})",
    ]
    for name, row in spans.items():
        relative = (
            "" if name == "floor" else f"  {row['percent_of_floor']:+7.1f}%  {row['percent_of_floor_ms']:+7.1f}% timed"
        )
        lines.append(f"  {what[name]:58s} {row['instructions'] / 1e6:8.1f} M  {row['median_ms']:7.1f} ms{relative}")
    restored = spans["restored"]["percent_of_floor"]
    goal = report["goal_percent"]
    lines.append(
        f"goal (<= {goal:.0f}% over the floor), restored span by instructions: "
        + ("met" if restored <= goal else "MISSED")
        + f" ({restored:+.1f}%); Lambda's own restore of the snapshot comes on top (its REPORT line's Restore Duration)"
    )
    ops = ", ".join(f"{name} x{count}" for name, count in sorted(report["stub_operations"].items()))
    lines.append(f"calls the stub answered (warm-ups included): {ops}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per span and way of measuring (default 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = measure(args.runs)
    print(json.dumps(report, indent=2) if args.json else text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
