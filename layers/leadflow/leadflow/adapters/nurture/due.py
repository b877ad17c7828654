"""The due index the ticks read shard by shard, the ticks' shard leases, and the send rate every
sender shares (one counter item per second)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.nurture.items import DUE_INDEX
from leadflow.adapters.nurture.table import NurtureTable
from leadflow.domain.nurture.mail_log import utc_iso


class DueIndex(NurtureTable):
    """What is due, who works which shard, and how many sends this second still allows."""

    def due(self, shard: int, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(lead id, sequence id) of enrollments of one shard due at ``now``, oldest first."""
        answer = self.client.query(
            TableName=self.table,
            IndexName=DUE_INDEX,
            KeyConditionExpression="GSI4PK = :p AND GSI4SK <= :n",
            ExpressionAttributeValues=serialize({":p": f"DUE#{shard}", ":n": f"{utc_iso(now)}#~"}),
            Limit=limit,
        )
        keys = []
        for item in answer.get("Items", []):
            row = deserialize(item)
            keys.append((row["PK"].removeprefix("LEAD#"), row["SK"].removeprefix("ENR#")))
        return keys

    def shards_with_due(self, now: datetime) -> list[int]:
        """The shards that have anything due (one cheap query each, in parallel)."""

        def has_due(shard: int) -> bool:
            return bool(self.due(shard, now, 1))

        with ThreadPoolExecutor(max_workers=min(16, self.shards)) as pool:
            flags = list(pool.map(has_due, range(self.shards)))
        return [shard for shard, flag in enumerate(flags) if flag]

    # ------------------------------------------------------------------ the shared send rate
    def take_send_slots(self, wanted: int, rate: int, now: float) -> int:
        """Up to ``wanted`` sends of the current second's ``rate`` (shared by every worker).

        A refused take answers the counter as it is (``ReturnValuesOnConditionCheckFailure``), so
        the next try takes exactly what is left, and a full second costs one refused write, not
        one per size tried (every refused conditional write is billed)."""
        second = int(now)
        take = wanted
        for _ in range(3):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=serialize({"PK": f"SESRATE#{second}", "SK": "RATE"}),
                    UpdateExpression="ADD #n :k SET #e = :e",
                    ConditionExpression="attribute_not_exists(#n) OR #n <= :room",
                    ExpressionAttributeNames={"#n": "n", "#e": "expires_at"},
                    ExpressionAttributeValues=serialize({":k": take, ":e": second + 120, ":room": rate - take}),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return take
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                current = error.response.get("Item")
                # What is left of the second; an endpoint that does not answer the item: try smaller.
                take = min(take, rate - int(deserialize(current).get("n", 0))) if current is not None else take // 2
                if take <= 0:
                    return 0
        return 0

    # ------------------------------------------------------------------ tick leases
    def lease_shard(self, shard: int, holder: str, now: datetime, hold: timedelta) -> bool:
        """Hold one shard of the due index for one tick until ``now + hold`` (renewed page by page).

        False when another tick holds it and its lease has not run out: overlapping ticks (a
        tick every 5 minutes while a long wave runs) then leave the shard to the one working it."""
        return self._conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key=serialize({"PK": "NURTURE#LEASE", "SK": f"DUE#{shard}"}),
                UpdateExpression="SET #h = :h, #u = :u",
                ConditionExpression="attribute_not_exists(#h) OR #h = :h OR #u < :now",
                ExpressionAttributeNames={"#h": "holder", "#u": "until"},
                ExpressionAttributeValues=serialize(
                    {":h": holder, ":u": int((now + hold).timestamp()), ":now": int(now.timestamp())}
                ),
            )
        )

    def release_shard(self, shard: int, holder: str) -> None:
        """The tick is done with the shard: the next one may take it at once."""
        self._conditional(
            lambda: self.client.update_item(
                TableName=self.table,
                Key=serialize({"PK": "NURTURE#LEASE", "SK": f"DUE#{shard}"}),
                UpdateExpression="SET #u = :zero",
                ConditionExpression="#h = :h",
                ExpressionAttributeNames={"#h": "holder", "#u": "until"},
                ExpressionAttributeValues=serialize({":h": holder, ":zero": 0}),
            )
        )
