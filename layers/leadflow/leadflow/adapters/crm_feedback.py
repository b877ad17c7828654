"""Sales feedback on the LeadsTable: the CRM reference lookup and the one-transaction apply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from leadflow.adapters.dynamo_expressions import lead_key, versioned_lead_update
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.handoff import DynamoHandoffStore
from leadflow.domain.errors import StorageUnavailable
from leadflow.ports.crm_feedback import ApplyStatus, CrmFeedbackWrite, FeedbackState


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class DynamoCrmFeedbackStore(DynamoHandoffStore):
    """``CrmFeedbackStore`` on the lead table (items: docs/data-model.md, CRMREF / CRMEVT / HANDOFF)."""

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        """A consistent read of one item.

        Raises:
            StorageUnavailable: throttled, down or unreachable.
        """
        try:
            response = self.client.get_item(TableName=self.table, Key=serialize(key), ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            raise StorageUnavailable(type(error).__name__) from error
        item = response.get("Item")
        return deserialize(item) if item else None

    def lead_for_external_id(self, provider: str, external_id: str) -> str | None:
        item = self._get({"PK": f"CRMREF#{provider}#{external_id}", "SK": "CRMREF"})
        return str(item["lead_id"]) if item and item.get("lead_id") else None

    def feedback_state(self, lead_id: str, handoff_id: str | None) -> FeedbackState | None:
        profile = self._get(lead_key(lead_id))
        if profile is None:
            return None
        handoff_id = handoff_id or profile.get("handoff_id")
        record = self._get({"PK": f"LEAD#{lead_id}", "SK": f"HANDOFF#{handoff_id}"}) if handoff_id else None
        last = (record or profile).get("last_sales_feedback") or {}
        return FeedbackState(
            lead_id=lead_id,
            stage=str(profile.get("stage") or "lead"),
            score_version=int(profile.get("score_version", 0)),
            last_feedback_at=_parse_time(last.get("at")),
            handoff_id=handoff_id if record else None,
            handoff_status=str(record["status"]) if record and record.get("status") else None,
            handoff_rev=int(record["rev"]) if record and "rev" in record else None,
            handoff_found=record is not None or handoff_id is None,
            owner_id=str((record.get("owner") or {}).get("id") or "") or None if record else None,
        )

    def apply_feedback(self, write: CrmFeedbackWrite) -> ApplyStatus:
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": serialize(
                        {
                            "PK": f"CRMEVT#{write.provider}#{write.event_id}",
                            "SK": "CRMEVT",
                            "lead_id": write.lead_id,
                            "applied": write.applied,
                            "expires_at": write.seen_expires_at,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        ]
        if write.applied:
            items.append(self._profile_update(write))
            if write.handoff_id:
                items.append(self._handoff_update(write))
            if write.activity:
                activity = {
                    "PK": f"LEAD#{write.lead_id}",
                    "SK": f"ACT#{write.activity['at']}#{write.activity['activity_id']}",
                }
                items.append({"Put": {"TableName": self.table, "Item": serialize({**activity, **write.activity})}})
            items.extend(
                {"Put": {"TableName": self.table, "Item": serialize(self._outbox_item(e))}} for e in write.events
            )
        reasons = self._transact(items)
        if reasons is None:
            return "applied" if write.applied else "ignored"
        codes = [r.get("Code") for r in reasons]
        if codes and codes[0] == "ConditionalCheckFailed":
            return "duplicate"
        if "ConditionalCheckFailed" in codes:
            return "conflict"
        raise StorageUnavailable(f"unexpected cancellation: {codes}")

    def _profile_update(self, write: CrmFeedbackWrite) -> dict[str, Any]:
        names = {"#fb": "last_sales_feedback", "#u": "updated_at"}
        values: dict[str, Any] = {":fb": write.feedback, ":u": write.feedback["at"]}
        fields = "#fb = :fb, #u = :u"
        stage = None
        if write.stage_move:
            names["#sa"] = "stage_changed_at"
            values[":sa"] = write.feedback["at"]
            fields += ", #sa = :sa"
            stage = write.stage_move[1]
        return versioned_lead_update(
            self.table, write.lead_id, fields, names, values, write.expected_score_version, stage
        )

    def _handoff_update(self, write: CrmFeedbackWrite) -> dict[str, Any]:
        names = {"#st": "status", "#h": "history", "#u": "updated_at", "#r": "rev", "#fb": "last_sales_feedback"}
        values: dict[str, Any] = {
            ":st": write.status,
            ":h": [write.history_entry],
            ":empty": [],
            ":u": write.feedback["at"],
            ":next": (write.expected_rev or 0) + 1,
            ":fb": write.feedback,
        }
        if write.expected_rev is None:
            condition = "attribute_exists(PK) AND attribute_not_exists(#r)"
        else:
            condition = "#r = :rev"
            values[":rev"] = write.expected_rev
        return {
            "Update": {
                "TableName": self.table,
                "Key": serialize({"PK": f"LEAD#{write.lead_id}", "SK": f"HANDOFF#{write.handoff_id}"}),
                "UpdateExpression": "SET #st = :st, #h = list_append(if_not_exists(#h, :empty), :h), #u = :u, "
                "#r = :next, #fb = :fb",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": serialize(values),
            }
        }
