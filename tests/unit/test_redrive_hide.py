"""Keeping a dead letter hidden: SQS refuses to extend a message's visibility past 12 hours in all,
and the scheduled redrive must not crash on it (it did, on the local stack, after the dev clock
moved half a year: moto measures the 12 hours from the message's sending)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from leadflow.adapters.redrive import RedriveResult, SqsRedrive, hide

pytestmark = pytest.mark.unit

LIMIT = ClientError(
    {
        "Error": {
            "Code": "InvalidParameterValue",
            "Message": "Value 3600 for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
            "for the message is beyond the limit [43200 seconds]",
        }
    },
    "ChangeMessageVisibility",
)


class Sqs:
    """Two dead letters redriven as often as allowed; every visibility change refused with ``error``."""

    def __init__(self, error: ClientError) -> None:
        self.error = error
        redriven = {"leadflow_redrives": {"StringValue": "3"}}
        self.batches = [[{"ReceiptHandle": f"r{i}", "Body": "{}", "MessageAttributes": redriven} for i in range(2)]]
        self.changed: list[str] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {"Messages": self.batches.pop(0) if self.batches else []}

    def change_message_visibility(self, ReceiptHandle: str, **_: Any) -> None:
        self.changed.append(ReceiptHandle)
        raise self.error


def test_a_dead_letter_past_the_12_hour_limit_is_left_as_it_is():
    # GIVEN dead letters redriven as often as allowed, whose visibility SQS will not extend
    sqs = Sqs(LIMIT)
    # WHEN the redrive runs THEN it keeps both (tried to hide each) and does not fail
    assert SqsRedrive(sqs).move_back("dlq", "queue", max_redrives=3) == RedriveResult(moved=0, kept=2)
    assert sqs.changed == ["r0", "r1"]
    assert hide(Sqs(LIMIT), "dlq", "r0", 3600) is False


def test_any_other_refusal_still_fails():
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ChangeMessageVisibility")
    with pytest.raises(ClientError):
        SqsRedrive(Sqs(denied)).move_back("dlq", "queue", max_redrives=3)
