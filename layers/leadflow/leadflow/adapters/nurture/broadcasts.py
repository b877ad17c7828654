"""A broadcast's side of the table: the scan that finds a segment's members with their
enrollments and mail logs, the run's progress item and the claims that keep each run and each
scheduled time to one start; and the start of the broadcast state machine."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.aws import LazyClient
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.nurture.items import MAIL_SK, enrollment_from
from leadflow.adapters.nurture.table import NurtureTable
from leadflow.domain.nurture.mail_log import MailLog
from leadflow.ports.nurture import ScannedPage


def _run_key(sequence_id: str, name: str) -> dict[str, str]:
    return {"PK": f"SEQ#{sequence_id}", "SK": f"BROADCAST#{name}"}


class BroadcastRuns(NurtureTable):
    """Scanning for a broadcast's members, and its runs and claims (``SEQ#<id>`` / ``BROADCAST#...``)."""

    # Complexity C (11), kept: one pass over the scan's items that groups each lead's items
    # (enrollment and mail log before the profile), across page boundaries and the start key.
    def scan_leads(
        self, sequence_id: str, segment: int, segments: int, start: dict[str, Any] | None = None
    ) -> Iterable[ScannedPage]:
        """Every lead profile, with the lead's enrollment in ``sequence_id`` and its mail log, page by
        page, in one of ``segments`` parallel scan segments, from ``start`` (a page's ``after``).

        A Scan is billed for every item it reads, returned or not, and a lead's items come
        together, in key order: its enrollment (``ENR#...``) and mail log (``MAIL``) just before its
        profile (``PROFILE``, the last of its keys). So the one scan that finds the segment's
        members returns their enrollments and logs too, for nothing more: no ``BatchGetItem`` of
        two items per member (1 read unit per lead). A lead whose items a page boundary splits is
        completed from the next page; one whose items began before ``start`` (where an earlier
        invocation stopped) is marked ``partial``: the caller reads its enrollment and log."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "SK IN (:p, :m, :e)",
            "ExpressionAttributeValues": serialize({":p": "PROFILE", ":m": MAIL_SK, ":e": f"ENR#{sequence_id}"}),
            "Segment": segment,
            "TotalSegments": segments,
        }
        cut = str(deserialize(start)["PK"]) if start else None
        if start:
            kwargs["ExclusiveStartKey"] = start
        if self.scan_page_limit:
            kwargs["Limit"] = self.scan_page_limit
        lead_pk, carried = cut, dict[str, dict[str, Any]]()
        while True:
            answer = self.client.scan(**kwargs)
            page = ScannedPage(after=answer.get("LastEvaluatedKey"), start=kwargs.get("ExclusiveStartKey"))
            for raw in answer.get("Items", []):
                item = deserialize(raw)
                if item["PK"] != lead_pk:
                    lead_pk, carried = item["PK"], {}
                if item["SK"] != "PROFILE":
                    carried[item["SK"]] = item
                    continue
                lead = str(item["PK"]).removeprefix("LEAD#")
                page.profiles.append(item)
                page.logs[lead] = MailLog.from_item(carried.get(MAIL_SK))
                stored = carried.get(f"ENR#{sequence_id}")
                if stored is not None:
                    page.enrollments[(lead, sequence_id)] = enrollment_from(stored)
                if item["PK"] == cut:
                    page.partial.add(lead)
            yield page
            if not page.after:
                return
            kwargs["ExclusiveStartKey"] = page.after

    def table_items(self) -> int | None:
        """``DescribeTable``'s ``ItemCount`` (free, refreshed by DynamoDB about every six hours)."""
        try:
            count = self.client.describe_table(TableName=self.table)["Table"].get("ItemCount")
        except ClientError:
            return None
        return int(count) if count is not None else None

    def start_broadcast_run(self, sequence_id: str, run: str, at: str, parts: int) -> bool:
        """The run's item (``SEQ#<id>`` / ``BROADCAST#<run>``): when it started and its parts (once)."""
        return self._put_new([{**_run_key(sequence_id, run), "at": at, "parts": parts}])

    def claim_broadcast(self, sequence_id: str, name: str, at: str) -> bool:
        """Claim ``SEQ#<id>`` / ``BROADCAST#<name>`` once (a hop ``<run>#<segment>#<hop>``, a scheduled time)."""
        return self._put_new([{**_run_key(sequence_id, name), "at": at}])

    def release_broadcast(self, sequence_id: str, name: str) -> None:
        """Take a claim back (a broadcast hop whose invocation could not be started)."""
        self.client.delete_item(TableName=self.table, Key=serialize(_run_key(sequence_id, name)))

    # ------------------------------------------------------------------ broadcast runs
    def record_broadcast(self, sequence_id: str, run: str, counts: dict[str, int], parts_done: int) -> None:
        """Add one part's counts to the run's item (``SEQ#<id>`` / ``BROADCAST#<run>``): its progress."""
        names = {f"#c{i}": key for i, key in enumerate(counts)}
        values: dict[str, Any] = {f":c{i}": value for i, value in enumerate(counts.values())}
        names["#d"] = "parts_done"
        values[":d"] = parts_done
        additions = ", ".join(f"#c{i} :c{i}" for i in range(len(counts)))
        self.client.update_item(
            TableName=self.table,
            Key=serialize(_run_key(sequence_id, run)),
            UpdateExpression=f"ADD {additions}, #d :d" if counts else "ADD #d :d",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def broadcast_run(self, sequence_id: str, run: str) -> dict[str, Any] | None:
        """The run's item: when it was started, its parts, and the counts so far."""
        item = self.client.get_item(
            TableName=self.table,
            Key=serialize(_run_key(sequence_id, run)),
            ConsistentRead=True,
        ).get("Item")
        return deserialize(item) if item else None


class StepFunctionsBroadcastRunner(LazyClient):
    """Starts the broadcast state machine (``infra/statemachines/broadcast.asl.json``) with a
    broadcast's parts; the execution is named after the run, so a second start of the same run
    is refused by Step Functions and changes nothing."""

    SERVICE = "stepfunctions"

    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client

    def start(self, name: str, parts: list[dict[str, Any]]) -> None:
        try:
            self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=execution_name(name),
                input=json.dumps({"parts": parts}, separators=(",", ":")),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise


def execution_name(name: str) -> str:
    """A Step Functions execution name for ``name``: at most 80 of ``[A-Za-z0-9_-]``; a name that had
    to be cut or changed keeps a digest of the original, so two runs never share one."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    if safe == name and len(name) <= 80:
        return name
    return f"{safe[:63]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
