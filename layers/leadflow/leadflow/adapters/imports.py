"""Imports on the LeadsTable: each row through the capture transaction (``adapters.audience``),
opt-outs onto the hashed suppression list, and the import's record (key design: docs/data-model.md).

``IMPORT#<id>`` / ``STATUS``: ``status``, ``file``, ``format``, counters (``read``, ``created``,
``updated``, ``unchanged``, ``rejected``, ``skipped``, ``suppressed``) added once per chunk;
``IMPORT#<id>`` / ``REJECT#<row, 9 digits>``: a rejected row's number, reason and values (what the
rejected-rows CSV is made of); ``IMPORT#<id>`` / ``CHUNK#<first row, 9 digits>``: a large import's
chunk counted (its counts; the condition that counts a retried chunk once). All expire after 30 days.
The record is listed in GSI2 (``GSI2PK = IMPORTS``, ``GSI2SK = <started at>#<id>``, keys only) for
the console's list of imports.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from leadflow.adapters.audience import DynamoAudienceStore
from leadflow.adapters.dynamo_expressions import (
    SUPPRESSION_INDEX,
    suppress_update,
)
from leadflow.adapters.dynamo_json import deserialize, serialize

IMPORT_TTL = timedelta(days=30)
COUNT_ATTEMPTS = 5
"""Tries of a chunk's count when other workers' counts conflict with it (then the Map retries the chunk)."""
IMPORTS_PK = "IMPORTS"


class DynamoImportStore(DynamoAudienceStore):
    def __init__(self, table_name: str, address_key: Callable[[str], str], client: Any = None) -> None:
        super().__init__(table_name, client)
        self._address_key = address_key

    def suppress(self, email_key: str, reason: str, at: str) -> None:
        """List an address on the suppression list (its keyed hash; the first reason is kept)."""
        self.client.update_item(**suppress_update(self.table, self._address_key(email_key), reason, at))

    def start_import(self, import_id: str, meta: dict[str, Any], at: datetime) -> dict[str, Any]:
        """The import's record, created once (a resumed import keeps its counters); returned as stored."""
        expires = int((at + IMPORT_TTL).timestamp())
        meta = {**meta, "GSI2PK": IMPORTS_PK, "GSI2SK": f"{at.isoformat()}#{import_id}"}  # listed once, when started
        names = {f"#m{i}": k for i, k in enumerate(meta)}
        values = {f":m{i}": v for i, v in enumerate(meta.values())}
        sets = ", ".join(f"#m{i} = if_not_exists(#m{i}, :m{i})" for i in range(len(meta)))
        answer = self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"IMPORT#{import_id}", "SK": "STATUS"}),
            UpdateExpression=f"SET {sets}, #s = :s, #e = :e, #u = :u",
            ExpressionAttributeNames={**names, "#s": "status", "#e": "expires_at", "#u": "updated_at"},
            ExpressionAttributeValues=serialize({**values, ":s": "running", ":e": expires, ":u": at.isoformat()}),
            ReturnValues="ALL_NEW",
        )
        return deserialize(answer["Attributes"])

    def count(
        self, import_id: str, counts: dict[str, int], status: str | None, at: datetime, rows_done: int | None = None
    ) -> None:
        """Add a chunk's counts, with the last row it finished (``rows_done``) and the status when given."""
        names = {f"#c{i}": k for i, k in enumerate(counts)}
        values: dict[str, Any] = {f":c{i}": v for i, v in enumerate(counts.values())}
        expression = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counts))) if counts else ""
        sets = ["#u = :u"]
        names["#u"], values[":u"] = "updated_at", at.isoformat()
        if status:
            sets.append("#s = :s")
            names["#s"], values[":s"] = "status", status
        if rows_done is not None:
            sets.append("#d = :d")
            names["#d"], values[":d"] = "rows_done", rows_done
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"IMPORT#{import_id}", "SK": "STATUS"}),
            UpdateExpression=f"{expression} SET {', '.join(sets)}".strip(),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def update_import(self, import_id: str, fields: dict[str, Any], at: datetime) -> None:
        """Set fields of the import's record (created when missing; a None value removes its field)."""
        kept = {k: v for k, v in fields.items() if v is not None}
        dropped = [k for k, v in fields.items() if v is None]
        names = {f"#f{i}": k for i, k in enumerate(kept)} | {f"#r{i}": k for i, k in enumerate(dropped)}
        values = {f":f{i}": v for i, v in enumerate(kept.values())}
        sets = [f"#f{i} = :f{i}" for i in range(len(kept))] + [
            "#u = :u",
            "#e = if_not_exists(#e, :e)",
            "GSI2PK = :lp",  # listed once, when opened (the console's list of imports)
            "GSI2SK = if_not_exists(GSI2SK, :ls)",
        ]
        names |= {"#u": "updated_at", "#e": "expires_at"}
        values |= {
            ":u": at.isoformat(),
            ":e": int((at + IMPORT_TTL).timestamp()),
            ":lp": IMPORTS_PK,
            ":ls": f"{at.isoformat()}#{import_id}",
        }
        removes = f" REMOVE {', '.join(f'#r{i}' for i in range(len(dropped)))}" if dropped else ""
        self.client.update_item(
            TableName=self.table,
            Key=serialize({"PK": f"IMPORT#{import_id}", "SK": "STATUS"}),
            UpdateExpression=f"SET {', '.join(sets)}{removes}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def chunk_counted(self, import_id: str, first_row: int) -> bool:
        """Whether a chunk of a large import (from row ``first_row``) was counted already."""
        answer = self.client.get_item(
            TableName=self.table,
            Key=serialize({"PK": f"IMPORT#{import_id}", "SK": f"CHUNK#{first_row:09d}"}),
            ConsistentRead=True,
            ProjectionExpression="PK",
        )
        return "Item" in answer

    def count_chunk(self, import_id: str, first_row: int, counts: dict[str, int], at: datetime) -> bool:
        """Add a chunk's counts once: the chunk's marker and the counts in one transaction, the
        marker's absence its condition. False: an earlier try of the chunk counted it."""
        expires = int((at + IMPORT_TTL).timestamp())
        names = {f"#c{i}": k for i, k in enumerate(counts)}
        values: dict[str, Any] = {f":c{i}": v for i, v in enumerate(counts.values())}
        names["#u"], values[":u"] = "updated_at", at.isoformat()
        marker = {"PK": f"IMPORT#{import_id}", "SK": f"CHUNK#{first_row:09d}", **counts, "expires_at": expires}
        items = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": serialize(marker),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize({"PK": f"IMPORT#{import_id}", "SK": "STATUS"}),
                    "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counts))) + " SET #u = :u",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": serialize(values),
                }
            },
        ]
        # Workers finishing at once update the same record: a transaction that meets another on it
        # is cancelled (TransactionConflict) and tried again after a short, jittered wait.
        attempt = 0
        while True:
            try:
                self.client.transact_write_items(TransactItems=items)
            except self.client.exceptions.TransactionCanceledException as cancelled:
                reasons = [r.get("Code") for r in cancelled.response.get("CancellationReasons", [])]
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    return False  # an earlier try of this chunk counted it
                attempt += 1
                if "TransactionConflict" not in reasons or attempt >= COUNT_ATTEMPTS:
                    raise
                time.sleep(0.05 * 2**attempt + secrets.randbelow(50) / 1000)
            else:
                return True

    def reject(self, import_id: str, rows: list[dict[str, Any]], at: datetime) -> None:
        """Keep a chunk's rejected rows (a resumed import overwrites the same row's item)."""
        expires = int((at + IMPORT_TTL).timestamp())
        items = [
            {"PK": f"IMPORT#{import_id}", "SK": f"REJECT#{r['row']:09d}", **r, "expires_at": expires} for r in rows
        ]
        for start in range(0, len(items), 25):
            chunk = [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]
            pending: dict[str, Any] = {self.table: chunk}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def import_status(self, import_id: str) -> dict[str, Any] | None:
        answer = self.client.get_item(
            TableName=self.table, Key=serialize({"PK": f"IMPORT#{import_id}", "SK": "STATUS"}), ConsistentRead=True
        )
        return deserialize(answer["Item"]) if "Item" in answer else None

    def rejected_rows(self, import_id: str, page: int | None = None) -> Iterator[dict[str, Any]]:
        """The import's rejected rows, in row order, read a page at a time (``page`` items, else
        DynamoDB's 1 MB pages) as the caller goes: the first hundred of a million cost one query."""
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues=serialize({":pk": f"IMPORT#{import_id}", ":prefix": "REJECT#"}),
            PaginationConfig={"PageSize": page} if page is not None else {},
        )
        for response in pages:
            yield from (deserialize(item) for item in response.get("Items", []))

    def recent_imports(self, limit: int) -> list[dict[str, Any]]:
        """The records of the newest imports, newest first (GSI2, then their records)."""
        answer = self.client.query(
            TableName=self.table,
            IndexName=SUPPRESSION_INDEX,
            KeyConditionExpression="GSI2PK = :p",
            ExpressionAttributeValues=serialize({":p": IMPORTS_PK}),
            ScanIndexForward=False,
            Limit=limit,
        )
        keys = [{"PK": deserialize(i)["PK"], "SK": "STATUS"} for i in answer.get("Items", [])]
        found = {item["PK"]: item for item in self.batch_get(keys)}
        return [found[k["PK"]] for k in keys if k["PK"] in found]
