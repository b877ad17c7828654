"""The lead store on one DynamoDB table (key design: docs/data-model.md): ``DynamoLeadStore``, put
together from its parts, and the reads of the API and the console.

``dynamo_json`` turns items into DynamoDB JSON and back; ``dynamo_expressions`` holds the keys
and update expressions the stores share; ``dynamo_table`` the client, transactions and reads by
key every store builds on; ``dynamo_capture`` a submission's transaction; ``dynamo_activities``
tracked activities; ``dynamo_ses_feedback`` SES feedback; ``dynamo_scoring`` scores and ledgers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leadflow.adapters.dynamo_activities import ActivityWrites
from leadflow.adapters.dynamo_capture import CaptureWrites
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.dynamo_scoring import ScoreLedger
from leadflow.adapters.dynamo_ses_feedback import FeedbackWrites
from leadflow.adapters.dynamo_table import storage_errors


class DynamoLeadStore(CaptureWrites, ActivityWrites, FeedbackWrites, ScoreLedger):
    """``LeadStore`` on DynamoDB: every submission is one transaction (two for a returning lead)."""

    # ------------------------------------------------------------------ reads
    def lead_id_for_email(self, email_key: str) -> str | None:
        with storage_errors():
            response = self.client.get_item(
                TableName=self.table, Key=serialize({"PK": f"EMAIL#{email_key}", "SK": "EMAIL"})
            )
        return deserialize(response["Item"])["lead_id"] if "Item" in response else None

    def lead_history(self, lead_id: str, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        activities = self._query_prefix(f"LEAD#{lead_id}", "ACT#", limit, newest_first=True)
        consents = self._query_prefix(f"LEAD#{lead_id}", "CONSENT#", None, newest_first=False)
        return activities, consents

    def recent_leads(self, limit: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """The newest leads, scanning back month by month (GSI2) for up to a year."""
        month = (now or datetime.now()).replace(day=1)
        keys: list[dict[str, Any]] = []
        for _ in range(12):
            response = self.client.query(
                TableName=self.table,
                IndexName="GSI2",
                Limit=limit - len(keys),
                ScanIndexForward=False,
                KeyConditionExpression="GSI2PK = :pk",
                ExpressionAttributeValues=serialize({":pk": f"LEADS#{month:%Y-%m}"}),
            )
            keys.extend({"PK": i["PK"], "SK": i["SK"]} for i in response.get("Items", []))
            if len(keys) >= limit:
                break
            month = (month - timedelta(days=1)).replace(day=1)
        if not keys:
            return []
        response = self.client.batch_get_item(RequestItems={self.table: {"Keys": keys}})
        leads = [deserialize(item) for item in response["Responses"][self.table]]
        return sorted(leads, key=lambda lead: lead.get("created_at", ""), reverse=True)

    def form_stats(self, day: str) -> dict[str, dict[str, int]]:
        items = self._query_prefix(f"STATS#{day}", "FORM#", None, newest_first=False)
        return {
            item["SK"].removeprefix("FORM#"): {k: v for k, v in item.items() if k not in ("PK", "SK")} for item in items
        }
