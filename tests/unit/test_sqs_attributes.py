"""A received message passed on with its own attributes (``adapters.sqs.api_attributes``): what a
Lambda SQS record holds, as SendMessage takes it."""

from __future__ import annotations

import pytest

from leadflow.adapters.sqs import api_attributes

pytestmark = pytest.mark.unit


def test_a_records_attributes_are_sent_as_sqs_takes_them():
    # GIVEN a record's attributes as Lambda's SQS event gives them (the shape of events/ses_events_sqs.json)
    record = {
        "leadflow_redrives": {
            "stringValue": "2",
            "binaryValue": None,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Number",
        },
        "checksum": {"binaryValue": "AAEC/w==", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    # THEN SendMessage gets each with its type and value: a string as it is, binary decoded to bytes
    assert api_attributes(record) == {
        "leadflow_redrives": {"DataType": "Number", "StringValue": "2"},
        "checksum": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02\xff"},
    }


def test_no_attributes_send_none():
    assert api_attributes({}) == {}
