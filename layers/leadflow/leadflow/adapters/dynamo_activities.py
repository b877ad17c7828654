"""Tracked activities: one stored with its outbox events (a lead's or an anonymous visitor's), one
that is its own event, and what an anonymous visitor did before they became a lead."""

from __future__ import annotations

from typing import Any

from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.dynamo_table import NEW_ITEM, DynamoTable, storage_errors
from leadflow.domain.events import DomainEvent
from leadflow.domain.ratelimit import HitCounter


class ActivityWrites(DynamoTable):
    """Activities and visitors (part of ``DynamoLeadStore``)."""

    def record_activity(
        self, owner_pk: str, activity: dict[str, Any], events: list[DomainEvent], counter: HitCounter | None = None
    ) -> bool:
        """Store one activity (under ``LEAD#id`` or ``VISITOR#id``) with its outbox events.

        Returns:
            False when nothing was written: the hit counter is full, an activity with this id
            is already stored (a redelivery), or the lead does not exist (erased).

        Raises:
            StorageUnavailable: throttled or down.
        """
        items: list[dict[str, Any]] = []
        if counter is not None:
            items.append(self._capped_count(counter.key, "HITS", counter.expires_at, counter.cap))
        activity_sk = f"ACT#{activity['at']}#{activity['activity_id']}"
        items.append(self._put({"PK": owner_pk, "SK": activity_sk, **activity}, NEW_ITEM))
        items.extend(self._put(self._outbox_item(e)) for e in events)
        if owner_pk.startswith("LEAD#"):
            # Only for a lead that exists: an open or click of an erased lead's old email writes nothing.
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": serialize({"PK": owner_pk, "SK": "PROFILE"}),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                }
            )
        return self._transact_if(items)

    def record_announced(
        self, lead_id: str, activity: dict[str, Any], source: str, counter: HitCounter | None = None
    ) -> bool:
        """One activity of a known lead, written as its own event (issue 17: ~2 write units, where a
        transaction of counter, activity, outbox event and profile check took ~8).

        Three plain calls: the profile's key read (an unknown or erased lead: nothing written, as
        the transaction's check did), the hit counter's capped count, the activity's conditional
        put. The activity carries ``event_source``: the outbox relay publishes its stream record as
        ``activity.recorded`` with the activity id as the event id (``services.outbox``), so a
        redelivered record is the same event and consumers de-duplicate it.
        """
        with storage_errors():  # throttled, failing or unreachable: StorageUnavailable
            profile = serialize({"PK": f"LEAD#{lead_id}", "SK": "PROFILE"})
            found = self.client.get_item(TableName=self.table, Key=profile, ProjectionExpression="PK")
            if "Item" not in found:
                return False
            if counter is not None:
                count = self._capped_count(counter.key, "HITS", counter.expires_at, counter.cap)["Update"]
                if not self._conditional(lambda: self.client.update_item(**count)):
                    return False
            item = {
                "PK": f"LEAD#{lead_id}",
                "SK": f"ACT#{activity['at']}#{activity['activity_id']}",
                **activity,
                "event_source": source,
            }
            return self._conditional(
                lambda: self.client.put_item(TableName=self.table, Item=serialize(item), ConditionExpression=NEW_ITEM)
            )

    def visitor_activities(self, visitor_id: str) -> list[dict[str, Any]]:
        """What an anonymous visitor did before they became a lead."""
        return self._query_prefix(f"VISITOR#{visitor_id}", "ACT#", None, newest_first=False)

    def visitor_lead(self, visitor_id: str) -> str | None:
        """The lead an anonymous visitor turned out to be, once they submitted a form."""
        with storage_errors():
            response = self.client.get_item(
                TableName=self.table, Key=serialize({"PK": f"VISITOR#{visitor_id}", "SK": "LINK"})
            )
        return deserialize(response["Item"])["lead_id"] if "Item" in response else None
