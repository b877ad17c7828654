"""Erasure of a lead with 1,000 activities: wall time and the AWS calls it makes.

Builds, in moto (in this process, no server), the LeadsTable and the ReportsTable as
``template.yaml`` declares them (keys and indexes), and one lead with a full history:
``--activities`` activities (1,000), a score ledger entry for each, consent records, two
enrollments, a mail log, a hand-off, pending outbox events, the email guard, a visitor link
with its visits, an idempotency record and three report markers (created, MQL reached, the
hand-off's). Then ``GdprService.erase`` runs as the admin API runs it (``DynamoGdprStore``,
``DynamoReportMarkers``), and a botocore ``before-call`` hook counts every AWS call by
operation; the time is the wall time of the erasure alone, median of ``--repeat`` runs (a
fresh lead each time). Afterwards the table is scanned: the script fails if any item still
carries the lead's id or address.

    .venv/bin/python bench/gdpr_erasure.py [--activities 1000] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TABLE = "bench-leads"
REPORTS = "bench-reports"
KEY = b"bench-suppression-key"


class Clock:
    def now(self) -> datetime:
        return datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def create_table(client: Any) -> None:
    """The LeadsTable's keys and indexes, read from template.yaml."""
    from leadflow.dev.template import load_template

    props = load_template(ROOT / "template.yaml")["Resources"]["LeadsTable"]["Properties"]
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=[
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in props["GlobalSecondaryIndexes"]
        ],
    )


def create_reports_table(client: Any) -> None:
    """The ReportsTable's keys, read from template.yaml."""
    from leadflow.dev.template import load_template

    props = load_template(ROOT / "template.yaml")["Resources"]["ReportsTable"]["Properties"]
    client.create_table(
        TableName=REPORTS,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
    )


def a_full_history(client: Any, lead_id: str, activities: int) -> str:
    """One lead with everything a long life leaves in the table; returns its address."""
    from leadflow.adapters.dynamo_json import serialize

    email = f"{lead_id.lower()}@example.com"
    start = datetime(2024, 1, 1, tzinfo=UTC)
    visitor = f"v-{lead_id.lower()}"
    items: list[dict[str, Any]] = [
        {
            "PK": f"LEAD#{lead_id}", "SK": "PROFILE", "lead_id": lead_id, "email": email, "first_name": "Ada",
            "company": "Example", "created_at": start.isoformat(), "updated_at": start.isoformat(),
            "GSI2PK": f"LEADS#{start:%Y-%m}", "GSI2SK": f"{start.isoformat()}#{lead_id}",
            "GSI3PK": "STAGE#sql", "GSI3SK": lead_id, "consent_marketing_email": {"granted": True},
        },
        {"PK": f"EMAIL#{email}", "SK": "EMAIL", "lead_id": lead_id},
        {"PK": f"VISITOR#{visitor}", "SK": "LINK", "lead_id": lead_id},
        {"PK": "IDEM#demo-signup#" + "ab" * 32, "SK": "IDEM", "lead_id": lead_id},
        {"PK": f"LEAD#{lead_id}", "SK": "MAIL", "sends": [], "held": {}},
        {"PK": f"LEAD#{lead_id}", "SK": "HANDOFF#h1", "handoff_id": "h1", "status": "accepted", "destinations": {}},
    ]  # fmt: skip
    for sequence in ("welcome", "push-discount"):
        items.append({"PK": f"LEAD#{lead_id}", "SK": f"ENR#{sequence}", "sequence_id": sequence, "emails": []})
    for i in range(3):
        items.append({"PK": f"LEAD#{lead_id}", "SK": f"CONSENT#{start.isoformat()}#c{i}", "granted": True})
        items.append({"PK": f"LEAD#{lead_id}", "SK": f"EVENT#e{i}", "detail": json.dumps({"lead_id": lead_id})})
        items.append({"PK": f"VISITOR#{visitor}", "SK": f"ACT#{start.isoformat()}#v{i}", "type": "page_viewed"})
    for i in range(activities):
        at = (start + timedelta(hours=i)).isoformat()
        activity = {"type": "page_viewed", "at": at, "url": "https://www.example.com/pricing", "lead_id": lead_id}
        if i == 0:
            activity.update(type="form_submitted", idem_key="IDEM#demo-signup#" + "ab" * 32, visitor_id=visitor)
        items.append({"PK": f"LEAD#{lead_id}", "SK": f"ACT#{at}#a{i:05d}", **activity})
        items.append({"PK": f"LEAD#{lead_id}", "SK": f"LEDGER#{at}#a{i:05d}:smb:page", "points": 1, "at": at})
    markers = [
        {"PK": f"LEADRPT#{lead_id}", "SK": "CREATED", "at": start.isoformat()},
        {"PK": f"LEADRPT#{lead_id}", "SK": "REACHED#mql", "at": start.isoformat()},
        {"PK": "HANDOFFRPT#h1", "SK": "CREATED", "at": start.isoformat()},
    ]
    for marker in markers:
        client.put_item(TableName=REPORTS, Item=serialize(marker))
    for start_at in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": serialize(i)}} for i in items[start_at : start_at + 25]]
        client.batch_write_item(RequestItems={TABLE: chunk})
    return email


