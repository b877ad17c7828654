"""Import (issue 16): rows per second per core of the import logic, the AWS calls and write units
of a local run, priced for 1,000,000 rows, and the time a 1,000,000-row import takes.

1. ``logic``: a Mailchimp-shaped CSV of ``--rows`` rows (real export header, a tenth of the rows
   bad in one way or another) read with ``csv_records``, mapped and checked with ``parse_row``:
   CPU time of one process on one core (``os.sched_setaffinity``), best of ``--repeat``.
2. ``calls``: ``ImportService.run`` on an in-process moto DynamoDB (``--calls-rows`` rows, half of
   them addresses already known), counting every API call and every item written (botocore
   ``before-parameter-build`` hook). Priced per 1,000,000 rows with DynamoDB on-demand
   (us-east-1: $0.625 per million write request units, a transactional write costs 2 units per
   item up to 1 KB) and what the rows' events cost downstream: the outbox's stream relay puts two
   events per row on the bus (EventBridge $1.00 per million), each rule's queue receives them
   (SQS $0.40 per million requests, about 3 requests per message: send, receive, delete).
3. ``engine``: the large-import engine's steps on moto in process, as the state machine runs them
   (``ImportEngine.plan``, every chunk's worker, ``finish``) over ``--engine-rows`` rows in
   chunks of ``--chunk-rows``: every AWS call counted by service and operation (the Map's
   ItemReader read of the manifest counted once), each worker's wall time on moto.
4. ``split``: the plan's one streamed read of a ``--split-rows`` file (rows and MB a CPU second).
4b. ``scale``: the chunk workers over ``--scale-rows`` rows (default 100,000) in the template's
   500-row chunks, DynamoDB answered by ``bench/dynamodb_stub.py`` (every row a new lead; moto's
   DynamoDB cannot hold this many) and every call counted: the calls and write units a row at the
   issue's 100,000 rows, beside ``engine``'s small run on moto.
5. ``model``: 1,000,000 rows in AWS. A chunk (the template's 500 rows) takes its rows' logic time
   (measured) plus their transactions (measured per row) at ``--write-ms`` each (default 12 ms,
   an assumption: DynamoDB's single-digit-millisecond writes, doubled for a transaction); the
   Map runs ``--concurrency`` chunks at a time (``MaxConcurrency`` in import.asl.json); the table
   takes at most ``--table-wru`` write units a second (40,000: the default per-table quota of an
   on-demand table); the plan reads the file at the measured split speed. The time is the plan
   plus the longer of the two bounds; the engine's own costs (Lambda GB-s at 1 GB, Step Functions
   Standard transitions and Express children, S3 GETs) are priced beside the writes.

    .venv/bin/python bench/import_rows.py [--rows 20000] [--calls-rows 60] [--engine-rows 1000]
        [--chunk-rows 100] [--split-rows 100000] [--scale-rows 100000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "leadflow"))
sys.path.insert(0, str(ROOT))

HEADER = (
    '"Email Address","First Name","Last Name",MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,'
    "LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES"
)
WRU_PRICE = 0.625 / 1_000_000
EVENT_PRICE = 1.00 / 1_000_000
SQS_PRICE = 0.40 / 1_000_000
EVENTS_PER_ROW = 2  # lead.captured and activity.recorded
QUEUES_PER_EVENT = 4  # scoring, nurture, reporting, segments rules take lead.captured / activity.recorded
SQS_REQUESTS_PER_MESSAGE = 3


def make_csv(rows: int, seed: int = 16, known: int = 0) -> str:
    """A Mailchimp-shaped export: every tenth row bad (no address, a bad one, an extra cell)."""
    rng = random.Random(seed)
    lines = [HEADER]
    for i in range(rows):
        n = i % known if known and i % 2 else i
        email = f"person{n}@import-bench.example"
        bad = i % 10 == 9
        if bad and i % 30 == 9:
            email = ""
        elif bad and i % 30 == 19:
            email = "not-an-address"
        optin = f'"2019-0{1 + i % 9}-01 08:00:00"' if i % 3 else ""
        line = (
            f'{email},First{i},"Last, {rng.randint(1, 999)}",{i % 5},{optin},198.51.100.7,{optin},198.51.100.7,'
            f',,,,,DE,BE,"2024-01-05 10:00:00",{i},euid{i},"notes {i}"'
        )
        if bad and i % 30 == 29:
            line += ",extra"
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def logic(rows: int, repeat: int) -> dict[str, Any]:
    from leadflow.domain.imports import ImportOptions, RejectedRow, csv_records, mapping_for, parse_row

    text = make_csv(rows)
    at = datetime(2026, 12, 5, tzinfo=UTC)
    options = ImportOptions(consent_basis="consent", source="import:mailchimp:bench.csv", tags=("bench",))
    best = float("inf")
    outcome: Counter[str] = Counter()
    for _ in range(repeat):
        outcome = Counter()
        started = time.process_time()
        records = csv_records(io.StringIO(text, newline=""))
        header = next(records)
        mapping = mapping_for([str(h) for h in header[1]])  # type: ignore[index]
        for record in records:
            parsed = record if isinstance(record, RejectedRow) else parse_row(mapping, *record, options, at)
            outcome[type(parsed).__name__] += 1
        best = min(best, time.process_time() - started)
    return {"rows": rows, "cpu_seconds": round(best, 3), "rows_per_second": round(rows / best), **outcome}


def calls(rows: int) -> dict[str, Any]:
    from moto import mock_aws

    from leadflow.adapters.clock import SystemClock
    from leadflow.adapters.imports import DynamoImportStore
    from leadflow.domain.imports import ImportOptions, csv_records, mapping_for
    from leadflow.services.imports import ImportService

    counted: Counter[str] = Counter()
    items: Counter[str] = Counter()

    def on_call(params: Any = None, model: Any = None, **_: Any) -> None:
        counted[model.name] += 1
        count_writes(items, model.name, params)

    with mock_aws():
        client = bench_table()
        store = DynamoImportStore("bench", lambda key: "h" * 64, client=client)
        service = ImportService(store, SystemClock())
        options = ImportOptions(consent_basis="consent", source="import:mailchimp:bench.csv")

        def run(text: str, import_id: str) -> tuple[float, dict[str, int]]:
            records = csv_records(io.StringIO(text, newline=""))
            header = next(records)
            mapping = mapping_for([str(h) for h in header[1]])  # type: ignore[index]
            started = time.perf_counter()
            result = service.run(import_id, records, mapping, options, {"file": "bench.csv"})
            return time.perf_counter() - started, result.counts

        run(make_csv(rows // 2, seed=1), "warm")  # the known half
        client.meta.events.register("before-parameter-build.dynamodb", on_call)
        wall, counts = run(make_csv(rows, seed=2, known=rows // 2), "bench")
    written_units = 2 * items["transact_items"] + items["single_items"] + items["batch_items"]
    per_million = 1_000_000 / rows
    dynamodb = written_units * per_million * WRU_PRICE
    events = EVENTS_PER_ROW * (counts["created"] + counts["updated"]) * per_million
    bus = events * EVENT_PRICE
    queues = events * QUEUES_PER_EVENT * SQS_REQUESTS_PER_MESSAGE * SQS_PRICE
    return {
        "rows": rows,
        "counts": counts,
        "calls": dict(counted),
        "calls_per_row": round(sum(counted.values()) / rows, 3),
        "write_units_per_row": round(written_units / rows, 2),
        "wall_seconds_on_moto": round(wall, 2),
        "cost_per_million_rows_usd": {
            "dynamodb_writes": round(dynamodb, 2),
            "eventbridge": round(bus, 2),
            "sqs_downstream": round(queues, 2),
            "total": round(dynamodb + bus + queues, 2),
        },
    }


def bench_table(endpoint_url: str | None = None, **keys: str) -> Any:
    """A DynamoDB client on moto (in process, or the server at ``endpoint_url``) with the ``bench``
    table (the leads table's key schema)."""
    import boto3

    client = boto3.client("dynamodb", **({"region_name": "us-east-1"} | keys), endpoint_url=endpoint_url)
    keys = [{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK")]
    client.create_table(
        TableName="bench",
        AttributeDefinitions=keys,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


class NoRuns:
    """The import state machine's starter: its part is played by the bench, step by step."""

    def start(self, name: str, payload: dict[str, Any]) -> None: ...

    def running(self, name: str) -> bool:
        return False


def count_writes(items: Counter[str], operation: str, params: dict[str, Any]) -> None:
    """Add a DynamoDB write call's items to ``items`` (write units: 2 a transaction item, 1 otherwise)."""
    if operation == "TransactWriteItems":
        items["transact_items"] += len(params["TransactItems"])
    elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
        items["single_items"] += 1
    elif operation == "BatchWriteItem":
        items["batch_items"] += sum(len(v) for v in params["RequestItems"].values())


def engine(rows: int, chunk_rows: int) -> dict[str, Any]:
    """The large-import engine's steps on moto in process, as the state machine runs them: the
    plan (one streamed read, the manifest written), every chunk's worker, the finish; every AWS
    call counted by service and operation, and each worker's wall time."""
    import boto3
    from moto import mock_aws

    from leadflow.adapters.clock import SystemClock
    from leadflow.adapters.import_files import S3ImportFiles
    from leadflow.adapters.imports import DynamoImportStore
    from leadflow.services.import_engine import ImportEngine, UploadRequest
    from leadflow.services.imports import ImportService

    counted: Counter[str] = Counter()
    items: Counter[str] = Counter()

    def on_call(params: Any = None, model: Any = None, event_name: str = "", **_: Any) -> None:
        service = event_name.split(".")[1]
        counted[f"{service}:{model.name}"] += 1
        count_writes(items, model.name, params)

    with mock_aws():
        dynamodb = bench_table()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bench-imports")
        store = DynamoImportStore("bench", lambda key: "h" * 64, client=dynamodb)
        imports = ImportService(store, SystemClock())
        files = S3ImportFiles("bench-imports", client=s3)
        engine_ = ImportEngine(imports, files, NoRuns(), SystemClock(), chunk_rows=chunk_rows)
        opened = engine_.open_upload(UploadRequest("bench.csv", consent_basis="consent", import_id="benchimport"))
        s3.put_object(Bucket="bench-imports", Key="uploads/benchimport/bench.csv", Body=make_csv(rows).encode())
        for client in (dynamodb, s3):
            client.meta.events.register("before-parameter-build", on_call)
        engine_.start(opened["import_id"])
        started = time.perf_counter()
        job = engine_.plan("benchimport")
        plan_seconds = time.perf_counter() - started
        body = s3.get_object(Bucket="bench-imports", Key=job["manifest"])["Body"].read().decode()
        counted["s3:GetObject"] -= 1  # the Map's ItemReader reads the manifest: counted once below
        chunk_seconds = []
        for item in csv.DictReader(io.StringIO(body)):
            began = time.perf_counter()
            engine_.chunk(job, item)
            chunk_seconds.append(time.perf_counter() - began)
        counted["s3:GetObject(ItemReader)"] += 1
        engine_.finish("benchimport")
        view = engine_.view("benchimport") or {}
    written_units = 2 * items["transact_items"] + items["single_items"] + items["batch_items"]
    return {
        "rows": rows,
        "chunk_rows": chunk_rows,
        "chunks": len(chunk_seconds),
        "counts": {k: view.get(k) for k in ("read", "created", "updated", "rejected")},
        "calls": dict(sorted(counted.items())),
        "calls_per_row": round(sum(counted.values()) / rows, 3),
        "write_units_per_row": round(written_units / rows, 2),
        "transactions_per_row": round(counted["dynamodb:TransactWriteItems"] / rows, 3),
        "plan_seconds_on_moto": round(plan_seconds, 2),
        "chunk_seconds_on_moto": round(sorted(chunk_seconds)[len(chunk_seconds) // 2], 2) if chunk_seconds else 0,
    }


def engine_at_scale(rows: int, chunk_rows: int) -> dict[str, Any]:
    """The engine's chunk workers over ``rows`` rows (the template's 500-row chunks), their DynamoDB
    calls answered by ``bench/dynamodb_stub.py`` (a process of its own) and counted; the file in S3
    on a moto server.

    moto's DynamoDB cannot hold this run (each transaction copies the tables it touches: 3.9 GB at
    300 rows). The stub answers every call at once with an empty success, which is what DynamoDB
    answers for addresses never seen: every row is a new lead, every conditional write passes, so
    the calls counted are the all-new case, the same case as ``engine``. The plan and the finish
    (a few calls an import, not a row) run on moto as in ``engine``; the manifest they write is the
    one the workers take. Servers, not moto's in-process mock: the mock looks at every request of
    the process, the stub's too, and made this run ~10x slower."""
    import boto3
    from moto.server import ThreadedMotoServer

    from leadflow.adapters.clock import SystemClock
    from leadflow.adapters.import_files import S3ImportFiles
    from leadflow.adapters.imports import DynamoImportStore
    from leadflow.services.import_engine import ImportEngine, UploadRequest
    from leadflow.services.imports import ImportService

    counted: Counter[str] = Counter()
    items: Counter[str] = Counter()

    def on_call(params: Any = None, model: Any = None, **_: Any) -> None:
        counted[model.name] += 1
        count_writes(items, model.name, params)

    stub = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "dynamodb_stub.py")], stdout=subprocess.PIPE, text=True
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        assert stub.stdout is not None
        stub_url = stub.stdout.readline().strip().removeprefix("listening on ")
        keys = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        moto_url = "http://{}:{}".format(*moto.get_host_and_port())
        s3 = boto3.client("s3", endpoint_url=moto_url, **keys)
        s3.create_bucket(Bucket="bench-imports")
        files = S3ImportFiles("bench-imports", client=s3)
        store = DynamoImportStore("bench", lambda key: "h" * 64, client=bench_table(moto_url, **keys))
        planner = ImportEngine(
            ImportService(store, SystemClock()), files, NoRuns(), SystemClock(), chunk_rows=chunk_rows
        )
        opened = planner.open_upload(UploadRequest("big.csv", consent_basis="consent", import_id="bigimport"))
        s3.put_object(Bucket="bench-imports", Key="uploads/bigimport/big.csv", Body=make_csv(rows, seed=3).encode())
        planner.start(opened["import_id"])
        job = planner.plan("bigimport")
        body = s3.get_object(Bucket="bench-imports", Key=job["manifest"])["Body"].read().decode()
        dynamodb = boto3.client("dynamodb", endpoint_url=stub_url, **keys)
        worker = ImportEngine(
            ImportService(DynamoImportStore("bench", lambda key: "h" * 64, client=dynamodb), SystemClock()),
            files,
            NoRuns(),
            SystemClock(),
            chunk_rows=chunk_rows,
        )
        dynamodb.meta.events.register("before-parameter-build.dynamodb", on_call)
        chunks = 0
        started = time.perf_counter()
        for item in csv.DictReader(io.StringIO(body)):
            worker.chunk(job, item)
            chunks += 1
        wall = time.perf_counter() - started
        with urllib.request.urlopen(f"{stub_url}/_ops", timeout=10) as answer:  # what the stub itself counted
            stub_saw = {k: v for k, v in json.load(answer).items() if " " not in k}
    finally:
        stub.kill()
        moto.stop()
    written_units = 2 * items["transact_items"] + items["single_items"] + items["batch_items"]
    return {
        "rows": rows,
        "chunk_rows": chunk_rows,
        "chunks": chunks,
        "dynamodb_calls": dict(sorted(counted.items())),
        "stub_saw": dict(sorted(stub_saw.items())),
        "dynamodb_calls_per_row": round(sum(counted.values()) / rows, 3),
        "write_units_per_row": round(written_units / rows, 2),
        "dynamodb_writes_per_million_rows_usd": round(written_units * 1_000_000 / rows * WRU_PRICE, 2),
        "wall_seconds": round(wall, 1),
    }


def split_speed(rows: int) -> dict[str, Any]:
    """The plan's one streamed read of the file: rows and MB a CPU second cut into chunks."""
    from leadflow.domain.import_chunks import split

    data = make_csv(rows).encode()
    started = time.process_time()
    found, chunks = split(io.BytesIO(data), False)
    count = sum(1 for _ in chunks)
    seconds = time.process_time() - started
    return {
        "rows": found.rows,
        "chunks": count,
        "mb": round(len(data) / 1e6, 1),
        "rows_per_second": round(found.rows / seconds),
        "mb_per_second": round(len(data) / 1e6 / seconds, 1),
    }


# The engine's AWS model (us-east-1, arm64): Lambda $0.0000133334 per GB-s and $0.20 per million
# requests; S3 $0.0004 per 1,000 GETs and $0.005 per 1,000 PUTs; Step Functions Standard $0.025
# per 1,000 state transitions (the parent: ~6, plus one per child started), Express children
# $1.00 per million requests and $0.00001667 per GB-s, billed in 64 MB steps.
LAMBDA_GB_S = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1_000_000
S3_GET = 0.0004 / 1000
STANDARD_TRANSITION = 0.025 / 1000
EXPRESS_REQUEST = 1.00 / 1_000_000
EXPRESS_GB_S = 0.00001667


def model(  # noqa: PLR0917 - the measured parts and the AWS limits the model takes
    logic_result: dict[str, Any],
    engine_result: dict[str, Any],
    split_result: dict[str, Any],
    write_ms: float,
    concurrency: int,
    table_wru: int,
    memory_gb: float,
) -> dict[str, Any]:
    """1,000,000 rows in AWS: each chunk's time from the measured logic and transactions a row
    (``write_ms`` each), the Map's ``concurrency`` chunks at a time, bounded by the table's write
    throughput (``table_wru`` write units a second); priced with the engine's own costs."""
    rows = 1_000_000
    chunk_rows = engine_result["chunk_rows"]
    per_row = 1 / logic_result["rows_per_second"] + engine_result["transactions_per_row"] * write_ms / 1000
    chunk_seconds = chunk_rows * per_row + 0.1  # + the ranged GET and the count
    chunks = -(-rows // chunk_rows)
    plan_seconds = rows / split_result["rows_per_second"]
    by_concurrency = -(-chunks // concurrency) * chunk_seconds
    by_table = rows * engine_result["write_units_per_row"] / table_wru
    total = plan_seconds + max(by_concurrency, by_table)
    lambda_cost = (chunks * chunk_seconds + plan_seconds) * memory_gb * LAMBDA_GB_S + (chunks + 2) * LAMBDA_REQUEST
    express = chunks * (EXPRESS_REQUEST + 0.0625 * max(chunk_seconds, 0.1) * EXPRESS_GB_S)
    standard = (6 + chunks) * STANDARD_TRANSITION
    counts = engine_result["counts"]
    written_share = (counts["created"] + counts["updated"]) / counts["read"]  # rejected rows raise no event
    s3 = (chunks + 3) * S3_GET
    return {
        "write_ms": write_ms,
        "concurrency": concurrency,
        "table_wru_per_second": table_wru,
        "chunk_seconds": round(chunk_seconds, 2),
        "chunks": chunks,
        "plan_seconds": round(plan_seconds, 1),
        "minutes_by_concurrency": round(by_concurrency / 60, 1),
        "minutes_by_table": round(by_table / 60, 1),
        "minutes": round(total / 60, 1),
        "bound_by": "table write throughput" if by_table > by_concurrency else "Map concurrency",
        "engine_cost_usd": {
            "lambda": round(lambda_cost, 2),
            "step_functions": round(express + standard, 3),
            "s3": round(s3, 4),
            "dynamodb_writes": round(rows * engine_result["write_units_per_row"] * WRU_PRICE, 2),
            "events_downstream": round(
                rows
                * written_share
                * EVENTS_PER_ROW
                * (EVENT_PRICE + QUEUES_PER_EVENT * SQS_REQUESTS_PER_MESSAGE * SQS_PRICE),
                2,
            ),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--calls-rows", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine-rows", type=int, default=1000, help="rows through the engine's steps on moto")
    parser.add_argument("--chunk-rows", type=int, default=100, help="rows a chunk in that run (AWS default 500)")
    parser.add_argument("--split-rows", type=int, default=100_000, help="rows of the file the plan's read is timed on")
    parser.add_argument(
        "--scale-rows", type=int, default=100_000, help="rows through the chunk workers, DynamoDB on the stub (0: skip)"
    )
    parser.add_argument("--write-ms", type=float, default=12.0)
    parser.add_argument("--concurrency", type=int, default=50, help="the Map's MaxConcurrency (import.asl.json)")
    parser.add_argument("--table-wru", type=int, default=40_000, help="the table's write units a second")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    load = os.getloadavg()[0]
    result: dict[str, Any] = {"load_1min": round(load, 1), "logic": logic(args.rows, args.repeat)}
    result["calls"] = calls(args.calls_rows)
    result["engine"] = engine(args.engine_rows, args.chunk_rows)
    result["split"] = split_speed(args.split_rows)
    if args.scale_rows:
        result["scale"] = engine_at_scale(args.scale_rows, 500)
    aws_engine = {**result["engine"], "chunk_rows": 500}  # the template's ImportChunkRows
    result["model"] = model(
        result["logic"], aws_engine, result["split"], args.write_ms, args.concurrency, args.table_wru, 1.0
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    lg, cl, md, en, sp = result["logic"], result["calls"], result["model"], result["engine"], result["split"]
    print(f"load {result['load_1min']}")
    print(
        f"logic: {lg['rows']:,} rows in {lg['cpu_seconds']} CPU s: "
        f"{lg['rows_per_second']:,} rows/s on one core (goal >= 5,000)"
    )
    print(
        f"calls: {cl['rows']:,} rows ({cl['counts']}): {cl['calls']} = {cl['calls_per_row']} calls and "
        f"{cl['write_units_per_row']} write units a row; {cl['wall_seconds_on_moto']} s on moto"
    )
    print(f"cost of 1,000,000 rows: {cl['cost_per_million_rows_usd']}")
    print(
        f"engine: {en['rows']:,} rows in {en['chunks']} chunks of {en['chunk_rows']} ({en['counts']}): "
        f"{en['calls']} = {en['calls_per_row']} calls and {en['write_units_per_row']} write units a row; "
        f"on moto the plan took {en['plan_seconds_on_moto']} s, a chunk {en['chunk_seconds_on_moto']} s (median)"
    )
    if "scale" in result:
        sc = result["scale"]
        print(
            f"engine at scale: {sc['rows']:,} rows in {sc['chunks']} chunks of {sc['chunk_rows']}, "
            f"DynamoDB on the stub (all new leads): {sc['dynamodb_calls']} = "
            f"{sc['dynamodb_calls_per_row']} DynamoDB calls and "
            f"{sc['write_units_per_row']} write units a row, ${sc['dynamodb_writes_per_million_rows_usd']} of writes "
            f"per 1,000,000 rows; {sc['wall_seconds']} s"
        )
    print(
        f"plan's read: {sp['rows']:,} rows ({sp['mb']} MB) at {sp['rows_per_second']:,} rows/s, "
        f"{sp['mb_per_second']} MB/s"
    )
    print(
        f"1,000,000 rows in AWS (model: {md['write_ms']} ms a transaction, MaxConcurrency {md['concurrency']}, "
        f"{md['table_wru_per_second']:,} write units/s): {md['chunks']} chunks of {md['chunk_seconds']} s, "
        f"plan {md['plan_seconds']} s; {md['minutes_by_concurrency']} min by concurrency, {md['minutes_by_table']} "
        f"min by the table: {md['minutes']} min, bound by {md['bound_by']}; engine cost {md['engine_cost_usd']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
