"""What one DynamoDB page costs on the local stack as the table grows, with and without its speed-ups.

The nurture cost meter (``nurture_cost.py``) is bounded by moto's DynamoDB, in one process
behind the local stack's lock. This measures the reads that grew with the table: the tick's
due query (``GSI4``, a page of 200), the plan's "anything due?" query on a shard with nothing
due (``Limit`` 1), a page of the broadcast's segmented ``Scan`` from the middle of the table,
and one ``PutItem``. The table holds, per lead, a ~1 KB profile and an enrollment with a
``GSI4`` entry (the shape of the push campaign's table). Each mode runs in its own process:
``moto`` has the local stack's older patches only (moto's own reads and serializer), ``patched``
all of them (``leadflow/dev/moto_patches.py``, ``moto_dynamodb.py``, ``moto_indexes.py``).

    cd /work/main && .venv/bin/python bench/local_dynamodb_pages.py [--leads 10000 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARDS = 16
DUE_SOON = "2026-12-08T09:00:00+00:00#~"


def _table(client: Any) -> None:
    client.create_table(
        TableName="leads",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "GSI4PK", "GSI4SK")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "GSI4",
                "KeySchema": [
                    {"AttributeName": "GSI4PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI4SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )


def _fill(backend: Any, leads: int) -> None:
    """Half the enrollments are due on Dec 8, half on Dec 15; shard 15 holds nothing due before Dec 15."""
    for n in range(leads):
        lead = f"LEAD#{n:07d}"
        profile: dict[str, Any] = {"PK": {"S": lead}, "SK": {"S": "PROFILE"}, "email": {"S": f"lead{n}@example.com"}}
        profile["fields"] = {"M": {f"f{i}": {"S": "x" * 40} for i in range(20)}}
        backend.put_item("leads", profile)
        shard = n % SHARDS
        due = "2026-12-08" if shard != SHARDS - 1 and n % 2 else "2026-12-15"
        backend.put_item(
            "leads",
            {
                "PK": {"S": lead},
                "SK": {"S": "ENR#push-discount"},
                "status": {"S": "active"},
                "GSI4PK": {"S": f"DUE#{shard}"},
                "GSI4SK": {"S": f"{due}T09:00:00+00:00#{n:07d}#push-discount"},
            },
        )


def _measure(mode: str, leads: int, repeat: int) -> dict[str, float]:
    import boto3
    from moto import mock_aws
    from moto.dynamodb.models import dynamodb_backends

    from leadflow.dev import moto_dynamodb, moto_patches

    if mode == "patched":
        moto_patches.apply()
    else:
        moto_dynamodb.dynamodb_serialized()
        moto_dynamodb.dynamodb_transactions()
        moto_dynamodb.dynamodb_transaction_tokens()
        moto_dynamodb.dynamodb_partition_query()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _table(client)
        started = time.perf_counter()
        _fill(dynamodb_backends["123456789012"]["us-east-1"], leads)
        fill_s = time.perf_counter() - started
        middle = {"PK": {"S": f"LEAD#{leads // 2:07d}"}, "SK": {"S": "PROFILE"}}
        counter = iter(range(10**9))
        reads = {
            "due query (page of 200)": lambda: client.query(
                TableName="leads",
                IndexName="GSI4",
                KeyConditionExpression="GSI4PK = :p AND GSI4SK <= :n",
                ExpressionAttributeValues={":p": {"S": "DUE#3"}, ":n": {"S": DUE_SOON}},
                Limit=200,
            ),
            "anything due? (Limit 1, none due)": lambda: client.query(
                TableName="leads",
                IndexName="GSI4",
                KeyConditionExpression="GSI4PK = :p AND GSI4SK <= :n",
                ExpressionAttributeValues={
                    ":p": {"S": f"DUE#{SHARDS - 1}"},
                    ":n": {"S": "2026-12-08T09:00:00+00:00#~"},
                },
                Limit=1,
            ),
            "broadcast scan page (segment 1 of 8)": lambda: client.scan(
                TableName="leads",
                Segment=1,
                TotalSegments=8,
                FilterExpression="SK = :p",
                ExpressionAttributeValues={":p": {"S": "PROFILE"}},
                ExclusiveStartKey=middle,
                Limit=100,
            ),
            "PutItem (conditional, new item)": lambda: client.put_item(
                TableName="leads",
                Item={"PK": {"S": f"LEAD#x{next(counter)}"}, "SK": {"S": "MAIL"}, "n": {"N": "1"}},
                ConditionExpression="attribute_not_exists(PK)",
            ),
        }
        result = {"fill s": round(fill_s, 1)}
        for name, read in reads.items():
            read()  # the first read builds the patched table's indexes
            times = []
            for _ in range(repeat):
                begun = time.perf_counter()
                read()
                times.append(time.perf_counter() - begun)
            result[name] = statistics.median(times)
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mode", choices=["moto", "patched"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode:  # one measurement, in this process
        sys.stdout.write(json.dumps(_measure(args.mode, args.leads[0], args.repeat)))
        return 0
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "leadflow"),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    print(f"DynamoDB page costs on the local stack (median of {args.repeat}; load {os.getloadavg()[0]:.2f})")
    for leads in args.leads:
        rows: dict[str, dict[str, float]] = {}
        for mode in ("moto", "patched"):
            done = subprocess.run(
                [sys.executable, __file__, "--mode", mode, "--leads", str(leads), "--repeat", str(args.repeat)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            rows[mode] = json.loads(done.stdout)
        filled = f"{rows['moto']['fill s']} s / {rows['patched']['fill s']} s"
        print(f"\n{leads:,} leads ({2 * leads:,} items); filled in {filled}")
        print(f"  {'read':40s} {'moto':>12s} {'patched':>12s}")
        for name in rows["moto"]:
            if name != "fill s":
                print(f"  {name:40s} {rows['moto'][name] * 1000:10.1f} ms {rows['patched'][name] * 1000:10.1f} ms")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
