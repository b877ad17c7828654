"""The local stack's DynamoDB speed-ups (``leadflow/dev/moto_patches.py``, ``moto_dynamodb.py``, ``moto_indexes.py``):
moto's answers, without moto's cost.

Equivalence: one random scenario of writes (puts, conditional puts, updates that move, add and
remove index keys, deletes, transactions that apply or roll back, batch writes, items over the
size limit) and reads (segmented and filtered scans, GSI queries with every key condition, both
directions, Limit, 1 MB pages, filters and projections, each paginated to the end, plus
``all_items``), on items holding every attribute type, is run twice in fresh processes: with the
local stack's older patches only (moto's own reads, sizes and serializer) and with all of them.
Every answer must be the same. The serializer's short way is also compared with moto's own,
body for body, on random attribute values.

Scale: a page of a GSI query or of a segmented scan makes as many key comparisons and item
reads on a table of 20,000 items as on one of 2,000, and takes about as long.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "leadflow"

# ---------------------------------------------------------------------------- the scenario


def _tables(client: Any) -> None:
    def gsi(name: str, hash_attr: str, range_attr: str, projection: dict[str, Any]) -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": hash_attr, "KeyType": "HASH"},
                {"AttributeName": range_attr, "KeyType": "RANGE"},
            ],
            "Projection": projection,
        }

    client.create_table(
        TableName="ranged",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": t}
            for n, t in [("PK", "S"), ("SK", "S"), ("G1PK", "S"), ("G1SK", "S"), ("G2PK", "S"), ("G2SK", "N")]
        ],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            gsi("GSI1", "G1PK", "G1SK", {"ProjectionType": "ALL"}),
            gsi("GSI2", "G2PK", "G2SK", {"ProjectionType": "KEYS_ONLY"}),
            gsi("GSI3", "G2PK", "G1SK", {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x"]}),
        ],
    )
    client.create_table(
        TableName="hashed",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "G1PK", "G1SK")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[gsi("GSI1", "G1PK", "G1SK", {"ProjectionType": "ALL"})],
    )
    client.create_table(
        TableName="numbers",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "N"} for n in ("PK", "SK")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
    )


STRINGS = ["a", "ab", "abc", "b", "ba", "c", "ca", "cab", "d", "é", "Z", "0", "a#1", "a#2", "a~"]
NUMBERS = ["1", "1.0", "-3.5", "10", "2e1", "0", "7", "-1", "3.25", "100"]


def _attribute_value(rng: random.Random, depth: int) -> dict[str, Any]:
    """A random DynamoDB attribute value of any type, nested up to ``depth``."""
    kinds = ["S", "N", "B", "SS", "NS", "BS", "NULL", "BOOL"] + (["M", "L"] if depth else [])
    kind = rng.choice(kinds)
    if kind == "S":
        return {"S": rng.choice([*STRINGS, "", "ü\u2028\"'<>"])}
    if kind == "N":
        return {"N": rng.choice(NUMBERS)}
    if kind == "B":
        return {"B": bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))}
    if kind == "SS":
        return {"SS": sorted(set(rng.sample(STRINGS, rng.randrange(1, 4))))}
    if kind == "NS":
        return {"NS": sorted(set(rng.sample(["1", "2", "3.5", "-4", "100"], rng.randrange(1, 4))))}
    if kind == "BS":
        return {"BS": [bytes([n]) * (n % 5 + 1) for n in sorted(set(rng.sample(range(256), rng.randrange(1, 4))))]}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "M":
        return {"M": {f"k{n}": _attribute_value(rng, depth - 1) for n in range(rng.randrange(0, 4))}}
    return {"L": [_attribute_value(rng, depth - 1) for _ in range(rng.randrange(0, 4))]}


def _scenario(seed: int) -> list[Any]:
    """Runs the scenario against moto in this process; returns every answer (errors by code)."""
    import boto3
    from botocore.exceptions import ClientError

    rng = random.Random(seed)
    client = boto3.client("dynamodb", region_name="us-east-1")
    _tables(client)
    log: list[Any] = []

    def call(name: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = getattr(client, name)(**kwargs)
        except ClientError as error:
            log.append([name, "error", error.response["Error"]["Code"]])
            return {}
        answer.pop("ResponseMetadata", None)
        log.append([name, _short(answer)])
        return answer

    def s(pool: list[str]) -> dict[str, str]:
        return {"S": rng.choice(pool)}

    def ranged_item() -> dict[str, Any]:
        item: dict[str, Any] = {"PK": {"S": f"p{rng.randrange(40)}"}, "SK": {"S": f"s{rng.randrange(25)}"}}
        if rng.random() < 0.8:
            item["G1PK"] = {"S": f"g{rng.randrange(4)}"}
        if rng.random() < 0.8:
            item["G1SK"] = s(STRINGS)
        if rng.random() < 0.7:
            item["G2PK"] = {"S": f"h{rng.randrange(3)}"}
        if rng.random() < 0.7:
            item["G2SK"] = {"N": rng.choice(NUMBERS)}
        item["x"] = {"N": str(rng.randrange(100))}
        if rng.random() < 0.3:
            item["v"] = _attribute_value(rng, 3)
        if rng.random() < 0.03:
            item["blob"] = {"S": "x" * rng.randrange(120_000, 300_000)}  # pages end at 1 MB
        if rng.random() < 0.005:
            item["blob"] = {"S": "x" * 410_000}  # over moto's item size limit
        return item

    def hashed_item() -> dict[str, Any]:
        item: dict[str, Any] = {"PK": {"S": f"p{rng.randrange(300)}"}, "x": {"N": str(rng.randrange(100))}}
        if rng.random() < 0.8:
            item["G1PK"] = {"S": f"g{rng.randrange(3)}"}
            item["G1SK"] = s(STRINGS)
        return item

    def number_item() -> dict[str, Any]:
        return {"PK": {"N": str(rng.randrange(20))}, "SK": {"N": rng.choice(NUMBERS)}, "x": {"N": "1"}}

    makers = {"ranged": ranged_item, "hashed": hashed_item, "numbers": number_item}

    def key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in (("PK",) if table == "hashed" else ("PK", "SK"))}

    for table, count in (("ranged", 400), ("hashed", 150), ("numbers", 100)):
        for _ in range(count):
            call("put_item", TableName=table, Item=makers[table]())

    def distinct_items(table: str, count: int) -> list[dict[str, Any]]:
        """Up to ``count`` new items, no two with one key (a transaction or batch refuses that)."""
        found: dict[str, dict[str, Any]] = {}
        for _ in range(count):
            other = makers[table]()
            found.setdefault(json.dumps(key_of(table, other), sort_keys=True), other)
        return list(found.values())

    def write() -> None:
        table = rng.choice(["ranged", "ranged", "ranged", "hashed", "numbers"])
        item = makers[table]()
        key = key_of(table, item)
        kind = rng.randrange(8)
        if kind == 0:
            call("put_item", TableName=table, Item=item)
        elif kind == 1:
            call("put_item", TableName=table, Item=item, ConditionExpression="attribute_not_exists(PK)")
        elif kind == 2 and table != "numbers":
            names = {"#k": "G1SK", "#h": "G1PK"}
            expression = rng.choice(
                ["SET #k = :v", "REMOVE #k", "SET #h = :h, #k = :v", "REMOVE #h", "SET #k = :v ADD x :one"]
            )
            values = {":v": s(STRINGS), ":h": {"S": f"g{rng.randrange(4)}"}, ":one": {"N": "1"}}
            used = {k: v for k, v in values.items() if k in expression}
            used_names = {k: v for k, v in names.items() if k in expression}
            extra: dict[str, Any] = {}
            if rng.random() < 0.3:
                extra = {"ConditionExpression": "x < :lim"}
                used[":lim"] = {"N": "50"}
            call(
                "update_item",
                TableName=table,
                Key=key,
                UpdateExpression=expression,
                ExpressionAttributeNames=used_names,
                ExpressionAttributeValues=used,
                **extra,
            )
        elif kind == 3 and table == "ranged":
            call(
                "update_item",
                TableName=table,
                Key=key,
                UpdateExpression="SET G2SK = :n, G2PK = :h",
                ExpressionAttributeValues={":n": {"N": rng.choice(NUMBERS)}, ":h": {"S": f"h{rng.randrange(3)}"}},
            )
        elif kind == 4:
            extra = {"ConditionExpression": "x > :z", "ExpressionAttributeValues": {":z": {"N": "30"}}}
            call("delete_item", TableName=table, Key=key, **(extra if rng.random() < 0.5 else {}))
        elif kind == 5:
            ops: list[dict[str, Any]] = []
            for other in distinct_items(table, rng.randrange(1, 4)):
                op = rng.randrange(3)
                if op == 0:
                    ops.append({"Put": {"TableName": table, "Item": other}})
                elif op == 1:
                    ops.append({"Delete": {"TableName": table, "Key": key_of(table, other)}})
                else:
                    ops.append(
                        {
                            "Put": {
                                "TableName": table,
                                "Item": other,
                                "ConditionExpression": "attribute_not_exists(PK)",
                            }
                        }
                    )
            call("transact_write_items", TransactItems=ops, ClientRequestToken=f"t{rng.random()}")
        else:
            requests: list[dict[str, Any]] = []
            for other in distinct_items(table, rng.randrange(1, 10)):
                if rng.random() < 0.7:
                    requests.append({"PutRequest": {"Item": other}})
                else:
                    requests.append({"DeleteRequest": {"Key": key_of(table, other)}})
            call("batch_write_item", RequestItems={table: requests})

    def paginate(name: str, **kwargs: Any) -> None:
        for _ in range(2000):
            answer = call(name, **kwargs)
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def scan() -> None:
        table = rng.choice(["ranged", "hashed", "numbers"])
        kwargs: dict[str, Any] = {"TableName": table}
        if rng.random() < 0.85:
            kwargs["Limit"] = rng.choice([3, 7, 25, 100])
        if rng.random() < 0.5:
            total = rng.randrange(1, 5)
            kwargs.update(Segment=rng.randrange(total), TotalSegments=total)
        if rng.random() < 0.4:
            kwargs.update(FilterExpression="x > :v", ExpressionAttributeValues={":v": {"N": str(rng.randrange(100))}})
        if rng.random() < 0.3:
            kwargs["ProjectionExpression"] = "PK, x"
        paginate("scan", **kwargs)

    def query() -> None:
        table, index = rng.choice([("ranged", "GSI1"), ("ranged", "GSI2"), ("ranged", "GSI3"), ("hashed", "GSI1")])
        hash_attr, range_attr = {"GSI1": ("G1PK", "G1SK"), "GSI2": ("G2PK", "G2SK"), "GSI3": ("G2PK", "G1SK")}[index]
        numeric = index == "GSI2"
        pool = NUMBERS if numeric else STRINGS
        kind = "N" if numeric else "S"
        prefix = "h" if hash_attr == "G2PK" else "g"
        values: dict[str, Any] = {":h": {"S": f"{prefix}{rng.randrange(5)}"}}
        condition = "#h = :h"
        names = {"#h": hash_attr}
        op = rng.choice(["", "=", "<", "<=", ">", ">=", "BETWEEN", "begins_with"])
        if op == "begins_with" and numeric:
            op = "="
        if op:
            names["#r"] = range_attr
            values[":a"] = {kind: rng.choice(pool)}
            if op == "BETWEEN":
                low, high = sorted([rng.choice(pool), rng.choice(pool)], key=float if numeric else str)
                values[":a"], values[":b"] = {kind: low}, {kind: high}
                condition += " AND #r BETWEEN :a AND :b"
            elif op == "begins_with":
                values[":a"] = {"S": rng.choice(["a", "ab", "c", "", "zz", "é"]) or "a"}
                condition += " AND begins_with(#r, :a)"
            else:
                condition += f" AND #r {op} :a"
        kwargs: dict[str, Any] = {
            "TableName": table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": rng.random() < 0.6,
        }
        if rng.random() < 0.7:
            kwargs["Limit"] = rng.choice([1, 2, 5, 20])
        if rng.random() < 0.3:
            kwargs["FilterExpression"] = "x < :f"
            values[":f"] = {"N": "60"}
        if rng.random() < 0.2 and index == "GSI1":
            kwargs["ProjectionExpression"] = "PK, G1SK"
        paginate("query", **kwargs)

    def partition_query() -> None:
        table = rng.choice(["ranged", "numbers"])
        numeric = table == "numbers"
        values = {":p": {"N": str(rng.randrange(20))} if numeric else {"S": f"p{rng.randrange(40)}"}}
        condition = "PK = :p"
        if rng.random() < 0.5:
            values[":s"] = {"N": rng.choice(NUMBERS)} if numeric else {"S": f"s{rng.randrange(25)}"}
            condition += f" AND SK {rng.choice(['<', '>=', '='])} :s"
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": rng.random() < 0.5,
        }
        if rng.random() < 0.5:
            kwargs["Limit"] = rng.choice([1, 4])
        paginate("query", **kwargs)

    def all_items() -> None:
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends["123456789012"]["us-east-1"]
        for name in ("ranged", "hashed", "numbers"):
            items = backend.get_table(name).all_items()
            log.append(["all_items", name, [_short(i.to_json()["Attributes"]) for i in items]])

    for _ in range(30):
        for _ in range(rng.randrange(5, 25)):
            write()
        for _ in range(4):
            rng.choice([scan, query, query, partition_query])()
        if rng.random() < 0.2:
            all_items()
    all_items()
    return log


def _short(value: Any) -> Any:
    """The answer with its large strings as length and digest (the log stays small; a difference still shows)."""
    if isinstance(value, bytes):
        return f"<bytes {value.hex()}>"
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short(v) for v in value]
    if isinstance(value, str) and len(value) > 200:
        return f"<{len(value)} chars {hashlib.sha256(value.encode()).hexdigest()[:16]}>"
    return value


def _run(mode: str, seed: int) -> Any:
    env = {
        **os.environ,
        "PYTHONPATH": str(LAYER),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(
        [sys.executable, __file__, mode, str(seed)], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _main(mode: str, seed: int) -> None:
    from moto import mock_aws

    from leadflow.dev import moto_dynamodb, moto_patches

    if mode == "pages":
        sys.stdout.write(json.dumps(_pages()))
        return
    if mode == "sqs":
        sys.stdout.write(json.dumps(_sqs_walks()))
        return
    if mode == "sqs-drain":
        sys.stdout.write(json.dumps(_sqs_drain()))
        return
    if mode.startswith("events-"):
        sys.stdout.write(json.dumps(_event_deliveries(mode == "events-mended")))
        return
    if mode == "patched":
        moto_patches.apply()
    else:  # the local stack's patches from before the speed-ups: moto's own reads, sizes, serializer
        moto_dynamodb.dynamodb_serialized()
        moto_dynamodb.dynamodb_transactions()
        moto_dynamodb.dynamodb_transaction_tokens()
        moto_dynamodb.dynamodb_partition_query()
    with mock_aws():
        log = _scenario(seed)
    sys.stdout.write(json.dumps(log))


@pytest.mark.parametrize("seed", [1, 2])
def test_patched_moto_answers_what_moto_answers(seed: int) -> None:
    with ThreadPoolExecutor(2) as pool:  # two processes
        moto_run, patched_run = pool.submit(_run, "moto", seed), pool.submit(_run, "patched", seed)
        moto_answers, indexed_answers = moto_run.result(), patched_run.result()
    assert len(indexed_answers) == len(moto_answers)
    for number, (expected, got) in enumerate(zip(moto_answers, indexed_answers, strict=True)):
        assert got == expected, f"answer {number} ({expected[0]}) differs"
    # The scenario exercised what it is meant to: paginated reads, 1 MB pages, failed writes.
    pages = [a[1] for a in moto_answers if a[0] in {"scan", "query"} and a[1] != "error"]
    assert sum(1 for p in pages if "LastEvaluatedKey" in p) > 50
    assert sum(1 for p in pages if p.get("Items")) > 100
    assert any(a[0] == "transact_write_items" and a[1] == "error" for a in moto_answers)
    assert any(a[0] == "update_item" and a[1] == "error" for a in moto_answers)
    assert any(a[0] == "put_item" and a[1:] == ["error", "ValidationException"] for a in moto_answers)
    typed = json.dumps([a for a in moto_answers if a[0] in {"scan", "query"}])
    assert all(f'"{tag}":' in typed for tag in ("SS", "NS", "BS", "M", "L", "NULL", "BOOL"))
    assert "<bytes " in typed
    large = [sum(json.dumps(i).count(" chars ") for i in p.get("Items", [])) for p in pages if "LastEvaluatedKey" in p]
    assert max(large) >= 3  # some pages held several of the large items: cut at 1 MB, not by Limit


def test_attribute_values_are_serialized_as_moto_serializes_them() -> None:
    from moto.core.serialize import BaseJSONSerializer, JSONSerializer, XFormedAttributePicker
    from moto.core.utils import get_service_model

    from leadflow.dev import moto_patches

    moto_patches.apply()
    model = get_service_model("dynamodb")
    rng = random.Random(11)
    patched = BaseJSONSerializer._serialize_type_structure, BaseJSONSerializer._serialize_type_map
    originals = tuple(getattr(method, "__wrapped__", None) for method in patched)
    assert all(originals), "the serializer patch keeps moto's methods"

    def body(operation: str, result: dict[str, Any], *, short_way: bool) -> str:
        methods = patched if short_way else originals
        BaseJSONSerializer._serialize_type_structure, BaseJSONSerializer._serialize_type_map = methods  # type: ignore[method-assign,assignment]
        try:
            serializer = JSONSerializer(model.operation_model(operation), value_picker=XFormedAttributePicker())
            return str(serializer.serialize(result)["body"])
        finally:
            BaseJSONSerializer._serialize_type_structure, BaseJSONSerializer._serialize_type_map = patched  # type: ignore[method-assign]

    for _ in range(300):
        items = [{f"a{n}": _attribute_value(rng, 4) for n in range(rng.randrange(1, 6))} for _ in range(3)]
        items[0]["odd"] = {"M": {"k": None, "j": {"S": "x"}}, "L": [None, {"N": "1"}]}  # left out or kept as moto does
        for operation, result in (
            ("GetItem", {"Item": items[0]}),
            ("Query", {"Items": items, "Count": 3, "ScannedCount": 3, "LastEvaluatedKey": items[1]}),
            ("BatchGetItem", {"Responses": {"t": items}, "UnprocessedKeys": {}}),
        ):
            assert body(operation, result, short_way=True) == body(operation, result, short_way=False)


# ---------------------------------------------------------------------------- scale


def test_sorted_keys_keep_order_through_inserts_and_removals() -> None:
    from leadflow.dev import moto_indexes

    rng = random.Random(5)
    mirror = sorted({(f"k{rng.randrange(10**6):07d}",) for _ in range(3000)})
    keys = moto_indexes.SortedKeys(list(reversed(mirror)))
    for _ in range(5000):
        key = (f"k{rng.randrange(10**6):07d}",)
        if key in mirror and rng.random() < 0.5:
            keys.remove(key)
            mirror.remove(key)
        elif key not in mirror:
            keys.add(key)
            mirror.append(key)
            mirror.sort()
    assert list(keys) == mirror
    probe = ("k0500000",)
    assert list(keys.ascending(probe, inclusive=False)) == [k for k in mirror if k > probe]
    assert list(keys.ascending(probe, inclusive=True)) == [k for k in mirror if k >= probe]
    assert list(keys.descending(probe)) == [k for k in reversed(mirror) if k < probe]
    assert list(keys.descending(None)) == list(reversed(mirror))


def _fill(backend: Any, leads: int) -> None:
    for n in range(leads):
        lead = f"LEAD#{n:06d}"
        backend.put_item("scale", {"PK": {"S": lead}, "SK": {"S": "PROFILE"}, "name": {"S": "x" * 200}})
        backend.put_item(
            "scale",
            {
                "PK": {"S": lead},
                "SK": {"S": "ENR#push"},
                "GSI4PK": {"S": f"DUE#{n % 16}"},
                "GSI4SK": {"S": f"2026-12-0{1 + n % 7}T09:00:00#{lead}"},
            },
        )


def _page_costs(client: Any, leads: int) -> dict[str, float]:
    """Median seconds, DynamoType comparisons and item sizes read per page of each read."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    counted = {"lt": 0, "size": 0}
    original_lt, original_size = DynamoType.__lt__, Item.size

    def lt(self: Any, other: Any) -> bool:
        counted["lt"] += 1
        return original_lt(self, other)

    def size(self: Any) -> int:
        counted["size"] += 1
        return original_size(self)

    reads = {
        "due query": lambda: client.query(
            TableName="scale",
            IndexName="GSI4",
            KeyConditionExpression="GSI4PK = :p AND GSI4SK <= :n",
            ExpressionAttributeValues={":p": {"S": "DUE#3"}, ":n": {"S": "2026-12-04T09:00:00#~"}},
            Limit=25,
        ),
        "segmented scan page": lambda: client.scan(
            TableName="scale",
            Segment=1,
            TotalSegments=4,
            Limit=25,
            FilterExpression="SK = :p",
            ExpressionAttributeValues={":p": {"S": "PROFILE"}},
            ExclusiveStartKey={"PK": {"S": f"LEAD#{leads // 2:06d}"}, "SK": {"S": "PROFILE"}},
        ),
    }
    costs: dict[str, float] = {}
    DynamoType.__lt__ = lt  # type: ignore[method-assign]
    Item.size = size  # type: ignore[method-assign]
    try:
        for name, read in reads.items():
            read()  # builds the table's index on the first read
            times, lts, sizes = [], [], []
            for _ in range(15):
                counted.update(lt=0, size=0)
                started = time.perf_counter()
                answer = read()
                times.append(time.perf_counter() - started)
                lts.append(counted["lt"])
                sizes.append(counted["size"])
                assert answer["Items"]
            costs[f"{name} s"] = statistics.median(times)
            costs[f"{name} comparisons"] = statistics.median(lts)
            costs[f"{name} item reads"] = statistics.median(sizes)
    finally:
        DynamoType.__lt__ = original_lt  # type: ignore[method-assign]
        Item.size = original_size  # type: ignore[method-assign]
    return costs


