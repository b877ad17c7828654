"""Scoring on the lead table: a lead's score state, new ledger entries with the summary under the
``score_version`` lock, a rescore's rewrite of the ledger, and the leads of a stage or an account.

The ledger entries one scored activity earns (one per model and rule) are one item
(``LEDGER#<at>#<first entry id>`` with ``entries``): a transaction bills every item twice, so three
entries in one item cost 2 write units instead of 6 (docs/benchmarks.md, section 6). Items written
before hold one entry each (the entry's own fields); both are read alike. The item also carries the
activity's ``lead.scored`` event (``scored``), which the outbox relay publishes from its stream
record: no outbox item in the transaction (2 write units fewer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadflow.adapters.dynamo_expressions import (
    ACCOUNT_INDEX,
    ACCOUNT_PREFIX,
    LEGACY_ACCOUNT_INDEX,
    lead_key,
    score_summary_fields,
    stage_fields,
    versioned_lead_update,
)
from leadflow.adapters.dynamo_json import deserialize, serialize
from leadflow.adapters.dynamo_table import NEW_ITEM, DynamoTable
from leadflow.domain.events import SCORED_ATTRIBUTE, scored_on_ledger
from leadflow.ports.scoring import ScoreState

if TYPE_CHECKING:
    from leadflow.ports.scoring import ScoreWrite


class ScoreLedger(DynamoTable):
    """Scores, ledgers and stages (part of ``DynamoLeadStore``)."""

    def score_state(self, lead_id: str) -> ScoreState:
        """The lead's profile (None if there is no such lead), its score ledger and version."""
        profile = self.get_lead(lead_id)
        if profile is None:
            return ScoreState(None, [], 0)
        items = self._query_prefix(f"LEAD#{lead_id}", LEDGER, None, newest_first=False)
        return ScoreState(profile, ledger_entries(items), int(profile.get("score_version", 0)))

    def apply_score(self, write: ScoreWrite) -> bool:
        """New ledger entries, the score summary and a stage move, if the version is still current.

        A scored activity's ledger item (its ``lead.scored`` on it) and the summary are two plain
        writes, the item first: 1 write unit each where a transaction bills 2 (issue 17). The item
        written and the summary refused, the service's next try finds the summary lagging. With an
        outbox event (a stage move, an award, a correction) or entries to replace, one transaction.
        """
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        fields = score_summary_fields(write.summary, names, values)
        stage = write.stage[1] if write.stage else None
        profile = versioned_lead_update(self.table, write.lead_id, fields, names, values, write.expected_version, stage)
        pk = f"LEAD#{write.lead_id}"
        replaced = {str(e.get(ITEM_SK) or _entry_sk(e)) for e in write.replaced}
        ledger: dict[str, Any] | None = None
        if write.entries:
            first = min(write.entries, key=_order)
            item = {"PK": pk, "SK": _entry_sk(first), **compact_entries(write.entries)}
            if write.announced is not None:
                item[SCORED_ATTRIBUTE] = scored_on_ledger(write.announced)
            ledger = self._put(item, None if item["SK"] in replaced else NEW_ITEM)
            replaced.discard(item["SK"])
        if not write.events and not replaced:
            if ledger is not None and not self._write_if(ledger):
                return False
            return self._write_if(profile)
        items = [profile, *([ledger] if ledger else [])]
        items += [
            {"Delete": {"TableName": self.table, "Key": serialize({"PK": pk, "SK": sk})}} for sk in sorted(replaced)
        ]
        items += [self._put(self._outbox_item(e)) for e in write.events]
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
        """Take out the entries of ``remove`` (as ``score_state`` read them) and write those of ``add``
        (one item each; an entry in both is replaced), in batches, then the summary (a rescore; not
        concurrent-safe by design). An item of several entries is written back with the rest."""
        pk = f"LEAD#{lead_id}"
        puts = {_entry_sk(item): {"PK": pk, "SK": _entry_sk(item), **_fields(item)} for item in add}
        combined: dict[str, set[str]] = {}
        deletes: list[str] = []
        for item in remove:
            if item.get(ITEM_SK):
                combined.setdefault(str(item[ITEM_SK]), set()).add(str(item["entry_id"]))
            elif _entry_sk(item) not in puts:  # an entry of its own, not written anew
                deletes.append(_entry_sk(item))
        for sk, entry_ids in combined.items():
            kept = [e for e in ledger_entries([self._ledger_item(pk, sk)]) if str(e["entry_id"]) not in entry_ids]
            if sk in puts:  # an added entry has this item's key: the item keeps it beside the rest
                kept.append(puts.pop(sk))
            if kept:  # written back without the event it carried (that was published when it was new)
                puts[sk] = {"PK": pk, "SK": sk, **compact_entries([_fields(e) for e in kept])}
            else:
                deletes.append(sk)
        requests = [{"DeleteRequest": {"Key": serialize({"PK": pk, "SK": sk})}} for sk in deletes]
        requests += [{"PutRequest": {"Item": serialize(item)}} for item in puts.values()]
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

    def _ledger_item(self, pk: str, sk: str) -> dict[str, Any]:
        response = self.client.get_item(TableName=self.table, Key=serialize({"PK": pk, "SK": sk}), ConsistentRead=True)
        return deserialize(response["Item"]) if "Item" in response else {}

    def leads_in_stage(self, stage: str) -> list[str]:
        items = self._all(
            "query",
            IndexName="GSI3",
            KeyConditionExpression="GSI3PK = :p",
            ExpressionAttributeValues=serialize({":p": f"STAGE#{stage}"}),
        )
        return [item["GSI3SK"] for item in items]

    def account_leads(self, domain: str) -> list[dict[str, Any]]:
        """The account's leads (``lead_id``, and ``title`` when known), by lead id: the account index
        (GSI5), and GSI1 for profiles written before it (until ``leadflow migrate account-index``
        moves them; a profile in both is the same lead, and the GSI5 entry is kept), in lead id order."""
        found: dict[str, dict[str, Any]] = {}
        for index in (LEGACY_ACCOUNT_INDEX, ACCOUNT_INDEX):
            items = self._all(
                "query",
                IndexName=index,
                KeyConditionExpression="#p = :p",
                ProjectionExpression="#i, #t",
                ExpressionAttributeNames={"#p": f"{index}PK", "#i": "lead_id", "#t": "title"},
                ExpressionAttributeValues=serialize({":p": f"{ACCOUNT_PREFIX}{domain}"}),
            )
            found.update((str(item["lead_id"]), item) for item in items)
        return [found[lead_id] for lead_id in sorted(found)]


