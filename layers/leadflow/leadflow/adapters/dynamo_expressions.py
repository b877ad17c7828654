"""Keys and update expressions that the stores on the lead table share: a lead's profile key and
account index keys, a capture's changes as one update, the score summary and stage fields under
the ``score_version`` lock, and an entry of the suppression list (key design: docs/data-model.md)."""

from __future__ import annotations

from typing import Any

from leadflow.adapters.dynamo_json import serialize
from leadflow.domain.leads import LeadChanges

SUPPRESSION_INDEX = "GSI2"
SUPPRESSED_PK = "SUPPRESSED"
SUPPRESS_UPDATE = "SET #r = if_not_exists(#r, :r), #a = if_not_exists(#a, :a), #gp = :gp, #gs = if_not_exists(#gs, :gs)"
"""A suppression: its first reason and time kept, and listed in GSI2 (``SUPPRESSED`` /
``<listed at>#<address key>``, from its first listing), so that the senders read the whole list
once and then only what was listed since."""
SUPPRESS_NAMES = {"#r": "reason", "#a": "at", "#gp": "GSI2PK", "#gs": "GSI2SK"}


def suppress_values(address_key: str, reason: str, at: str, listed_at: str) -> dict[str, str]:
    """The values of ``SUPPRESS_UPDATE`` for one suppression (``address_key``: the address's keyed
    hash, ``domain.gdpr.address_hash``; the list never holds an address)."""
    return {":r": reason, ":a": at, ":gp": SUPPRESSED_PK, ":gs": f"{listed_at}#{address_key}"}


def suppress_update(table: str, address_key: str, reason: str, at: str) -> dict[str, Any]:
    """The ``UpdateItem`` that lists one address key as suppressed at ``at`` (its first reason kept)."""
    return {
        "TableName": table,
        "Key": serialize({"PK": f"SUPPRESS#{address_key}", "SK": "SUPPRESS"}),
        "UpdateExpression": SUPPRESS_UPDATE,
        "ExpressionAttributeNames": SUPPRESS_NAMES,
        "ExpressionAttributeValues": serialize(suppress_values(address_key, reason, at, at)),
    }


ACCOUNT_INDEX = "GSI5"
"""The leads of an account: a profile's ``ACCOUNT#<company domain>`` / ``LEAD#<lead_id>``, projecting
``lead_id`` and ``title`` only, so rewriting the profile's score summary writes no index entry."""
LEGACY_ACCOUNT_INDEX = "GSI1"
"""Where profiles written before ``ACCOUNT_INDEX`` existed keep their account keys (GSI1, projection
ALL: every profile write rewrites the entry) until ``leadflow migrate account-index`` moves them."""
ACCOUNT_PREFIX = "ACCOUNT#"


def lead_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": "PROFILE"}


def account_index_keys(domain: str, lead_id: str) -> dict[str, str]:
    """A profile's keys in the account index (``ACCOUNT_INDEX``), for a lead of company ``domain``."""
    return {f"{ACCOUNT_INDEX}PK": f"{ACCOUNT_PREFIX}{domain}", f"{ACCOUNT_INDEX}SK": f"LEAD#{lead_id}"}


def update_expression(changes: LeadChanges) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``changes`` as one DynamoDB update (the semantics of ``apply_changes``)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    for i, (name, value) in enumerate(changes.set_always.items()):
        names[f"#s{i}"] = name
        values[f":s{i}"] = value
        sets.append(f"#s{i} = :s{i}")
    for i, (name, value) in enumerate(changes.set_if_absent.items()):
        names[f"#o{i}"] = name
        values[f":o{i}"] = value
        sets.append(f"#o{i} = if_not_exists(#o{i}, :o{i})")
    adds = []
    for i, (name, amount) in enumerate(changes.increment.items()):
        names[f"#n{i}"] = name
        values[f":n{i}"] = amount
        adds.append(f"#n{i} :n{i}")
    for i, (name, members) in enumerate(changes.add_to_sets.items()):
        names[f"#a{i}"] = name
        values[f":a{i}"] = set(members)
        adds.append(f"#a{i} :a{i}")
    expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
    return expression, names, serialize(values)


def stage_fields(lead_id: str, stage: str, names: dict[str, str], values: dict[str, Any]) -> str:
    """The SET fragment that moves a lead to ``stage`` with its stage-index keys (GSI3)."""
    names.update({"#st": "stage", "#p3": "GSI3PK", "#s3": "GSI3SK"})
    values.update({":st": stage, ":p3": f"STAGE#{stage}", ":s3": lead_id})
    return "#st = :st, #p3 = :p3, #s3 = :s3"


def score_summary_fields(summary: dict[str, Any], names: dict[str, str], values: dict[str, Any]) -> str:
    """The SET fragment of a lead's score summary (scores per model, grade, grade points, when, and
    the number of ledger entries it was worked out from when given)."""
    names.update({"#s": "scores", "#g": "grade", "#gp": "grade_points", "#at": "scored_at"})
    values.update(
        {":s": summary["scores"], ":g": summary["grade"], ":gp": summary["grade_points"], ":at": summary["scored_at"]}
    )
    fields = "#s = :s, #g = :g, #gp = :gp, #at = :at"
    if "scored_entries" in summary:
        names["#se"] = "scored_entries"
        values[":se"] = summary["scored_entries"]
        fields += ", #se = :se"
    return fields


def score_version_condition(expected: int, values: dict[str, Any]) -> str:
    """The condition that the lead exists and its ``score_version`` (``#v``) is still ``expected``
    (absent when 0): the optimistic lock of every write that moves scores or the stage."""
    if expected == 0:
        return "attribute_exists(PK) AND attribute_not_exists(#v)"
    values[":v"] = expected
    return "attribute_exists(PK) AND #v = :v"


def versioned_lead_update(  # noqa: PLR0917 - the update's table, lead, fields, and its lock
    table: str,
    lead_id: str,
    fields: str,
    names: dict[str, str],
    values: dict[str, Any],
    expected: int,
    stage: str | None = None,
) -> dict[str, Any]:
    """The transaction item that sets ``fields`` on the lead's profile (and moves it to ``stage``)
    under the ``score_version`` lock, bumping the version: what scoring and sales feedback write."""
    names["#v"] = "score_version"
    values[":next"] = expected + 1
    expression = f"SET #v = :next, {fields}"
    if stage:
        expression += ", " + stage_fields(lead_id, stage, names, values)
    return {
        "Update": {
            "TableName": table,
            "Key": serialize(lead_key(lead_id)),
            "UpdateExpression": expression,
            "ConditionExpression": score_version_condition(expected, values),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize(values),
        }
    }