def _pages() -> dict[int, dict[str, float]]:
    """What one page costs on tables of 1,000 and 10,000 leads (run in its own process: ``mock_aws``
    resets every moto backend when it ends, the session's local stack among them)."""
    import boto3
    from moto import mock_aws
    from moto.dynamodb.models import dynamodb_backends

    from leadflow.dev import moto_patches

    moto_patches.apply()
    costs = {}
    for leads in (1_000, 10_000):
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="scale",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "GSI4PK", "GSI4SK")
                ],
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
            _fill(dynamodb_backends["123456789012"]["us-east-1"], leads)
            costs[leads] = _page_costs(client, leads)
    return costs


def test_a_page_costs_the_same_on_a_ten_times_larger_table() -> None:
    found = _run("pages", 0)
    small, large = found["1000"], found["10000"]
    for read in ("due query", "segmented scan page"):
        # moto alone sorts the table's 20,000 items with DynamoType comparisons on every page
        assert large[f"{read} comparisons"] <= small[f"{read} comparisons"] + 5
        assert large[f"{read} item reads"] <= small[f"{read} item reads"] * 1.5 + 10
        # and time, loosely (a shared machine): moto alone takes ~600 ms a page at 10,000 leads
        assert large[f"{read} s"] < small[f"{read} s"] * 5 + 0.02