LEDGER = "LEDGER#"
ITEM_SK = "ledger_item"
"""Where an entry read from an item of several entries is kept (its item's sort key)."""


SHARED = ("activity_id", "activity_type", "at")
"""What every entry of one activity has alike: kept once on its item (``compact_entries``)."""


def compact_entries(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields of a ledger item holding ``entries`` (``LedgerEntry.as_item``): when they are one
    activity's (as a scored activity's always are), its id, type and time once on the item and each
    entry without them or its id (``<activity_id>:<model>:<rule_id>``, worked out again on reading):
    ~150 bytes less an entry keeps an activity scored in three models, with the ``lead.scored`` it
    carries, under the 1 KB of one write unit (a transaction bills 2 a unit). Entries of several
    activities (a rescore's) are kept whole."""
    shared = {name: entries[0].get(name) for name in SHARED}
    if any({n: e.get(n) for n in SHARED} != shared or e.get("entry_id") != _entry_id(e) for e in entries):
        return {"entries": entries}
    return {**shared, "entries": [{k: v for k, v in e.items() if k not in SHARED and k != "entry_id"} for e in entries]}


def ledger_entries(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger's entries, oldest first, from its items: an item of one activity's entries gives
    each (with ``ITEM_SK``; its id, activity and time from the item when kept there:
    ``compact_entries``), an older item of one entry gives itself."""
    entries: list[dict[str, Any]] = []
    for item in items:
        if "entries" in item:
            shared = {name: item[name] for name in SHARED if name in item}
            for entry in item["entries"]:
                whole = {**shared, **entry, ITEM_SK: item["SK"]}
                whole.setdefault("entry_id", _entry_id(whole))
                entries.append(whole)
        elif item:
            entries.append(item)
    entries.sort(key=_order)
    return entries


def _entry_id(entry: dict[str, Any]) -> str:
    """An entry's id as ``domain.scoring`` makes it: ``<activity_id>:<model>:<rule_id>``."""
    return f"{entry.get('activity_id')}:{entry.get('model')}:{entry.get('rule_id')}"


def _order(entry: dict[str, Any]) -> tuple[str, str]:
    return str(entry["at"]), str(entry["entry_id"])


def _entry_sk(entry: dict[str, Any]) -> str:
    return f"{LEDGER}{entry['at']}#{entry['entry_id']}"


def _fields(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry's own fields (without the keys and the item it was read from)."""
    return {k: v for k, v in entry.items() if k not in ("PK", "SK", ITEM_SK)}
