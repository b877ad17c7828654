"""SES feedback in one transaction: the suppression, the unsubscribe (consent withdrawn and its
history entry), the activity (or a marker that the feedback was seen) and the events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadflow.adapters.dynamo_expressions import SUPPRESS_NAMES, SUPPRESS_UPDATE, lead_key, suppress_values
from leadflow.adapters.dynamo_json import serialize
from leadflow.adapters.dynamo_table import NEW_ITEM, DynamoTable
from leadflow.domain.errors import StorageUnavailable

if TYPE_CHECKING:
    from leadflow.ports.messaging import FeedbackWrite


class FeedbackWrites(DynamoTable):
    """One piece of SES feedback (part of ``DynamoLeadStore``)."""

    def record_feedback(self, write: FeedbackWrite) -> bool:
        """One SES feedback: suppression, unsubscribe (consent withdrawn), activity, events.

        The activity's id is the feedback's own id, so a redelivered or duplicated
        notification is refused by its condition and changes nothing twice.
        """
        at = write.at
        items: list[dict[str, Any]] = []
        if write.activity is not None:
            activity = {"PK": f"LEAD#{write.lead_id}", "SK": f"ACT#{at}#{write.feedback_id}", **write.activity}
            items.append(self._put(activity, NEW_ITEM))
        else:
            expires = int(datetime.fromisoformat(at).timestamp()) + 30 * 86400
            items.append(
                self._put(
                    {"PK": f"FEEDBACK#{write.feedback_id}", "SK": "SEEN", "at": at, "expires_at": expires}, NEW_ITEM
                )
            )
        if write.suppress_reason:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": serialize({"PK": f"SUPPRESS#{write.address_key}", "SK": "SUPPRESS"}),
                        "UpdateExpression": f"{SUPPRESS_UPDATE}, #l = :l",
                        "ExpressionAttributeNames": {**SUPPRESS_NAMES, "#l": "last_feedback"},
                        "ExpressionAttributeValues": serialize(
                            {
                                **suppress_values(write.address_key, write.suppress_reason, at, write.listed_at),
                                ":l": write.feedback_id,
                            }
                        ),
                    }
                }
            )
        if write.unsubscribe and write.lead_id:
            items.extend(self._withdrawal_items(write.lead_id, write))
        items.extend(self._put(self._outbox_item(e)) for e in write.events)
        reasons = self._transact(items)
        if reasons is None:
            return True
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return False  # seen before
        raise StorageUnavailable(f"unexpected cancellation: {reasons}")

    def _withdrawal_items(self, lead_id: str, write: FeedbackWrite) -> list[dict[str, Any]]:
        """A complaint or unsubscribe feedback: the lead's consent withdrawn, and its history entry."""
        at = write.at
        withdrawn = {
            "Update": {
                "TableName": self.table,
                "Key": serialize(lead_key(lead_id)),
                # Withdrawn, and its double opt-in confirmation with it: given again, confirmed again.
                "UpdateExpression": "SET #c = :c REMOVE #cc",
                "ConditionExpression": "attribute_exists(PK)",
                "ExpressionAttributeNames": {"#c": "consent_marketing_email", "#cc": "consent_confirmed_at"},
                "ExpressionAttributeValues": serialize({":c": {"granted": False, "at": at, "source": "complaint"}}),
            }
        }
        history = {
            "PK": f"LEAD#{lead_id}",
            "SK": f"CONSENT#{at}#{write.feedback_id}",
            "purpose": "marketing_email",
            "granted": False,
            "at": at,
            "source": "ses_feedback",
            "reason": write.suppress_reason or "unsubscribe",
        }
        return [withdrawn, self._put(history)]