class _CountedWalks(list):  # type: ignore[type-arg]
    """A queue's message list that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Any:
        type(self).walks += 1
        return super().__iter__()


def _sqs_walks() -> dict[str, Any]:
    """With the mends: how often a send walks a queue of 2,000 messages, and the counts it answers."""
    import boto3
    from moto import mock_aws
    from moto.sqs.models import sqs_backends

    from leadflow.dev import moto_patches

    moto_patches.apply()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="backlog")["QueueUrl"]
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(10)])
        queue = sqs_backends["123456789012"]["us-east-1"].queues["backlog"]
        queue._messages = _CountedWalks(queue._messages * 200)  # 2,000 messages
        sqs.send_message(QueueUrl=url, MessageBody="y")
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "z"}])
        sent_walks = _CountedWalks.walks
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {"send walks": sent_walks, "visible": int(counts["ApproximateNumberOfMessages"])}


class _CountedItems(list):  # type: ignore[type-arg]
    """A queue's message list that counts the messages its walks reach."""

    reached = 0

    def __iter__(self) -> Any:
        for message in super().__iter__():
            type(self).reached += 1
            yield message


def _sqs_drain() -> dict[str, Any]:
    """With the mends: how many queued messages a drain of 2,000 reaches per message (receives of
    10, a delete each, as the local stack's pollers do), and what deletes answer as moto's do."""
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws
    from moto.sqs.models import sqs_backends

    from leadflow.dev import moto_patches

    moto_patches.apply()
    found: dict[str, Any] = {}
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="backlog", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
        for batch in range(200):
            entries = [{"Id": str(i), "MessageBody": f"{batch}-{i}"} for i in range(10)]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        queue = sqs_backends["123456789012"]["us-east-1"].queues["backlog"]

        def counted() -> None:  # moto's delete replaces the list with a copy: counted again after each call
            if type(queue._messages) is not _CountedItems:
                queue._messages = _CountedItems(queue._messages)

        # a message received twice is deleted by its first handle as by its last (moto keeps both)
        first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
        found["received twice"] = first["MessageId"] == again["MessageId"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])  # deleted already: accepted
        try:
            sqs.delete_message(QueueUrl=url, ReceiptHandle="never-given")
        except ClientError as error:
            found["unknown handle"] = error.response["Error"]["Code"]
        counted()
        _CountedItems.reached = 0
        bodies = {first["Body"]}
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"], VisibilityTimeout=0)
            for message in messages:
                bodies.add(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                counted()
        found["reached per message"] = _CountedItems.reached / 1999
        found["drained"] = len(bodies)
        found["left"] = len(queue._messages)
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        found["visible"] = int(counts["ApproximateNumberOfMessages"])
    return found


def test_draining_a_queue_with_a_backlog_walks_only_its_front() -> None:
    found = _run("sqs-drain", 0)
    # moto walked all 2,000 messages three times a delete (twice asking each for the handle, once
    # copying the queue) and listed every visible one a receive: 1,101 a message drained (checked)
    assert found["reached per message"] < 10
    assert found["drained"] == 2000
    assert found["left"] == 0
    assert found["visible"] == 0
    # deletes answer as moto's: by any handle the message had, twice quietly, an unknown handle refused
    assert found["received twice"] is True
    assert found["unknown handle"] == "ReceiptHandleIsInvalid"


def _event_deliveries(mended: bool) -> dict[str, Any]:
    """How many JSONPath expressions moto parses to deliver 30 events to an SQS target, and what it delivers."""
    import boto3
    from jsonpath_ng.ext.parser import ExtendedJsonPathParser
    from moto import mock_aws

    from leadflow.dev import moto_patches

    if mended:
        moto_patches.apply()
    parses = 0
    parse = ExtendedJsonPathParser.parse

    def counted(parser: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        nonlocal parses
        parses += 1
        return parse(parser, path, *args, **kwargs)

    ExtendedJsonPathParser.parse = counted  # type: ignore[method-assign]
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        url = sqs.create_queue(QueueName="deliveries")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventPattern=json.dumps({"source": ["leadflow.tracking"]}))
        transformer = {"InputPathsMap": {"lead": "$.detail.lead_id"}, "InputTemplate": '{"lead": "<lead>"}'}
        targets = [{"Id": "whole", "Arn": arn}, {"Id": "part", "Arn": arn, "InputTransformer": transformer}]
        events.put_targets(Rule="all", Targets=targets)
        for n in range(30):
            detail = {"lead_id": f"L{n}", "type": "email_open", "n": n}
            entry = {"Source": "leadflow.tracking", "DetailType": "activity.recorded", "Detail": json.dumps(detail)}
            events.put_events(Entries=[entry])
        bodies = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                body = json.loads(message["Body"])
                bodies.append({k: v for k, v in body.items() if k not in {"id", "time"}})
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return {"parses": parses, "bodies": sorted(bodies, key=json.dumps)}


def test_an_event_delivered_parses_its_paths_once_and_is_what_moto_delivers() -> None:
    with ThreadPoolExecutor(2) as pool:  # two processes
        moto_alone, mended = pool.map(_run, ["events-moto", "events-mended"], [0, 0])
    # moto parses the default input template's eight paths, and the transformer's one, for every event
    assert moto_alone["parses"] == 30 * (8 + 1)
    assert mended["parses"] == 8 + 1
    assert len(mended["bodies"]) == 60
    assert mended["bodies"] == moto_alone["bodies"]


def test_a_send_to_a_queue_with_a_backlog_does_not_walk_it() -> None:
    found = _run("sqs", 0)
    # moto builds the queue's attributes on every send, and its three counts walked every message
    assert found["send walks"] == 0
    # the counts a caller reads are moto's, walked as moto walks them
    assert found["visible"] == 2002


if __name__ == "__main__":
    _main(sys.argv[1], int(sys.argv[2]))
