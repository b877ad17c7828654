"""The move of profiles' account keys from GSI1 to the account index, GSI5 (``leadflow migrate
account-index``, once after upgrading a deployment whose profiles were written before GSI5).

GSI1 projects every attribute, so each scoring of a lead of a company (its summary rewritten on the
profile) also rewrote the profile's GSI1 entry; GSI5 projects ``lead_id`` and ``title`` only. The
account view reads both indexes until this has run (``ScoreLedger.account_leads``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from leadflow.adapters.dynamo_expressions import ACCOUNT_INDEX, ACCOUNT_PREFIX, LEGACY_ACCOUNT_INDEX
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.dynamo_table import DynamoTable

MOVE_WORKERS = 8


@dataclass
class AccountIndexMigration:
    moved: int = 0
    """Profiles whose account keys went from GSI1 to GSI5."""
    gone: int = 0
    """Profiles that no longer had those GSI1 keys when their turn came (moved by a run alongside, or erased)."""


class DynamoAccountIndexMigration(DynamoTable):
    """Finds the profiles still keyed in GSI1 under ``ACCOUNT#`` and moves their keys to GSI5."""

    def migrate(self, progress: Callable[[int], None] | None = None) -> AccountIndexMigration:
        """Move every profile's account keys from GSI1 to GSI5: one conditional ``UpdateItem`` each,
        ``MOVE_WORKERS`` at a time. Idempotent and safe beside the running stack: a profile is
        changed only while it still holds the GSI1 keys it was found with, so a second run (or one
        alongside) moves nothing twice. ``progress`` is told each page's profiles when done."""
        result = AccountIndexMigration()
        with ThreadPoolExecutor(max_workers=MOVE_WORKERS) as pool:
            for page in self._legacy_profiles():
                for moved in pool.map(self.move, page):
                    result.moved += moved
                    result.gone += not moved
                if progress is not None:
                    progress(len(page))
        return result

    def _legacy_profiles(self) -> Iterator[list[dict[str, Any]]]:
        """The profiles with GSI1 account keys, a page at a time: a Scan of GSI1, which holds only
        these and the tag and segment members (far fewer items than the table: a Scan is billed for
        every item it reads)."""
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table,
            IndexName=LEGACY_ACCOUNT_INDEX,
            FilterExpression="SK = :profile AND begins_with(#p, :account)",
            ProjectionExpression="PK, SK, #p, #s",
            ExpressionAttributeNames={"#p": f"{LEGACY_ACCOUNT_INDEX}PK", "#s": f"{LEGACY_ACCOUNT_INDEX}SK"},
            ExpressionAttributeValues=serialize({":profile": "PROFILE", ":account": ACCOUNT_PREFIX}),
        )
        for answer in pages:
            if answer.get("Items"):
                yield [deserialize(item) for item in answer["Items"]]

    def move(self, profile: dict[str, Any]) -> bool:
        """One profile's keys to GSI5 (the same values), off GSI1; False if it no longer had them."""
        old_pk, old_sk = f"{LEGACY_ACCOUNT_INDEX}PK", f"{LEGACY_ACCOUNT_INDEX}SK"
        try:
            self.client.update_item(
                TableName=self.table,
                Key=serialize({"PK": profile["PK"], "SK": profile["SK"]}),
                UpdateExpression="SET #np = :account, #ns = :lead REMOVE #op, #os",
                ConditionExpression="#op = :account",
                ExpressionAttributeNames={
                    "#np": f"{ACCOUNT_INDEX}PK",
                    "#ns": f"{ACCOUNT_INDEX}SK",
                    "#op": old_pk,
                    "#os": old_sk,
                },
                ExpressionAttributeValues=serialize({":account": profile[old_pk], ":lead": profile[old_sk]}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