def measure(activities: int, repeat: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    from leadflow.adapters.dynamo_json import deserialize
    from leadflow.adapters.gdpr import DynamoGdprStore, DynamoReportMarkers
    from leadflow.config.workspace import Workspace
    from leadflow.services.gdpr import GdprService

    calls: Counter[str] = Counter()
    counting = [False]

    def before_call(model: Any = None, **_: Any) -> None:
        if counting[0] and model is not None:
            calls[f"{model.service_model.service_name}:{model.name}"] += 1

    with mock_aws():
        session = boto3.session.Session()
        session.events.register("before-call", before_call)
        client = session.client("dynamodb", region_name="us-east-1")
        create_table(client)
        create_reports_table(client)
        service = GdprService(
            Workspace(ROOT / "workspace"),
            DynamoGdprStore(TABLE, client),
            lambda: KEY,
            Clock(),
            None,
            DynamoReportMarkers(REPORTS, client),
        )
        times: list[float] = []
        per_run: list[int] = []
        counts: dict[str, int] = {}
        for run in range(repeat):
            lead_id = f"BENCH{run:04d}"
            email = a_full_history(client, lead_id, activities)
            before = sum(calls.values())
            counting[0] = True
            started = time.perf_counter()
            erasure = service.erase(lead_id, "bench", "bench")
            times.append(time.perf_counter() - started)
            counting[0] = False
            per_run.append(sum(calls.values()) - before)
            counts = erasure.counts
            left = [deserialize(i) for i in client.scan(TableName=TABLE)["Items"]]
            leftovers = [i for i in left if lead_id in json.dumps(i) or email in json.dumps(i)]
            if leftovers:
                raise SystemExit(f"erasure left {len(leftovers)} items of the lead: {leftovers[:3]}")
    return {
        "activities": activities,
        "repeat": repeat,
        "seconds_median": statistics.median(times),
        "seconds_all": [round(t, 3) for t in times],
        "aws_calls_per_erasure": per_run[0],
        "aws_calls_by_operation": {k: v // repeat for k, v in sorted(calls.items())},
        "items_erased": sum(counts.values()),
        "items_by_kind": counts,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_1min": round(os.getloadavg()[0], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--activities", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.activities, args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"erasure of a lead with {result['activities']} activities ({result['items_erased']} items)")
    print(f"  machine: {result['machine']}")
    median = result["seconds_median"]
    print(f"  wall time: median {median:.3f} s of {args.repeat} runs {result['seconds_all']} (moto, in process)")
    print(f"  AWS calls: {result['aws_calls_per_erasure']} per erasure")
    for operation, count in result["aws_calls_by_operation"].items():
        print(f"    {operation}: {count}")
    print(f"  items by kind: {result['items_by_kind']}")
    print(f"  measured {result['measured_at']}, 1-minute load {result['load_1min']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
