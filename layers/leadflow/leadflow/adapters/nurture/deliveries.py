"""What SES's Send and Delivery events confirm about an email, written to its lead's mail log.

One Send and one Delivery event arrive per email, so what they write is priced per email
(docs/benchmarks.md section 6): a Send event sets ``c`` on the email's send in the mail log
(``DynamoNurtureStore.confirm_send``: one read and one small conditional write); a Delivery event
sets ``d`` (and ``c``: a delivered email was taken) and, for a sequence's email, adds one to the
sequence report's ``delivered`` counter in the same transaction (4 write units: a transaction
bills each item twice), so the mark in the log is the marker that keeps a redelivered event from
counting twice; another email's mark is one plain conditional write. No activity, bus event or
scoring.
"""

from __future__ import annotations

from typing import Any

from leadflow.adapters.dynamo_json import serialize
from leadflow.adapters.nurture.items import mail_item
from leadflow.adapters.nurture.store import DynamoNurtureStore
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.sequence_reports import delivered_counter, sends_of

ATTEMPTS = 5
"""Reads and writes of the mail log before giving up (a send claimed or marked meanwhile moves its
version); the SQS message is then retried."""


class SesConfirmations(DynamoNurtureStore):
    """The ``SendConfirmations`` port: the mail log in the lead table (``confirm_send`` is the nurture
    store's), the counter in the reports table."""

    def __init__(self, table_name: str, reports_table: str, client: Any = None) -> None:
        super().__init__(table_name, client)
        self.reports_table = reports_table

    def confirm_delivery(self, lead_id: str, message_id: str) -> bool:
        for _ in range(ATTEMPTS):
            log = self.mail_log(lead_id)
            send = next((s for s in log.sends if s.get("m") == message_id), None)
            if send is None or send.get("d"):
                return False  # not an email of the log (kept 7 days), or counted already
            marked = log.marked(message_id, {"c": True, "d": True})
            records = sends_of([send])
            if not records:  # not a sequence's email: the mark alone, one plain conditional write
                if self._put_log(lead_id, log.version, marked):
                    return True
                continue
            (pk, sk), metric = delivered_counter(records[0])
            writes: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": serialize(mail_item(lead_id, marked)),
                        "ConditionExpression": "#v = :v",
                        "ExpressionAttributeNames": {"#v": "v"},
                        "ExpressionAttributeValues": serialize({":v": log.version}),
                    }
                },
                {
                    "Update": {
                        "TableName": self.reports_table,
                        "Key": serialize({"PK": pk, "SK": sk}),
                        "UpdateExpression": "ADD #m :one",
                        "ExpressionAttributeNames": {"#m": metric},
                        "ExpressionAttributeValues": serialize({":one": 1}),
                    }
                },
            ]
            reasons = self._transact(writes)
            if reasons is None:
                return True
            if not any((r or {}).get("Code") == "ConditionalCheckFailed" for r in reasons):
                raise StorageUnavailable(f"delivery not recorded: {[(r or {}).get('Code') for r in reasons]}")
        raise StorageUnavailable("the mail log kept changing while a delivery was recorded")
