"""Scoring on the lead table: a lead's score state, new ledger entries with the summary under the
``score_version`` lock, a rescore's rewrite of the ledger, and the leads of a stage or an account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadflow.adapters.dynamo_expressions import lead_key, score_summary_fields, stage_fields, versioned_lead_update
from leadflow.adapters.dynamo_json import serialize
from leadflow.adapters.dynamo_table import NEW_ITEM, DynamoTable
from leadflow.ports import ScoreState

if TYPE_CHECKING:
    from leadflow.ports import ScoreWrite


class ScoreLedger(DynamoTable):
    """Scores, ledgers and stages (part of ``DynamoLeadStore``)."""

    def score_state(self, lead_id: str) -> ScoreState:
        """The lead's profile (None if there is no such lead), its score ledger and version."""
        profile = self.get_lead(lead_id)
        if profile is None:
            return ScoreState(None, [], 0)
        ledger = self._query_prefix(f"LEAD#{lead_id}", "LEDGER#", None, newest_first=False)
        return ScoreState(profile, ledger, int(profile.get("score_version", 0)))

    def apply_score(self, write: ScoreWrite) -> bool:
        """New ledger entries, the score summary and a stage move, if the version is still current."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        fields = score_summary_fields(write.summary, names, values)
        stage = write.stage[1] if write.stage else None
        items: list[dict[str, Any]] = [
            versioned_lead_update(self.table, write.lead_id, fields, names, values, write.expected_version, stage)
        ]
        for entry in write.entries:
            ledger_sk = f"LEDGER#{entry['at']}#{entry['entry_id']}"
            items.append(self._put({"PK": f"LEAD#{write.lead_id}", "SK": ledger_sk, **entry}, NEW_ITEM))
        items.extend(self._put(self._outbox_item(e)) for e in write.events)
        return self._transact_if(items)

    def lead_ids(self) -> list[str]:
        """Every lead id (a scan of the profiles: for offline jobs such as a rescore)."""
        items = self._all(
            "scan",
            FilterExpression="SK = :p AND begins_with(PK, :l)",
            ProjectionExpression="PK",
            ExpressionAttributeValues=serialize({":p": "PROFILE", ":l": "LEAD#"}),
        )
        return [item["PK"].removeprefix("LEAD#") for item in items]

    def lead_activities(self, lead_id: str) -> list[dict[str, Any]]:
        return self._query_prefix(f"LEAD#{lead_id}", "ACT#", None, newest_first=False)

    def rewrite_ledger(
        self,
        lead_id: str,
        remove: list[dict[str, Any]],
        add: list[dict[str, Any]],
        summary: dict[str, Any],
        stage: str | None,
    ) -> None:
        """Replace ledger entries in batches, then the summary (a rescore; not concurrent-safe by design)."""
        requests = [
            {
                "DeleteRequest": {
                    "Key": serialize({"PK": f"LEAD#{lead_id}", "SK": f"LEDGER#{item['at']}#{item['entry_id']}"})
                }
            }
            for item in remove
        ]
        requests += [
            {
                "PutRequest": {
                    "Item": serialize(
                        {"PK": f"LEAD#{lead_id}", "SK": f"LEDGER#{item['at']}#{item['entry_id']}", **item}
                    )
                }
            }
            for item in add
        ]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: requests[start : start + 25]}
            for attempt in range(8):
                unprocessed = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not unprocessed:
                    break
                pending = unprocessed
                self._sleep(0.05 * 2**attempt)
        names = {"#v": "score_version"}
        values: dict[str, Any] = {":one": 1}
        fields = score_summary_fields(summary, names, values)
        if stage:
            fields += ", " + stage_fields(lead_id, stage, names, values)
        expression = f"SET {fields} ADD #v :one"
        self.client.update_item(
            TableName=self.table,
            Key=serialize(lead_key(lead_id)),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def leads_in_stage(self, stage: str) -> list[str]:
        items = self._all(
            "query",
            IndexName="GSI3",
            KeyConditionExpression="GSI3PK = :p",
            ExpressionAttributeValues=serialize({":p": f"STAGE#{stage}"}),
        )
        return [item["GSI3SK"] for item in items]

    def account_leads(self, domain: str) -> list[dict[str, Any]]:
        return self._all(
            "query",
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :p",
            ExpressionAttributeValues=serialize({":p": f"ACCOUNT#{domain}"}),
        )
